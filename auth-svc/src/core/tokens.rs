//! Minting access tokens (JWT) and refresh tokens (opaque, stored hashed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, rand::SecureRandom, rand::SystemRandom};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header, encode};
use mongodb::bson::DateTime;
use smsops_common::{
    auth::{Claims, Quota, Role},
    config::TokenSettings,
};

use super::{AuthError, KeyRing};
use crate::store::{RefreshDoc, TokenState, UserDoc};

#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
}

/// Who an access token speaks for.
pub struct Subject<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub role: Role,
    pub version: u64,
    pub quota: Quota,
}

pub fn access_token(
    keys: &KeyRing,
    settings: &TokenSettings,
    subject: &Subject<'_>,
    ttl: Duration,
) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|err| AuthError::Internal(format!("clock before 1970: {err}")))?
        .as_secs() as i64;
    let claims = Claims {
        sub: subject.id.to_string(),
        email: subject.email.to_string(),
        role: subject.role,
        iss: settings.issuer.clone(),
        aud: settings.audience.clone(),
        iat: now,
        exp: now + ttl.as_secs() as i64,
        jti: uuid::Uuid::new_v4().to_string(),
        ver: subject.version,
        quota: subject.quota,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.signing_kid().to_string());
    encode(&header, &claims, keys.signing_key())
        .map_err(|err| AuthError::Internal(format!("token signing failed: {err}")))
}

/// A new refresh token and the record to store for it.
pub fn refresh_token(
    user: &UserDoc,
    family_id: String,
    ttl: Duration,
) -> Result<(String, RefreshDoc), AuthError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Internal("no randomness for a refresh token".into()))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = DateTime::now();
    let doc = RefreshDoc {
        hash: hash_refresh(&token),
        family_id,
        user_id: user.id.clone(),
        state: TokenState::Active,
        created_at: now,
        expires_at: DateTime::from_millis(now.timestamp_millis() + ttl.as_millis() as i64),
    };
    Ok((token, doc))
}

/// A new random secret: 32 bytes, base64url.
pub fn random_secret() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Internal("no randomness for a secret".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Secrets are random and long, so a plain SHA-256 is enough to store them
/// (unlike passwords, which need a slow hash).
pub fn hash_secret(secret: &str) -> String {
    hash_refresh(secret)
}

pub fn hash_refresh(token: &str) -> String {
    let hash = digest::digest(&digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.as_ref())
}
