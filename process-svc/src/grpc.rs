//! The gRPC face of process-svc: checks the caller's token, converts
//! messages and calls [`ProcessCore`].

use std::sync::Arc;

use mongodb::bson::DateTime;
use smsops_common::auth::{Caller, TokenVerifier};
use smsops_proto::process::v1::{self as pb, process_service_server::ProcessService};
use tonic::{Request, Response, Status};

use crate::{
    core::{PlanRequest, ProcessCore, SessionQuery, SessionView},
    store::AuditDoc,
};

pub struct ProcessGrpc {
    core: Arc<ProcessCore>,
    verifier: Arc<TokenVerifier>,
}

impl ProcessGrpc {
    pub fn new(core: Arc<ProcessCore>, verifier: Arc<TokenVerifier>) -> Self {
        Self { core, verifier }
    }
}

#[tonic::async_trait]
impl ProcessService for ProcessGrpc {
    async fn create_session(
        &self,
        request: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        caller.require_sender()?;
        let req = request.into_inner();
        let config = req.config.unwrap_or_default();
        let recipients = config.recipients.unwrap_or_default();
        let range = recipients.range.unwrap_or_default();
        let plan = PlanRequest {
            rate_per_minute: config.rate_per_minute,
            numbers: recipients.numbers,
            range_first: range.first,
            range_count: range.count,
            template: config.template,
            limit: config.limit,
            stop_at: config.stop_at,
        };
        let view = self
            .core
            .create(&caller, &req.country_operator_id, plan)
            .await?;
        Ok(Response::new(session_to_pb(&caller, view)))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let view = self.core.get(&caller, &request.into_inner().id).await?;
        Ok(Response::new(session_to_pb(&caller, view)))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let query = SessionQuery {
            state: req.state,
            country: req.country,
            pair_id: req.country_operator_id,
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let (views, next) = self.core.list(&caller, query).await?;
        Ok(Response::new(pb::ListSessionsResponse {
            items: views
                .into_iter()
                .map(|view| session_to_pb(&caller, view))
                .collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn stop_session(
        &self,
        request: Request<pb::SessionActionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        caller.require_sender()?;
        let req = request.into_inner();
        let view = self.core.stop(&caller, &req.id, req.force).await?;
        Ok(Response::new(session_to_pb(&caller, view)))
    }

    async fn restart_session(
        &self,
        request: Request<pb::SessionActionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        caller.require_sender()?;
        let req = request.into_inner();
        let view = self.core.restart(&caller, &req.id, req.force).await?;
        Ok(Response::new(session_to_pb(&caller, view)))
    }

    async fn retire_pair(
        &self,
        request: Request<pb::RetirePairRequest>,
    ) -> Result<Response<pb::RetirePairResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        self.core
            .retire_pair(&caller, &req.country_operator_id)
            .await?;
        Ok(Response::new(pb::RetirePairResponse {}))
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let trail = self
            .core
            .audit_trail(&caller, &request.into_inner().id)
            .await?;
        Ok(Response::new(pb::ListAuditResponse {
            items: trail.into_iter().map(audit_to_pb).collect(),
        }))
    }
}

fn time(at: Option<DateTime>) -> String {
    at.and_then(|at| at.try_to_rfc3339_string().ok())
        .unwrap_or_default()
}

/// A session as `caller` may see it: a viewer's numbers come masked.
fn session_to_pb(caller: &Caller, view: SessionView) -> pb::Session {
    let s = view.session;
    let plan = s.plan;
    let recipients = pb::Recipients {
        numbers: plan
            .numbers
            .iter()
            .map(|number| caller.shown_number(number))
            .collect(),
        range: plan.range_first.map(|first| pb::NumberRange {
            first: caller.shown_number(&first),
            count: plan.range_count.max(0) as u64,
        }),
    };
    pb::Session {
        id: s.id,
        country_operator_id: s.pair_id,
        country: s.country,
        operator: s.operator,
        is_high_priority: s.is_high_priority,
        config: Some(pb::SessionConfig {
            rate_per_minute: plan.rate_per_minute,
            recipients: Some(recipients),
            template: plan.template,
            limit: plan.limit.max(0) as u64,
            stop_at: time(plan.stop_at),
        }),
        // Stored as running, so leases and takeovers are as for any
        // running session; shown as what it is doing.
        paused_reason: if s.state == crate::store::RUNNING {
            s.paused.clone()
        } else {
            String::new()
        },
        state: if s.state == crate::store::RUNNING && !s.paused.is_empty() {
            crate::store::PAUSED.into()
        } else {
            s.state
        },
        reason: s.reason,
        counters: Some(pb::Counters {
            submitted: s.counters.submitted.max(0) as u64,
            accepted: s.counters.accepted.max(0) as u64,
            failed: s.counters.failed.max(0) as u64,
        }),
        next_seq: s.next_seq.max(0) as u64,
        last_error: s.last_error,
        started_at: time(s.started_at),
        stopped_at: time(s.stopped_at),
        started_by: s.started_by,
        stopped_by: s.stopped_by,
        created_at: time(Some(s.created_at)),
        updated_at: time(Some(s.updated_at)),
        effective_rate_per_minute: view.effective_rate_per_minute,
    }
}

fn audit_to_pb(audit: AuditDoc) -> pb::AuditRecord {
    pb::AuditRecord {
        action: audit.action,
        at: time(Some(audit.at)),
        by: audit.by,
        by_email: audit.by_email,
        reason: audit.reason,
        forced: audit.forced,
    }
}
