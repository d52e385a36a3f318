//! The gRPC face of notify-svc: checks the caller's token, converts
//! messages and calls [`NotifyCore`].

use std::sync::Arc;

use smsops_common::auth::TokenVerifier;
use smsops_proto::notify::v1::{self as pb, notify_service_server::NotifyService};
use tonic::{Request, Response, Status};

use crate::{
    core::{NotifyCore, route_health::RouteHealthRule, rules},
    store::AlertRow,
};

pub struct NotifyGrpc {
    core: Arc<NotifyCore>,
    verifier: Arc<TokenVerifier>,
}

impl NotifyGrpc {
    pub fn new(core: Arc<NotifyCore>, verifier: Arc<TokenVerifier>) -> Self {
        Self { core, verifier }
    }
}

type WatchStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::Alert, Status>> + Send>>;

#[tonic::async_trait]
impl NotifyService for NotifyGrpc {
    type WatchStream = WatchStream;

    async fn trigger_alert(
        &self,
        request: Request<pb::TriggerAlertRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let alert = self
            .core
            .trigger(&caller, &request.into_inner().message)
            .await?;
        Ok(Response::new(alert_of(alert)))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let alerts = self.core.list(&caller, &req.state, req.limit).await?;
        Ok(Response::new(pb::ListAlertsResponse {
            items: alerts.into_iter().map(alert_of).collect(),
        }))
    }

    async fn get_rules(
        &self,
        request: Request<pb::GetRulesRequest>,
    ) -> Result<Response<pb::Rules>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        Ok(Response::new(rules_to_pb(
            self.core.get_rules(&caller).await?,
        )))
    }

    async fn update_rules(
        &self,
        request: Request<pb::Rules>,
    ) -> Result<Response<pb::Rules>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        // A caller from before the receipt-gap or slow-delivery rule leaves
        // it as stored.
        let request = request.into_inner();
        let every_rule = request.receipt_gap.is_some()
            && request.slow_delivery.is_some()
            && request.route_health.is_some();
        let current = if every_rule {
            rules::Rules::default()
        } else {
            self.core.get_rules(&caller).await?
        };
        let rules = rules_from_pb(request, current)?;
        Ok(Response::new(rules_to_pb(
            self.core.update_rules(&caller, rules).await?,
        )))
    }

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        self.verifier.caller_of(&request).await?;
        let mut changes = self.core.subscribe();
        let mut closing = self.core.closing();
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    change = changes.recv() => match change {
                        Ok(alert) => {
                            if tx.send(Ok(alert_of((*alert).clone()))).await.is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "alert watcher fell behind");
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    () = tx.closed() => return,
                    _ = closing.changed() => return,
                }
            }
        });
        let alerts = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(alerts)))
    }
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn alert_of(a: AlertRow) -> pb::Alert {
    pb::Alert {
        id: a.id,
        rule: a.rule,
        country_operator_id: a.pair_id.unwrap_or_default(),
        country: a.country.unwrap_or_default(),
        operator: a.operator.unwrap_or_default(),
        state: a.state,
        opened_at: time(a.opened_at),
        resolved_at: a.resolved_at.map(time).unwrap_or_default(),
        message: a.message,
        delivery: a.delivery,
        provider: a.provider.unwrap_or_default(),
    }
}

fn rules_to_pb(r: rules::Rules) -> pb::Rules {
    pb::Rules {
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
        receipt_gap: Some(pb::ReceiptGapRule {
            enabled: r.receipt_gap.enabled,
            threshold: r.receipt_gap.threshold,
            window_seconds: r.receipt_gap.window_seconds,
            min_finished: r.receipt_gap.min_finished,
            hysteresis: r.receipt_gap.hysteresis,
        }),
        slow_delivery: Some(pb::SlowDeliveryRule {
            enabled: r.slow_delivery.enabled,
            threshold_seconds: r.slow_delivery.threshold_seconds,
            window_seconds: r.slow_delivery.window_seconds,
            min_delivered: r.slow_delivery.min_delivered,
            hysteresis_seconds: r.slow_delivery.hysteresis_seconds,
        }),
        route_health: Some(pb::RouteHealthRule {
            enabled: r.route_health.enabled,
            threshold: r.route_health.threshold,
            high_priority_threshold: r.route_health.high_priority_threshold,
            window_seconds: r.route_health.window_seconds,
            min_finished: r.route_health.min_finished,
            hysteresis: r.route_health.hysteresis,
            probe_share: r.route_health.probe_share,
            min_probes: r.route_health.min_probes,
        }),
        cooldown_seconds: r.cooldown_seconds,
    }
}

/// The rules a caller sent; a rule it left out is `current`'s.
fn rules_from_pb(r: pb::Rules, current: rules::Rules) -> Result<rules::Rules, Status> {
    let missing = |name: &str| {
        Status::from(smsops_common::ApiError::invalid_argument(format!(
            "{name} is required"
        )))
    };
    let rate = r.success_rate.ok_or_else(|| missing("success_rate"))?;
    let burst = r.failure_burst.ok_or_else(|| missing("failure_burst"))?;
    let session = r.session_failed.ok_or_else(|| missing("session_failed"))?;
    Ok(rules::Rules {
        success_rate: rules::SuccessRateRule {
            enabled: rate.enabled,
            threshold: rate.threshold,
            high_priority_threshold: rate.high_priority_threshold,
            window_seconds: rate.window_seconds,
            min_finished: rate.min_finished,
            hysteresis: rate.hysteresis,
        },
        failure_burst: rules::FailureBurstRule {
            enabled: burst.enabled,
            count: burst.count,
            window_seconds: burst.window_seconds,
        },
        session_failed: rules::SessionFailedRule {
            enabled: session.enabled,
        },
        receipt_gap: r
            .receipt_gap
            .map_or(current.receipt_gap, |gap| rules::ReceiptGapRule {
                enabled: gap.enabled,
                threshold: gap.threshold,
                window_seconds: gap.window_seconds,
                min_finished: gap.min_finished,
                hysteresis: gap.hysteresis,
            }),
        slow_delivery: r.slow_delivery.map_or(current.slow_delivery, |slow| {
            rules::SlowDeliveryRule {
                enabled: slow.enabled,
                threshold_seconds: slow.threshold_seconds,
                window_seconds: slow.window_seconds,
                min_delivered: slow.min_delivered,
                hysteresis_seconds: slow.hysteresis_seconds,
            }
        }),
        route_health: r
            .route_health
            .map_or(current.route_health, |route| RouteHealthRule {
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
    })
}
