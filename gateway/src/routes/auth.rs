use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::auth::v1 as pb;
use utoipa::ToSchema;

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Authed, Body},
    grpc::Services,
    routes::users::UserView,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[schema(example = "ops@example.com")]
    pub email: String,
    /// At least 10 characters.
    #[schema(min_length = 10)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpBody {
    #[schema(example = "ops@example.com")]
    pub email: String,
    /// At least 10 characters.
    #[schema(min_length = 10)]
    pub password: String,
    /// An admin's invitation (`inv_…`): needed unless sign-up is open.
    pub invitation: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    pub refresh_token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// EdDSA-signed JWT; send it as `Authorization: Bearer <token>`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single use: spending it returns a new pair.
    pub refresh_token: String,
}

impl From<pb::TokenPair> for TokenView {
    fn from(pair: pb::TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
            refresh_token: pair.refresh_token,
        }
    }
}

/// Create an account, as the server's sign-up policy (`SMSOPS_SIGNUP`)
/// allows: `invite` (default) needs an admin's invitation and gives its
/// role; `open` gives `viewer` to anyone; `closed` refuses everyone.
#[utoipa::path(post, path = "/api/v1/auth/sign-up", extensions(("x-roles" = json!(crate::openapi::ANYONE))), tag = "auth", request_body = SignUpBody,
    responses(
        (status = 201, body = UserView),
        (status = 400, description = "invalid_email, invalid_password", body = ErrorBody),
        (status = 403, description = "forbidden: no, or an unusable, invitation; sign-up closed", body = ErrorBody),
        (status = 409, description = "user_exists", body = ErrorBody),
        (status = 429, description = "rate_limited, with Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable: too many passwords being hashed at once, with Retry-After", body = ErrorBody)))]
pub async fn sign_up(
    services: web::Data<Services>,
    Body(body): Body<SignUpBody>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::SignUpRequest {
        email: body.email,
        password: body.password,
        invitation: body.invitation.unwrap_or_default(),
    };
    let user = services.auth.clone().sign_up(request).await?.into_inner();
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// Exchange email and password for an access and a refresh token.
#[utoipa::path(post, path = "/api/v1/auth/sign-in", extensions(("x-roles" = json!(crate::openapi::ANYONE))), tag = "auth", request_body = Credentials,
    responses(
        (status = 200, body = TokenView),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 429, description = "rate_limited, with Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable: too many passwords being hashed at once, with Retry-After", body = ErrorBody)))]
pub async fn sign_in(
    services: web::Data<Services>,
    Body(body): Body<Credentials>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::SignInRequest {
        email: body.email,
        password: body.password,
    };
    let pair = services.auth.clone().sign_in(request).await?.into_inner();
    Ok(HttpResponse::Ok().json(TokenView::from(pair)))
}

/// Spend a refresh token for a new pair. Reusing a spent token revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", extensions(("x-roles" = json!(crate::openapi::ANYONE))), tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = TokenView), (status = 401, description = "invalid_token", body = ErrorBody),
        (status = 429, description = "rate_limited: this refresh token was tried too often, with Retry-After", body = ErrorBody)))]
pub async fn refresh(
    services: web::Data<Services>,
    Body(body): Body<RefreshBody>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::RefreshRequest {
        refresh_token: body.refresh_token,
    };
    let pair = services.auth.clone().refresh(request).await?.into_inner();
    Ok(HttpResponse::Ok().json(TokenView::from(pair)))
}

/// Revoke a refresh token (and every token rotated from the same sign-in).
#[utoipa::path(post, path = "/api/v1/auth/sign-out", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "auth", request_body = RefreshBody,
    security(("bearer" = [])),
    responses((status = 204), (status = 401, description = "unauthorized", body = ErrorBody)))]
pub async fn sign_out(
    services: web::Data<Services>,
    Authed(caller): Authed,
    Body(body): Body<RefreshBody>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::SignOutRequest {
        refresh_token: body.refresh_token,
    };
    services
        .auth
        .clone()
        .sign_out(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, description = "unauthorized", body = ErrorBody)))]
pub async fn me(
    services: web::Data<Services>,
    Authed(caller): Authed,
) -> Result<HttpResponse, HttpError> {
    let request = caller.authorize(tonic::Request::new(pb::MeRequest {}));
    let user = services.auth.clone().me(request).await?.into_inner();
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}
