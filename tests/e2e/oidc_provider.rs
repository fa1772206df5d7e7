//! A small OpenID Connect provider the sign-in suite runs itself: an axum
//! server on 127.0.0.1:0 serving its discovery document and its keys
//! (JWKS), and signing RS256 ID tokens with RSA keys generated here. It can
//! rotate its keys and counts how often the gate fetched them. It also
//! makes the tokens an attacker would: unsigned, HMAC-keyed with the public
//! key, signed by a key it does not publish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};

/// The client id the suite's gates accept tokens for.
pub const AUDIENCE: &str = "recourse-console";

/// One signing key and the id (`kid`) it is published under.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    private: RsaPrivateKey,
}

impl Key {
    pub fn generate(kid: &str) -> Key {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        Key {
            kid: kid.to_string(),
            private,
        }
    }

    /// This key under another `kid` (a forger naming a key the provider
    /// does not have).
    pub fn named(&self, kid: &str) -> Key {
        Key {
            kid: kid.to_string(),
            private: self.private.clone(),
        }
    }

    fn jwk(&self) -> Value {
        let public = self.private.to_public_key();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
            "n": B64.encode(public.n().to_bytes_be()),
            "e": B64.encode(public.e().to_bytes_be()),
        })
    }

    /// The public key as PEM: what an attacker would use as an HMAC secret.
    pub fn public_pem(&self) -> String {
        self.private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    }

    /// An RS256 ID token with these claims.
    pub fn sign(&self, claims: &Value) -> String {
        let signing = |input: &[u8]| {
            SigningKey::<Sha256>::new(self.private.clone())
                .sign(input)
                .to_vec()
        };
        jwt(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
            signing,
        )
    }
}

/// `header.claims.signature`, base64url, the signature over the first two.
pub fn jwt(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig))
}

/// An HS256 token keyed with `secret`.
pub fn hs256(kid: &str, secret: &[u8], claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    jwt(
        &json!({"alg": "HS256", "typ": "JWT", "kid": kid}),
        claims,
        |input| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        },
    )
}

/// An unsigned token (`alg: none`, empty signature).
pub fn unsigned(claims: &Value) -> String {
    jwt(&json!({"alg": "none", "typ": "JWT"}), claims, |_| {
        Vec::new()
    })
}

struct Published {
    issuer: String,
    keys: Mutex<Vec<Value>>,
    jwks_fetches: AtomicUsize,
}

/// The provider, serving until dropped.
pub struct Provider {
    pub issuer: String,
    state: Arc<Published>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Provider {
    /// Serves on a free loopback port with `keys` published; its issuer has
    /// a path, as a realm of a real provider would.
    pub async fn start(keys: &[&Key]) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/realms/recourse", listener.local_addr().unwrap());
        let state = Arc::new(Published {
            issuer: issuer.clone(),
            keys: Mutex::new(keys.iter().map(|k| k.jwk()).collect()),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route(
                "/realms/recourse/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/recourse/jwks", get(jwks))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Provider {
            issuer,
            state,
            task,
        }
    }

    /// Publishes `keys` instead of the keys published so far (a rotation).
    pub fn publish(&self, keys: &[&Key]) {
        *self.state.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Claims of an ID token for `email` in `groups`, valid for 10 minutes.
    pub fn claims(&self, email: &str, groups: &[&str]) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": format!("sub-{email}"),
            "email": email, "preferred_username": email.split('@').next(),
            "groups": groups, "iat": now, "exp": now + 600,
        })
    }

    /// The `recourse serve` flags that accept this provider's tokens:
    /// `staff-reviewers` are reviewers, `ops` incident leads.
    pub fn flags(&self) -> Vec<String> {
        [
            "--oidc-issuer",
            &self.issuer,
            "--oidc-audience",
            AUDIENCE,
            "--oidc-role",
            "staff-reviewers=reviewer",
            "--oidc-role",
            "ops=incident_lead",
        ]
        .map(String::from)
        .to_vec()
    }
}

async fn discovery(State(s): State<Arc<Published>>) -> Json<Value> {
    Json(json!({
        "issuer": s.issuer,
        "authorization_endpoint": format!("{}/auth", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "jwks_uri": format!("{}/jwks", s.issuer),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(s): State<Arc<Published>>) -> Json<Value> {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({"keys": *s.keys.lock().unwrap()}))
}
