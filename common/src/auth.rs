//! Access-token checks shared by the gateway and every service.
//!
//! Tokens are EdDSA (Ed25519) JWTs signed by auth-svc. Verifiers hold the
//! public keys by `kid` and fetch them again from their [`KeySource`] when a
//! token names a `kid` they have not seen, which is how a key rotation reaches
//! them without a restart.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use smsops_proto::auth::v1::{GetPublicKeysRequest, auth_service_client::AuthServiceClient};
use tokio::sync::{Mutex, RwLock};
use tonic::transport::Channel;

use crate::{ApiError, ErrorCode, config::TokenSettings};

/// Metadata entry (and HTTP header) that carries the caller's token.
pub const AUTHORIZATION: &str = "authorization";

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// The least time between two key fetches, so tokens with made-up `kid`s
/// cannot turn every request into a call to auth-svc.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
    /// An API key's one-minute token: may only report SMS results. Never a
    /// user's role.
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }
}

/// The claims of an smsops access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub email: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// Who is calling, as proven by a verified access token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    /// The raw token, forwarded to the next hop so it can check it again.
    pub token: String,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this action needs the admin role"))
        }
    }

    /// Adds this caller's token to an outgoing gRPC request.
    pub fn authorize<T>(&self, mut request: tonic::Request<T>) -> tonic::Request<T> {
        if let Ok(value) = format!("Bearer {}", self.token).parse() {
            request.metadata_mut().insert(AUTHORIZATION, value);
        }
        request
    }
}

/// One Ed25519 public key: its `kid` and the base64url of its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub kid: String,
    pub x: String,
}

type KeyFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<PublicJwk>, ApiError>> + Send + 'a>>;

/// Where a verifier gets the current public keys.
pub trait KeySource: Send + Sync + 'static {
    fn fetch(&self) -> KeyFuture<'_>;
}

/// Fetches the keys from auth-svc over gRPC.
pub struct AuthServiceKeys {
    client: AuthServiceClient<Channel>,
}

impl AuthServiceKeys {
    pub fn new(channel: Channel) -> Self {
        Self {
            client: AuthServiceClient::new(channel),
        }
    }
}

impl KeySource for AuthServiceKeys {
    fn fetch(&self) -> KeyFuture<'_> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let keys = client
                .get_public_keys(GetPublicKeysRequest {})
                .await
                .map_err(|status| ApiError::from_status(&status))?
                .into_inner();
            Ok(keys
                .keys
                .into_iter()
                .map(|key| PublicJwk {
                    kid: key.kid,
                    x: key.x,
                })
                .collect())
        })
    }
}

/// Checks access tokens: signature, `alg`, `exp` (with a small leeway), `iss`, `aud`.
pub struct TokenVerifier {
    /// Built once: every request checks against the same rules.
    validation: Validation,
    source: Arc<dyn KeySource>,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl TokenVerifier {
    pub fn new(settings: TokenSettings, source: Arc<dyn KeySource>) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            validation,
            source,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
        }
    }

    /// Verifies a raw token (without the `Bearer ` prefix).
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let header = decode_header(token).map_err(|_| bad_token("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(bad_token("token algorithm not accepted"));
        }
        let kid = header.kid.ok_or_else(|| bad_token("token has no key id"))?;
        let key = match self.key(&kid).await {
            Some(key) => key,
            None => {
                self.refresh(&kid).await?;
                self.key(&kid)
                    .await
                    .ok_or_else(|| bad_token("token signed by an unknown key"))?
            }
        };
        decode::<Claims>(token, &key, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| bad_token(&format!("token rejected: {err}")))
    }

    /// Verifies an `Authorization: Bearer …` value and returns the caller.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let value = authorization.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token =
            bearer(value).ok_or_else(|| ApiError::unauthorized("expected a bearer token"))?;
        let claims = self.verify(token).await?;
        Ok(Caller {
            user_id: claims.sub,
            email: claims.email,
            role: claims.role,
            token: token.into(),
        })
    }

    /// The caller of a gRPC request, from its `authorization` metadata.
    pub async fn caller_of<T>(&self, request: &tonic::Request<T>) -> Result<Caller, ApiError> {
        let value = request
            .metadata()
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        self.caller(value).await
    }

    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().await.get(kid).cloned()
    }

    async fn refresh(&self, kid: &str) -> Result<(), ApiError> {
        let mut last = self.last_fetch.lock().await;
        // Another request may have fetched this kid while we waited for the lock.
        if self.key(kid).await.is_some() {
            return Ok(());
        }
        // Space fetches out rather than skip them: a token from a freshly
        // rotated key waits a moment instead of being refused.
        if let Some(wait) = last.and_then(|at| MIN_REFRESH_INTERVAL.checked_sub(at.elapsed())) {
            tokio::time::sleep(wait).await;
        }
        let fetched = self.source.fetch().await.map_err(|err| {
            tracing::warn!(error = %err, "token key fetch failed");
            ApiError::new(ErrorCode::Unavailable, "token keys are unavailable")
        })?;
        *last = Some(Instant::now());
        let mut keys = HashMap::new();
        for jwk in fetched {
            match DecodingKey::from_ed_components(&jwk.x) {
                Ok(key) => {
                    keys.insert(jwk.kid, key);
                }
                Err(err) => tracing::warn!(kid = %jwk.kid, error = %err, "unusable public key"),
            }
        }
        tracing::info!(keys = keys.len(), "token keys refreshed");
        *self.keys.write().await = keys;
        Ok(())
    }
}

fn bad_token(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, message)
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }
}
