//! Access-token checks shared by the gateway and every service.
//!
//! Tokens are EdDSA (Ed25519) JWTs signed by auth-svc. Verifiers hold the
//! public keys by `kid` and fetch them again from their [`KeySource`] when a
//! token names a `kid` they have not seen, which is how a key rotation reaches
//! them without a restart.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::{Arc, Weak},
    time::{Duration, Instant},
};

use crate::grpc::Channel;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::{Deserialize, Serialize};
use smsops_proto::auth::v1::{
    GetPublicKeysRequest, ListRevocationsRequest, auth_service_client::AuthServiceClient,
};
use tokio::sync::{Mutex, RwLock};

use crate::{ApiError, ErrorCode, config::TokenSettings, unix_now};

mod verified;
use verified::Verified;

/// Metadata entry (and HTTP header) that carries the caller's token.
pub const AUTHORIZATION: &str = "authorization";

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 30;

/// The least time between two key fetches, so tokens with made-up `kid`s
/// cannot turn every request into a call to auth-svc.
const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(200);

/// How often verifiers fetch the revocations in force: a revoked right
/// stops working within about this long (the bound is 5 s).
pub const REVOCATION_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including users, pairs, keys and rules.
    Admin,
    /// Sends SMS, runs sessions and sees full phone numbers. Accounts made
    /// before roles were split were `user`s and read back as operators.
    #[serde(alias = "user")]
    Operator,
    /// Reads everything an operator does, with phone numbers masked.
    Viewer,
    /// A service of smsops acting on its own (process-svc running
    /// sessions): an operator that may also write a session's messages.
    /// Made by auth-svc from its config, never through sign-up.
    Service,
    /// An API key's one-minute token: may only report SMS results. Never a
    /// user's role.
    Ingest,
}

impl Role {
    /// The roles a person can hold, as an admin assigns them.
    pub const PEOPLE: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Service => "service",
            Role::Ingest => "ingest",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Operator,
            Role::Viewer,
            Role::Service,
            Role::Ingest,
        ]
        .into_iter()
        .find(|role| role.as_str() == name)
    }

    /// May spend money: send SMS, start, stop and restart sessions.
    pub fn can_send(self) -> bool {
        matches!(self, Role::Admin | Role::Operator | Role::Service)
    }

    /// May see whole phone numbers; the others see them masked.
    pub fn sees_numbers(self) -> bool {
        self.can_send()
    }
}

/// How much a user may send: messages per minute and per day; `None` is
/// no cap. Carried in the user's access tokens, so sms-svc and process-svc
/// check it without asking auth-svc; a change ends the old tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub per_minute: Option<u64>,
    pub per_day: Option<u64>,
}

impl Quota {
    pub const UNLIMITED: Quota = Quota {
        per_minute: None,
        per_day: None,
    };
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
    /// The user's token version when this token was issued: a role change
    /// or a deletion raises it, and verifiers then refuse older tokens.
    #[serde(default)]
    pub ver: u64,
    /// The user's sending quota; tokens from before quotas have none.
    #[serde(default)]
    pub quota: Quota,
}

/// Who is calling, as proven by a verified access token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    /// The token's id, expiry (unix seconds) and user token version, to
    /// revoke it or to end a live feed when it lapses.
    pub jti: String,
    pub exp: i64,
    pub ver: u64,
    pub quota: Quota,
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

    /// Sending SMS and running sessions: operators and admins.
    pub fn require_sender(&self) -> Result<(), ApiError> {
        if self.role.can_send() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "this action needs the operator or admin role",
            ))
        }
    }

    /// A phone number as this caller may see it.
    pub fn shown_number(&self, number: &str) -> String {
        if self.role.sees_numbers() {
            number.to_string()
        } else {
            mask_number(number)
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

/// `+447700900671` → `+44770****671`: the country and network stay
/// readable, the subscriber does not. Short or odd values are masked whole
/// but for their ends.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let (head, tail) = match chars.len() {
        0..=4 => (0, 0),
        5..=9 => (2, 2),
        _ => (6, 3),
    };
    let hidden = chars.len() - head - tail;
    chars[..head]
        .iter()
        .chain(std::iter::repeat_n(&'*', hidden))
        .chain(&chars[chars.len() - tail..])
        .collect()
}

/// One Ed25519 public key: its `kid` and the base64url of its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicJwk {
    pub kid: String,
    pub x: String,
}

type KeyFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<PublicJwk>, ApiError>> + Send + 'a>>;
type RevokedFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Revoked>, ApiError>> + Send + 'a>>;

/// Where a verifier gets the current public keys and revocations.
pub trait KeySource: Send + Sync + 'static {
    fn fetch(&self) -> KeyFuture<'_>;
    fn revocations(&self) -> RevokedFuture<'_>;
}

/// A token to refuse before its `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// Every token of the user issued below this version (a role change,
    /// a deletion).
    VersionsBelow { user_id: String, min_version: u64 },
    /// One token, by `jti` (a sign-out).
    Token(String),
}

/// The revocations in force, as a verifier checks them on every call.
#[derive(Debug, Default)]
struct RevokedSet {
    min_version: HashMap<String, u64>,
    tokens: HashSet<String>,
}

impl RevokedSet {
    fn new(list: Vec<Revoked>) -> Self {
        let mut set = Self::default();
        for revoked in list {
            match revoked {
                Revoked::VersionsBelow {
                    user_id,
                    min_version,
                } => {
                    let at = set.min_version.entry(user_id).or_default();
                    *at = (*at).max(min_version);
                }
                Revoked::Token(jti) => {
                    set.tokens.insert(jti);
                }
            }
        }
        set
    }

    fn refuses(&self, user_id: &str, ver: u64, jti: &str) -> bool {
        self.tokens.contains(jti) || self.min_version.get(user_id).is_some_and(|&min| ver < min)
    }
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

    fn revocations(&self) -> RevokedFuture<'_> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let list = client
                .list_revocations(ListRevocationsRequest {})
                .await
                .map_err(|status| ApiError::from_status(&status))?
                .into_inner();
            Ok(list
                .items
                .into_iter()
                .map(|item| {
                    if item.jti.is_empty() {
                        Revoked::VersionsBelow {
                            user_id: item.user_id,
                            min_version: item.min_version,
                        }
                    } else {
                        Revoked::Token(item.jti)
                    }
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
    revoked: std::sync::RwLock<RevokedSet>,
    verified: Verified,
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
            revoked: std::sync::RwLock::new(RevokedSet::default()),
            verified: Verified::default(),
        }
    }

    /// A verifier that follows the revocations in force, fetching them
    /// every [`REVOCATION_POLL`] until it is dropped.
    pub fn following(settings: TokenSettings, source: Arc<dyn KeySource>) -> Arc<Self> {
        let verifier = Arc::new(Self::new(settings, source));
        tokio::spawn(follow(Arc::downgrade(&verifier), REVOCATION_POLL));
        verifier
    }

    /// Replaces the revocations in force.
    pub fn set_revoked(&self, list: Vec<Revoked>) {
        let set = RevokedSet::new(list);
        if let Ok(mut revoked) = self.revoked.write() {
            *revoked = set;
        }
    }

    fn is_revoked(&self, user_id: &str, ver: u64, jti: &str) -> bool {
        self.revoked
            .read()
            .is_ok_and(|set| set.refuses(user_id, ver, jti))
    }

    /// Whether a caller verified earlier still holds: its token has not
    /// expired nor been revoked since. For long-lived streams.
    pub fn still_valid(&self, caller: &Caller) -> bool {
        caller.exp > unix_now() && !self.is_revoked(&caller.user_id, caller.ver, &caller.jti)
    }

    /// Verifies a raw token (without the `Bearer ` prefix).
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = self.decode(token, &self.validation).await?;
                self.verified.keep(token, &claims);
                claims
            }
        };
        if self.is_revoked(&claims.sub, claims.ver, &claims.jti) {
            return Err(bad_token("token has been revoked"));
        }
        Ok(claims)
    }

    /// Checks a token's signature, algorithm, issuer and audience, but not
    /// its expiry nor the revocations: for the audit log, where an entry
    /// retried after an outage comes with the token of the write it
    /// records, which may have lapsed since. The caller bounds its age.
    pub async fn verify_signed(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = self.validation.clone();
        validation.validate_exp = false;
        self.decode(token, &validation).await
    }

    async fn decode(&self, token: &str, validation: &Validation) -> Result<Claims, ApiError> {
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
        decode::<Claims>(token, &key, validation)
            .map(|data| data.claims)
            .map_err(|err| bad_token(&format!("token rejected: {err}")))
    }

    /// Verifies an `Authorization: Bearer …` value and returns the caller:
    /// a person or a service, never an API key's `ingest` token.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let caller = self.any_caller(authorization).await?;
        if caller.role == Role::Ingest {
            return Err(ingest_only());
        }
        Ok(caller)
    }

    /// Like [`Self::caller`], also taking `ingest` tokens: for reporting
    /// SMS results and the pair look-ups that reporting needs.
    pub async fn any_caller(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let value = authorization.ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token =
            bearer(value).ok_or_else(|| ApiError::unauthorized("expected a bearer token"))?;
        let claims = self.verify(token).await?;
        Ok(Caller {
            user_id: claims.sub,
            email: claims.email,
            role: claims.role,
            jti: claims.jti,
            exp: claims.exp,
            ver: claims.ver,
            quota: claims.quota,
            token: token.into(),
        })
    }

    /// The caller of a gRPC request, from its `authorization` metadata.
    pub async fn caller_of<T>(&self, request: &tonic::Request<T>) -> Result<Caller, ApiError> {
        self.caller(authorization_of(request)).await
    }

    /// [`Self::any_caller`] for a gRPC request.
    pub async fn any_caller_of<T>(&self, request: &tonic::Request<T>) -> Result<Caller, ApiError> {
        self.any_caller(authorization_of(request)).await
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
        // A key gone from the set takes its tokens with it.
        self.verified.clear();
        Ok(())
    }
}

/// Fetches the revocations in force until the verifier is gone. When
/// auth-svc cannot be reached the last list stays: tokens still end at
/// their `exp`.
async fn follow(verifier: Weak<TokenVerifier>, every: Duration) {
    let mut failing = false;
    loop {
        let Some(strong) = verifier.upgrade() else {
            return;
        };
        match strong.source.revocations().await {
            Ok(list) => {
                if failing {
                    tracing::info!("revocations fetched again");
                }
                failing = false;
                strong.set_revoked(list);
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(error = %err, "revocation fetch failed, keeping the last list");
                }
                failing = true;
            }
        }
        drop(strong);
        tokio::time::sleep(every).await;
    }
}

/// The bearer token a gRPC request carries, without its scheme.
pub fn bearer_of<T>(request: &tonic::Request<T>) -> Option<&str> {
    authorization_of(request).and_then(bearer)
}

fn authorization_of<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .metadata()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
}

fn ingest_only() -> ApiError {
    ApiError::forbidden("an api key's token may only report sms results")
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

    #[test]
    fn revocations_refuse_older_versions_and_named_tokens() {
        let set = RevokedSet::new(vec![
            Revoked::VersionsBelow {
                user_id: "u1".into(),
                min_version: 2,
            },
            Revoked::VersionsBelow {
                user_id: "u1".into(),
                min_version: 1,
            },
            Revoked::Token("j9".into()),
        ]);
        assert!(set.refuses("u1", 1, "j1"));
        assert!(!set.refuses("u1", 2, "j2"));
        assert!(!set.refuses("u2", 0, "j3"));
        assert!(set.refuses("u2", 0, "j9"));
    }

    #[test]
    fn numbers_are_masked_in_the_middle() {
        assert_eq!(mask_number("+447700900671"), "+44770****671");
        assert_eq!(mask_number("+15551234"), "+1*****34");
        assert_eq!(mask_number("+1"), "**");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn old_user_accounts_read_as_operators() {
        let role: Role = serde_json::from_str("\"user\"").unwrap_or(Role::Viewer);
        assert_eq!(role, Role::Operator);
        assert_eq!(
            serde_json::to_string(&Role::Operator).unwrap_or_default(),
            "\"operator\""
        );
        assert!(Role::Operator.can_send() && !Role::Viewer.can_send() && !Role::Ingest.can_send());
        for role in Role::PEOPLE {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
