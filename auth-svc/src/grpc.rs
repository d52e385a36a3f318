//! The gRPC face of auth-svc: converts messages and calls [`AuthCore`].

use std::sync::Arc;

use smsops_common::{
    ApiError,
    auth::{KeySource, PublicJwk, Quota, Revoked, Role, TokenVerifier, bearer_of},
};
use smsops_proto::auth::v1::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};

use crate::{
    core::{ApiKey, AuditQuery, AuditRecord, AuthCore, Invitation, KeyRing, TokenPair, User},
    limits::Limits,
};

pub struct AuthGrpc {
    core: Arc<AuthCore>,
    verifier: Arc<TokenVerifier>,
    /// On the RPCs that mint tokens, checked before any work is done.
    limits: Arc<Limits>,
}

impl AuthGrpc {
    pub fn new(core: Arc<AuthCore>, verifier: Arc<TokenVerifier>, limits: Arc<Limits>) -> Self {
        Self {
            core,
            verifier,
            limits,
        }
    }
}

/// auth-svc verifies tokens with its own key ring and revocations rather
/// than calling itself.
pub struct LocalKeys {
    pub keys: Arc<KeyRing>,
    pub core: Arc<AuthCore>,
}

type Fetched<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<Vec<T>, ApiError>> + Send + 'a>>;

impl KeySource for LocalKeys {
    fn fetch(&self) -> Fetched<'_, PublicJwk> {
        let keys = self.keys.public_keys();
        Box::pin(async move { Ok(keys) })
    }

    fn revocations(&self) -> Fetched<'_, Revoked> {
        Box::pin(async move { Ok(self.core.revocations().await?) })
    }
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn sign_up(
        &self,
        request: Request<pb::SignUpRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let req = request.into_inner();
        self.limits.sign_up(&req.email)?;
        let invitation = Some(req.invitation.as_str()).filter(|inv| !inv.is_empty());
        let user = self
            .core
            .sign_up(&req.email, &req.password, invitation)
            .await?;
        Ok(Response::new(user_to_pb(user)))
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let req = request.into_inner();
        self.limits.sign_in(&req.email)?;
        let pair = self.core.sign_in(&req.email, &req.password).await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let token = request.into_inner().refresh_token;
        self.limits.refresh(&token)?;
        let pair = self.core.refresh(&token).await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        self.core
            .sign_out(&caller, &request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pb::SignOutResponse {}))
    }

    async fn me(&self, request: Request<pb::MeRequest>) -> Result<Response<pb::User>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        Ok(Response::new(user_to_pb(self.core.me(&caller).await?)))
    }

    async fn get_public_keys(
        &self,
        _request: Request<pb::GetPublicKeysRequest>,
    ) -> Result<Response<pb::PublicKeys>, Status> {
        let keys = self
            .core
            .public_keys()
            .into_iter()
            .map(|key| pb::PublicKey {
                kid: key.kid,
                x: key.x,
            })
            .collect();
        Ok(Response::new(pb::PublicKeys { keys }))
    }

    async fn list_revocations(
        &self,
        _request: Request<pb::ListRevocationsRequest>,
    ) -> Result<Response<pb::ListRevocationsResponse>, Status> {
        let items = self
            .core
            .revocations()
            .await?
            .into_iter()
            .map(|revoked| match revoked {
                Revoked::VersionsBelow {
                    user_id,
                    min_version,
                } => pb::Revocation {
                    user_id,
                    min_version,
                    jti: String::new(),
                },
                Revoked::Token(jti) => pb::Revocation {
                    jti,
                    ..Default::default()
                },
            })
            .collect();
        Ok(Response::new(pb::ListRevocationsResponse { items }))
    }

    async fn create_invitation(
        &self,
        request: Request<pb::CreateInvitationRequest>,
    ) -> Result<Response<pb::CreatedInvitation>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let role = role_from_pb(req.role)
            .ok_or_else(|| ApiError::invalid_argument("role must be admin, operator or viewer"))?;
        let email = Some(req.email.as_str()).filter(|email| !email.is_empty());
        let ttl = (req.expires_in_hours > 0)
            .then(|| std::time::Duration::from_secs(u64::from(req.expires_in_hours) * 3600));
        let created = self
            .core
            .create_invitation(&caller, role, email, ttl)
            .await?;
        Ok(Response::new(pb::CreatedInvitation {
            invitation: Some(invitation_to_pb(created.invitation)),
            token: created.token,
        }))
    }

    async fn list_invitations(
        &self,
        request: Request<pb::ListInvitationsRequest>,
    ) -> Result<Response<pb::ListInvitationsResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let items = self
            .core
            .list_invitations(&caller)
            .await?
            .into_iter()
            .map(invitation_to_pb)
            .collect();
        Ok(Response::new(pb::ListInvitationsResponse { items }))
    }

    async fn revoke_invitation(
        &self,
        request: Request<pb::RevokeInvitationRequest>,
    ) -> Result<Response<pb::Invitation>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let invitation = self
            .core
            .revoke_invitation(&caller, &request.into_inner().id)
            .await?;
        Ok(Response::new(invitation_to_pb(invitation)))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let (users, next) = self
            .core
            .list_users(&caller, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_to_pb).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn update_user_role(
        &self,
        request: Request<pb::UpdateUserRoleRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let role = role_from_pb(req.role)
            .ok_or_else(|| ApiError::invalid_argument("role must be admin, operator or viewer"))?;
        let user = self.core.update_role(&caller, &req.id, role).await?;
        Ok(Response::new(user_to_pb(user)))
    }

    async fn set_user_quota(
        &self,
        request: Request<pb::SetUserQuotaRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let quota = (!req.reset).then_some(Quota {
            per_minute: req.per_minute,
            per_day: req.per_day,
        });
        let user = self.core.set_quota(&caller, &req.id, quota).await?;
        Ok(Response::new(user_to_pb(user)))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        self.core
            .delete_user(&caller, &request.into_inner().id)
            .await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreatedApiKey>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let created = self
            .core
            .create_api_key(&caller, &request.into_inner().name)
            .await?;
        Ok(Response::new(pb::CreatedApiKey {
            api_key: Some(api_key_to_pb(created.api_key)),
            key: created.key,
        }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let keys = self.core.list_api_keys(&caller).await?;
        Ok(Response::new(pb::ListApiKeysResponse {
            items: keys.into_iter().map(api_key_to_pb).collect(),
        }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let key = self
            .core
            .revoke_api_key(&caller, &request.into_inner().id)
            .await?;
        Ok(Response::new(api_key_to_pb(key)))
    }

    async fn exchange_api_key(
        &self,
        request: Request<pb::ExchangeApiKeyRequest>,
    ) -> Result<Response<pb::ExchangedApiKey>, Status> {
        let key = request.into_inner().key;
        self.limits.exchange_api_key(&key)?;
        let (access_token, key) = self.core.exchange_api_key(&key).await?;
        Ok(Response::new(pb::ExchangedApiKey {
            access_token,
            api_key: Some(api_key_to_pb(key)),
        }))
    }

    async fn record_audit(
        &self,
        request: Request<pb::RecordAuditRequest>,
    ) -> Result<Response<pb::RecordAuditResponse>, Status> {
        // The writer's token names the actor; it may have lapsed since the
        // write (a retry after an outage), which the core bounds.
        let token =
            bearer_of(&request).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let claims = self.verifier.verify_signed(token).await?;
        let duplicate = self.core.record_audit(&claims, request.get_ref()).await?;
        Ok(Response::new(pb::RecordAuditResponse { duplicate }))
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let query = AuditQuery {
            actor: req.actor,
            kind: req.kind,
            since: req.since,
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let (records, next) = self.core.list_audit(&caller, query).await?;
        Ok(Response::new(pb::ListAuditResponse {
            items: records.into_iter().map(audit_to_pb).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }
}

fn audit_to_pb(record: AuditRecord) -> pb::AuditRecord {
    pb::AuditRecord {
        id: record.id,
        at: record.at,
        actor: Some(pb::AuditActor {
            kind: record.actor_kind,
            id: record.actor_id,
            email: record.actor_email,
            role: role_to_pb(record.actor_role).into(),
        }),
        kind: record.kind,
        target: record.target,
        before: record.before.unwrap_or_default(),
        after: record.after.unwrap_or_default(),
    }
}

fn api_key_to_pb(key: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id,
        name: key.name,
        prefix: key.prefix,
        created_by: key.created_by,
        created_at: key.created_at,
        revoked_at: key.revoked_at.unwrap_or_default(),
        last_used_at: key.last_used_at.unwrap_or_default(),
    }
}

pub fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Admin => pb::Role::Admin,
        Role::Operator => pb::Role::Operator,
        Role::Viewer => pb::Role::Viewer,
        Role::Service => pb::Role::Service,
        Role::Ingest => pb::Role::Ingest,
    }
}

/// The roles a person may be given; the others are never assigned.
pub fn role_from_pb(role: i32) -> Option<Role> {
    match pb::Role::try_from(role).ok()? {
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::Operator => Some(Role::Operator),
        pb::Role::Viewer => Some(Role::Viewer),
        pb::Role::Unspecified | pb::Role::Service | pb::Role::Ingest => None,
    }
}

fn invitation_to_pb(invitation: Invitation) -> pb::Invitation {
    pb::Invitation {
        id: invitation.id,
        role: role_to_pb(invitation.role).into(),
        email: invitation.email.unwrap_or_default(),
        state: invitation.state.as_str().to_string(),
        created_by: invitation.created_by,
        created_at: invitation.created_at,
        expires_at: invitation.expires_at,
        used_by: invitation.used_by.unwrap_or_default(),
    }
}

fn user_to_pb(user: User) -> pb::User {
    pb::User {
        id: user.id,
        email: user.email,
        role: role_to_pb(user.role).into(),
        created_at: user.created_at,
        quota_per_minute: user.quota.per_minute,
        quota_per_day: user.quota.per_day,
        quota_overridden: user.quota_overridden,
    }
}

fn pair_to_pb(pair: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token,
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token,
    }
}
