//! `/v1/audit`: the hash-chained trail and its verification.

use axum::extract::{Query, State};
use axum::Json;
use recourse_client::{AuditEntry, AuditVerification, ErrorBody, Permission};
use serde::Deserialize;

use super::{ApiError, AppState, Auth, Routes};
use crate::error::GateError;

pub(crate) fn routes(r: Routes) -> Routes {
    r.get("/v1/audit", list).get("/v1/audit/verify", verify)
}

/// The operations of this module in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, verify), components(schemas(AuditOrder)))]
pub(crate) struct Api;

/// The query as given: strings, so that a bad value is a 400 naming its
/// field (serde's own message for `limit=abc` does not name it). The
/// document gives each its real type.
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RawPage {
    /// `desc` (newest first, the default without `after`) or `asc`.
    #[param(value_type = Option<AuditOrder>)]
    order: Option<String>,
    /// Oldest first: entries after this sequence number.
    #[param(value_type = Option<i64>, minimum = 0)]
    after: Option<String>,
    /// Newest first: entries before this sequence number.
    #[param(value_type = Option<i64>, minimum = 1)]
    before: Option<String>,
    /// At most this many (default 1000).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    limit: Option<String>,
}

/// The order of a page of the trail, as the document shows `order`.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only named in the document: `RawPage` parses the text
enum AuditOrder {
    Asc,
    Desc,
}

/// One page of the trail.
#[derive(Debug, PartialEq, Eq)]
enum Page {
    /// Oldest first, entries after `after` (`?after=SEQ` or `?order=asc`).
    Ascending { after: i64, limit: i64 },
    /// Newest first, entries before `before` when given (the default: a
    /// person opening the trail wants what just happened).
    Descending { before: Option<i64>, limit: i64 },
}

const DEFAULT_LIMIT: i64 = 1000;
const MAX_LIMIT: i64 = 10_000;

fn number(field: &str, v: Option<&str>, min: i64) -> Result<Option<i64>, GateError> {
    let Some(v) = v else { return Ok(None) };
    match v.trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(Some(n)),
        _ => Err(GateError::invalid(
            field,
            format!("`{v}` is not a whole number of {min} or more"),
        )),
    }
}

impl Page {
    fn parse(raw: &RawPage) -> Result<Page, GateError> {
        let limit = match number("limit", raw.limit.as_deref(), 1)? {
            Some(n) if n > MAX_LIMIT => {
                return Err(GateError::invalid(
                    "limit",
                    format!("must be between 1 and {MAX_LIMIT}"),
                ))
            }
            Some(n) => n,
            None => DEFAULT_LIMIT,
        };
        let after = number("after", raw.after.as_deref(), 0)?;
        let before = number("before", raw.before.as_deref(), 1)?;
        // `after` alone keeps the ascending paging it always had.
        let descending = match raw.order.as_deref().map(str::trim) {
            Some("asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(GateError::invalid(
                    "order",
                    format!("`{other}` is not `asc` or `desc`"),
                ))
            }
            None => after.is_none(),
        };
        match (descending, after, before) {
            (true, Some(_), _) => Err(GateError::invalid(
                "after",
                "pages oldest first; with order=desc use `before`",
            )),
            (false, _, Some(_)) => Err(GateError::invalid(
                "before",
                "pages newest first; with order=asc use `after`",
            )),
            (true, None, before) => Ok(Page::Descending { before, limit }),
            (false, after, None) => Ok(Page::Ascending {
                after: after.unwrap_or(0),
                limit,
            }),
        }
    }
}

/// `GET /v1/audit`: newest first by default (`?before=SEQ&limit=N` pages to
/// older entries); `?after=SEQ` or `?order=asc` pages oldest first.
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "list_audit",
    tag = "audit",
    params(RawPage),
    responses(
        (status = 200, description = "One page of the trail.", body = Vec<AuditEntry>),
        (status = 400, description = "A query parameter is malformed (`field` names it).", body = ErrorBody),
        (status = 403, description = "The caller's role may not read the trail.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn list(
    State(gate): State<AppState>,
    Auth(caller): Auth,
    raw: Result<Query<RawPage>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    caller.allow(Permission::ReadAudit)?;
    let Query(raw) = raw.map_err(|e| GateError::invalid("query", e.body_text()))?;
    let entries = match Page::parse(&raw)? {
        Page::Ascending { after, limit } => gate.store().audit(after, limit).await?,
        Page::Descending { before, limit } => gate.store().audit_newest(before, limit).await?,
    };
    Ok(Json(entries))
}

/// Checks every link of the hash chain.
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    operation_id = "verify_audit",
    tag = "audit",
    responses(
        (status = 200, description = "Whether the chain holds, and its head.", body = AuditVerification),
        (status = 403, description = "The caller's role may not read the trail.", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn verify(
    State(gate): State<AppState>,
    Auth(caller): Auth,
) -> Result<Json<AuditVerification>, ApiError> {
    caller.allow(Permission::ReadAudit)?;
    Ok(Json(
        crate::verify_store_audit(gate.store().as_ref()).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(q: &[(&str, &str)]) -> Result<Page, String> {
        let get = |k: &str| q.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let raw = RawPage {
            order: get("order"),
            after: get("after"),
            before: get("before"),
            limit: get("limit"),
        };
        Page::parse(&raw).map_err(|e| match e {
            GateError::Invalid { field, .. } => field,
            other => other.to_string(),
        })
    }

    #[test]
    fn newest_first_by_default_and_after_keeps_paging_ascending() {
        assert_eq!(
            page(&[]),
            Ok(Page::Descending {
                before: None,
                limit: 1000
            })
        );
        assert_eq!(
            page(&[("order", "desc"), ("before", "42"), ("limit", "5")]),
            Ok(Page::Descending {
                before: Some(42),
                limit: 5
            })
        );
        assert_eq!(
            page(&[("after", "7")]),
            Ok(Page::Ascending {
                after: 7,
                limit: 1000
            })
        );
        assert_eq!(
            page(&[("order", "asc")]),
            Ok(Page::Ascending {
                after: 0,
                limit: 1000
            })
        );
    }

    #[test]
    fn a_bad_parameter_is_named() {
        assert_eq!(page(&[("order", "sideways")]), Err("order".into()));
        assert_eq!(page(&[("limit", "abc")]), Err("limit".into()));
        assert_eq!(page(&[("limit", "0")]), Err("limit".into()));
        assert_eq!(page(&[("limit", "10001")]), Err("limit".into()));
        assert_eq!(page(&[("before", "-1")]), Err("before".into()));
        assert_eq!(page(&[("after", "x")]), Err("after".into()));
        assert_eq!(
            page(&[("order", "desc"), ("after", "3")]),
            Err("after".into())
        );
        assert_eq!(
            page(&[("order", "asc"), ("before", "3")]),
            Err("before".into())
        );
    }
}

#[cfg(test)]
mod http_tests {
    use std::sync::Arc;

    use axum::body::Body as HttpBody;
    use axum::http::{Request, StatusCode};
    use recourse_client::Role;
    use serde_json::{json, Value};
    use tower::ServiceExt;

    use crate::audit::AuditDraft;
    use crate::store::{AuditStore, MemoryStore};
    use crate::{Gate, GateConfig};

    async fn get(gate: &super::AppState, token: &str, uri: &str) -> (StatusCode, Value) {
        let resp = super::super::router(gate.clone())
            .oneshot(
                Request::get(uri)
                    .header("authorization", format!("Bearer {token}"))
                    .body(HttpBody::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    fn seqs(v: &Value) -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn the_trail_pages_newest_first_and_oldest_first() {
        let store = Arc::new(MemoryStore::new());
        let gate: super::AppState =
            Arc::new(Gate::new(store.clone(), Vec::new(), GateConfig::default()));
        let reviewer = crate::create_token(store.as_ref(), "t", "rita", Role::Reviewer, None)
            .await
            .unwrap();
        let agent = crate::create_token(store.as_ref(), "t", "bot", Role::Agent, None)
            .await
            .unwrap();
        for i in 0..5 {
            store
                .append_audit(AuditDraft::new("t", "test", None, json!({ "i": i })))
                .await
                .unwrap();
        }
        let (_, all) = get(&gate, &reviewer, "/v1/audit?order=asc&limit=10000").await;
        let all = seqs(&all);
        assert!(
            all.len() >= 5 && all.windows(2).all(|w| w[0] < w[1]),
            "{all:?}"
        );
        let newest = *all.last().unwrap();

        let (status, page) = get(&gate, &reviewer, "/v1/audit?limit=2").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(seqs(&page), vec![newest, newest - 1]);
        let (_, page) = get(
            &gate,
            &reviewer,
            &format!("/v1/audit?order=desc&before={}&limit=2", newest - 1),
        )
        .await;
        assert_eq!(seqs(&page), vec![newest - 2, newest - 3]);
        let (_, page) = get(&gate, &reviewer, &format!("/v1/audit?after={}", newest - 2)).await;
        assert_eq!(seqs(&page), vec![newest - 1, newest]);

        let (status, err) = get(&gate, &reviewer, "/v1/audit?limit=lots").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error"]["field"], "limit", "{err}");
        let (status, err) = get(&gate, &reviewer, "/v1/audit?order=desc&after=3").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(err["error"]["field"], "after", "{err}");

        let (status, _) = get(&gate, &agent, "/v1/audit").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
