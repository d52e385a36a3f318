//! Builds metrics-svc from its config and runs it until asked to stop.

use std::{future::Future, net::SocketAddr, sync::Arc};

use smsops_common::prom::{Instrumented, Telemetry};
use smsops_common::retention::{Horizon, Retention};
use smsops_common::{
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::{lazy_channel, standard_routes},
    startup::{GrpcServer, StartupError},
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

pub struct Application {
    server: GrpcServer,
    core: Arc<MetricsCore>,
    consumer: EventConsumer,
    live: LiveFeed,
    retention: Retention,
}

impl Application {
    /// Creates the database and applies migrations and binds the gRPC
    /// listener. RabbitMQ may be down: the consumer waits for it.
    pub async fn build(config: MetricsConfig) -> Result<Self, StartupError> {
        let store = Store::connect(&config.mysql_url, &config.database)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let verifier =
            TokenVerifier::following(config.tokens.clone(), Arc::new(AuthServiceKeys::new(auth)));
        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;
        let core = MetricsCore::new(store.clone());
        let core_for_consumer = core.clone();
        let mut telemetry = Telemetry::new("metrics-svc");
        core.exported().register(telemetry.registry());
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
        retention.register(telemetry.registry());
        let telemetry = Arc::new(telemetry);
        let router = tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(Instrumented::new(
                MetricsServiceServer::new(MetricsGrpc::new(core.clone(), verifier)),
                telemetry.clone(),
            ));
        Ok(Self {
            server: GrpcServer::bind(config.grpc_addr, router)
                .await?
                .with_metrics(config.prometheus_addr, telemetry)
                .await?,
            live: LiveFeed::new(
                core.clone(),
                config.amqp_url.clone(),
                config.exchange.clone(),
                config.session_exchange.clone(),
                config.changes_exchange.clone(),
            ),
            core,
            retention,
            consumer: EventConsumer::new(
                store,
                core_for_consumer,
                config.amqp_url,
                config.exchange,
                config.queue,
                config.prefetch,
            ),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Where `GET /metrics` is served.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.server.metrics_addr()
    }

    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(smsops_common::shutdown::signal()).await
    }

    /// Serves and consumes until `stop` resolves.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (stop_consumer, stopped) = tokio::sync::watch::channel(false);
        let consumer = tokio::spawn(self.consumer.run(stopped.clone()));
        let live = tokio::spawn(self.live.run(stopped.clone()));
        let retention = tokio::spawn(self.retention.run(stopped.clone()));
        let core = self.core.clone();
        let exported = tokio::spawn(smsops_common::shutdown::every(
            EXPORT_EVERY,
            stopped,
            move || {
                let core = core.clone();
                async move {
                    if let Err(err) = core.refresh_exported().await {
                        tracing::warn!(error = %err, "refreshing exported success rates failed");
                    }
                }
            },
        ));
        let core = self.core;
        let served = self
            .server
            .run_until(async move {
                stop.await;
                core.close();
            })
            .await;
        let _ = stop_consumer.send(true);
        let _ = consumer.await;
        let _ = live.await;
        let _ = exported.await;
        let _ = retention.await;
        served
    }
}

/// How often the exported success rates are read back from MySQL.
const EXPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
