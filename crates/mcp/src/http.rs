//! `/mcp` on `recourse serve`: streamable HTTP, authenticated by the same
//! bearer token as the API. The session acts as that token's agent.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use recourse_gate::api::Auth;
use recourse_gate::Gate;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::server::McpServer;

/// The path of the endpoint.
pub const PATH: &str = "/mcp";

/// The MCP endpoint as a router to merge beside the API. Cancelling `stop`
/// ends its sessions and open streams (graceful shutdown waits for them).
pub fn router(gate: Arc<Gate>, stop: CancellationToken) -> Router {
    // The `Host` check guards unauthenticated local servers against DNS
    // rebinding; here every request needs the bearer token, which a page
    // in a browser does not have, and the gate may listen on any address.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_cancellation_token(stop);
    let sessions = gate.clone();
    let service = StreamableHttpService::new(
        move || Ok(McpServer::in_gate(sessions.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .layer(axum::middleware::from_fn(closed_is_no_content))
        .layer(axum::middleware::from_fn_with_state(gate, authenticate))
}

/// The session-closing `DELETE` answers 204 No Content. rmcp answers 202
/// Accepted, which says the work is still to be done, while the session is
/// already closed; clients that expect the usual 204 (or 200) for a DELETE
/// report the 202 as a failure.
async fn closed_is_no_content(req: Request, next: Next) -> Response {
    let delete = req.method() == Method::DELETE;
    let resp = next.run(req).await;
    if delete && resp.status() == StatusCode::ACCEPTED {
        return StatusCode::NO_CONTENT.into_response();
    }
    resp
}

/// Puts the token's [`recourse_gate::auth::Caller`] into the request's
/// extensions, where the MCP handler finds it; answers 401 without one.
async fn authenticate(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, &gate).await {
        Ok(Auth(caller)) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => {
            let mut resp = e.into_response();
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            resp
        }
    }
}

/// Serves the gate's API and `/mcp` on `listener` until `shutdown`
/// resolves: [`recourse_gate::serve_with`] with this endpoint merged in.
pub async fn serve_gate(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_gate_with_limits(listener, gate, Default::default(), shutdown).await
}

/// [`serve_gate`] under `limits` (connections, header time, each token's
/// requests per second, MCP included).
pub async fn serve_gate_with_limits(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    limits: recourse_gate::limits::ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_gate_with_sign_in(listener, gate, limits, None, shutdown).await
}

/// [`serve_gate_with_limits`], accepting ID tokens `oidc` checks beside
/// bearer tokens (`recourse serve --oidc-issuer`), MCP included.
pub async fn serve_gate_with_sign_in(
    listener: tokio::net::TcpListener,
    gate: Arc<Gate>,
    limits: recourse_gate::limits::ServeLimits,
    oidc: Option<Arc<recourse_gate::oidc::OidcVerifier>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = CancellationToken::new();
    let mcp = router(gate.clone(), stop.clone());
    let shutdown = async move {
        shutdown.await;
        stop.cancel();
    };
    recourse_gate::serve_with_sign_in(listener, gate, mcp, limits, oidc, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_closed_session_answers_no_content() {
        let app = Router::new()
            .route(
                PATH,
                axum::routing::any(|| async { StatusCode::ACCEPTED.into_response() }),
            )
            .layer(axum::middleware::from_fn(closed_is_no_content));
        let call = |method: Method| {
            let app = app.clone();
            async move {
                let req = Request::builder()
                    .method(method)
                    .uri(PATH)
                    .body(Body::empty())
                    .unwrap();
                app.oneshot(req).await.unwrap().status()
            }
        };
        assert_eq!(call(Method::DELETE).await, StatusCode::NO_CONTENT);
        // A notification's 202 stays a 202.
        assert_eq!(call(Method::POST).await, StatusCode::ACCEPTED);
    }
}
