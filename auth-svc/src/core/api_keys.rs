//! API keys: credentials for programs smsops does not run, which report SMS
//! results. A key reads `smk_<id>_<secret>`; the id finds the record, the
//! secret's SHA-256 must match it, and a revoked key matches nothing.

use std::time::Duration;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use mongodb::bson::DateTime;
use serde_json::json;
use smsops_common::{
    audit::{Entry, kind},
    auth::{Caller, Role},
};

use super::{AuthCore, AuthError, require_admin, tokens};
use crate::store::ApiKeyDoc;

const PREFIX: &str = "smk_";
/// An ingest token only has to outlive one call to sms-svc.
pub(super) const INGEST_TOKEN_TTL: Duration = Duration::from_secs(60);
const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<ApiKeyDoc> for ApiKey {
    fn from(doc: ApiKeyDoc) -> Self {
        let time = |at: DateTime| at.try_to_rfc3339_string().unwrap_or_default();
        Self {
            id: doc.id,
            name: doc.name,
            prefix: doc.prefix,
            created_by: doc.created_by,
            created_at: time(doc.created_at),
            revoked_at: doc.revoked_at.map(time),
            last_used_at: doc.last_used_at.map(time),
        }
    }
}

pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// The whole key, shown once.
    pub key: String,
}

impl AuthCore {
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<CreatedApiKey, AuthError> {
        require_admin(caller)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(AuthError::InvalidArgument(format!(
                "name must be 1 to {MAX_NAME_CHARS} characters"
            )));
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        let secret = tokens::random_secret()?;
        let key = format!("{PREFIX}{id}_{secret}");
        let doc = ApiKeyDoc {
            prefix: key.chars().take(PREFIX.len() + 8).collect(),
            secret_hash: tokens::hash_secret(&secret),
            name: name.to_string(),
            created_by: caller.user_id.clone(),
            created_at: DateTime::now(),
            revoked_at: None,
            last_used_at: None,
            id,
        };
        self.store.insert_api_key(&doc).await?;
        tracing::info!(api_key = %doc.id, by = %caller.user_id, "api key created");
        let after = json!({ "name": doc.name, "prefix": doc.prefix });
        self.audit(
            caller,
            Entry::new(kind::API_KEY_CREATED, &doc.id).after(after),
        )
        .await;
        Ok(CreatedApiKey {
            api_key: doc.into(),
            key,
        })
    }

    pub async fn list_api_keys(&self, caller: &Caller) -> Result<Vec<ApiKey>, AuthError> {
        require_admin(caller)?;
        Ok(self
            .store
            .api_keys()
            .await?
            .into_iter()
            .map(ApiKey::from)
            .collect())
    }

    pub async fn revoke_api_key(&self, caller: &Caller, id: &str) -> Result<ApiKey, AuthError> {
        require_admin(caller)?;
        let was = self.store.api_key(id).await?;
        let doc = self
            .store
            .revoke_api_key(id)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("no api key with id {id}")))?;
        // Its tokens live a minute; revoked, they stop at once.
        self.revoke_versions_below(&format!("apikey:{id}"), 1)
            .await?;
        tracing::info!(api_key = %id, by = %caller.user_id, "api key revoked");
        let key = ApiKey::from(doc);
        // Revoking a revoked key again changes nothing.
        if was.is_some_and(|was| was.revoked_at.is_none()) {
            let entry = Entry::new(kind::API_KEY_REVOKED, id)
                .before(json!({ "revoked_at": null }))
                .after(json!({ "revoked_at": key.revoked_at }));
            self.audit(caller, entry).await;
        }
        Ok(key)
    }

    /// A one-minute `ingest` token for a live key.
    pub async fn exchange_api_key(&self, key: &str) -> Result<(String, ApiKey), AuthError> {
        let refused = || {
            AuthError::Unauthorized(smsops_common::ApiError::unauthorized(
                "invalid or revoked api key",
            ))
        };
        let (id, secret) = key
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .ok_or_else(refused)?;
        let doc = self.store.api_key(id).await?.ok_or_else(refused)?;
        let hash = tokens::hash_secret(secret);
        if doc.revoked_at.is_some()
            || verify_slices_are_equal(hash.as_bytes(), doc.secret_hash.as_bytes()).is_err()
        {
            return Err(refused());
        }
        let subject_id = format!("apikey:{}", doc.id);
        let subject = tokens::Subject {
            id: &subject_id,
            email: &doc.name,
            role: Role::Ingest,
            version: 0,
            quota: smsops_common::auth::Quota::UNLIMITED,
        };
        let token = tokens::access_token(&self.keys, &self.tokens, &subject, INGEST_TOKEN_TTL)?;
        // Knowing when a key was last used helps decide which to revoke; it
        // is not worth failing the caller over.
        if let Err(err) = self.store.touch_api_key(&doc.id).await {
            tracing::warn!(api_key = %doc.id, error = %err, "could not record api key use");
        }
        Ok((token, doc.into()))
    }
}
