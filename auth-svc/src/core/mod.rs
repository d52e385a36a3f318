//! Transport-neutral auth logic: the gRPC layer only converts and calls in here.

mod api_keys;
mod audit;
mod error;
mod invitations;
pub mod keys;
mod password;
mod revocations;
mod tokens;
mod validate;

use std::{sync::Arc, time::Duration};

use mongodb::bson::DateTime;
use serde_json::json;
use smsops_common::{
    audit::{Entry, Recorder, kind},
    auth::{Caller, PublicJwk, Quota, Role},
    config::TokenSettings,
};

pub use api_keys::{ApiKey, CreatedApiKey};
pub use audit::{AuditLog, AuditQuery, AuditRecord, LocalSink};
pub use error::AuthError;
pub use invitations::{CreatedInvitation, Invitation, InvitationState, SignupPolicy};
pub use keys::KeyRing;
pub use tokens::TokenPair;

use smsops_common::mongo::StoreError;

use crate::store::{Store, TokenState, UserDoc};

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub created_at: String,
    /// The quota in force, and whether it is the user's own.
    pub quota: Quota,
    pub quota_overridden: bool,
}

/// The quota each role sends under unless an admin gave the user its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleQuotas {
    pub admin: Quota,
    pub operator: Quota,
}

impl RoleQuotas {
    /// What `user` may send: its own quota, else its role's. Viewers send
    /// nothing whatever the number; process-svc's account charges each
    /// session's starter instead of itself.
    pub fn of(&self, user: &UserDoc) -> Quota {
        if let Some(own) = user.quota {
            let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok());
            return Quota {
                per_minute: count(own.per_minute),
                per_day: count(own.per_day),
            };
        }
        match user.role {
            Role::Admin => self.admin,
            Role::Operator => self.operator,
            Role::Viewer | Role::Service | Role::Ingest => Quota::UNLIMITED,
        }
    }
}

/// How long tokens live, and who may sign up.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub signup: SignupPolicy,
    pub quotas: RoleQuotas,
}

pub struct AuthCore {
    store: Store,
    keys: Arc<KeyRing>,
    tokens: TokenSettings,
    access_ttl: Duration,
    refresh_ttl: Duration,
    signup: SignupPolicy,
    quotas: RoleQuotas,
    audit_log: AuditLog,
    /// Records auth-svc's own writes in the audit log.
    audit: Recorder,
}

impl AuthCore {
    /// Starts the audit recorder's retry task: call it inside a runtime.
    pub fn new(
        store: Store,
        audit_log: AuditLog,
        keys: Arc<KeyRing>,
        tokens: TokenSettings,
        policy: Policy,
    ) -> Self {
        Self {
            audit: Recorder::new(Arc::new(LocalSink {
                log: audit_log.clone(),
            })),
            audit_log,
            store,
            keys,
            tokens,
            access_ttl: policy.access_ttl,
            refresh_ttl: policy.refresh_ttl,
            signup: policy.signup,
            quotas: policy.quotas,
        }
    }

    /// A new account, as the sign-up policy allows: by invitation in its
    /// role, openly as a viewer, or not at all.
    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        invitation: Option<&str>,
    ) -> Result<User, AuthError> {
        // Bad input is answered as such whatever the policy.
        let email = validate::email(email)?;
        validate::password(password)?;
        let invitation = invitation.map(str::trim).filter(|inv| !inv.is_empty());
        let user_id = uuid::Uuid::now_v7().to_string();
        match (self.signup, invitation) {
            (SignupPolicy::Closed, _) => Err(AuthError::Forbidden(
                "sign-up is closed: ask an admin for an account".into(),
            )),
            (SignupPolicy::Invite, None) => Err(AuthError::Forbidden(
                "sign-up needs an invitation from an admin".into(),
            )),
            (SignupPolicy::Open, None) => {
                let user = self
                    .insert_user(user_id, email, password, Role::Viewer)
                    .await?;
                self.audit_sign_up(&user, None).await;
                Ok(user)
            }
            (_, Some(invitation)) => {
                let (id, role) = self.spend_invitation(invitation, &email, &user_id).await?;
                let created = self.insert_user(user_id, email, password, role).await;
                if created.is_err() {
                    self.store.unspend_invitation(&id).await?;
                }
                let user = created?;
                tracing::info!(user = %user.id, invitation = %id, role = role.as_str(), "user signed up by invitation");
                self.audit_sign_up(&user, Some(&id)).await;
                Ok(user)
            }
        }
    }

    /// A sign-up is the new user's own write: they are its actor.
    async fn audit_sign_up(&self, user: &User, invitation: Option<&str>) {
        let actor = Caller {
            user_id: user.id.clone(),
            email: user.email.clone(),
            role: user.role,
            jti: String::new(),
            exp: 0,
            ver: 0,
            quota: user.quota,
            token: String::new(),
        };
        let after =
            json!({ "email": user.email, "role": user.role.as_str(), "invitation": invitation });
        self.audit(
            &actor,
            Entry::new(kind::USER_SIGNED_UP, &user.id).after(after),
        )
        .await;
    }

    /// Accounts made before roles were split become operators.
    pub async fn migrate_roles(&self) -> Result<(), AuthError> {
        let moved = self.store.migrate_user_role().await?;
        if moved > 0 {
            tracing::info!(moved, "user accounts are operators now");
        }
        Ok(())
    }

    /// Creates a service account (process-svc's), or resets its password
    /// and role to what the config says: no one can squat its email
    /// through sign-up, and a changed password takes effect on restart.
    pub async fn ensure_service_account(
        &self,
        email: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        match self.create_user(email, password, Role::Service).await {
            Ok(user) => {
                tracing::info!(user = %user.id, email = %user.email, "service account created");
                Ok(())
            }
            Err(AuthError::UserExists) => {
                let email = validate::email(email)?;
                let Some(user) = self.store.user_by_email(&email).await? else {
                    return Err(AuthError::Internal("service account vanished".into()));
                };
                let known = password::verify(password.to_string(), Some(user.password_hash))
                    .await
                    .unwrap_or(false);
                if !known || user.role != Role::Service {
                    let hash = password::hash(password.to_string()).await?;
                    self.store.set_service_account(&user.id, &hash).await?;
                    tracing::warn!(user = %user.id, email = %email, "service account reset to its configured password and role");
                }
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Creates the configured admin unless a user with that email exists.
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<(), AuthError> {
        match self.create_user(email, password, Role::Admin).await {
            Ok(user) => {
                tracing::info!(user = %user.id, email = %user.email, "seeded admin created");
                Ok(())
            }
            Err(AuthError::UserExists) => Ok(()),
            Err(err) => Err(err),
        }
    }

    async fn create_user(
        &self,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<User, AuthError> {
        let email = validate::email(email)?;
        validate::password(password)?;
        self.insert_user(uuid::Uuid::now_v7().to_string(), email, password, role)
            .await
    }

    async fn insert_user(
        &self,
        id: String,
        email: String,
        password: &str,
        role: Role,
    ) -> Result<User, AuthError> {
        let doc = UserDoc {
            id,
            email,
            password_hash: password::hash(password.to_string()).await?,
            role,
            created_at: DateTime::now(),
            token_version: 0,
            quota: None,
        };
        match self.store.insert_user(&doc).await {
            Ok(()) => Ok(self.user(doc)),
            Err(StoreError::Duplicate) => Err(AuthError::UserExists),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Result<TokenPair, AuthError> {
        // A malformed email cannot belong to anyone: answer like any unknown user.
        let user = match validate::email(email) {
            Ok(email) => self.store.user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|user| user.password_hash.clone());
        if !password::verify(password.to_string(), hash).await? {
            return Err(AuthError::InvalidCredentials);
        }
        let user = user.ok_or(AuthError::InvalidCredentials)?;
        self.issue(&user, uuid::Uuid::now_v7().to_string()).await
    }

    /// Spends a refresh token for a new pair. A token that was already spent
    /// is a sign of theft: the whole family it belongs to is revoked.
    pub async fn refresh(&self, token: &str) -> Result<TokenPair, AuthError> {
        let hash = tokens::hash_refresh(token);
        let Some(spent) = self.store.spend_refresh(&hash).await? else {
            if let Some(known) = self.store.refresh_by_hash(&hash).await?
                && known.state == TokenState::Spent
            {
                let revoked = self.store.revoke_family(&known.family_id).await?;
                tracing::warn!(
                    user = %known.user_id,
                    family = %known.family_id,
                    revoked,
                    "refresh token reused, family revoked"
                );
            }
            return Err(AuthError::InvalidToken);
        };
        if spent.expires_at < DateTime::now() {
            return Err(AuthError::InvalidToken);
        }
        let Some(user) = self.store.user_by_id(&spent.user_id).await? else {
            self.store.revoke_family(&spent.family_id).await?;
            return Err(AuthError::InvalidToken);
        };
        self.issue(&user, spent.family_id).await
    }

    /// Revokes the session a refresh token belongs to, if it is the
    /// caller's, and the access token the caller signs out with.
    pub async fn sign_out(&self, caller: &Caller, token: &str) -> Result<(), AuthError> {
        let hash = tokens::hash_refresh(token);
        if let Some(known) = self.store.refresh_by_hash(&hash).await?
            && known.user_id == caller.user_id
        {
            self.store.revoke_family(&known.family_id).await?;
        }
        self.revoke_token(&caller.jti, caller.exp).await
    }

    pub async fn me(&self, caller: &Caller) -> Result<User, AuthError> {
        self.store
            .user_by_id(&caller.user_id)
            .await?
            .map(|doc| self.user(doc))
            .ok_or_else(|| AuthError::NotFound("user no longer exists".into()))
    }

    pub fn public_keys(&self) -> Vec<PublicJwk> {
        self.keys.public_keys()
    }

    pub async fn list_users(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: &str,
    ) -> Result<(Vec<User>, Option<String>), AuthError> {
        require_admin(caller)?;
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            1..=MAX_PAGE_SIZE => page_size,
            _ => {
                return Err(AuthError::InvalidArgument(format!(
                    "page_size must be between 1 and {MAX_PAGE_SIZE}"
                )));
            }
        };
        let after = (!page_token.is_empty()).then_some(page_token);
        let mut users = self.store.list_users(after, i64::from(size) + 1).await?;
        let next = if users.len() > size as usize {
            users.truncate(size as usize);
            users.last().map(|user| user.id.clone())
        } else {
            None
        };
        Ok((users.into_iter().map(|doc| self.user(doc)).collect(), next))
    }

    pub async fn update_role(
        &self,
        caller: &Caller,
        id: &str,
        role: Role,
    ) -> Result<User, AuthError> {
        require_admin(caller)?;
        if id == caller.user_id {
            return Err(AuthError::Forbidden(
                "admins cannot change their own role".into(),
            ));
        }
        if !Role::PEOPLE.contains(&role) {
            return Err(AuthError::InvalidArgument(
                "role must be admin, operator or viewer".into(),
            ));
        }
        let was = self.refuse_service_account(id).await?;
        let user = self
            .store
            .set_role(id, role)
            .await?
            .ok_or_else(|| user_not_found(id))?;
        // Tokens of the old role stop working now, not at their exp; the
        // user's next refresh gets the new role.
        self.revoke_versions_below(id, user.token_version).await?;
        tracing::info!(user = %id, role = role.as_str(), by = %caller.user_id, "role changed");
        let entry = Entry::new(kind::USER_ROLE_CHANGED, id)
            .before(json!({ "role": was.role.as_str() }))
            .after(json!({ "role": user.role.as_str() }));
        self.audit(caller, entry).await;
        Ok(self.user(user))
    }

    /// Gives a user a quota of its own (`Some`) or its role's again (`None`).
    pub async fn set_quota(
        &self,
        caller: &Caller,
        id: &str,
        quota: Option<Quota>,
    ) -> Result<User, AuthError> {
        require_admin(caller)?;
        let was = self.refuse_service_account(id).await?;
        let stored = quota
            .map(|quota| {
                let count = |n: Option<u64>| n.map(i64::try_from).transpose();
                Ok::<_, std::num::TryFromIntError>(crate::store::QuotaDoc {
                    per_minute: count(quota.per_minute)?,
                    per_day: count(quota.per_day)?,
                })
            })
            .transpose()
            .map_err(|_| AuthError::InvalidArgument("quota is too large".into()))?;
        let user = self
            .store
            .set_quota(id, stored)
            .await?
            .ok_or_else(|| user_not_found(id))?;
        // Tokens carry the quota: the old ones must not outlive the change.
        self.revoke_versions_below(id, user.token_version).await?;
        tracing::info!(user = %id, by = %caller.user_id, "quota changed");
        let shown = |quota: Quota, own: bool| json!({ "per_minute": quota.per_minute, "per_day": quota.per_day, "own": own });
        let entry = Entry::new(kind::USER_QUOTA_CHANGED, id)
            .before(shown(self.quotas.of(&was), was.quota.is_some()))
            .after(shown(self.quotas.of(&user), user.quota.is_some()));
        self.audit(caller, entry).await;
        Ok(self.user(user))
    }

    /// A user as callers see it, with the quota in force.
    fn user(&self, doc: UserDoc) -> User {
        let quota = self.quotas.of(&doc);
        User {
            quota,
            quota_overridden: doc.quota.is_some(),
            id: doc.id,
            email: doc.email,
            role: doc.role,
            created_at: doc.created_at.try_to_rfc3339_string().unwrap_or_default(),
        }
    }

    /// The user, unless it is a service account.
    async fn refuse_service_account(&self, id: &str) -> Result<UserDoc, AuthError> {
        match self.store.user_by_id(id).await? {
            Some(user) if user.role == Role::Service => Err(AuthError::Forbidden(
                "service accounts are managed by smsops's own config".into(),
            )),
            Some(user) => Ok(user),
            None => Err(user_not_found(id)),
        }
    }

    pub async fn delete_user(&self, caller: &Caller, id: &str) -> Result<(), AuthError> {
        require_admin(caller)?;
        if id == caller.user_id {
            return Err(AuthError::Forbidden(
                "admins cannot delete themselves".into(),
            ));
        }
        let was = self.refuse_service_account(id).await?;
        if !self.store.delete_user(id).await? {
            return Err(user_not_found(id));
        }
        self.revoke_versions_below(id, i64::MAX).await?;
        tracing::info!(user = %id, by = %caller.user_id, "user deleted");
        let before = json!({ "email": was.email, "role": was.role.as_str() });
        self.audit(caller, Entry::new(kind::USER_DELETED, id).before(before))
            .await;
        Ok(())
    }

    async fn issue(&self, user: &UserDoc, family_id: String) -> Result<TokenPair, AuthError> {
        let subject = tokens::Subject {
            id: &user.id,
            email: &user.email,
            role: user.role,
            version: u64::try_from(user.token_version).unwrap_or(0),
            quota: self.quotas.of(user),
        };
        let access_token =
            tokens::access_token(&self.keys, &self.tokens, &subject, self.access_ttl)?;
        let (refresh_token, doc) = tokens::refresh_token(user, family_id, self.refresh_ttl)?;
        self.store.insert_refresh(&doc).await?;
        Ok(TokenPair {
            access_token,
            expires_in: self.access_ttl.as_secs(),
            refresh_token,
        })
    }
}

pub(crate) fn require_admin(caller: &Caller) -> Result<(), AuthError> {
    caller
        .require_admin()
        .map_err(|_| AuthError::Forbidden("this action needs the admin role".into()))
}

fn user_not_found(id: &str) -> AuthError {
    AuthError::NotFound(format!("no user with id {id}"))
}
