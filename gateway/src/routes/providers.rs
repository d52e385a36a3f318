use actix_web::{HttpResponse, web};
use serde::Serialize;
use smsops_proto::sms::v1 as pb;
use utoipa::ToSchema;

use crate::{error::HttpError, extract::Authed, grpc::Services};

/// A provider account messages can be routed to (what a pair's route
/// names), as one sms-svc replica sees it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    #[schema(example = "smsc")]
    pub name: String,
    /// twilio or smpp.
    pub kind: String,
    /// Messages a second across every replica; 0 is no limit.
    pub rate_per_second: u32,
    /// Requests in flight at once, per replica.
    pub concurrency: u32,
    /// Its circuit breaker lets sends through and, for SMPP, it is bound.
    pub healthy: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    pub items: Vec<ProviderView>,
}

/// The provider accounts, in the order a pair without a route tries them.
#[utoipa::path(get, path = "/api/v1/providers", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "providers",
    security(("bearer" = [])),
    responses((status = 200, body = ProviderList)))]
pub async fn list(
    services: web::Data<Services>,
    Authed(caller): Authed,
) -> Result<HttpResponse, HttpError> {
    let request = pb::ListProvidersRequest {};
    let list = services
        .sms
        .clone()
        .list_providers(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    let items = list
        .items
        .into_iter()
        .map(|p| ProviderView {
            name: p.name,
            kind: p.kind,
            rate_per_second: p.rate_per_second,
            concurrency: p.concurrency,
            healthy: p.healthy,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ProviderList { items }))
}
