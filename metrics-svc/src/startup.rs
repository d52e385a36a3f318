//! Builds metrics-svc from its config and runs it until asked to stop.

use std::sync::Arc;

use smsops_common::retention::{Horizon, Retention};
use smsops_common::{
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::lazy_channel,
    service::{Bootstrap, Service},
    startup::StartupError,
};
use smsops_proto::metrics::v1::metrics_service_server::{MetricsServiceServer, SERVICE_NAME};

use crate::{
    config::MetricsConfig, consumer::EventConsumer, core::MetricsCore, grpc::MetricsGrpc,
    live::LiveFeed, store::Store,
};

/// Runs metrics-svc as its binary does: configured from the environment,
/// until SIGTERM or SIGINT.
pub async fn run_from_env() -> Result<(), StartupError> {
    Application::build(crate::config::MetricsConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}

/// Assembles metrics-svc; the [`Service`] it returns serves it.
pub struct Application;

impl Application {
    /// Creates the database and applies migrations and binds the gRPC
    /// listener. RabbitMQ may be down: the consumer waits for it.
    pub async fn build(config: MetricsConfig) -> Result<Service, StartupError> {
        let store = Store::connect(&config.mysql_url, &config.database)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let verifier =
            TokenVerifier::following(config.tokens.clone(), Arc::new(AuthServiceKeys::new(auth)));
        let core = MetricsCore::new(store.clone());
        let mut bootstrap = Bootstrap::new("metrics-svc", SERVICE_NAME).await?;
        core.exported().register(bootstrap.registry());
        let retention = Retention::new(
            store.pool().clone(),
            vec![
                Horizon::new("processed_events", "processed_at", config.dedupe_keep),
                Horizon::new("sms_metrics", "timestamp", config.metrics_keep),
                Horizon::new("sms_error_counts", "timestamp", config.metrics_keep),
                Horizon::new("sms_latency", "timestamp", config.metrics_keep),
            ],
            config.retention_every,
        );
        retention.register(bootstrap.registry());
        let live = LiveFeed::new(
            core.clone(),
            config.amqp_url.clone(),
            config.exchange.clone(),
            config.session_exchange,
            config.changes_exchange,
        );
        let consumer = EventConsumer::new(
            store,
            core.clone(),
            config.amqp_url,
            config.exchange,
            config.queue,
            config.prefetch,
        );
        bootstrap.task(|stop| consumer.run(stop));
        bootstrap.task(|stop| live.run(stop));
        bootstrap.task(|stop| retention.run(stop));
        let exporting = core.clone();
        bootstrap.every(EXPORT_EVERY, move || {
            let core = exporting.clone();
            async move {
                if let Err(err) = core.refresh_exported().await {
                    tracing::warn!(error = %err, "refreshing exported success rates failed");
                }
            }
        });
        // Live streams end first, so the server's drain does not wait on them.
        let closing = core.clone();
        bootstrap.on_stop(move || closing.close());
        let service = MetricsServiceServer::new(MetricsGrpc::new(core, verifier));
        bootstrap
            .serve(config.grpc_addr, config.prometheus_addr, service)
            .await
    }
}

/// How often the exported success rates are read back from MySQL.
const EXPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
