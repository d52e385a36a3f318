use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use smsops_proto::notify::v1 as pb;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ErrorBody, HttpError},
    extract::{Admin, Authed, Body},
    grpc::Services,
};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    /// `open`, `resolved` or `all` (default).
    #[param(pattern = r"^(open|resolved|all)$")]
    pub state: Option<String>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    pub id: String,
    /// `success_rate`, `failure_burst`, `session_failed`, `receipt_gap`,
    /// `slow_delivery`, `route_health` or `manual`.
    pub rule: String,
    pub country_operator_id: Option<String>,
    pub country: Option<String>,
    pub operator: Option<String>,
    /// The provider account a `route_health` alert moved the pair's traffic off.
    pub provider: Option<String>,
    /// `open` or `resolved` (a manual alert is resolved when raised).
    pub state: String,
    pub opened_at: String,
    pub resolved_at: Option<String>,
    pub message: String,
    /// `sent`, `pending`, `retrying` or `not_configured` (no chat set up).
    pub delivery: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsView {
    pub items: Vec<AlertView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAlert {
    /// 1 to 1,000 characters, sent to every configured Telegram chat.
    #[schema(
        example = "Twilio maintenance at 22:00 UTC",
        min_length = 1,
        max_length = 1000,
        pattern = r"\S"
    )]
    pub message: String,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesBody {
    pub success_rate: SuccessRateBody,
    pub failure_burst: FailureBurstBody,
    pub session_failed: SessionFailedBody,
    /// Left out, the rule stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_gap: Option<ReceiptGapBody>,
    /// Left out, the rule stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_delivery: Option<SlowDeliveryBody>,
    /// Left out, the rule stays as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_health: Option<RouteHealthBody>,
    /// After an alert resolves, the same rule and pair stay quiet this long.
    #[schema(maximum = 86400)]
    pub cooldown_seconds: u64,
}

/// Opens below `threshold` (0 to 1) of finished messages delivered over the
/// window, with at least `min_finished`; resolves at threshold + hysteresis.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuccessRateBody {
    pub enabled: bool,
    #[schema(example = 0.5, minimum = 0, maximum = 1)]
    pub threshold: f64,
    #[schema(example = 0.8, minimum = 0, maximum = 1)]
    pub high_priority_threshold: f64,
    #[schema(example = 300, minimum = 10, maximum = 86400)]
    pub window_seconds: u64,
    #[schema(example = 20, minimum = 1)]
    pub min_finished: u64,
    #[schema(example = 0.05, minimum = 0, maximum = 0.5)]
    pub hysteresis: f64,
}

/// Opens when `count` messages of a pair end with one error code within the
/// window; resolves below half of that.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailureBurstBody {
    pub enabled: bool,
    #[schema(minimum = 1)]
    pub count: u64,
    #[schema(minimum = 10, maximum = 86400)]
    pub window_seconds: u64,
}

/// Opens when, of a pair's messages finished over the window (at least
/// `min_finished`), the share whose status had to be reconciled with the
/// provider, their delivery receipt never having come, passes `threshold`;
/// resolves at or below threshold − hysteresis.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptGapBody {
    pub enabled: bool,
    #[schema(example = 0.1, minimum = 0, maximum = 1)]
    pub threshold: f64,
    #[schema(example = 300, minimum = 10, maximum = 86400)]
    pub window_seconds: u64,
    #[schema(example = 20, minimum = 1)]
    pub min_finished: u64,
    #[schema(example = 0.05, minimum = 0, maximum = 0.5)]
    pub hysteresis: f64,
}

/// Opens when the 95th percentile of a pair's acceptance-to-delivered times
/// over the window, with at least `min_delivered` timed, passes
/// `threshold_seconds`; resolves at or below threshold − hysteresis.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlowDeliveryBody {
    pub enabled: bool,
    #[schema(example = 30, minimum = 0.1, maximum = 86400)]
    pub threshold_seconds: f64,
    #[schema(example = 300, minimum = 10, maximum = 86400)]
    pub window_seconds: u64,
    #[schema(example = 20, minimum = 1)]
    pub min_delivered: u64,
    /// At least 0, below the threshold.
    #[schema(example = 5, minimum = 0)]
    pub hysteresis_seconds: f64,
}

/// Failover on delivery health, per pair and provider account: below
/// `threshold` (`high_priority_threshold` for high-priority pairs, so they
/// move first) of what the provider finished over the window delivered,
/// with at least `min_finished`, the pair's new messages go to the route's
/// next provider but for `probe_share` of them, an alert opens and the
/// switch is audited (`route.failed_over`); back at threshold + hysteresis
/// over at least `min_probes`, they return (`route.restored`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteHealthBody {
    pub enabled: bool,
    #[schema(example = 0.6, minimum = 0, maximum = 1)]
    pub threshold: f64,
    #[schema(example = 0.8, minimum = 0, maximum = 1)]
    pub high_priority_threshold: f64,
    #[schema(example = 300, minimum = 10, maximum = 86400)]
    pub window_seconds: u64,
    #[schema(example = 50, minimum = 1)]
    pub min_finished: u64,
    #[schema(example = 0.1, minimum = 0, maximum = 0.5)]
    pub hysteresis: f64,
    #[schema(example = 0.02, minimum = 0, maximum = 0.5)]
    pub probe_share: f64,
    #[schema(example = 10, minimum = 1)]
    pub min_probes: u64,
}

/// Opens when a session fails; resolves when the pair's next one starts.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionFailedBody {
    pub enabled: bool,
}

pub(crate) fn view(a: pb::Alert) -> AlertView {
    let some = |value: String| Some(value).filter(|v| !v.is_empty());
    AlertView {
        id: a.id,
        rule: a.rule,
        country_operator_id: some(a.country_operator_id),
        country: some(a.country),
        operator: some(a.operator),
        provider: some(a.provider),
        state: a.state,
        opened_at: a.opened_at,
        resolved_at: some(a.resolved_at),
        message: a.message,
        delivery: a.delivery,
    }
}

/// Alerts, newest change first.
#[utoipa::path(get, path = "/api/v1/alerts", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "alerts", params(AlertsQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AlertsView), (status = 400, description = "invalid_argument", body = ErrorBody)))]
pub async fn list(
    services: web::Data<Services>,
    Authed(caller): Authed,
    query: web::Query<AlertsQuery>,
) -> Result<HttpResponse, HttpError> {
    let query = query.into_inner();
    let request = pb::ListAlertsRequest {
        state: query.state.unwrap_or_default(),
        limit: query.limit.unwrap_or(0),
    };
    let reply = services
        .notify
        .clone()
        .list_alerts(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(AlertsView {
        items: reply.items.into_iter().map(view).collect(),
    }))
}

/// Raises an alert by hand and sends it to every Telegram chat (admin).
#[utoipa::path(post, path = "/api/v1/alerts", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "alerts", request_body = NewAlert,
    security(("bearer" = [])),
    responses((status = 201, body = AlertView), (status = 400, description = "invalid_argument", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn trigger(
    services: web::Data<Services>,
    Admin(caller): Admin,
    body: Body<NewAlert>,
) -> Result<HttpResponse, HttpError> {
    let request = pb::TriggerAlertRequest {
        message: body.0.message,
    };
    let alert = services
        .notify
        .clone()
        .trigger_alert(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Created().json(view(alert)))
}

fn rules_view(r: pb::Rules) -> RulesBody {
    let rate = r.success_rate.unwrap_or_default();
    let burst = r.failure_burst.unwrap_or_default();
    RulesBody {
        success_rate: SuccessRateBody {
            enabled: rate.enabled,
            threshold: rate.threshold,
            high_priority_threshold: rate.high_priority_threshold,
            window_seconds: rate.window_seconds,
            min_finished: rate.min_finished,
            hysteresis: rate.hysteresis,
        },
        failure_burst: FailureBurstBody {
            enabled: burst.enabled,
            count: burst.count,
            window_seconds: burst.window_seconds,
        },
        session_failed: SessionFailedBody {
            enabled: r.session_failed.unwrap_or_default().enabled,
        },
        receipt_gap: r.receipt_gap.map(|gap| ReceiptGapBody {
            enabled: gap.enabled,
            threshold: gap.threshold,
            window_seconds: gap.window_seconds,
            min_finished: gap.min_finished,
            hysteresis: gap.hysteresis,
        }),
        slow_delivery: r.slow_delivery.map(|slow| SlowDeliveryBody {
            enabled: slow.enabled,
            threshold_seconds: slow.threshold_seconds,
            window_seconds: slow.window_seconds,
            min_delivered: slow.min_delivered,
            hysteresis_seconds: slow.hysteresis_seconds,
        }),
        route_health: r.route_health.map(|route| RouteHealthBody {
            enabled: route.enabled,
            threshold: route.threshold,
            high_priority_threshold: route.high_priority_threshold,
            window_seconds: route.window_seconds,
            min_finished: route.min_finished,
            hysteresis: route.hysteresis,
            probe_share: route.probe_share,
            min_probes: route.min_probes,
        }),
        cooldown_seconds: r.cooldown_seconds,
    }
}

/// The alert rules (admin).
#[utoipa::path(get, path = "/api/v1/alerts/rules", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "alerts",
    security(("bearer" = [])),
    responses((status = 200, body = RulesBody), (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn get_rules(
    services: web::Data<Services>,
    Admin(caller): Admin,
) -> Result<HttpResponse, HttpError> {
    let rules = services
        .notify
        .clone()
        .get_rules(caller.authorize(tonic::Request::new(pb::GetRulesRequest {})))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(rules_view(rules)))
}

/// Replaces the alert rules (admin); every replica uses them within a second.
#[utoipa::path(put, path = "/api/v1/alerts/rules", extensions(("x-roles" = json!(crate::openapi::ADMINS))), tag = "alerts", request_body = RulesBody,
    security(("bearer" = [])),
    responses((status = 200, body = RulesBody), (status = 400, description = "invalid_argument", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody)))]
pub async fn update_rules(
    services: web::Data<Services>,
    Admin(caller): Admin,
    body: Body<RulesBody>,
) -> Result<HttpResponse, HttpError> {
    let r = body.0;
    let request = pb::Rules {
        success_rate: Some(pb::SuccessRateRule {
            enabled: r.success_rate.enabled,
            threshold: r.success_rate.threshold,
            high_priority_threshold: r.success_rate.high_priority_threshold,
            window_seconds: r.success_rate.window_seconds,
            min_finished: r.success_rate.min_finished,
            hysteresis: r.success_rate.hysteresis,
        }),
        failure_burst: Some(pb::FailureBurstRule {
            enabled: r.failure_burst.enabled,
            count: r.failure_burst.count,
            window_seconds: r.failure_burst.window_seconds,
        }),
        session_failed: Some(pb::SessionFailedRule {
            enabled: r.session_failed.enabled,
        }),
        receipt_gap: r.receipt_gap.map(|gap| pb::ReceiptGapRule {
            enabled: gap.enabled,
            threshold: gap.threshold,
            window_seconds: gap.window_seconds,
            min_finished: gap.min_finished,
            hysteresis: gap.hysteresis,
        }),
        slow_delivery: r.slow_delivery.map(|slow| pb::SlowDeliveryRule {
            enabled: slow.enabled,
            threshold_seconds: slow.threshold_seconds,
            window_seconds: slow.window_seconds,
            min_delivered: slow.min_delivered,
            hysteresis_seconds: slow.hysteresis_seconds,
        }),
        route_health: r.route_health.map(|route| pb::RouteHealthRule {
            enabled: route.enabled,
            threshold: route.threshold,
            high_priority_threshold: route.high_priority_threshold,
            window_seconds: route.window_seconds,
            min_finished: route.min_finished,
            hysteresis: route.hysteresis,
            probe_share: route.probe_share,
            min_probes: route.min_probes,
        }),
        cooldown_seconds: r.cooldown_seconds,
    };
    let rules = services
        .notify
        .clone()
        .update_rules(caller.authorize(tonic::Request::new(request)))
        .await?
        .into_inner();
    Ok(HttpResponse::Ok().json(rules_view(rules)))
}
