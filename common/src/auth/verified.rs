//! The tokens a verifier has checked already.

use std::collections::HashMap;

use super::{Claims, LEEWAY_SECS};
use crate::unix_now;

/// Tokens whose signature, issuer and audience were checked already, with
/// their claims. Checking an Ed25519 signature costs more than the rest of
/// a small request; a client sends one token with many. Keyed by the whole
/// token, so only the very token verified is spared the check; expiry and
/// revocations are still checked on every use.
#[derive(Default)]
pub(super) struct Verified {
    tokens: std::sync::Mutex<HashMap<String, Claims>>,
}

/// Tokens kept at most: more than the callers of one verifier at a time.
const VERIFIED_AT_MOST: usize = 10_000;

impl Verified {
    /// A token's claims, while it has not expired.
    pub(super) fn get(&self, token: &str) -> Option<Claims> {
        let tokens = self.tokens.lock().ok()?;
        let claims = tokens.get(token)?;
        unexpired(claims, unix_now()).then(|| claims.clone())
    }

    pub(super) fn keep(&self, token: &str, claims: &Claims) {
        let Ok(mut tokens) = self.tokens.lock() else {
            return;
        };
        if tokens.len() >= VERIFIED_AT_MOST {
            let now = unix_now();
            tokens.retain(|_, claims| unexpired(claims, now));
            if tokens.len() >= VERIFIED_AT_MOST {
                tokens.clear();
            }
        }
        tokens.insert(token.to_string(), claims.clone());
    }

    pub(super) fn clear(&self) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.clear();
        }
    }
}

/// Not past `exp` by more than the leeway decoding allows.
fn unexpired(claims: &Claims, now: i64) -> bool {
    claims.exp + LEEWAY_SECS as i64 > now
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_lc_rs::{
        rand::SystemRandom,
        signature::{Ed25519KeyPair, KeyPair},
    };
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    use super::*;
    use crate::{
        auth::{KeySource, PublicJwk, Quota, Revoked, Role, TokenVerifier},
        config::TokenSettings,
    };

    /// Keys a test can take away.
    struct Keys(Mutex<Vec<PublicJwk>>);

    impl KeySource for Keys {
        fn fetch(&self) -> super::super::KeyFuture<'_> {
            let keys = self.0.lock().map(|keys| keys.clone()).unwrap_or_default();
            Box::pin(async move { Ok(keys) })
        }

        fn revocations(&self) -> super::super::RevokedFuture<'_> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "u1".into(),
            email: "u1@example.com".into(),
            role: Role::Operator,
            iss: "smsops".into(),
            aud: "smsops-api".into(),
            iat: unix_now(),
            exp,
            jti: "j1".into(),
            ver: 1,
            quota: Quota::UNLIMITED,
        }
    }

    /// A verifier, the keys it fetches and a token signed with them.
    fn signed() -> (TokenVerifier, Arc<Keys>, String) {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("a key");
        let pair = Ed25519KeyPair::from_pkcs8(document.as_ref()).expect("a key pair");
        let jwk = PublicJwk {
            kid: "k1".into(),
            x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(jwk.kid.clone());
        let signing = EncodingKey::from_ed_der(document.as_ref());
        let token = encode(&header, &claims(unix_now() + 600), &signing).expect("a token");
        let keys = Arc::new(Keys(Mutex::new(vec![jwk])));
        let settings = TokenSettings {
            issuer: "smsops".into(),
            audience: "smsops-api".into(),
        };
        (TokenVerifier::new(settings, keys.clone()), keys, token)
    }

    #[tokio::test]
    async fn a_token_verified_before_is_refused_once_revoked() {
        let (verifier, _keys, token) = signed();
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.verify(&token).await.is_ok());
        verifier.set_revoked(vec![Revoked::Token("j1".into())]);
        assert!(verifier.verify(&token).await.is_err());
    }

    #[tokio::test]
    async fn a_token_verified_before_goes_with_its_key() {
        let (verifier, keys, token) = signed();
        assert!(verifier.verify(&token).await.is_ok());
        if let Ok(mut keys) = keys.0.lock() {
            keys[0].kid = "k2".into();
        }
        // A token from the new key makes the verifier fetch the set again.
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k2".into());
        let other = format!(
            "{}.e30.AA",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default())
        );
        assert!(verifier.verify(&other).await.is_err());
        assert!(verifier.verify(&token).await.is_err());
    }

    #[test]
    fn a_kept_token_is_not_given_back_once_expired() {
        let verified = Verified::default();
        verified.keep("fresh", &claims(unix_now() + 600));
        verified.keep("stale", &claims(unix_now() - LEEWAY_SECS as i64 - 1));
        assert!(verified.get("fresh").is_some());
        assert!(verified.get("stale").is_none());
        assert!(verified.get("never").is_none());
    }

    #[test]
    fn a_full_cache_makes_room() {
        let verified = Verified::default();
        for i in 0..VERIFIED_AT_MOST + 5 {
            verified.keep(&format!("t{i}"), &claims(unix_now() + 600));
        }
        let kept = verified.tokens.lock().map(|t| t.len()).unwrap_or_default();
        assert!(kept <= VERIFIED_AT_MOST);
        assert!(
            verified
                .get(&format!("t{}", VERIFIED_AT_MOST + 4))
                .is_some()
        );
    }
}
