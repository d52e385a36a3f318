//! The gRPC face of metrics-svc: checks the caller's token, converts
//! messages and calls [`MetricsCore`].

use std::sync::Arc;

use smsops_common::auth::TokenVerifier;
use smsops_proto::metrics::v1::{self as pb, metrics_service_server::MetricsService};
use tonic::{Request, Response, Status};

use crate::core::MetricsCore;

pub struct MetricsGrpc {
    core: Arc<MetricsCore>,
    verifier: Arc<TokenVerifier>,
}

impl MetricsGrpc {
    pub fn new(core: Arc<MetricsCore>, verifier: Arc<TokenVerifier>) -> Self {
        Self { core, verifier }
    }
}

#[tonic::async_trait]
impl MetricsService for MetricsGrpc {
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
        let items = totals
            .into_iter()
            .map(|t| pb::PairSummary {
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
            })
            .collect();
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
            })
            .collect();
        Ok(Response::new(pb::SeriesResponse { points }))
    }
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
