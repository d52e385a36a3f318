use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::auth::v1 as pb;
use utoipa::ToSchema;

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Admin, Body},
    grpc::Services,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for, 1 to 100 characters.
    #[schema(
        example = "seed-002 checker",
        min_length = 1,
        max_length = 100,
        pattern = r"\S"
    )]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_by: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyView {
    #[serde(flatten)]
    pub api_key: ApiKeyView,
    /// The key, for the `X-Api-Key` header; shown this once.
    pub key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeysView {
    pub items: Vec<ApiKeyView>,
}

pub(crate) fn view(k: pb::ApiKey) -> ApiKeyView {
    let some = |value: String| Some(value).filter(|v| !v.is_empty());
    ApiKeyView {
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        created_by: k.created_by,
        created_at: k.created_at,
        revoked_at: some(k.revoked_at),
        last_used_at: some(k.last_used_at),
    }
}

/// Creates an API key for `POST /api/v1/ingest/sms-events` (admin).
#[utoipa::path(post, path = "/api/v1/api-keys", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "api-keys", request_body = NewApiKey,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedApiKeyView), (status = 400, description = "invalid_argument", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn create(
    services: web::Data<Services>,
    Admin(caller): Admin,
    body: Body<NewApiKey>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::CreateApiKeyRequest { name: body.0.name };
    let created = services
        .auth
        .clone()
        .create_api_key(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Created().json(CreatedApiKeyView {
        api_key: view(created.api_key.unwrap_or_default()),
        key: created.key,
    }))
}

/// Every API key, newest first, revoked ones included (admin).
#[utoipa::path(get, path = "/api/v1/api-keys", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "api-keys",
    security(("bearer" = [])),
    responses((status = 200, body = ApiKeysView), (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Admin(caller): Admin,
) -> Result<HttpResponse, HttpError> {
    let reply = services
        .auth
        .clone()
        .list_api_keys(caller.authorize(tonic::Request::new(pb::ListApiKeysRequest {})))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(ApiKeysView {
        items: reply.items.into_iter().map(view).collect(),
    }))
}

/// Revokes an API key at once (admin); revoking again changes nothing.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "api-keys",
    security(("bearer" = [])),
    responses((status = 200, body = ApiKeyView), (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn revoke(
    services: web::Data<Services>,
    Admin(caller): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::RevokeApiKeyRequest {
        id: id.into_inner(),
    };
    let key = services
        .auth
        .clone()
        .revoke_api_key(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(view(key)))
}
