//! The provider accounts sms-svc sends through, asked as notify-svc's
//! service account at most once a minute: with one, a sick route has
//! nowhere to go, and the success-rate alert already tells of it; one no
//! longer there will never deliver again, so its route is given back.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use smsops_common::{account::AccountToken, grpc::Channel};
use smsops_proto::sms::v1::{ListProvidersRequest, sms_service_client::SmsServiceClient};
use tokio::sync::Mutex;

const ASK_EVERY: Duration = Duration::from_secs(60);

pub struct Providers {
    sms: SmsServiceClient<Channel>,
    account: Option<Arc<AccountToken>>,
    /// The last answer (the accounts' names) and when it was asked for.
    last: Mutex<(Option<HashSet<String>>, Option<Instant>)>,
}

impl Providers {
    pub fn new(sms: Channel, account: Option<Arc<AccountToken>>) -> Self {
        Self {
            sms: SmsServiceClient::new(sms),
            account,
            last: Mutex::new((None, None)),
        }
    }

    /// The accounts' names, or None while sms-svc has not told them (an
    /// empty answer is no answer: sms-svc never runs without one) or
    /// there is no account to ask as.
    pub async fn names(&self) -> Option<HashSet<String>> {
        // Without an account there is no asking, and nothing to warn of.
        self.account.as_ref()?;
        let mut last = self.last.lock().await;
        if last.1.is_none_or(|at| at.elapsed() >= ASK_EVERY) {
            last.1 = Some(Instant::now());
            match self.ask().await {
                Ok(names) => last.0 = Some(names),
                Err(err) => {
                    tracing::warn!(error = %err, "asking sms-svc for its provider accounts failed")
                }
            }
        }
        last.0.clone().filter(|names| !names.is_empty())
    }

    async fn ask(&self) -> Result<HashSet<String>, smsops_common::ApiError> {
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
            Ok(reply) => Ok(reply
                .into_inner()
                .items
                .into_iter()
                .map(|p| p.name)
                .collect()),
            Err(status) => {
                account.forget().await;
                Err(smsops_common::ApiError::from_status(&status))
            }
        }
    }
}
