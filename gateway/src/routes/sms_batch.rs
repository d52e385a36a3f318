//! `POST /api/v1/sms/batch`: up to 1,000 messages in one request, one
//! sms-svc call and one transaction, each answered in its place.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::sms::v1::{self as pb, send_sms_result};
use utoipa::ToSchema;

use super::sms::{NewSms, SmsView};
use crate::{
    error::{ErrorBody, HttpError},
    extract::{Body, Sender},
    grpc::Services,
    limiter::{self, Limits},
};

/// The most messages one batch holds (sms-svc's own bound).
pub const MAX_MESSAGES: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSmsBatch {
    /// 1 to 1,000 messages, each as `POST /api/v1/sms` takes one.
    #[schema(min_items = 1, max_items = 1000)]
    pub messages: Vec<NewSms>,
}

/// One message's answer, in the place it had in the request: the message
/// as accepted, or why it was refused (the others are not held up).
#[derive(Debug, Serialize, ToSchema)]
pub struct SmsBatchResult {
    /// The accepted message; absent when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsView>,
    /// Why it was refused; absent when accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BatchError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchError {
    /// A stable code, as the single send's 4xx bodies carry: `invalid_phone`,
    /// `invalid_body`, `number_not_in_country`, `pair_not_found`,
    /// `quota_exceeded`, …
    pub code: String,
    pub message: String,
    /// For `quota_exceeded`: seconds until the window that refused it opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SmsBatchView {
    /// In request order.
    pub results: Vec<SmsBatchResult>,
}

fn result_of(result: pb::SendSmsResult) -> SmsBatchResult {
    match result.result {
        Some(send_sms_result::Result::Sms(sms)) => SmsBatchResult {
            sms: Some(SmsView::from(sms)),
            error: None,
        },
        Some(send_sms_result::Result::Error(error)) => SmsBatchResult {
            sms: None,
            error: Some(BatchError {
                code: error.code,
                message: error.message,
                retry_after_secs: Some(error.retry_after_secs).filter(|secs| *secs > 0),
            }),
        },
        None => SmsBatchResult {
            sms: None,
            error: Some(BatchError {
                code: "internal".into(),
                message: "sms-svc answered without a result".into(),
                retry_after_secs: None,
            }),
        },
    }
}

/// Send up to 1,000 SMS at once. 200 with one result per message, in
/// order: each accepted message is recorded and handed to the provider as
/// one `POST /sms` would be (idempotency keys and quotas per message); a
/// refused one does not stop the others. The request counts once against
/// the gateway's send rate.
#[utoipa::path(post, path = "/api/v1/sms/batch", extensions(("x-roles" = json!(crate::openapi::SENDERS))), tag = "sms", request_body = NewSmsBatch, security(("bearer" = [])),
    responses((status = 200, body = SmsBatchView),
        (status = 400, description = "invalid_argument: no messages, or more than 1,000", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 429, description = "rate_limited: too many from this user; see Retry-After", body = ErrorBody)))]
pub async fn send_batch(
    services: web::Data<Services>,
    limits: web::Data<Limits>,
    Sender(caller): Sender,
    Body(body): Body<NewSmsBatch>,
) -> Result<HttpResponse, HttpError> {
    if body.messages.is_empty() || body.messages.len() > MAX_MESSAGES {
        return Err(HttpError(smsops_common::ApiError::invalid_argument(
            format!("messages must hold 1 to {MAX_MESSAGES} messages"),
        )));
    }
    limiter::per_user(&limits.sms, &caller.user_id)?;
    let messages = body
        .messages
        .into_iter()
        .map(pb::SendSmsRequest::from)
        .collect();
    let reply = services
        .sms
        .clone()
        .send_sms_batch(caller.authorize(tonic::Request::new(pb::SendSmsBatchRequest { messages })))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(SmsBatchView {
        results: reply.results.into_iter().map(result_of).collect(),
    }))
}
