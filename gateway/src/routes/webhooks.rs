use actix_web::{HttpRequest, HttpResponse, web};
use smsops_common::ErrorCode;
use smsops_proto::sms::v1 as pb;

use crate::{
    callbacks::CallbackBatcher,
    error::{ErrorBody, HttpError, error},
};

/// Twilio's status callback. No token: sms-svc checks `X-Twilio-Signature`
/// against the public URL it gave Twilio. Replays and out-of-order
/// callbacks are harmless; statuses only move forward.
#[utoipa::path(post, path = "/webhooks/twilio/status", extensions(("x-roles" = json!(crate::openapi::ANYONE))), tag = "webhooks",
    request_body(content_type = "application/x-www-form-urlencoded", content = String),
    responses((status = 204), (status = 403, description = "invalid_signature", body = ErrorBody),
        (status = 404, description = "not_found: unknown MessageSid", body = ErrorBody)))]
pub async fn twilio_status(
    callbacks: web::Data<CallbackBatcher>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, HttpError> {
    let signature = req
        .headers()
        .get("x-twilio-signature")
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| error(ErrorCode::InvalidSignature, "missing X-Twilio-Signature"))?;
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(|err| {
        error(
            ErrorCode::InvalidArgument,
            format!("unreadable form body: {err}"),
        )
    })?;
    let request = pb::StatusCallbackRequest {
        provider: "twilio".into(),
        query: req.query_string().to_string(),
        params: params
            .into_iter()
            .map(|(name, value)| pb::Param { name, value })
            .collect(),
        signature: signature.to_string(),
    };
    callbacks.handle(request).await?;
    Ok(HttpResponse::NoContent().finish())
}
