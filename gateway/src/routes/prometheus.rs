//! `GET /metrics` for Prometheus, and the middleware that counts and times
//! every request by its route pattern (never the raw path, so ids do not
//! make new series).

use std::time::Instant;

use actix_web::{
    Error, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use smsops_common::prom::{CONTENT_TYPE, Telemetry, http_method_label};

/// Every request's method (one the API serves, or `other`), route and
/// status, and how long it took.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let telemetry = req.app_data::<web::Data<Telemetry>>().cloned();
    let method = http_method_label(req.method().as_str());
    let response = next.call(req).await?;
    if let Some(telemetry) = telemetry {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        telemetry.record_http(
            method,
            &route,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

/// The gateway's metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", extensions(("x-roles" = json!(crate::openapi::ANYONE))), tag = "health",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn metrics(telemetry: web::Data<Telemetry>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(telemetry.encode())
}
