use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::process::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Authed, Body, OptionalBody, Sender},
    grpc::Services,
    limiter::{self, Limits},
};

/// Who gets the messages: a list of E.164 numbers (as a plain array or as
/// `{"numbers": [...]}`), or `{"range": {"first", "count"}}` for `count`
/// numbers counting up from `first`. Messages go round them in turn.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RecipientsBody {
    List(Vec<String>),
    Numbers { numbers: Vec<String> },
    Range { range: RangeBody },
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RangeBody {
    #[schema(example = "+447700900000")]
    pub first: String,
    pub count: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    #[schema(min_length = 1)]
    pub country_operator_id: String,
    /// Messages per minute: from 1/60 (one an hour) to 600,000.
    #[schema(example = 10, minimum = 0.016666666666666666, maximum = 600000)]
    pub rate_per_minute: f64,
    pub recipients: RecipientsBody,
    /// `{n}` becomes the message's sequence number, `{pair}` the pair as
    /// COUNTRY/operator; at most 1600 characters once filled in.
    #[schema(example = "test {n} for {pair}")]
    pub template: String,
    /// Stop after this many messages.
    pub limit: Option<u64>,
    /// RFC 3339: stop then.
    #[schema(format = DateTime)]
    pub stop_at: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionAction {
    /// Needed, with the admin role, for a high-priority pair's session.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionConfigView {
    pub rate_per_minute: f64,
    pub recipients: RecipientsBody,
    pub template: String,
    pub limit: Option<u64>,
    pub stop_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountersView {
    /// Messages handed to sms-svc and answered.
    pub submitted: u64,
    pub accepted: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    pub country_operator_id: String,
    pub country: String,
    pub operator: String,
    pub is_high_priority: bool,
    /// starting, running, paused (waiting out an outage or a quota, see
    /// `paused_reason`; it resumes by itself), stopping, stopped or failed.
    pub state: String,
    /// While paused: what it waits for.
    pub paused_reason: Option<String>,
    /// Why it stopped or failed.
    pub reason: Option<String>,
    pub config: SessionConfigView,
    pub counters: CountersView,
    /// The sequence number of the next message.
    pub next_seq: u64,
    pub last_error: Option<String>,
    /// The rate it runs at now: below the asked rate while a country
    /// budget is shared.
    pub effective_rate_per_minute: f64,
    pub started_at: Option<String>,
    pub stopped_at: Option<String>,
    /// The user who created the session, whoever restarted it since: only
    /// that user or an admin may stop or restart it.
    pub started_by: Option<String>,
    pub stopped_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionPage {
    pub items: Vec<SessionView>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// start, stop, restart, resume or fail.
    pub action: String,
    pub at: String,
    /// A user id, or `process-svc` for what the service did by itself.
    pub by: String,
    pub by_email: Option<String>,
    pub reason: Option<String>,
    /// An admin overrode a high-priority pair's pin.
    pub forced: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Oldest first.
    pub items: Vec<AuditView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionQuery {
    /// `paused` lists running sessions waiting out an outage or a quota;
    /// `running` lists them too.
    #[param(pattern = r"^(starting|running|paused|stopping|stopped|failed)$")]
    pub state: Option<String>,
    pub country: Option<String>,
    pub country_operator_id: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

fn some(value: String) -> Option<String> {
    Some(value).filter(|v| !v.is_empty())
}

impl From<pb::Session> for SessionView {
    fn from(s: pb::Session) -> Self {
        let config = s.config.unwrap_or_default();
        let recipients = config.recipients.unwrap_or_default();
        let recipients = match recipients.range {
            Some(range) => RecipientsBody::Range {
                range: RangeBody {
                    first: range.first,
                    count: range.count,
                },
            },
            None => RecipientsBody::Numbers {
                numbers: recipients.numbers,
            },
        };
        let counters = s.counters.unwrap_or_default();
        Self {
            id: s.id,
            country_operator_id: s.country_operator_id,
            country: s.country,
            operator: s.operator,
            is_high_priority: s.is_high_priority,
            state: s.state,
            paused_reason: some(s.paused_reason),
            reason: some(s.reason),
            config: SessionConfigView {
                rate_per_minute: config.rate_per_minute,
                recipients,
                template: config.template,
                limit: Some(config.limit).filter(|l| *l > 0),
                stop_at: some(config.stop_at),
            },
            counters: CountersView {
                submitted: counters.submitted,
                accepted: counters.accepted,
                failed: counters.failed,
            },
            next_seq: s.next_seq,
            last_error: some(s.last_error),
            effective_rate_per_minute: s.effective_rate_per_minute,
            started_at: some(s.started_at),
            stopped_at: some(s.stopped_at),
            started_by: some(s.started_by),
            stopped_by: some(s.stopped_by),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Start a session for a pair. 201 with the session, already running.
#[utoipa::path(post, path = "/api/v1/sessions", extensions(("x-roles" = json!(crate::openapi::SENDERS))), tag = "sessions", request_body = NewSession,
    security(("bearer" = [])),
    responses((status = 201, body = SessionView),
        (status = 400, description = "invalid_rate, invalid_recipients, invalid_phone, number_not_in_country, invalid_template, invalid_argument", body = ErrorBody),
        (status = 404, description = "pair_not_found", body = ErrorBody),
        (status = 409, description = "session_active: the pair already has one; conflict: the pair is being deleted", body = ErrorBody),
        (status = 429, description = "rate_limited: too many from this user; see Retry-After", body = ErrorBody)))]
pub async fn create(
    services: web::Data<Services>,
    limits: web::Data<Limits>,
    Sender(caller): Sender,
    Body(body): Body<NewSession>,
) -> Result<HttpResponse, HttpError> {
    limiter::per_user(&limits.sessions, &caller.user_id)?;
    let recipients = match body.recipients {
        RecipientsBody::List(numbers) | RecipientsBody::Numbers { numbers } => pb::Recipients {
            numbers,
            range: None,
        },
        RecipientsBody::Range { range } => pb::Recipients {
            numbers: Vec::new(),
            range: Some(pb::NumberRange {
                first: range.first,
                count: range.count,
            }),
        },
    };
    let request = pb::CreateSessionRequest {
        country_operator_id: body.country_operator_id,
        config: Some(pb::SessionConfig {
            rate_per_minute: body.rate_per_minute,
            recipients: Some(recipients),
            template: body.template,
            limit: body.limit.unwrap_or(0),
            stop_at: body.stop_at.unwrap_or_default(),
        }),
    };
    let session = services
        .process
        .clone()
        .create_session(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Created().json(SessionView::from(session.into_inner())))
}

/// Sessions, oldest first, filtered by state, country or pair.
#[utoipa::path(get, path = "/api/v1/sessions", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "sessions", params(SessionQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SessionPage), (status = 400, description = "invalid_argument", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Authed(caller): Authed,
    query: web::Query<SessionQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let request = pb::ListSessionsRequest {
        state: query.state,
        country: query.country,
        country_operator_id: query.country_operator_id,
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = services
        .process
        .clone()
        .list_sessions(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(SessionPage {
        items: page.items.into_iter().map(SessionView::from).collect(),
        next_page_token: some(page.next_page_token),
    }))
}

/// One session with its live counters.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionView), (status = 404, description = "session_not_found", body = ErrorBody)))]
pub async fn get(
    services: web::Data<Services>,
    Authed(caller): Authed,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::GetSessionRequest {
        id: id.into_inner(),
    };
    let session = services
        .process
        .clone()
        .get_session(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Ok().json(SessionView::from(session.into_inner())))
}

/// Stop a session; answers once it has stopped sending. Only the user who
/// started it, or an admin, may.
#[utoipa::path(post, path = "/api/v1/sessions/{id}/stop", extensions(("x-roles" = json!(crate::openapi::SENDERS))), tag = "sessions",
    request_body(content = Option<SessionAction>), security(("bearer" = [])),
    responses((status = 200, body = SessionView),
        (status = 403, description = "forbidden: another user started the session; pair_pinned: a high-priority pair needs an admin and force", body = ErrorBody),
        (status = 404, description = "session_not_found", body = ErrorBody)))]
pub async fn stop(
    services: web::Data<Services>,
    Sender(caller): Sender,
    id: web::Path<String>,
    OptionalBody(action): OptionalBody<SessionAction>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::SessionActionRequest {
        id: id.into_inner(),
        force: action.force,
    };
    let session = services
        .process
        .clone()
        .stop_session(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Ok().json(SessionView::from(session.into_inner())))
}

/// Restart a session: it stops, then starts again where its sequence left
/// off, keeping its counters and its owner. Only the user who started it,
/// or an admin, may (an admin alone once that user is deleted).
#[utoipa::path(post, path = "/api/v1/sessions/{id}/restart", extensions(("x-roles" = json!(crate::openapi::SENDERS))), tag = "sessions",
    request_body(content = Option<SessionAction>), security(("bearer" = [])),
    responses((status = 200, body = SessionView),
        (status = 403, description = "forbidden: another user started the session; pair_pinned", body = ErrorBody),
        (status = 404, description = "session_not_found; pair_not_found: the pair of a stopped session was deleted", body = ErrorBody),
        (status = 409, description = "session_active: the pair has another active session; conflict: the pair is being deleted", body = ErrorBody)))]
pub async fn restart(
    services: web::Data<Services>,
    Sender(caller): Sender,
    id: web::Path<String>,
    OptionalBody(action): OptionalBody<SessionAction>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::SessionActionRequest {
        id: id.into_inner(),
        force: action.force,
    };
    let session = services
        .process
        .clone()
        .restart_session(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Ok().json(SessionView::from(session.into_inner())))
}

/// Who started, stopped, restarted or resumed the session, and when.
#[utoipa::path(get, path = "/api/v1/sessions/{id}/audit", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 404, description = "session_not_found", body = ErrorBody)))]
pub async fn audit(
    services: web::Data<Services>,
    Authed(caller): Authed,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::ListAuditRequest {
        id: id.into_inner(),
    };
    let trail = services
        .process
        .clone()
        .list_audit(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    let items = trail
        .items
        .into_iter()
        .map(|a| AuditView {
            action: a.action,
            at: a.at,
            by: a.by,
            by_email: some(a.by_email),
            reason: some(a.reason),
            forced: a.forced,
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { items }))
}
