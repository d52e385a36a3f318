//! The audit log (admin): every write a person or process-svc made, newest
//! first. auth-svc keeps it; see the README's architecture section.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smsops_proto::auth::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ErrorBody, HttpError},
    extract::Admin,
    grpc::Services,
    routes::users::RoleView,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// A user id or an email: only what they did.
    pub actor: Option<String>,
    /// A kind (`pair.deleted`) or a family (`pair`).
    #[param(example = "user.role_changed")]
    pub kind: Option<String>,
    /// RFC 3339: only records at or after this time.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActorView {
    /// `user`, or `service` for process-svc or notify-svc acting on its own.
    pub kind: String,
    pub id: String,
    pub email: String,
    pub role: RoleView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordView {
    pub id: String,
    /// When the write happened (RFC 3339).
    pub at: String,
    pub actor: AuditActorView,
    /// `<family>.<action>`: `user.signed_up`, `user.role_changed`,
    /// `user.deleted`, `user.quota_changed`, `invitation.created`,
    /// `invitation.revoked`, `api_key.created`, `api_key.revoked`,
    /// `pair.created`, `pair.updated`, `pair.deleted`, `session.started`,
    /// `session.stopped`, `session.restarted`, `session.resumed`,
    /// `session.failed`, `alert_rules.updated`, `alert.raised`,
    /// `route.failed_over`, `route.restored` (target: the pair).
    pub kind: String,
    /// The id of what was written.
    pub target: String,
    /// The fields the write changed, as they were; null for a creation.
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// The fields as they became; null for a deletion.
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditLogPage {
    pub items: Vec<AuditRecordView>,
    /// Pass as `page_token` for the next page; null on the last page.
    pub next_page_token: Option<String>,
}

fn fields(json: &str) -> Option<Value> {
    serde_json::from_str(json).ok()
}

impl From<pb::AuditRecord> for AuditRecordView {
    fn from(record: pb::AuditRecord) -> Self {
        let actor = record.actor.unwrap_or_default();
        Self {
            id: record.id,
            at: record.at,
            actor: AuditActorView {
                kind: actor.kind,
                id: actor.id,
                email: actor.email,
                role: RoleView::from_pb(actor.role),
            },
            kind: record.kind,
            target: record.target,
            before: fields(&record.before),
            after: fields(&record.after),
        }
    }
}

/// The audit log, newest first (admin): who changed users, roles,
/// invitations, API keys, pairs, sessions, alert rules and quotas, or
/// raised an alert; when; and each write's fields before and after.
#[utoipa::path(get, path = "/api/v1/audit", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "audit", params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AuditLogPage),
        (status = 400, description = "invalid_argument (a kind, since or page_token that is not one)", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Admin(caller): Admin,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let request = pb::ListAuditRequest {
        actor: query.actor.unwrap_or_default(),
        kind: query.kind.unwrap_or_default(),
        since: query.since.unwrap_or_default(),
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = services
        .auth
        .clone()
        .list_audit(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(AuditLogPage {
        items: page.items.into_iter().map(AuditRecordView::from).collect(),
        next_page_token: Some(page.next_page_token).filter(|token| !token.is_empty()),
    }))
}
