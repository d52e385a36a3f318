//! Password hashing with argon2id, off the async runtime, under the
//! process's hashing pool: each run holds 19 MiB, and unbounded, a few
//! dozen parallel sign-ins outgrow auth-svc's memory limit.

use std::sync::LazyLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::AuthError;
use crate::limits;

/// A hash of a password nobody has, verified against when the user does not
/// exist, so an unknown email takes as long as a wrong password.
static DECOY: LazyLock<String> = LazyLock::new(|| {
    let Ok(salt) = new_salt() else {
        return String::new();
    };
    Argon2::default()
        .hash_password(b"smsops decoy password", &salt)
        .map(|hash| hash.to_string())
        .unwrap_or_default()
});

pub async fn hash(password: String) -> Result<String, AuthError> {
    let slot = limits::hashing().slot().await.map_err(AuthError::Refused)?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let salt = new_salt()?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| AuthError::Internal(format!("password hashing failed: {err}")))
    })
    .await
    .map_err(|err| AuthError::Internal(format!("password hashing task failed: {err}")))?
}

/// Whether `password` matches `hash`; `None` checks against the decoy.
pub async fn verify(password: String, hash: Option<String>) -> Result<bool, AuthError> {
    let known = hash.is_some();
    let slot = limits::hashing().slot().await.map_err(AuthError::Refused)?;
    let matches = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let hash = hash.unwrap_or_else(|| DECOY.clone());
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .map_err(|err| AuthError::Internal(format!("stored password hash unreadable: {err}")))
    })
    .await
    .map_err(|err| AuthError::Internal(format!("password check task failed: {err}")))??;
    Ok(known && matches)
}

fn new_salt() -> Result<SaltString, AuthError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AuthError::Internal("no randomness for a salt".into()))?;
    SaltString::encode_b64(&bytes).map_err(|err| AuthError::Internal(format!("salt: {err}")))
}
