//! Invitations: how people join when sign-up is by invitation (the
//! default). An admin makes one for a role, optionally for one email; it
//! reads `inv_<id>_<secret>`, is shown once, and is spent by one sign-up.

use std::time::Duration;

use mongodb::bson::DateTime;
use serde_json::json;
use smsops_common::{
    audit::{Entry, kind},
    auth::{Caller, Role},
};

use super::{AuthCore, AuthError, require_admin, tokens, validate};
use crate::store::InvitationDoc;

const PREFIX: &str = "inv_";
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Who may sign up, from `SMSOPS_SIGNUP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    /// Only with an admin's invitation, in the invitation's role.
    Invite,
    /// Anyone, as a `viewer`: reading costs nothing, sending does.
    Open,
    /// Nobody; admins invite no one either.
    Closed,
}

impl SignupPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            SignupPolicy::Invite => "invite",
            SignupPolicy::Open => "open",
            SignupPolicy::Closed => "closed",
        }
    }
}

impl std::str::FromStr for SignupPolicy {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "invite" => Ok(SignupPolicy::Invite),
            "open" => Ok(SignupPolicy::Open),
            "closed" => Ok(SignupPolicy::Closed),
            other => Err(format!("expected invite, open or closed, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    Pending,
    Used,
    Revoked,
    Expired,
}

impl InvitationState {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Used => "used",
            InvitationState::Revoked => "revoked",
            InvitationState::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: String,
    pub role: Role,
    pub email: Option<String>,
    pub state: InvitationState,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub used_by: Option<String>,
}

impl Invitation {
    fn of(doc: InvitationDoc, now: DateTime) -> Self {
        let time = |at: DateTime| at.try_to_rfc3339_string().unwrap_or_default();
        let state = if doc.used_at.is_some() {
            InvitationState::Used
        } else if doc.revoked_at.is_some() {
            InvitationState::Revoked
        } else if doc.expires_at <= now {
            InvitationState::Expired
        } else {
            InvitationState::Pending
        };
        Self {
            id: doc.id,
            role: doc.role,
            email: doc.email,
            state,
            created_by: doc.created_by,
            created_at: time(doc.created_at),
            expires_at: time(doc.expires_at),
            used_by: doc.used_by,
        }
    }
}

pub struct CreatedInvitation {
    pub invitation: Invitation,
    /// The whole invitation, shown once.
    pub token: String,
}

/// An invitation's parts, or `None` when it cannot be one of ours.
fn parse(token: &str) -> Option<(&str, &str)> {
    token.trim().strip_prefix(PREFIX)?.split_once('_')
}

fn refused() -> AuthError {
    AuthError::Forbidden("the invitation is unknown, used, revoked or expired".into())
}

impl AuthCore {
    pub async fn create_invitation(
        &self,
        caller: &Caller,
        role: Role,
        email: Option<&str>,
        ttl: Option<Duration>,
    ) -> Result<CreatedInvitation, AuthError> {
        require_admin(caller)?;
        if self.signup == SignupPolicy::Closed {
            return Err(AuthError::Forbidden(
                "sign-up is closed (SMSOPS_SIGNUP=closed): invitations cannot be used".into(),
            ));
        }
        if !Role::PEOPLE.contains(&role) {
            return Err(AuthError::InvalidArgument(
                "role must be admin, operator or viewer".into(),
            ));
        }
        let ttl = ttl.unwrap_or(DEFAULT_TTL);
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(AuthError::InvalidArgument(format!(
                "expires_in_hours must be 1 to {}",
                MAX_TTL.as_secs() / 3600
            )));
        }
        let email = email
            .map(str::trim)
            .filter(|email| !email.is_empty())
            .map(validate::email)
            .transpose()?;
        let id = uuid::Uuid::now_v7().simple().to_string();
        let secret = tokens::random_secret()?;
        let token = format!("{PREFIX}{id}_{secret}");
        let now = DateTime::now();
        let doc = InvitationDoc {
            secret_hash: tokens::hash_secret(&secret),
            role,
            email,
            created_by: caller.user_id.clone(),
            created_at: now,
            expires_at: DateTime::from_millis(now.timestamp_millis() + ttl.as_millis() as i64),
            used_at: None,
            used_by: None,
            revoked_at: None,
            id,
        };
        self.store.insert_invitation(&doc).await?;
        tracing::info!(invitation = %doc.id, role = role.as_str(), by = %caller.user_id, "invitation created");
        let invitation = Invitation::of(doc, now);
        let after = json!({
            "role": role.as_str(),
            "email": invitation.email,
            "expires_at": invitation.expires_at,
        });
        self.audit(
            caller,
            Entry::new(kind::INVITATION_CREATED, &invitation.id).after(after),
        )
        .await;
        Ok(CreatedInvitation { invitation, token })
    }

    pub async fn list_invitations(&self, caller: &Caller) -> Result<Vec<Invitation>, AuthError> {
        require_admin(caller)?;
        let now = DateTime::now();
        Ok(self
            .store
            .invitations()
            .await?
            .into_iter()
            .map(|doc| Invitation::of(doc, now))
            .collect())
    }

    pub async fn revoke_invitation(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Invitation, AuthError> {
        require_admin(caller)?;
        let was = self.store.invitation(id).await?;
        let doc = self
            .store
            .revoke_invitation(id)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("no invitation with id {id}")))?;
        tracing::info!(invitation = %id, by = %caller.user_id, "invitation revoked");
        let now = DateTime::now();
        let invitation = Invitation::of(doc, now);
        // Only a withdrawal that changed something is a write.
        if let Some(was) = was.map(|was| Invitation::of(was, now))
            && was.state != invitation.state
        {
            let entry = Entry::new(kind::INVITATION_REVOKED, id)
                .before(json!({ "state": was.state.as_str() }))
                .after(json!({ "state": invitation.state.as_str() }));
            self.audit(caller, entry).await;
        }
        Ok(invitation)
    }

    /// Spends an invitation for `email`; the role it grants.
    pub(super) async fn spend_invitation(
        &self,
        token: &str,
        email: &str,
        user_id: &str,
    ) -> Result<(String, Role), AuthError> {
        let (id, secret) = parse(token).ok_or_else(refused)?;
        let known = self.store.invitation(id).await?.ok_or_else(refused)?;
        if known.email.as_deref().is_some_and(|bound| bound != email) {
            return Err(AuthError::Forbidden(
                "this invitation is for another email address".into(),
            ));
        }
        let spent = self
            .store
            .spend_invitation(id, &tokens::hash_secret(secret), user_id)
            .await?
            .ok_or_else(refused)?;
        Ok((spent.id, spent.role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_parses_its_three_words_only() {
        assert_eq!("invite".parse(), Ok(SignupPolicy::Invite));
        assert_eq!("open".parse(), Ok(SignupPolicy::Open));
        assert_eq!("closed".parse(), Ok(SignupPolicy::Closed));
        assert!("Open".parse::<SignupPolicy>().is_err());
    }

    #[test]
    fn invitations_parse_by_prefix() {
        assert_eq!(parse("inv_abc_s3cret"), Some(("abc", "s3cret")));
        assert_eq!(parse(" inv_abc_s_3 "), Some(("abc", "s_3")));
        assert_eq!(parse("smk_abc_s3cret"), None);
        assert_eq!(parse("inv_abc"), None);
    }
}
