//! How many provider accounts sms-svc sends through, asked as notify-svc's
//! service account at most once a minute: with one, a sick route has
//! nowhere to go, and the success-rate alert already tells of it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use smsops_common::{account::AccountToken, grpc::Channel};
use smsops_proto::sms::v1::{ListProvidersRequest, sms_service_client::SmsServiceClient};
use tokio::sync::Mutex;

const ASK_EVERY: Duration = Duration::from_secs(60);

pub struct ProviderCount {
    sms: SmsServiceClient<Channel>,
    account: Option<Arc<AccountToken>>,
    /// The last answer and when it was asked for.
    last: Mutex<(Option<usize>, Option<Instant>)>,
}

impl ProviderCount {
    pub fn new(sms: Channel, account: Option<Arc<AccountToken>>) -> Self {
        Self {
            sms: SmsServiceClient::new(sms),
            account,
            last: Mutex::new((None, None)),
        }
    }

    /// Whether traffic could move at all: unknown (no account, sms-svc
    /// not answering yet) counts as yes, so failover is never held back.
    pub async fn more_than_one(&self) -> bool {
        let mut last = self.last.lock().await;
        if last.1.is_none_or(|at| at.elapsed() >= ASK_EVERY) {
            last.1 = Some(Instant::now());
            match self.ask().await {
                Ok(count) => last.0 = Some(count),
                Err(err) => {
                    tracing::warn!(error = %err, "asking sms-svc for its provider accounts failed")
                }
            }
        }
        last.0.is_none_or(|count| count > 1)
    }

    async fn ask(&self) -> Result<usize, smsops_common::ApiError> {
        let Some(account) = &self.account else {
            return Err(smsops_common::ApiError::unauthorized("no service account"));
        };
        let token = account.token().await?;
        let mut request = tonic::Request::new(ListProvidersRequest {});
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| smsops_common::ApiError::internal("token is not a header"))?;
        request
            .metadata_mut()
            .insert(smsops_common::auth::AUTHORIZATION, value);
        match self.sms.clone().list_providers(request).await {
            Ok(reply) => Ok(reply.into_inner().items.len()),
            Err(status) => {
                account.forget().await;
                Err(smsops_common::ApiError::from_status(&status))
            }
        }
    }
}
