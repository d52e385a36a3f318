//! REST routes under `/api/v1`. Handlers only convert JSON to gRPC and back.

pub mod alerts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod dashboard;
pub mod health;
pub mod ingest;
pub mod invitations;
pub mod live;
pub mod metrics;
pub mod pairs;
pub mod prometheus;
pub mod providers;
pub mod sessions;
pub mod sms;
pub mod sms_batch;
pub mod users;
pub mod webhooks;

use actix_web::{Resource, web};

use crate::error::method_not_allowed;

/// A resource whose unsupported methods answer 405 with the usual error body.
pub(crate) fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}
