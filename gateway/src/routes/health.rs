use actix_web::{HttpResponse, web};
use serde::Serialize;
use smsops_common::ErrorCode;
use utoipa::ToSchema;

use crate::{
    error::{ErrorBody, HttpError, error},
    grpc::Services,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The gateway process is up.
#[utoipa::path(get, path = "/healthz", extensions(("x-roles" = json!(crate::openapi::ANYONE))), tag = "health", responses((status = 200, body = Status)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// Every downstream service answers its gRPC health check.
#[utoipa::path(get, path = "/readyz", extensions(("x-roles" = json!(crate::openapi::ANYONE))), tag = "health",
    responses((status = 200, body = Status), (status = 503, description = "unavailable, naming the services", body = ErrorBody)))]
pub async fn readyz(services: web::Data<Services>) -> Result<HttpResponse, HttpError> {
    let failing = services.not_ready().await;
    if failing.is_empty() {
        return Ok(HttpResponse::Ok().json(Status { status: "ready" }));
    }
    let names: Vec<String> = failing
        .iter()
        .map(|(name, reason)| format!("{name} ({reason})"))
        .collect();
    tracing::warn!(services = %names.join(", "), "not ready");
    Err(error(
        ErrorCode::Unavailable,
        format!("not ready: {}", names.join(", ")),
    ))
}
