//! Revocations: what makes a role change, a deletion or a sign-out take
//! effect everywhere within seconds rather than at the token's `exp`.
//! auth-svc records them; every verifier fetches the list still in force
//! every second or so (see `smsops_common::auth::Revocations`).

use std::time::Duration;

use mongodb::bson::DateTime;
use smsops_common::auth::Revoked;

use super::{AuthCore, AuthError};
use crate::store::RevocationDoc;

/// Clock skew verifiers allow on `exp`, with a margin: a revocation must
/// outlive every token it is about.
const EXP_LEEWAY: Duration = Duration::from_secs(60);

impl AuthCore {
    /// Every token of `user_id` issued below `min_version` is refused.
    pub(super) async fn revoke_versions_below(
        &self,
        user_id: &str,
        min_version: i64,
    ) -> Result<(), AuthError> {
        let lasts = self.access_ttl.max(super::api_keys::INGEST_TOKEN_TTL) + EXP_LEEWAY;
        let doc = RevocationDoc {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: Some(user_id.to_string()),
            min_version: Some(min_version),
            jti: None,
            expires_at: after(lasts),
        };
        self.store.insert_revocation(&doc).await?;
        Ok(())
    }

    /// The one token `jti`, which expires at `exp` (unix seconds).
    pub(super) async fn revoke_token(&self, jti: &str, exp: i64) -> Result<(), AuthError> {
        let doc = RevocationDoc {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: None,
            min_version: None,
            jti: Some(jti.to_string()),
            expires_at: DateTime::from_millis(
                exp.saturating_add(EXP_LEEWAY.as_secs() as i64)
                    .saturating_mul(1000),
            ),
        };
        self.store.insert_revocation(&doc).await?;
        Ok(())
    }

    pub async fn revocations(&self) -> Result<Vec<Revoked>, AuthError> {
        Ok(self
            .store
            .revocations()
            .await?
            .into_iter()
            .filter_map(|doc| match (doc.user_id, doc.min_version, doc.jti) {
                (Some(user_id), Some(min_version), _) => Some(Revoked::VersionsBelow {
                    user_id,
                    min_version: u64::try_from(min_version).unwrap_or(0),
                }),
                (_, _, Some(jti)) => Some(Revoked::Token(jti)),
                _ => None,
            })
            .collect())
    }
}

fn after(lasts: Duration) -> DateTime {
    DateTime::from_millis(
        DateTime::now()
            .timestamp_millis()
            .saturating_add(lasts.as_millis() as i64),
    )
}
