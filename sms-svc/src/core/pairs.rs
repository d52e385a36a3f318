//! Country-operator pairs from operator-svc, cached briefly: every message
//! names one, and asking operator-svc each time would double the work.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use smsops_common::grpc::Channel;
use smsops_common::{ApiError, ErrorCode, auth::Caller};
use smsops_proto::operator::v1::{
    GetPairRequest, ListPairsRequest, operator_service_client::OperatorServiceClient,
};

use crate::domain::{Pair, PairLookup, RouteStep};

fn pair_of(pair: smsops_proto::operator::v1::Pair) -> Pair {
    Pair {
        id: pair.id,
        country: pair.country,
        operator: pair.operator,
        is_high_priority: pair.is_high_priority,
        route: pair
            .route
            .into_iter()
            .map(|step| RouteStep {
                provider: step.provider,
                priority: step.priority,
                weight: step.weight,
            })
            .collect(),
    }
}

pub struct PairDirectory {
    client: OperatorServiceClient<Channel>,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Pair, Instant)>>,
    /// (COUNTRY, operator lower-cased) → pair, for reports that name a pair.
    by_name: Mutex<HashMap<(String, String), (Pair, Instant)>>,
}

impl PairDirectory {
    pub fn new(channel: Channel, ttl: Duration) -> Self {
        Self {
            client: OperatorServiceClient::new(channel),
            ttl,
            cache: Mutex::new(HashMap::new()),
            by_name: Mutex::new(HashMap::new()),
        }
    }
}

impl PairLookup for PairDirectory {
    async fn get(&self, caller: &Caller, id: &str) -> Result<Option<Pair>, ApiError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((pair, at)) = cache.get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(pair.clone()));
        }
        let request = caller.authorize(tonic::Request::new(GetPairRequest { id: id.to_string() }));
        let pair = match self.client.clone().get_pair(request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) => {
                let err = ApiError::from_status(&status);
                return match err.code {
                    ErrorCode::NotFound => Ok(None),
                    _ => Err(err),
                };
            }
        };
        let info = pair_of(pair);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(id.to_string(), (info.clone(), Instant::now()));
        }
        Ok(Some(info))
    }

    async fn find(
        &self,
        caller: &Caller,
        country: &str,
        operator: &str,
    ) -> Result<Option<Pair>, ApiError> {
        let key = (country.to_ascii_uppercase(), operator.to_lowercase());
        if let Ok(cache) = self.by_name.lock()
            && let Some((pair, at)) = cache.get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(Some(pair.clone()));
        }
        let mut page_token = String::new();
        loop {
            let request = caller.authorize(tonic::Request::new(ListPairsRequest {
                country: Some(key.0.clone()),
                is_high_priority: None,
                page_size: 200,
                page_token: page_token.clone(),
            }));
            let page = self
                .client
                .clone()
                .list_pairs(request)
                .await
                .map_err(|status| ApiError::from_status(&status))?
                .into_inner();
            let mut found = None;
            if let Ok(mut cache) = self.by_name.lock() {
                if cache.len() > 10_000 {
                    cache.clear();
                }
                for pair in page.items {
                    let info = pair_of(pair);
                    let name = (
                        info.country.to_ascii_uppercase(),
                        info.operator.to_lowercase(),
                    );
                    if name == key {
                        found = Some(info.clone());
                    }
                    cache.insert(name, (info, Instant::now()));
                }
            }
            if found.is_some() || page.next_page_token.is_empty() {
                return Ok(found);
            }
            page_token = page.next_page_token;
        }
    }
}
