//! The services process-svc calls: operator-svc for the pair when a session
//! is created (as the caller), sms-svc for every message (as its own
//! service account, since a session outlives the request that started it).

use smsops_common::account::{AccountToken, ServiceAccount};
use smsops_common::grpc::Channel;
use smsops_common::{ApiError, ErrorCode, auth::Caller};
use smsops_proto::{
    operator::v1::{GetPairRequest, Pair, operator_service_client::OperatorServiceClient},
    sms::v1::{
        SendSmsBatchRequest, SendSmsRequest, SendSmsResult, sms_service_client::SmsServiceClient,
    },
};

use super::ProcessError;

#[derive(Clone)]
pub struct Clients {
    operator: OperatorServiceClient<Channel>,
    sms: SmsServiceClient<Channel>,
    account: std::sync::Arc<AccountToken>,
}

impl Clients {
    pub fn new(auth: Channel, operator: Channel, sms: Channel, account: ServiceAccount) -> Self {
        Self {
            operator: OperatorServiceClient::new(operator),
            sms: SmsServiceClient::new(sms)
                .max_decoding_message_size(64 * 1024 * 1024)
                .max_encoding_message_size(64 * 1024 * 1024),
            account: std::sync::Arc::new(AccountToken::new(auth, account)),
        }
    }

    /// The pair, as the caller may see it.
    pub async fn pair(&self, caller: &Caller, id: &str) -> Result<Pair, ProcessError> {
        if id.trim().is_empty() {
            return Err(ProcessError::InvalidArgument(
                "country_operator_id is required".into(),
            ));
        }
        let request = caller.authorize(tonic::Request::new(GetPairRequest { id: id.to_string() }));
        match self.operator.clone().get_pair(request).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => {
                let err = ApiError::from_status(&status);
                Err(match err.code {
                    ErrorCode::NotFound => ProcessError::Upstream(ApiError::new(
                        ErrorCode::PairNotFound,
                        format!("no country-operator pair with id {id}"),
                    )),
                    _ => ProcessError::Upstream(err),
                })
            }
        }
    }

    /// Signs the service account in ahead of the first send; if auth-svc
    /// is not up yet, the first send tries again.
    pub async fn warm_up(&self) {
        if let Err(err) = self.account.token().await {
            tracing::warn!(error = %err, "service account sign-in failed, will retry on first send");
        }
    }

    /// Sends a batch through sms-svc; one result per message, in order.
    pub async fn send(
        &self,
        messages: Vec<SendSmsRequest>,
    ) -> Result<Vec<SendSmsResult>, ApiError> {
        let token = self.account.token().await?;
        let mut request = tonic::Request::new(SendSmsBatchRequest { messages });
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ApiError::internal("service token is not a valid header"))?;
        request.metadata_mut().insert("authorization", value);
        match self.sms.clone().send_sms_batch(request).await {
            Ok(reply) => Ok(reply.into_inner().results),
            Err(status) => {
                let err = ApiError::from_status(&status);
                if err.code == ErrorCode::InvalidToken || err.code == ErrorCode::Unauthorized {
                    self.account.forget().await;
                }
                Err(err)
            }
        }
    }
}

/// The service account's token, for what process-svc records in the audit
/// log on its own (a session failed, or was taken over).
impl smsops_common::audit::ServiceToken for Clients {
    fn token(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, ApiError>> + Send + '_>> {
        Box::pin(self.account.token())
    }

    fn forget(&self) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.account.forget())
    }
}
