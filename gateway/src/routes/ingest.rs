use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use smsops_common::{ApiError, ErrorCode};
use smsops_proto::{auth::v1 as auth_pb, sms::v1 as sms_pb};
use utoipa::ToSchema;

use crate::{
    error::{ErrorBody, HttpError},
    extract::{ApiKey, Body},
    grpc::Services,
};

pub const API_KEY_HEADER: &str = "x-api-key";

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    /// 1 to 1,000 results, taken whole or refused whole.
    #[schema(value_type = Vec<ReportedResult>)]
    pub events: Vec<Value>,
}

/// One result of an SMS program smsops does not run.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedResult {
    /// A UUID of the reporter's choosing; reporting it again counts it once.
    pub event_id: String,
    #[schema(example = "GB")]
    pub country: String,
    #[schema(example = "Vodafone")]
    pub operator: String,
    /// accepted, queued, sent, delivered, undelivered or failed.
    #[schema(example = "delivered")]
    pub status: String,
    pub error_code: Option<String>,
    /// RFC 3339, within the last 30 days.
    pub occurred_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestView {
    pub accepted: u32,
}

/// Reports SMS results into the same event stream and metrics as smsops's
/// own, authenticated by an API key in `X-Api-Key`.
#[utoipa::path(post, path = "/api/v1/ingest/sms-events", extensions(("x-roles" = json!(crate::openapi::API_KEY))), tag = "ingest", request_body = IngestBody,
    params(("X-Api-Key" = String, Header, description = "an API key from /api/v1/api-keys")),
    responses((status = 202, body = IngestView),
        (status = 400, description = "invalid_argument, naming the bad item's index", body = ErrorBody),
        (status = 401, description = "unauthorized: missing, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "pair_not_found", body = ErrorBody),
        (status = 429, description = "rate_limited: the key was exchanged too often, with Retry-After", body = ErrorBody)))]
pub async fn sms_events(
    services: web::Data<Services>,
    ApiKey(key): ApiKey,
    body: Body<IngestBody>,
) -> Result<HttpResponse, HttpError> {
    let events = body
        .0
        .events
        .into_iter()
        .enumerate()
        .map(|(index, item)| reported(index, item))
        .collect::<Result<Vec<_>, _>>()?;
    let exchanged = services
        .auth
        .clone()
        .exchange_api_key(tonic::Request::new(auth_pb::ExchangeApiKeyRequest { key }))
        .await?
        .into_inner();
    let mut request = tonic::Request::new(sms_pb::IngestEventsRequest {
        events,
        source: exchanged.api_key.map(|k| k.id).unwrap_or_default(),
    });
    let bearer = format!("Bearer {}", exchanged.access_token)
        .parse()
        .map_err(|_| ApiError::internal("the exchanged token is not a header value"))?;
    request.metadata_mut().insert("authorization", bearer);
    let reply = services
        .sms
        .clone()
        .ingest_events(request)
        .await?
        .into_inner();
    Ok(HttpResponse::Accepted().json(IngestView {
        accepted: reply.accepted,
    }))
}

/// One item's shape; what the values mean is sms-svc's to check.
fn reported(index: usize, item: Value) -> Result<sms_pb::IngestEvent, ApiError> {
    let result: ReportedResult = serde_json::from_value(item).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("events[{index}]: {err}"),
        )
    })?;
    Ok(sms_pb::IngestEvent {
        event_id: result.event_id,
        country: result.country,
        operator: result.operator,
        status: result.status,
        error_code: result.error_code.unwrap_or_default(),
        occurred_at: result.occurred_at,
    })
}
