use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::operator::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Admin, Authed, Body},
    grpc::Services,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct PairView {
    pub id: String,
    /// ISO 3166-1 alpha-2, upper case.
    #[schema(example = "GB")]
    pub country: String,
    #[schema(example = "Vodafone")]
    pub operator: String,
    pub is_high_priority: bool,
    pub created_at: String,
    pub updated_at: String,
    /// Id of the user who created the pair.
    pub created_by: String,
    /// The provider accounts its messages go through; empty: sms-svc's
    /// default order (see `GET /api/v1/providers`).
    pub route: Vec<RouteStep>,
}

/// One provider account of a route. Steps are tried by priority, lowest
/// first, skipping those that are down; steps of one priority share its
/// traffic by weight.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteStep {
    /// An account's name, as `GET /api/v1/providers` lists it.
    #[schema(example = "smsc", pattern = r"^\s*[A-Za-z0-9-]{1,32}\s*$")]
    pub provider: String,
    #[serde(default)]
    pub priority: u32,
    /// 1 to 1000; 100 when left out.
    #[serde(default = "default_weight")]
    #[schema(minimum = 1, maximum = 1000, default = 100)]
    pub weight: u32,
}

fn default_weight() -> u32 {
    100
}

impl From<pb::RouteStep> for RouteStep {
    fn from(step: pb::RouteStep) -> Self {
        Self {
            provider: step.provider,
            priority: step.priority,
            weight: step.weight,
        }
    }
}

impl From<RouteStep> for pb::RouteStep {
    fn from(step: RouteStep) -> Self {
        Self {
            provider: step.provider,
            priority: step.priority,
            weight: step.weight,
        }
    }
}

impl From<pb::Pair> for PairView {
    fn from(pair: pb::Pair) -> Self {
        Self {
            id: pair.id,
            country: pair.country,
            operator: pair.operator,
            is_high_priority: pair.is_high_priority,
            created_at: pair.created_at,
            updated_at: pair.updated_at,
            created_by: pair.created_by,
            route: pair.route.into_iter().map(RouteStep::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PairPage {
    pub items: Vec<PairView>,
    /// Pass as `page_token` for the next page; null on the last page.
    pub next_page_token: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PairQuery {
    /// ISO 3166-1 alpha-2, any case.
    #[param(pattern = r"^\s*[A-Za-z]{2}\s*$")]
    pub country: Option<String>,
    pub high_priority: Option<bool>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPair {
    /// ISO 3166-1 alpha-2, any case; stored upper case.
    #[schema(example = "gb", pattern = r"^\s*[A-Za-z]{2}\s*$")]
    pub country: String,
    /// 1 to 50 characters after trimming, no control characters; unique
    /// per country ignoring case.
    #[schema(
        example = "Vodafone",
        min_length = 1,
        max_length = 50,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub operator: String,
    #[serde(default)]
    pub is_high_priority: bool,
}

/// Fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairPatch {
    #[schema(pattern = r"^\s*[A-Za-z]{2}\s*$")]
    pub country: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub operator: Option<String>,
    pub is_high_priority: Option<bool>,
    /// Replaces the route: at most 8 steps, each provider once; `[]`
    /// clears it.
    #[schema(max_items = 8)]
    pub route: Option<Vec<RouteStep>>,
}

/// List pairs, oldest first, with optional filters and cursor paging.
#[utoipa::path(get, path = "/api/v1/country-operators", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "country-operators", params(PairQuery),
    security(("bearer" = [])),
    responses((status = 200, body = PairPage), (status = 400, description = "invalid_argument, invalid_country", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Authed(caller): Authed,
    query: web::Query<PairQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let request = pb::ListPairsRequest {
        country: query.country,
        is_high_priority: query.high_priority,
        page_size: query.page_size.unwrap_or(0),
        page_token: query.page_token.unwrap_or_default(),
    };
    let page = services
        .operator
        .clone()
        .list_pairs(caller.authorize(tonic::Request::new(request)))
        .await?;
    let page = page.into_inner();
    Ok(HttpResponse::Ok().json(PairPage {
        items: page.items.into_iter().map(PairView::from).collect(),
        next_page_token: Some(page.next_page_token).filter(|token| !token.is_empty()),
    }))
}

/// Create a pair (admin).
#[utoipa::path(post, path = "/api/v1/country-operators", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "country-operators", request_body = NewPair,
    security(("bearer" = [])),
    responses((status = 201, body = PairView),
        (status = 400, description = "invalid_country, invalid_operator", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 409, description = "pair_exists", body = ErrorBody)))]
pub async fn create(
    services: web::Data<Services>,
    Admin(caller): Admin,
    Body(body): Body<NewPair>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::CreatePairRequest {
        country: body.country,
        operator: body.operator,
        is_high_priority: body.is_high_priority,
    };
    let pair = services
        .operator
        .clone()
        .create_pair(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Created().json(PairView::from(pair.into_inner())))
}

/// One pair.
#[utoipa::path(get, path = "/api/v1/country-operators/{id}", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "country-operators",
    security(("bearer" = [])),
    responses((status = 200, body = PairView), (status = 404, description = "not_found", body = ErrorBody)))]
pub async fn get(
    services: web::Data<Services>,
    Authed(caller): Authed,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::GetPairRequest {
        id: id.into_inner(),
    };
    let pair = services
        .operator
        .clone()
        .get_pair(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Ok().json(PairView::from(pair.into_inner())))
}

/// Change some fields of a pair (admin).
#[utoipa::path(patch, path = "/api/v1/country-operators/{id}", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "country-operators",
    request_body = PairPatch, security(("bearer" = [])),
    responses((status = 200, body = PairView), (status = 400, description = "invalid_country, invalid_operator, invalid_route", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "pair_exists", body = ErrorBody)))]
pub async fn update(
    services: web::Data<Services>,
    Admin(caller): Admin,
    id: web::Path<String>,
    Body(body): Body<PairPatch>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::UpdatePairRequest {
        id: id.into_inner(),
        country: body.country,
        operator: body.operator,
        is_high_priority: body.is_high_priority,
        route: body.route.map(|steps| pb::Route {
            steps: steps.into_iter().map(pb::RouteStep::from).collect(),
        }),
    };
    let pair = services
        .operator
        .clone()
        .update_pair(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::Ok().json(PairView::from(pair.into_inner())))
}

/// Delete a pair (admin) that no session uses: while one is starting,
/// running or stopping on it, 409 `pair_in_use`; stop the session first.
/// When process-svc cannot say, nothing is deleted (503, with Retry-After).
#[utoipa::path(delete, path = "/api/v1/country-operators/{id}", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "country-operators",
    security(("bearer" = [])),
    responses((status = 204),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "pair_in_use: a session on the pair is active", body = ErrorBody),
        (status = 503, description = "unavailable: whether a session uses the pair cannot be told now", body = ErrorBody)))]
pub async fn delete(
    services: web::Data<Services>,
    Admin(caller): Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::DeletePairRequest {
        id: id.into_inner(),
    };
    services
        .operator
        .clone()
        .delete_pair(caller.authorize(tonic::Request::new(request)))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
