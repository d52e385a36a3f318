//! A server span per request while traces are on, named by its route
//! pattern (`POST /api/v1/sms`), continuing the caller's W3C trace context.

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
};
use smsops_common::{
    prom::http_method_label,
    trace::{TraceHeaders, continue_from},
};
use tracing::Instrument;

pub async fn server_span(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if !smsops_common::telemetry::traces_on() {
        return next.call(req).await;
    }
    // Patterns, not paths: ids would make every span name its own.
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = http_method_label(req.method().as_str());
    let span = tracing::info_span!(
        "http server",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let headers = TraceHeaders::read(|name| req.headers().get(name).and_then(|v| v.to_str().ok()));
    continue_from(&span, &headers);
    let response = next.call(req).instrument(span.clone()).await?;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    Ok(response)
}
