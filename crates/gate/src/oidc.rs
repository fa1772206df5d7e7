//! Sign-in for people with OpenID Connect: the gate accepts an ID token
//! from the institution's identity provider as a bearer, checks it with the
//! provider's published keys, and makes a [`Caller`] of it whose role comes
//! from a claim (`groups` unless configured) through the operator's
//! mapping. Bearer tokens (`crate::tokens`) stay for agents, automation and
//! small teams; an ID token only ever signs in a person the mapping names.
//!
//! What is checked, by `openidconnect` (`IdTokenVerifier`): the signature,
//! with a key from the provider's JWKS whose type fits the algorithm, the
//! algorithm one of the asymmetric ones (never `none`, never an HMAC: a
//! gate has no client secret, and an HS256 token "signed" with the public
//! key's bytes is refused), `iss` equal to the configured issuer, `aud`
//! containing the configured audience and nothing else, `exp` in the future
//! and `iat` not in it. Here: `nbf` when present, the clock skew on all
//! three, a name, and a role.
//!
//! Keys are discovered (`/.well-known/openid-configuration`, then its
//! `jwks_uri`) at start or on first use and cached. A token naming a key the
//! cache does not hold makes the gate look again (the provider rotated its
//! keys), but at most once per [`OidcConfig::refresh_floor`]: a flood of
//! tokens with made-up `kid`s cannot make the gate hammer the provider.
//!
//! No nonce is checked: the gate is not the client that asked for the
//! token (the console is; it checks its nonce when it receives the token).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, ClaimsVerificationError, ClientId, IdToken, IssuerUrl, Nonce,
    SignatureVerificationError,
};
use recourse_client::{Role, SignIn};
use serde_json::{Map, Value};

use crate::auth::Caller;

/// What marks a caller signed in with an ID token: the prefix of its name.
/// Bearer token names cannot hold a `:` (`crate::tokens`), so `oidc:alice`
/// is never a token's name.
pub const NAME_PREFIX: &str = "oidc:";

/// How the gate checks ID tokens (`recourse serve --oidc-*`).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The provider's issuer identifier, exactly as its tokens' `iss`.
    pub issuer: String,
    /// The client id tokens must be issued to (`aud`).
    pub audience: String,
    /// The claim holding the groups or roles a mapping matches (a string
    /// or an array of strings).
    pub role_claim: String,
    /// Claim value -> role, in the operator's order: the first mapping
    /// whose value the token holds gives the role.
    pub roles: Vec<RoleMapping>,
    /// The claims a caller's name is read from, the first present wins.
    pub name_claims: Vec<String>,
    /// Leeway on `exp`, `nbf` and `iat` for clocks that disagree a little.
    pub skew: Duration,
    /// The least time between two fetches of the provider's keys.
    pub refresh_floor: Duration,
}

/// One `--oidc-role VALUE=ROLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMapping {
    pub value: String,
    pub role: Role,
}

impl RoleMapping {
    /// Reads `VALUE=ROLE`, split at the last `=`: a group may be an LDAP
    /// name with `=` in it (`cn=reviewers,ou=groups=reviewer`), a role never.
    pub fn parse(s: &str) -> Result<RoleMapping, OidcError> {
        let bad = |why: &str| OidcError::Mapping(s.to_string(), why.to_string());
        let (value, role) = s.rsplit_once('=').ok_or_else(|| bad("it has no `=`"))?;
        if value.is_empty() {
            return Err(bad("the claim value before `=` is empty"));
        }
        let role = Role::parse(role.trim()).ok_or_else(|| {
            bad(&format!(
                "`{role}` is not a role (one of {})",
                Role::ALL.map(Role::as_str).join(", ")
            ))
        })?;
        Ok(RoleMapping {
            value: value.to_string(),
            role,
        })
    }
}

impl OidcConfig {
    pub const DEFAULT_ROLE_CLAIM: &'static str = "groups";
    pub const DEFAULT_NAME_CLAIMS: [&'static str; 3] = ["email", "preferred_username", "sub"];

    /// A configuration with the defaults: roles from `groups`, the name
    /// from `email`, then `preferred_username`, then `sub`, a minute of
    /// skew, keys fetched again at most every 30 seconds.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            role_claim: Self::DEFAULT_ROLE_CLAIM.to_string(),
            roles: Vec::new(),
            name_claims: Self::DEFAULT_NAME_CLAIMS.map(String::from).to_vec(),
            skew: Duration::from_secs(60),
            refresh_floor: Duration::from_secs(30),
        }
    }

    /// Refuses what cannot work: an issuer that is not a URL, or is plain
    /// `http://` anywhere but a loopback address (keys fetched over plain
    /// HTTP could be anyone's); an empty audience; no mapping (nobody
    /// could sign in).
    pub fn check(&self) -> Result<IssuerUrl, OidcError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| OidcError::Issuer(self.issuer.clone(), e.to_string()))?;
        let url = issuer.url();
        let loopback = match url.host() {
            Some(openidconnect::url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(openidconnect::url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(OidcError::Issuer(
                    self.issuer.clone(),
                    "it must be https (http only on a loopback address, for tests)".into(),
                ))
            }
        }
        if self.audience.trim().is_empty() {
            return Err(OidcError::Config(
                "the audience (client id) is empty".into(),
            ));
        }
        if self.role_claim.trim().is_empty() {
            return Err(OidcError::Config("the role claim is empty".into()));
        }
        if self.roles.is_empty() {
            return Err(OidcError::Config(
                "no claim value is mapped to a role (`--oidc-role VALUE=ROLE`), so nobody could sign in".into(),
            ));
        }
        if self.name_claims.iter().all(|c| c.trim().is_empty()) {
            return Err(OidcError::Config("no claim names the caller".into()));
        }
        Ok(issuer)
    }

    /// The role for a token's claims: the first mapping, in the operator's
    /// order, whose value the role claim holds. None maps: `None`.
    pub fn role_for(&self, claims: &Map<String, Value>) -> Option<Role> {
        let held = claim_values(claims.get(&self.role_claim));
        self.roles
            .iter()
            .find(|m| held.iter().any(|v| *v == m.value))
            .map(|m| m.role)
    }

    /// The caller's name from the first name claim present, marked
    /// [`NAME_PREFIX`].
    pub fn name_for(&self, claims: &Map<String, Value>) -> Option<String> {
        self.name_claims
            .iter()
            .filter_map(|c| claims.get(c).and_then(Value::as_str))
            .map(str::trim)
            .find(|n| !n.is_empty())
            .map(|n| format!("{NAME_PREFIX}{n}"))
    }
}

/// A claim's values: a string is one, an array its strings.
fn claim_values(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the OpenID Connect issuer `{0}` cannot be used: {1}")]
    Issuer(String, String),
    #[error("`--oidc-role {0}` must be VALUE=ROLE: {1}")]
    Mapping(String, String),
    #[error("the OpenID Connect configuration is incomplete: {0}")]
    Config(String),
    /// The provider did not answer with its metadata and keys.
    #[error("the identity provider `{0}` could not be asked for its keys: {1}")]
    Discovery(String, String),
    #[error("the bearer is not a well-formed ID token: {0}")]
    Malformed(String),
    #[error("the ID token was refused: {0}")]
    Refused(String),
    /// A good token whose claims no mapping names (403).
    #[error("`{name}` has no role on this gate: its `{claim}` claim ({held}) matches no `--oidc-role` mapping")]
    NoRole {
        name: String,
        claim: String,
        held: String,
    },
}

impl From<OidcError> for crate::GateError {
    fn from(e: OidcError) -> Self {
        match e {
            OidcError::NoRole { .. } => crate::GateError::Forbidden(e.to_string()),
            _ => crate::GateError::Unauthorized(e.to_string()),
        }
    }
}

/// Every claim of the token, kept as JSON: which claim carries the name
/// and the groups is the operator's choice, not a type's.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct AllClaims(Map<String, Value>);
impl AdditionalClaims for AllClaims {}

type AnyIdToken =
    IdToken<AllClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// The asymmetric algorithms: a gate holds no client secret, so an HMAC
/// token could be forged by anyone who knows what it is keyed with.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Whether a bearer looks like a JWT (three base64url parts), so goes to
/// the verifier rather than the token table. Tokens (`rk_…`) never do.
pub fn looks_like_jwt(bearer: &str) -> bool {
    let parts: Vec<&str> = bearer.split('.').collect();
    parts.len() == 3
        && parts.iter().take(2).all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// When the keys were last fetched, and why that failed.
struct Fetched {
    at: Option<Instant>,
    failed: Option<String>,
}

/// Checks ID tokens against one provider, caching its keys.
pub struct OidcVerifier {
    config: OidcConfig,
    issuer: IssuerUrl,
    http: reqwest::Client,
    /// The cached keys: read by every sign-in, never waiting for a fetch.
    keys: std::sync::RwLock<Arc<CoreJsonWebKeySet>>,
    /// Held across a fetch, so callers that all miss a key wait for one
    /// fetch instead of starting one each.
    fetched: tokio::sync::Mutex<Fetched>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// A verifier for `config` (checked); it fetches nothing yet.
    pub fn new(config: OidcConfig) -> Result<OidcVerifier, OidcError> {
        let issuer = config.check()?;
        let http = reqwest::Client::builder()
            // A redirect could lead the gate anywhere (openidconnect's
            // advice); a slow provider must not hold requests forever.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OidcError::Discovery(config.issuer.clone(), e.to_string()))?;
        Ok(OidcVerifier {
            config,
            issuer,
            http,
            keys: std::sync::RwLock::new(Arc::new(CoreJsonWebKeySet::new(Vec::new()))),
            fetched: tokio::sync::Mutex::new(Fetched {
                at: None,
                failed: None,
            }),
            fetches: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// How many times the provider was asked for its metadata and keys.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Fetches the provider's keys now (at start), unless fetched within
    /// the floor.
    pub async fn prefetch(&self) -> Result<(), OidcError> {
        self.refresh().await.map(|_| ())
    }

    /// The cached keys, fetched when there are none yet. Keys once
    /// fetched keep working while the provider is unreachable.
    async fn current(&self) -> Result<Arc<CoreJsonWebKeySet>, OidcError> {
        let keys = self.cached();
        if !keys.keys().is_empty() {
            return Ok(keys);
        }
        self.refresh().await
    }

    fn cached(&self) -> Arc<CoreJsonWebKeySet> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Discovers the provider's metadata and keys again, unless that was
    /// done less than `refresh_floor` ago: then the cached keys.
    async fn refresh(&self) -> Result<Arc<CoreJsonWebKeySet>, OidcError> {
        let mut fetched = self.fetched.lock().await;
        if fetched
            .at
            .is_some_and(|t| t.elapsed() < self.config.refresh_floor)
        {
            return match &fetched.failed {
                Some(why) => Err(OidcError::Discovery(
                    self.config.issuer.clone(),
                    why.clone(),
                )),
                None => Ok(self.cached()),
            };
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let discovered =
            CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http).await;
        // A failed fetch counts against the floor too: a provider that is
        // down is not asked again for every request. The keys held stay.
        fetched.at = Some(Instant::now());
        let metadata = match discovered {
            Ok(m) => m,
            Err(e) => {
                let why = error_chain(&e);
                fetched.failed = Some(why.clone());
                return Err(OidcError::Discovery(self.config.issuer.clone(), why));
            }
        };
        fetched.failed = None;
        let set = Arc::new(metadata.jwks().clone());
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = set.clone();
        tracing::info!(
            issuer = %self.config.issuer,
            keys = set.keys().len(),
            "fetched the identity provider's keys"
        );
        Ok(set)
    }

    /// The caller an ID token signs in, or why not.
    pub async fn verify(&self, bearer: &str) -> Result<Caller, OidcError> {
        self.verify_at(bearer, Utc::now()).await
    }

    pub async fn verify_at(&self, bearer: &str, now: DateTime<Utc>) -> Result<Caller, OidcError> {
        let token: AnyIdToken = bearer
            .parse()
            .map_err(|e: serde_json::Error| OidcError::Malformed(e.to_string()))?;
        let keys = self.current().await?;
        let expires_at = match self.check(&token, &keys, now) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // A key we do not hold: perhaps the provider rotated.
                let keys = self.refresh().await?;
                self.check(&token, &keys, now)
            }
            other => other,
        }
        .map_err(|e| OidcError::Refused(refusal(&e)))?;
        self.caller(bearer, expires_at, now)
    }

    /// The checks `openidconnect` makes (module docs); `exp` on success.
    fn check(
        &self,
        token: &AnyIdToken,
        keys: &CoreJsonWebKeySet,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, ClaimsVerificationError> {
        let skew = chrono::Duration::from_std(self.config.skew).unwrap_or_default();
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.config.audience.clone()),
            self.issuer.clone(),
            keys.clone(),
        )
        .set_allowed_algs(ALGORITHMS)
        // `exp` is compared with this time: the skew forgives a token
        // that expired a moment ago by the gate's clock.
        .set_time_fn(move || now - skew)
        .set_issue_time_verifier_fn(move |iat| {
            if iat > now + skew {
                Err(format!("it was issued in the future ({iat})"))
            } else {
                Ok(())
            }
        });
        let claims = token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?;
        Ok(claims.expiration())
    }

    /// The caller from a verified token: its claims read again as JSON
    /// (the payload the signature covers), `nbf`, the name and the role.
    fn caller(
        &self,
        bearer: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Caller, OidcError> {
        let claims = payload(bearer)?;
        let skew = chrono::Duration::from_std(self.config.skew).unwrap_or_default();
        // NumericDate may be fractional; a claim that is not a number is
        // refused rather than ignored.
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf
                .as_f64()
                .and_then(|t| DateTime::<Utc>::from_timestamp(t as i64, 0))
                .ok_or_else(|| OidcError::Refused(format!("its `nbf` ({nbf}) is not a time")))?;
            if nbf > now + skew {
                return Err(OidcError::Refused(format!("it is not valid before {nbf}")));
            }
        }
        let name = self.config.name_for(&claims).ok_or_else(|| {
            OidcError::Refused(format!(
                "it has none of the claims that name a caller ({})",
                self.config.name_claims.join(", ")
            ))
        })?;
        let Some(role) = self.config.role_for(&claims) else {
            let held = claim_values(claims.get(&self.config.role_claim));
            return Err(OidcError::NoRole {
                name,
                claim: self.config.role_claim.clone(),
                held: if held.is_empty() {
                    "absent or empty".into()
                } else {
                    held.iter()
                        .take(10)
                        .map(|v| format!("`{v}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        };
        Ok(Caller {
            name,
            role,
            expires_at: Some(expires_at),
            scope: None,
            signed_in: SignIn::Oidc,
        })
    }
}

/// The JSON object in a JWT's second part.
fn payload(bearer: &str) -> Result<Map<String, Value>, OidcError> {
    let part = bearer
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::Malformed("it has no payload".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| OidcError::Malformed(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::Malformed(e.to_string()))
}

/// What a refusal says, in the gate's words where `openidconnect`'s are
/// terse.
fn refusal(e: &ClaimsVerificationError) -> String {
    match e {
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => "it is signed with a key the identity provider does not publish".into(),
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoSignature) => {
            "it is not signed (`alg: none`)".into()
        }
        ClaimsVerificationError::SignatureVerification(inner) => {
            format!("its signature does not verify: {inner}")
        }
        other => {
            let s = other.to_string();
            let mut c = s.chars();
            c.next()
                .map(|f| f.to_lowercase().chain(c).collect())
                .unwrap_or(s)
        }
    }
}

/// An error and its sources, for a message that says what failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(roles: &[&str]) -> OidcConfig {
        let mut c = OidcConfig::new("https://id.example.org", "recourse");
        c.roles = roles
            .iter()
            .map(|r| RoleMapping::parse(r).unwrap())
            .collect();
        c
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_mapping_splits_at_the_last_equals_and_names_what_is_wrong() {
        let m = RoleMapping::parse("cn=reviewers,ou=groups=reviewer").unwrap();
        assert_eq!(m.value, "cn=reviewers,ou=groups");
        assert_eq!(m.role, Role::Reviewer);
        let e = RoleMapping::parse("reviewers").unwrap_err().to_string();
        assert!(e.contains("no `=`"), "{e}");
        let e = RoleMapping::parse("ops=boss").unwrap_err().to_string();
        assert!(e.contains("`boss` is not a role"), "{e}");
        assert!(e.contains("incident_lead"), "{e}");
        assert!(RoleMapping::parse("=admin").is_err());
    }

    #[test]
    fn the_first_mapping_in_the_operators_order_gives_the_role() {
        let c = config(&["admins=admin", "reviewers=reviewer", "oncall=incident_lead"]);
        let both = claims(json!({"groups": ["reviewers", "admins"]}));
        assert_eq!(c.role_for(&both), Some(Role::Admin));
        let c = config(&["reviewers=reviewer", "admins=admin"]);
        assert_eq!(c.role_for(&both), Some(Role::Reviewer));
        // One string is one value.
        assert_eq!(
            c.role_for(&claims(json!({"groups": "admins"}))),
            Some(Role::Admin)
        );
    }

    #[test]
    fn claims_that_no_mapping_names_give_no_role() {
        let c = config(&["reviewers=reviewer"]);
        for v in [
            json!({}),
            json!({"groups": []}),
            json!({"groups": ["Reviewers"]}),
            json!({"groups": [["reviewers"]]}),
            json!({"groups": 7}),
            json!({"roles": ["reviewers"]}),
        ] {
            assert_eq!(c.role_for(&claims(v.clone())), None, "{v}");
        }
        // An agent only through an explicit mapping.
        let c = config(&["bots=agent"]);
        assert_eq!(
            c.role_for(&claims(json!({"groups": ["bots"]}))),
            Some(Role::Agent)
        );
    }

    #[test]
    fn the_role_claim_is_configurable() {
        let mut c = config(&["approver=reviewer"]);
        c.role_claim = "roles".into();
        assert_eq!(
            c.role_for(&claims(json!({"roles": ["approver"], "groups": []}))),
            Some(Role::Reviewer)
        );
    }

    #[test]
    fn the_name_is_the_first_name_claim_present_and_marked() {
        let c = config(&["g=reviewer"]);
        let n = |v| c.name_for(&claims(v));
        assert_eq!(
            n(json!({"email": "a@x.org", "preferred_username": "a", "sub": "1"})),
            Some("oidc:a@x.org".into())
        );
        assert_eq!(
            n(json!({"email": " ", "preferred_username": "alice", "sub": "1"})),
            Some("oidc:alice".into())
        );
        assert_eq!(n(json!({"sub": "1234"})), Some("oidc:1234".into()));
        assert_eq!(n(json!({"name": "Alice"})), None);
    }

    #[test]
    fn a_configuration_is_refused_by_what_is_missing() {
        let ok = config(&["g=reviewer"]);
        assert!(ok.check().is_ok());
        let mut c = ok.clone();
        c.issuer = "http://id.example.org".into();
        assert!(c.check().unwrap_err().to_string().contains("https"));
        for loopback in [
            "http://127.0.0.1:8080",
            "http://localhost:1/realms/x",
            "http://[::1]:9",
        ] {
            c.issuer = loopback.into();
            assert!(c.check().is_ok(), "{loopback}");
        }
        let mut c = ok.clone();
        c.issuer = "not a url".into();
        assert!(c.check().is_err());
        let mut c = ok.clone();
        c.audience = " ".into();
        assert!(c.check().unwrap_err().to_string().contains("audience"));
        let mut c = ok.clone();
        c.roles.clear();
        assert!(c.check().unwrap_err().to_string().contains("--oidc-role"));
    }

    #[test]
    fn only_three_base64url_parts_look_like_a_jwt() {
        assert!(looks_like_jwt("eyJh.eyJi.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJi."));
        assert!(!looks_like_jwt("rk_abc-def_ghi"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a+.b.c"));
        assert!(!looks_like_jwt(".b.c"));
    }

    #[test]
    fn no_role_is_a_403_and_a_bad_token_a_401() {
        let e: crate::GateError = OidcError::NoRole {
            name: "oidc:a".into(),
            claim: "groups".into(),
            held: "`x`".into(),
        }
        .into();
        assert!(matches!(e, crate::GateError::Forbidden(_)));
        let e: crate::GateError = OidcError::Refused("expired".into()).into();
        assert!(matches!(e, crate::GateError::Unauthorized(_)));
    }
}
