//! The gRPC clients the gateway calls, one lazily connecting channel per service.

use std::{sync::Arc, time::Duration};

use smsops_common::grpc::Channel;
use smsops_common::{
    auth::{AuthServiceKeys, TokenVerifier},
    config::ConfigError,
    grpc::lazy_channel,
};
use smsops_proto::{
    auth::v1::auth_service_client::AuthServiceClient,
    metrics::v1::metrics_service_client::MetricsServiceClient,
    notify::v1::notify_service_client::NotifyServiceClient,
    operator::v1::operator_service_client::OperatorServiceClient,
    process::v1::process_service_client::ProcessServiceClient,
    sms::v1::sms_service_client::SmsServiceClient,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::config::GatewayConfig;

/// How long `/readyz` waits for one service's health answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Services {
    pub auth: AuthServiceClient<Channel>,
    pub operator: OperatorServiceClient<Channel>,
    pub sms: SmsServiceClient<Channel>,
    pub process: ProcessServiceClient<Channel>,
    pub metrics: MetricsServiceClient<Channel>,
    pub notify: NotifyServiceClient<Channel>,
    pub verifier: Arc<TokenVerifier>,
    downstream: Vec<(&'static str, Channel)>,
}

impl Services {
    pub fn connect(config: &GatewayConfig) -> Result<Self, ConfigError> {
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let operator = lazy_channel("SMSOPS_OPERATOR_URL", &config.operator_url, config.timeouts)?;
        let sms = lazy_channel("SMSOPS_SMS_URL", &config.sms_url, config.timeouts)?;
        let process = lazy_channel("SMSOPS_PROCESS_URL", &config.process_url, config.timeouts)?;
        let metrics = lazy_channel("SMSOPS_METRICS_URL", &config.metrics_url, config.timeouts)?;
        let notify = lazy_channel("SMSOPS_NOTIFY_URL", &config.notify_url, config.timeouts)?;
        let verifier = TokenVerifier::following(
            config.tokens.clone(),
            Arc::new(AuthServiceKeys::new(auth.clone())),
        );
        Ok(Self {
            auth: AuthServiceClient::new(auth.clone()),
            operator: OperatorServiceClient::new(operator.clone()),
            sms: SmsServiceClient::new(sms.clone()),
            process: ProcessServiceClient::new(process.clone()),
            metrics: MetricsServiceClient::new(metrics.clone()),
            notify: NotifyServiceClient::new(notify.clone()),
            verifier,
            downstream: vec![
                ("auth-svc", auth),
                ("operator-svc", operator),
                ("sms-svc", sms),
                ("process-svc", process),
                ("metrics-svc", metrics),
                ("notify-svc", notify),
            ],
        })
    }

    /// The services that do not answer their gRPC health check as serving,
    /// each with the reason.
    pub async fn not_ready(&self) -> Vec<(&'static str, String)> {
        let checks = self.downstream.iter().map(|(name, channel)| async move {
            let mut client = HealthClient::new(channel.clone());
            let request = HealthCheckRequest {
                service: String::new(),
            };
            let outcome = tokio::time::timeout(HEALTH_TIMEOUT, client.check(request)).await;
            match outcome {
                Err(_) => Some((*name, "no answer in time".to_string())),
                Ok(Err(status)) => Some((*name, status.message().to_string())),
                Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {
                    None
                }
                Ok(Ok(_)) => Some((*name, "not serving".to_string())),
            }
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}
