use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::sms::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Authed, Body, Sender},
    grpc::Services,
    limiter::{self, Limits},
    sends::SendBatcher,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSms {
    #[schema(min_length = 1)]
    pub country_operator_id: String,
    /// E.164, e.g. `+447700900123`.
    #[schema(example = "+447700900123", pattern = r"^\s*\+[1-9][0-9]{1,14}\s*$")]
    pub to: String,
    /// 1 to 1600 characters, not all white space.
    #[schema(min_length = 1, max_length = 1600, pattern = r"\S")]
    pub body: String,
    /// The same key always returns the same message, sent once. Printable
    /// ASCII, at most 128 bytes.
    #[schema(max_length = 128, pattern = r"^[\x20-\x7e]*$")]
    pub idempotency_key: Option<String>,
}

impl From<NewSms> for pb::SendSmsRequest {
    fn from(sms: NewSms) -> Self {
        Self {
            country_operator_id: sms.country_operator_id,
            to: sms.to,
            body: sms.body,
            idempotency_key: sms.idempotency_key.unwrap_or_default(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmsView {
    pub id: String,
    pub country_operator_id: String,
    pub country: String,
    pub operator: String,
    pub is_high_priority: bool,
    pub session_id: Option<String>,
    pub to: String,
    pub body_length: u32,
    pub segments: u32,
    /// accepted, queued, sent, delivered, undelivered or failed.
    pub status: String,
    /// The provider account it went to (see `GET /api/v1/providers`).
    pub provider: String,
    /// Why that account: default (its pair has no route), route (the
    /// route's first choice), weighted (drawn by weight among equals),
    /// failover_outage (those before it were down), failover_not_taken
    /// (one before it provably did not take the message), failover_health
    /// (those before it stopped delivering the pair's messages) or probe
    /// (one that stopped delivering, tried to see it recover); null for
    /// reported results and older messages.
    pub route_reason: Option<String>,
    pub provider_sid: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn some(value: String) -> Option<String> {
    Some(value).filter(|v| !v.is_empty())
}

impl From<pb::Sms> for SmsView {
    fn from(sms: pb::Sms) -> Self {
        Self {
            id: sms.id,
            country_operator_id: sms.country_operator_id,
            country: sms.country,
            operator: sms.operator,
            is_high_priority: sms.is_high_priority,
            session_id: some(sms.session_id),
            to: sms.to,
            body_length: sms.body_length,
            segments: sms.segments,
            status: sms.status,
            provider: sms.provider,
            route_reason: some(sms.route_reason),
            provider_sid: some(sms.provider_sid),
            error_code: some(sms.error_code),
            error_message: some(sms.error_message),
            created_at: sms.created_at,
            updated_at: sms.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChangeView {
    pub status: String,
    pub error_code: Option<String>,
    pub provider_status: Option<String>,
    pub occurred_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmsDetailView {
    #[serde(flatten)]
    pub sms: SmsView,
    /// Every status the message moved to, oldest first.
    pub history: Vec<StatusChangeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmsPage {
    /// Newest first.
    pub items: Vec<SmsView>,
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SmsQuery {
    pub country_operator_id: Option<String>,
    #[param(pattern = r"^(accepted|queued|sent|delivered|undelivered|failed)$")]
    pub status: Option<String>,
    pub session_id: Option<String>,
    /// RFC 3339; created at or after.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; created before.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

/// Send one SMS. 202: it is recorded and handed to the provider; follow its
/// status with `GET /sms/{id}`.
#[utoipa::path(post, path = "/api/v1/sms", extensions(("x-roles" = json!(crate::openapi::SENDERS))), tag = "sms", request_body = NewSms, security(("bearer" = [])),
    responses((status = 202, body = SmsView),
        (status = 400, description = "invalid_phone, invalid_body, number_not_in_country (`to` is not under the calling code of the pair's country)", body = ErrorBody),
        (status = 404, description = "pair_not_found", body = ErrorBody),
        (status = 429, description = "rate_limited: too many from this user; see Retry-After", body = ErrorBody)))]
pub async fn send(
    sends: web::Data<SendBatcher>,
    limits: web::Data<Limits>,
    Sender(caller): Sender,
    Body(body): Body<NewSms>,
) -> Result<HttpResponse, HttpError> {
    limiter::per_user(&limits.sms, &caller.user_id)?;
    let sms = sends.send(&caller, pb::SendSmsRequest::from(body)).await?;
    Ok(HttpResponse::Accepted().json(SmsView::from(sms)))
}

/// One message with its status history.
#[utoipa::path(get, path = "/api/v1/sms/{id}", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "sms", security(("bearer" = [])),
    responses((status = 200, body = SmsDetailView), (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn get(
    services: web::Data<Services>,
    Authed(caller): Authed,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::GetSmsRequest {
        id: id.into_inner(),
    };
    let detail = services
        .sms
        .clone()
        .get_sms(caller.authorize(tonic::Request::new(request)))
        .await?;
    let detail = detail.into_inner();
    let sms = detail.sms.map(SmsView::from).ok_or_else(|| {
        HttpError(smsops_common::ApiError::internal(
            "sms-svc answered without a message",
        ))
    })?;
    let history = detail
        .history
        .into_iter()
        .map(|change| StatusChangeView {
            status: change.status,
            error_code: some(change.error_code),
            provider_status: some(change.provider_status),
            occurred_at: change.occurred_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(SmsDetailView { sms, history }))
}

/// Message history, newest first, with filters and cursor paging.
#[utoipa::path(get, path = "/api/v1/sms", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "sms", params(SmsQuery), security(("bearer" = [])),
    responses((status = 200, body = SmsPage), (status = 400, description = "invalid_argument", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Authed(caller): Authed,
    query: web::Query<SmsQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let request = pb::ListSmsRequest {
        country_operator_id: query.country_operator_id,
        status: query.status,
        session_id: query.session_id,
        since: query.since,
        until: query.until,
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = services
        .sms
        .clone()
        .list_sms(caller.authorize(tonic::Request::new(request)))
        .await?;
    let page = page.into_inner();
    Ok(HttpResponse::Ok().json(SmsPage {
        items: page.items.into_iter().map(SmsView::from).collect(),
        next_page_token: some(page.next_page_token),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// 1 to 1600 characters, not all white space.
    #[schema(min_length = 1, max_length = 1600, pattern = r"\S")]
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    /// `GSM-7` or `UCS-2`.
    #[schema(example = "GSM-7")]
    pub encoding: String,
    /// Unicode characters, as a person counts them.
    pub characters: u32,
    /// Septets in GSM-7 (an extension character such as `{` or `€` takes
    /// two), UTF-16 units in UCS-2 (an emoji takes two).
    pub units: u32,
    /// The SMS parts a carrier bills.
    pub parts: u32,
    /// Units one part holds: 160 or 70 for a single part, 153 or 67 for
    /// each part of a longer message.
    pub per_part: u32,
    /// The characters outside GSM 03.38 that forced UCS-2, each once.
    pub ucs2_characters: Vec<String>,
}

/// What a body would cost, counted as carriers count it: its encoding,
/// characters, parts and the characters that forced UCS-2. Sends nothing.
#[utoipa::path(post, path = "/api/v1/sms/preview", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "sms", request_body = PreviewRequest, security(("bearer" = [])),
    responses((status = 200, body = PreviewView),
        (status = 400, description = "invalid_body", body = ErrorBody)))]
pub async fn preview(
    services: web::Data<Services>,
    Authed(caller): Authed,
    Body(body): Body<PreviewRequest>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::PreviewSmsRequest { body: body.body };
    let preview = services
        .sms
        .clone()
        .preview_sms(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(PreviewView {
        encoding: preview.encoding,
        characters: preview.characters,
        units: preview.units,
        parts: preview.parts,
        per_part: preview.per_part,
        ucs2_characters: preview.ucs2_characters,
    }))
}
