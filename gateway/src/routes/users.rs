use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::auth::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Admin, Body},
    grpc::Services,
};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RoleView {
    Admin,
    Operator,
    Viewer,
    /// smsops's own service accounts; never assigned.
    Service,
}

impl RoleView {
    pub fn from_pb(role: i32) -> Self {
        match pb::Role::try_from(role) {
            Ok(pb::Role::Admin) => RoleView::Admin,
            Ok(pb::Role::Operator) => RoleView::Operator,
            Ok(pb::Role::Service) => RoleView::Service,
            // Least rights for anything unexpected.
            Ok(pb::Role::Viewer | pb::Role::Unspecified | pb::Role::Ingest) | Err(_) => {
                RoleView::Viewer
            }
        }
    }

    pub fn to_pb(self) -> pb::Role {
        match self {
            RoleView::Admin => pb::Role::Admin,
            RoleView::Operator => pb::Role::Operator,
            RoleView::Viewer => pb::Role::Viewer,
            RoleView::Service => pb::Role::Service,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub role: RoleView,
    pub created_at: String,
    /// What the user may send now.
    pub quota: QuotaView,
}

/// Messages a user may send; null is no cap.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuotaView {
    pub per_minute: Option<u64>,
    pub per_day: Option<u64>,
    /// `role`: its role's default (`SMSOPS_QUOTA_*`); `user`: set for it.
    pub source: &'static str,
}

impl From<pb::User> for UserView {
    fn from(user: pb::User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            role: RoleView::from_pb(user.role),
            created_at: user.created_at,
            quota: QuotaView {
                per_minute: user.quota_per_minute,
                per_day: user.quota_per_day,
                source: if user.quota_overridden {
                    "user"
                } else {
                    "role"
                },
            },
        }
    }
}

/// A user's own quota; `{"reset": true}` returns it to its role's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaBody {
    /// Messages a minute; null or left out is no cap.
    #[schema(minimum = 0)]
    pub per_minute: Option<u64>,
    /// Messages a day; null or left out is no cap.
    #[schema(minimum = 0)]
    pub per_day: Option<u64>,
    #[serde(default)]
    pub reset: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `page_token` for the next page; null on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role: RoleView,
}

/// List users (admin).
#[utoipa::path(get, path = "/api/v1/users", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "users", params(UserQuery), security(("bearer" = [])),
    responses((status = 200, body = UserPage), (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Admin(caller): Admin,
    query: web::Query<UserQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let request = pb::ListUsersRequest {
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = services
        .auth
        .clone()
        .list_users(caller.authorize(tonic::Request::new(request)))
        .await?;
    let page = page.into_inner();
    Ok(HttpResponse::Ok().json(UserPage {
        items: page.users.into_iter().map(UserView::from).collect(),
        next_page_token: Some(page.next_page_token).filter(|token| !token.is_empty()),
    }))
}

/// Change a user's role (admin; not your own).
#[utoipa::path(patch, path = "/api/v1/users/{id}", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "users", request_body = RoleBody,
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn update_role(
    services: web::Data<Services>,
    Admin(caller): Admin,
    id: web::Path<String>,
    Body(body): Body<RoleBody>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::UpdateUserRoleRequest {
        id: id.into_inner(),
        role: body.role.to_pb().into(),
    };
    let user = services
        .auth
        .clone()
        .update_user_role(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Ok().json(UserView::from(user.into_inner())))
}

/// Set how much a user may send (admin). The user's current tokens stop
/// working within seconds; its next sign-in or refresh carries the quota.
#[utoipa::path(put, path = "/api/v1/users/{id}/quota", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "users", request_body = QuotaBody,
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 403, description = "forbidden (also the service account)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn set_quota(
    services: web::Data<Services>,
    Admin(caller): Admin,
    id: web::Path<String>,
    Body(body): Body<QuotaBody>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::SetUserQuotaRequest {
        id: id.into_inner(),
        per_minute: body.per_minute,
        per_day: body.per_day,
        reset: body.reset,
    };
    let user = services
        .auth
        .clone()
        .set_user_quota(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Ok().json(UserView::from(user.into_inner())))
}

/// Delete a user (admin; not yourself). Their refresh tokens stop working.
#[utoipa::path(delete, path = "/api/v1/users/{id}", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "users", security(("bearer" = [])),
    responses((status = 204), (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn delete(
    services: web::Data<Services>,
    Admin(caller): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::DeleteUserRequest {
        id: id.into_inner(),
    };
    services
        .auth
        .clone()
        .delete_user(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
