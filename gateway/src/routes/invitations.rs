//! Invitations to sign up (admin): how people join under `SMSOPS_SIGNUP=invite`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::auth::v1 as pb;
use utoipa::ToSchema;

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Admin, Body},
    grpc::Services,
    routes::users::RoleView,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// admin, operator or viewer.
    pub role: RoleView,
    /// Only this email may use it; any email when left out.
    #[schema(example = "new.operator@example.com")]
    pub email: Option<String>,
    /// 1 to 720 hours; a week when left out.
    #[schema(minimum = 1, maximum = 720)]
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub role: RoleView,
    pub email: Option<String>,
    /// pending, used, revoked or expired.
    pub state: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    /// The user who signed up with it.
    pub used_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvitationView {
    #[serde(flatten)]
    pub invitation: InvitationView,
    /// Give this to the person: `POST /auth/sign-up` takes it as
    /// `invitation`. Shown this once.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationsView {
    pub items: Vec<InvitationView>,
}

fn view(invitation: pb::Invitation) -> InvitationView {
    let some = |value: String| Some(value).filter(|v| !v.is_empty());
    InvitationView {
        id: invitation.id,
        role: RoleView::from_pb(invitation.role),
        email: some(invitation.email),
        state: invitation.state,
        created_by: invitation.created_by,
        created_at: invitation.created_at,
        expires_at: invitation.expires_at,
        used_by: some(invitation.used_by),
    }
}

/// Invite someone to sign up in a role (admin). Single use.
#[utoipa::path(post, path = "/api/v1/invitations", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "users", request_body = NewInvitation,
    security(("bearer" = [])),
    responses((status = 201, body = CreatedInvitationView),
        (status = 400, description = "invalid_argument, invalid_email", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn create(
    services: web::Data<Services>,
    Admin(caller): Admin,
    Body(body): Body<NewInvitation>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::CreateInvitationRequest {
        role: body.role.to_pb().into(),
        email: body.email.unwrap_or_default(),
        // 0 means the default; a value over the bound is refused, not clipped.
        expires_in_hours: body.expires_in_hours.map_or(0, |hours| hours.max(1)),
    };
    let created = services
        .auth
        .clone()
        .create_invitation(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Created().json(CreatedInvitationView {
        invitation: view(created.invitation.unwrap_or_default()),
        token: created.token,
    }))
}

/// Every invitation, newest first (admin).
#[utoipa::path(get, path = "/api/v1/invitations", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "users", security(("bearer" = [])),
    responses((status = 200, body = InvitationsView), (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Admin(caller): Admin,
) -> Result<HttpResponse, HttpError> {
    let reply = services
        .auth
        .clone()
        .list_invitations(caller.authorize(tonic::Request::new(pb::ListInvitationsRequest {})))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(InvitationsView {
        items: reply.items.into_iter().map(view).collect(),
    }))
}

/// Withdraw an unused invitation (admin).
#[utoipa::path(delete, path = "/api/v1/invitations/{id}", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "users", security(("bearer" = [])),
    responses((status = 200, body = InvitationView), (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn revoke(
    services: web::Data<Services>,
    Admin(caller): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::RevokeInvitationRequest {
        id: id.into_inner(),
    };
    let invitation = services
        .auth
        .clone()
        .revoke_invitation(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(view(invitation)))
}
