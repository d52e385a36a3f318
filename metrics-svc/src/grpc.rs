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
            .map(|t| {
                let finished = t.delivered + t.undelivered + t.failed;
                pb::PairSummary {
                    success_rate: if finished > 0 {
                        t.delivered as f64 / finished as f64
                    } else {
                        0.0
                    },
                    country_operator_id: t.pair_id,
                    country: t.country,
                    operator: t.operator,
                    sms_sent: t.sms_sent.max(0) as u64,
                    delivered: t.delivered.max(0) as u64,
                    undelivered: t.undelivered.max(0) as u64,
                    failed: t.failed.max(0) as u64,
                }
            })
            .collect();
        Ok(Response::new(pb::SummaryResponse { items }))
    }
}
