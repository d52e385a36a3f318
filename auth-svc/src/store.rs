//! Users and refresh tokens in MongoDB.

use futures::TryStreamExt;
use mongodb::{
    Client, Collection, IndexModel,
    bson::{DateTime, doc},
    options::{IndexOptions, ReturnDocument},
};
use serde::{Deserialize, Serialize};
use smsops_common::{auth::Role, mongo::StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserDoc {
    #[serde(rename = "_id")]
    pub id: String,
    /// Lower-cased, so the unique index makes emails unique ignoring case.
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime,
    /// Raised by every change that must end the user's tokens (a role
    /// change); access tokens carry the version they were issued at.
    #[serde(default)]
    pub token_version: i64,
    /// This user's own quota; `None` is its role's default.
    #[serde(default)]
    pub quota: Option<QuotaDoc>,
}

/// A quota as stored: messages per minute and per day, `None` no cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaDoc {
    pub per_minute: Option<i64>,
    pub per_day: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenState {
    Active,
    Spent,
    Revoked,
}

/// A refresh token, stored by the SHA-256 of its value, never the value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshDoc {
    #[serde(rename = "_id")]
    pub hash: String,
    /// Every token rotated from one sign-in shares a family; reusing a spent
    /// token revokes the whole family.
    pub family_id: String,
    pub user_id: String,
    pub state: TokenState,
    pub created_at: DateTime,
    pub expires_at: DateTime,
}

/// An API key, stored by the SHA-256 of its secret part, never the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub created_by: String,
    pub created_at: DateTime,
    pub revoked_at: Option<DateTime>,
    pub last_used_at: Option<DateTime>,
}

/// A single-use invitation to sign up, stored by the SHA-256 of its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InvitationDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub secret_hash: String,
    pub role: Role,
    /// When set, only this (lower-cased) email may use it.
    pub email: Option<String>,
    pub created_by: String,
    pub created_at: DateTime,
    pub expires_at: DateTime,
    pub used_at: Option<DateTime>,
    pub used_by: Option<String>,
    pub revoked_at: Option<DateTime>,
}

/// Tokens verifiers must refuse before they expire: every token of a user
/// below `min_version`, or the one token `jti`. Kept only as long as such a
/// token could still be within its `exp`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevocationDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub user_id: Option<String>,
    pub min_version: Option<i64>,
    pub jti: Option<String>,
    pub expires_at: DateTime,
}

#[derive(Clone)]
pub struct Store {
    users: Collection<UserDoc>,
    tokens: Collection<RefreshDoc>,
    api_keys: Collection<ApiKeyDoc>,
    invitations: Collection<InvitationDoc>,
    revocations: Collection<RevocationDoc>,
}

impl Store {
    /// Opens the collections and creates their indexes (idempotent).
    pub async fn open(client: &Client, database: &str) -> Result<Self, StoreError> {
        let db = client.database(database);
        let store = Self {
            users: db.collection("users"),
            tokens: db.collection("refresh_tokens"),
            api_keys: db.collection("api_keys"),
            invitations: db.collection("invitations"),
            revocations: db.collection("revocations"),
        };
        let unique = IndexOptions::builder()
            .unique(true)
            .name("email_unique".to_string())
            .build();
        store
            .users
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "email": 1 })
                    .options(unique)
                    .build(),
            )
            .await?;
        for key in ["family_id", "user_id"] {
            store
                .tokens
                .create_index(IndexModel::builder().keys(doc! { key: 1 }).build())
                .await?;
        }
        // Expired tokens are useless; let the server remove them.
        let ttl = IndexOptions::builder()
            .expire_after(std::time::Duration::from_secs(0))
            .name("expires_ttl".to_string())
            .build();
        store
            .tokens
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "expires_at": 1 })
                    .options(ttl.clone())
                    .build(),
            )
            .await?;
        store
            .revocations
            .create_index(
                IndexModel::builder()
                    .keys(doc! { "expires_at": 1 })
                    .options(ttl)
                    .build(),
            )
            .await?;
        Ok(store)
    }

    /// Accounts made before roles were split were `user`s: they are
    /// operators now. Returns how many were moved.
    pub async fn migrate_user_role(&self) -> Result<u64, StoreError> {
        let moved = self
            .users
            .update_many(
                doc! { "role": "user" },
                doc! { "$set": { "role": Role::Operator.as_str() } },
            )
            .await?;
        Ok(moved.modified_count)
    }

    pub async fn insert_user(&self, user: &UserDoc) -> Result<(), StoreError> {
        self.users
            .insert_one(user)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserDoc>, StoreError> {
        Ok(self.users.find_one(doc! { "email": email }).await?)
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserDoc>, StoreError> {
        Ok(self.users.find_one(doc! { "_id": id }).await?)
    }

    /// Users in id order (ids are UUIDv7, so that is creation order), after `after`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserDoc>, StoreError> {
        let filter = match after {
            Some(after) => doc! { "_id": { "$gt": after } },
            None => doc! {},
        };
        let cursor = self
            .users
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(limit)
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// Sets a user's role and raises its token version, so tokens of the
    /// old role can be told apart; a service account's role never changes.
    pub async fn set_role(&self, id: &str, role: Role) -> Result<Option<UserDoc>, StoreError> {
        Ok(self
            .users
            .find_one_and_update(
                doc! { "_id": id, "role": { "$ne": Role::Service.as_str() } },
                doc! {
                    "$set": { "role": role.as_str() },
                    "$inc": { "token_version": 1_i64 },
                },
            )
            .return_document(ReturnDocument::After)
            .await?)
    }

    /// Sets (`Some`) or drops (`None`) a user's own quota, raising its token
    /// version like a role change: tokens carry the quota.
    pub async fn set_quota(
        &self,
        id: &str,
        quota: Option<QuotaDoc>,
    ) -> Result<Option<UserDoc>, StoreError> {
        let quota = match quota {
            Some(quota) => mongodb::bson::Bson::Document(
                doc! { "per_minute": quota.per_minute, "per_day": quota.per_day },
            ),
            None => mongodb::bson::Bson::Null,
        };
        Ok(self
            .users
            .find_one_and_update(
                doc! { "_id": id, "role": { "$ne": Role::Service.as_str() } },
                doc! {
                    "$set": { "quota": quota },
                    "$inc": { "token_version": 1_i64 },
                },
            )
            .return_document(ReturnDocument::After)
            .await?)
    }

    /// Replaces a service account's password and role, so what auth-svc's
    /// config says always holds.
    pub async fn set_service_account(
        &self,
        id: &str,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        self.users
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "password_hash": password_hash, "role": Role::Service.as_str() } },
            )
            .await?;
        Ok(())
    }

    pub async fn insert_invitation(&self, invitation: &InvitationDoc) -> Result<(), StoreError> {
        self.invitations
            .insert_one(invitation)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    /// Every invitation, newest first.
    pub async fn invitations(&self) -> Result<Vec<InvitationDoc>, StoreError> {
        let cursor = self
            .invitations
            .find(doc! {})
            .sort(doc! { "_id": -1 })
            .await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn invitation(&self, id: &str) -> Result<Option<InvitationDoc>, StoreError> {
        Ok(self.invitations.find_one(doc! { "_id": id }).await?)
    }

    /// Marks an unused, unrevoked, unexpired invitation used, atomically,
    /// and returns it as it was: two sign-ups can never spend one.
    pub async fn spend_invitation(
        &self,
        id: &str,
        secret_hash: &str,
        by: &str,
    ) -> Result<Option<InvitationDoc>, StoreError> {
        let now = DateTime::now();
        Ok(self
            .invitations
            .find_one_and_update(
                doc! {
                    "_id": id,
                    "secret_hash": secret_hash,
                    "used_at": null,
                    "revoked_at": null,
                    "expires_at": { "$gt": now },
                },
                doc! { "$set": { "used_at": now, "used_by": by } },
            )
            .return_document(ReturnDocument::Before)
            .await?)
    }

    /// Gives an invitation back when the sign-up it was spent on failed.
    pub async fn unspend_invitation(&self, id: &str) -> Result<(), StoreError> {
        self.invitations
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "used_at": null, "used_by": null } },
            )
            .await?;
        Ok(())
    }

    pub async fn revoke_invitation(&self, id: &str) -> Result<Option<InvitationDoc>, StoreError> {
        self.invitations
            .update_one(
                doc! { "_id": id, "revoked_at": null, "used_at": null },
                doc! { "$set": { "revoked_at": DateTime::now() } },
            )
            .await?;
        self.invitation(id).await
    }

    pub async fn insert_revocation(&self, revocation: &RevocationDoc) -> Result<(), StoreError> {
        self.revocations
            .insert_one(revocation)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    /// Revocations still in force (the TTL index removes lapsed ones, but
    /// only once a minute).
    pub async fn revocations(&self) -> Result<Vec<RevocationDoc>, StoreError> {
        let cursor = self
            .revocations
            .find(doc! { "expires_at": { "$gt": DateTime::now() } })
            .await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn delete_user(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self
            .users
            .delete_one(doc! { "_id": id, "role": { "$ne": Role::Service.as_str() } })
            .await?;
        self.tokens
            .update_many(
                doc! { "user_id": id },
                doc! { "$set": { "state": "revoked" } },
            )
            .await?;
        Ok(deleted.deleted_count == 1)
    }

    pub async fn insert_refresh(&self, token: &RefreshDoc) -> Result<(), StoreError> {
        self.tokens
            .insert_one(token)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    /// Atomically marks an active token spent and returns it as it was; `None`
    /// when no active token has this hash, so two concurrent uses of one
    /// token can never both succeed.
    pub async fn spend_refresh(&self, hash: &str) -> Result<Option<RefreshDoc>, StoreError> {
        Ok(self
            .tokens
            .find_one_and_update(
                doc! { "_id": hash, "state": "active" },
                doc! { "$set": { "state": "spent" } },
            )
            .return_document(ReturnDocument::Before)
            .await?)
    }

    pub async fn refresh_by_hash(&self, hash: &str) -> Result<Option<RefreshDoc>, StoreError> {
        Ok(self.tokens.find_one(doc! { "_id": hash }).await?)
    }

    pub async fn revoke_family(&self, family_id: &str) -> Result<u64, StoreError> {
        let result = self
            .tokens
            .update_many(
                doc! { "family_id": family_id, "state": { "$ne": "revoked" } },
                doc! { "$set": { "state": "revoked" } },
            )
            .await?;
        Ok(result.modified_count)
    }

    pub async fn insert_api_key(&self, key: &ApiKeyDoc) -> Result<(), StoreError> {
        self.api_keys
            .insert_one(key)
            .await
            .map_err(StoreError::classify)?;
        Ok(())
    }

    /// Every key, newest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyDoc>, StoreError> {
        let cursor = self.api_keys.find(doc! {}).sort(doc! { "_id": -1 }).await?;
        Ok(cursor.try_collect().await?)
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyDoc>, StoreError> {
        Ok(self.api_keys.find_one(doc! { "_id": id }).await?)
    }

    /// Revokes a key (again is harmless); `None` if there is no such key.
    pub async fn revoke_api_key(&self, id: &str) -> Result<Option<ApiKeyDoc>, StoreError> {
        self.api_keys
            .update_one(
                doc! { "_id": id, "revoked_at": null },
                doc! { "$set": { "revoked_at": DateTime::now() } },
            )
            .await?;
        self.api_key(id).await
    }

    pub async fn touch_api_key(&self, id: &str) -> Result<(), StoreError> {
        self.api_keys
            .update_one(
                doc! { "_id": id },
                doc! { "$set": { "last_used_at": DateTime::now() } },
            )
            .await?;
        Ok(())
    }
}
