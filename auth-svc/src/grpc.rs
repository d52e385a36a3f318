//! The gRPC face of auth-svc: converts messages and calls [`AuthCore`].

use std::sync::Arc;

use smsops_common::{
    ApiError,
    auth::{KeySource, PublicJwk, Role, TokenVerifier},
};
use smsops_proto::auth::v1::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};

use crate::{
    core::{ApiKey, AuthCore, KeyRing, TokenPair, User},
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

/// auth-svc verifies tokens with its own key ring rather than calling itself.
pub struct LocalKeys(pub Arc<KeyRing>);

impl KeySource for LocalKeys {
    fn fetch(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<PublicJwk>, ApiError>> + Send + '_>> {
        let keys = self.0.public_keys();
        Box::pin(async move { Ok(keys) })
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
        let user = self.core.sign_up(&req.email, &req.password).await?;
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
            .ok_or_else(|| ApiError::invalid_argument("role must be admin or user"))?;
        let user = self.core.update_role(&caller, &req.id, role).await?;
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
        Role::User => pb::Role::User,
        Role::Admin => pb::Role::Admin,
        Role::Ingest => pb::Role::Ingest,
    }
}

pub fn role_from_pb(role: i32) -> Option<Role> {
    match pb::Role::try_from(role).ok()? {
        pb::Role::User => Some(Role::User),
        pb::Role::Admin => Some(Role::Admin),
        pb::Role::Unspecified | pb::Role::Ingest => None,
    }
}

fn user_to_pb(user: User) -> pb::User {
    pb::User {
        id: user.id,
        email: user.email,
        role: role_to_pb(user.role).into(),
        created_at: user.created_at,
    }
}

fn pair_to_pb(pair: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token,
        expires_in: pair.expires_in,
        refresh_token: pair.refresh_token,
    }
}
