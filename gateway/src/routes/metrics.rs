use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_common::{ApiError, ErrorCode};
use smsops_proto::metrics::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ErrorBody, HttpError},
    extract::Authed,
    grpc::Services,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// How far back: `90s`, `15m`, `1h`, `7d` (60 s to 30 days; default `1h`).
    #[param(pattern = r"^[0-9]+[smhd]$")]
    pub window: Option<String>,
    pub country: Option<String>,
    pub operator: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairSummaryView {
    pub country_operator_id: String,
    pub country: String,
    pub operator: String,
    /// Messages accepted for sending in the window.
    pub sms_sent: u64,
    pub delivered: u64,
    pub undelivered: u64,
    pub failed: u64,
    /// delivered / (delivered + undelivered + failed); 0 when none finished.
    pub success_rate: f64,
    /// The commonest error codes of undelivered and failed messages.
    pub top_errors: Vec<ErrorCountView>,
    /// From acceptance to sent (the provider took it); absent when no
    /// message in the window was timed.
    pub to_sent: Option<LatencyView>,
    /// From acceptance to delivered (its receipt came).
    pub to_delivered: Option<LatencyView>,
}

/// Percentiles of the messages timed, each within 2 % of the exact one.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyView {
    /// Messages timed.
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

fn latency_view(l: pb::Latency) -> LatencyView {
    LatencyView {
        count: l.count,
        p50_ms: l.p50_ms,
        p95_ms: l.p95_ms,
        p99_ms: l.p99_ms,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorCountView {
    pub code: String,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryView {
    pub items: Vec<PairSummaryView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// One pair; none means all pairs together.
    pub country_operator_id: Option<String>,
    /// `1m`, `5m` or `1h` (default `1m`).
    #[param(pattern = r"^(1m|5m|1h)$")]
    pub bucket: Option<String>,
    /// RFC 3339 (default: an hour before `until`).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339 (default: now).
    #[param(format = DateTime)]
    pub until: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPointView {
    /// The bucket's start.
    pub at: String,
    pub sms_sent: u64,
    pub delivered: u64,
    pub undelivered: u64,
    pub failed: u64,
    pub success_rate: f64,
    pub to_sent: Option<LatencyView>,
    pub to_delivered: Option<LatencyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesView {
    /// Oldest first; empty buckets are left out.
    pub points: Vec<SeriesPointView>,
}

/// `90s`, `15m`, `1h`, `7d` or plain seconds.
fn window_secs(value: &str) -> Option<u64> {
    let value = value.trim();
    let (number, unit) = match value.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&value[..i], c),
        _ => (value, 's'),
    };
    let number: u64 = number.parse().ok()?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// Totals per pair over a window, counted exactly once per SMS event.
#[utoipa::path(get, path = "/api/v1/metrics/summary", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "metrics", params(SummaryQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SummaryView), (status = 400, description = "invalid_argument", body = ErrorBody)))]
pub async fn summary(
    services: web::Data<Services>,
    Authed(caller): Authed,
    query: web::Query<SummaryQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let window_seconds = match query.window.as_deref() {
        None => 0,
        Some(window) => window_secs(window).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidArgument,
                "window must look like 90s, 15m, 1h or 7d",
            )
        })?,
    };
    let request = pb::SummaryRequest {
        window_seconds,
        country: query.country,
        operator: query.operator,
    };
    let reply = services
        .metrics
        .clone()
        .summary(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    let items = reply.items.into_iter().map(pair_view).collect();
    Ok(HttpResponse::Ok().json(SummaryView { items }))
}

pub(crate) fn pair_view(p: pb::PairSummary) -> PairSummaryView {
    PairSummaryView {
        country_operator_id: p.country_operator_id,
        country: p.country,
        operator: p.operator,
        sms_sent: p.sms_sent,
        delivered: p.delivered,
        undelivered: p.undelivered,
        failed: p.failed,
        success_rate: p.success_rate,
        top_errors: p
            .top_errors
            .into_iter()
            .map(|e| ErrorCountView {
                code: e.code,
                count: e.count,
            })
            .collect(),
        to_sent: p.to_sent.map(latency_view),
        to_delivered: p.to_delivered.map(latency_view),
    }
}

/// Counts per time bucket, for one pair or all of them.
#[utoipa::path(get, path = "/api/v1/metrics/series", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "metrics", params(SeriesQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SeriesView), (status = 400, description = "invalid_argument", body = ErrorBody)))]
pub async fn series(
    services: web::Data<Services>,
    Authed(caller): Authed,
    query: web::Query<SeriesQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let bucket_seconds = window_secs(query.bucket.as_deref().unwrap_or("1m"))
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidArgument, "bucket must be 1m, 5m or 1h"))?;
    let request = pb::SeriesRequest {
        country_operator_id: query.country_operator_id.unwrap_or_default(),
        bucket_seconds,
        since: query.since.unwrap_or_default(),
        until: query.until.unwrap_or_default(),
    };
    let reply = services
        .metrics
        .clone()
        .series(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    let points = reply
        .points
        .into_iter()
        .map(|p| SeriesPointView {
            at: p.at,
            sms_sent: p.sms_sent,
            delivered: p.delivered,
            undelivered: p.undelivered,
            failed: p.failed,
            success_rate: p.success_rate,
            to_sent: p.to_sent.map(latency_view),
            to_delivered: p.to_delivered.map(latency_view),
        })
        .collect();
    Ok(HttpResponse::Ok().json(SeriesView { points }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert_eq!(window_secs("90s"), Some(90));
        assert_eq!(window_secs("15m"), Some(900));
        assert_eq!(window_secs("1h"), Some(3600));
        assert_eq!(window_secs("7d"), Some(604_800));
        assert_eq!(window_secs("120"), Some(120));
        assert_eq!(window_secs("1w"), None);
        assert_eq!(window_secs("h"), None);
    }
}
