//! The gRPC face of operator-svc: checks the caller's token, converts
//! messages and calls [`OperatorCore`].

use std::sync::Arc;

use smsops_common::auth::TokenVerifier;
use smsops_proto::operator::v1::{self as pb, operator_service_server::OperatorService};
use tonic::{Request, Response, Status};

use crate::core::{OperatorCore, Pair, PairPatch, PairQuery, route::RouteStep};

pub struct OperatorGrpc {
    core: Arc<OperatorCore>,
    verifier: Arc<TokenVerifier>,
}

impl OperatorGrpc {
    pub fn new(core: Arc<OperatorCore>, verifier: Arc<TokenVerifier>) -> Self {
        Self { core, verifier }
    }
}

#[tonic::async_trait]
impl OperatorService for OperatorGrpc {
    async fn create_pair(
        &self,
        request: Request<pb::CreatePairRequest>,
    ) -> Result<Response<pb::Pair>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let pair = self
            .core
            .create(&caller, &req.country, &req.operator, req.is_high_priority)
            .await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn get_pair(
        &self,
        request: Request<pb::GetPairRequest>,
    ) -> Result<Response<pb::Pair>, Status> {
        // Reading pairs is part of reporting results: sms-svc looks up the
        // pair a report names under the reporter's ingest token.
        let caller = self.verifier.any_caller_of(&request).await?;
        let pair = self.core.get(&caller, &request.into_inner().id).await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn list_pairs(
        &self,
        request: Request<pb::ListPairsRequest>,
    ) -> Result<Response<pb::ListPairsResponse>, Status> {
        let caller = self.verifier.any_caller_of(&request).await?;
        let req = request.into_inner();
        let query = PairQuery {
            country: req.country,
            is_high_priority: req.is_high_priority,
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let (pairs, next) = self.core.list(&caller, query).await?;
        Ok(Response::new(pb::ListPairsResponse {
            items: pairs.into_iter().map(pair_to_pb).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn update_pair(
        &self,
        request: Request<pb::UpdatePairRequest>,
    ) -> Result<Response<pb::Pair>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let patch = PairPatch {
            country: req.country,
            operator: req.operator,
            is_high_priority: req.is_high_priority,
            route: req.route.map(|route| {
                route
                    .steps
                    .into_iter()
                    .map(|step| RouteStep {
                        provider: step.provider,
                        priority: step.priority,
                        weight: step.weight,
                    })
                    .collect()
            }),
        };
        let pair = self.core.update(&caller, &req.id, patch).await?;
        Ok(Response::new(pair_to_pb(pair)))
    }

    async fn delete_pair(
        &self,
        request: Request<pb::DeletePairRequest>,
    ) -> Result<Response<pb::DeletePairResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        self.core.delete(&caller, &request.into_inner().id).await?;
        Ok(Response::new(pb::DeletePairResponse {}))
    }
}

fn pair_to_pb(pair: Pair) -> pb::Pair {
    pb::Pair {
        id: pair.id,
        country: pair.country,
        operator: pair.operator,
        is_high_priority: pair.is_high_priority,
        created_at: pair.created_at,
        updated_at: pair.updated_at,
        created_by: pair.created_by,
        route: pair
            .route
            .into_iter()
            .map(|step| pb::RouteStep {
                provider: step.provider,
                priority: step.priority,
                weight: step.weight,
            })
            .collect(),
    }
}
