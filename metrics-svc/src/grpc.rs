//! The gRPC face of metrics-svc: checks the caller's token, converts
//! messages and calls [`MetricsCore`].

use std::sync::Arc;

use smsops_common::{
    auth::{Role, TokenVerifier},
    latency::Histogram,
};
use smsops_proto::metrics::v1::{self as pb, metrics_service_server::MetricsService};
use tonic::{Request, Response, Status};

use crate::{
    core::{LiveEvent, MetricsCore},
    store::PairTotals,
};

pub struct MetricsGrpc {
    core: Arc<MetricsCore>,
    verifier: Arc<TokenVerifier>,
}

impl MetricsGrpc {
    pub fn new(core: Arc<MetricsCore>, verifier: Arc<TokenVerifier>) -> Self {
        Self { core, verifier }
    }
}

/// How long a new `Live` stream waits for the event feed before it says it
/// follows without it.
const FOLLOW_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

type LiveStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::LiveUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl MetricsService for MetricsGrpc {
    type LiveStream = LiveStream;

    async fn live(
        &self,
        request: Request<pb::LiveRequest>,
    ) -> Result<Response<LiveStream>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let admin = caller.role == Role::Admin;
        let core = self.core.clone();
        let mut changes = core.subscribe();
        let mut events = core.subscribe_events();
        let mut closing = core.closing();
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            // The first message says from when on every event comes: once
            // the feed is on, or (broker away) after FOLLOW_WAIT without.
            let mut feed = core.feed_on();
            let on = tokio::select! {
                waited = tokio::time::timeout(FOLLOW_WAIT, feed.wait_for(|on| *on)) => {
                    waited.is_ok_and(|waited| waited.is_ok())
                }
                // Stopping: do not hold the server's graceful shutdown.
                _ = closing.changed() => return,
            };
            let following = pb::LiveUpdate {
                at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                pairs: Vec::new(),
                events: vec![pb::LiveEvent {
                    r#type: "live.following".into(),
                    body: format!("{{\"events\":{on}}}"),
                }],
            };
            if tx.send(Ok(following)).await.is_err() {
                return;
            }
            let mut every = tokio::time::interval(crate::core::LIVE_EVERY);
            let mut pending: std::collections::BTreeSet<String> = Default::default();
            loop {
                tokio::select! {
                    changed = changes.recv() => match changed {
                        Ok(pairs) => pending.extend(pairs.iter().cloned()),
                        // Fell behind: the next change of each missed pair brings it.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    event = events.recv() => {
                        let batch = match event {
                            Ok(first) => live_batch(first, &mut events, admin),
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => vec![pb::LiveEvent {
                                r#type: "live.lagged".into(),
                                body: format!("{{\"missed\":{missed}}}"),
                            }],
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                        };
                        if batch.is_empty() {
                            continue;
                        }
                        let update = pb::LiveUpdate {
                            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                            pairs: Vec::new(),
                            events: batch,
                        };
                        if tx.send(Ok(update)).await.is_err() {
                            return;
                        }
                    }
                    _ = every.tick(), if !pending.is_empty() => {
                        let pairs: Vec<String> = std::mem::take(&mut pending).into_iter().collect();
                        let update = core.live_totals(&pairs).await.map(|totals| pb::LiveUpdate {
                            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                            pairs: totals.into_iter().map(pair_summary).collect(),
                            events: Vec::new(),
                        });
                        if tx.send(update.map_err(Status::from)).await.is_err() {
                            return;
                        }
                    }
                    () = tx.closed() => return,
                    _ = closing.changed() => return,
                }
            }
        });
        let updates = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(updates)))
    }

    async fn summary(
        &self,
        request: Request<pb::SummaryRequest>,
    ) -> Result<Response<pb::SummaryResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let totals = self
            .core
            .summary(
                &caller,
                req.window_seconds,
                req.country.as_deref(),
                req.operator.as_deref(),
            )
            .await?;
        let items = totals.into_iter().map(pair_summary).collect();
        Ok(Response::new(pb::SummaryResponse { items }))
    }

    async fn series(
        &self,
        request: Request<pb::SeriesRequest>,
    ) -> Result<Response<pb::SeriesResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let pair = Some(req.country_operator_id.as_str()).filter(|p| !p.is_empty());
        let buckets = self
            .core
            .series(
                &caller,
                pair,
                req.bucket_seconds,
                Some(&req.since),
                Some(&req.until),
            )
            .await?;
        let points = buckets
            .into_iter()
            .map(|b| pb::SeriesPoint {
                at: b.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                success_rate: rate(b.delivered, b.undelivered, b.failed),
                sms_sent: b.sms_sent.max(0) as u64,
                delivered: b.delivered.max(0) as u64,
                undelivered: b.undelivered.max(0) as u64,
                failed: b.failed.max(0) as u64,
                to_sent: latency(&b.latency.to_sent),
                to_delivered: latency(&b.latency.to_delivered),
            })
            .collect();
        Ok(Response::new(pb::SeriesResponse { points }))
    }
}

/// The event just received and whatever else is already waiting, so a busy
/// feed goes out in few messages.
/// Whether a watcher may see an event: everyone sees SMS, session and pair
/// events; only admins the changes to people, invitations, keys and rules
/// (the views that list them are theirs alone).
fn visible(kind: &str, admin: bool) -> bool {
    admin || kind.starts_with("sms.") || kind.starts_with("session.") || kind.starts_with("pair.")
}

fn live_batch(
    first: Arc<LiveEvent>,
    events: &mut tokio::sync::broadcast::Receiver<Arc<LiveEvent>>,
    admin: bool,
) -> Vec<pb::LiveEvent> {
    let mut batch = vec![first];
    while batch.len() < 500 {
        match events.try_recv() {
            Ok(event) => batch.push(event),
            Err(_) => break,
        }
    }
    batch
        .into_iter()
        .filter(|e| visible(&e.kind, admin))
        .map(|e| pb::LiveEvent {
            r#type: e.kind.clone(),
            body: e.body.clone(),
        })
        .collect()
}

fn pair_summary(t: PairTotals) -> pb::PairSummary {
    pb::PairSummary {
        to_sent: latency(&t.latency.to_sent),
        to_delivered: latency(&t.latency.to_delivered),
        success_rate: rate(t.delivered, t.undelivered, t.failed),
        top_errors: t
            .top_errors
            .into_iter()
            .map(|(code, count)| pb::ErrorCount {
                code,
                count: count.max(0) as u64,
            })
            .collect(),
        country_operator_id: t.pair_id,
        country: t.country,
        operator: t.operator,
        sms_sent: t.sms_sent.max(0) as u64,
        delivered: t.delivered.max(0) as u64,
        undelivered: t.undelivered.max(0) as u64,
        failed: t.failed.max(0) as u64,
    }
}

fn latency(histogram: &Histogram) -> Option<pb::Latency> {
    histogram.percentiles().map(|p| pb::Latency {
        count: p.count,
        p50_ms: p.p50_ms,
        p95_ms: p.p95_ms,
        p99_ms: p.p99_ms,
    })
}

/// delivered / finished; 0 when none finished.
fn rate(delivered: i64, undelivered: i64, failed: i64) -> f64 {
    let finished = delivered + undelivered + failed;
    if finished > 0 {
        delivered as f64 / finished as f64
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::visible;

    #[test]
    fn only_admins_see_changes_to_people_keys_and_rules() {
        for kind in [
            "sms.delivered",
            "session.started",
            "pair.created",
            "pair.deleted",
        ] {
            assert!(visible(kind, false), "{kind}");
            assert!(visible(kind, true), "{kind}");
        }
        for kind in [
            "user.signed_up",
            "user.role_changed",
            "invitation.created",
            "api_key.revoked",
            "alert_rules.updated",
        ] {
            assert!(!visible(kind, false), "{kind}");
            assert!(visible(kind, true), "{kind}");
        }
    }
}
