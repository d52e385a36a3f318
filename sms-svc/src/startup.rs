//! Builds sms-svc from its config and runs it until asked to stop.

use std::{future::Future, net::SocketAddr, sync::Arc};

use smsops_common::prom::{Instrumented, Telemetry};
use smsops_common::retention::{Horizon, Retention};
use smsops_common::{
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::{lazy_channel, standard_routes},
    startup::{GrpcServer, StartupError},
};
use smsops_proto::sms::v1::sms_service_server::{SERVICE_NAME, SmsServiceServer};
use tonic_health::ServingStatus;

use crate::{
    config::SmsConfig,
    core::{
        SmsCore,
        pairs::PairDirectory,
        providers::{Dispatcher, twilio::Twilio},
    },
    grpc::SmsGrpc,
    reconciler::Reconciler,
    relay::Relay,
    store::Store,
};

/// Runs sms-svc as its binary does: configured from the environment,
/// until SIGTERM or SIGINT.
pub async fn run_from_env() -> Result<(), StartupError> {
    Application::build(crate::config::SmsConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}

pub struct Application {
    server: GrpcServer,
    relay: Relay,
    reconciler: Reconciler,
    retention: Retention,
    core: Arc<SmsCore>,
    delivery: crate::config::DeliveryConfig,
}

impl Application {
    /// Creates the database and applies migrations, prepares the provider and
    /// the outbox relay, and binds the gRPC listener. RabbitMQ may be down:
    /// messages are still accepted and their events wait in the outbox.
    pub async fn build(config: SmsConfig) -> Result<Self, StartupError> {
        let store = Store::connect(&config.mysql_url, &config.database)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let operator = lazy_channel("SMSOPS_OPERATOR_URL", &config.operator_url, config.timeouts)?;
        let verifier =
            TokenVerifier::following(config.tokens.clone(), Arc::new(AuthServiceKeys::new(auth)));
        let dispatcher = Dispatcher::new(
            Arc::new(Twilio::new(config.twilio.clone())),
            config.delivery,
        )
        .map_err(|err| StartupError::Setup(format!("http client: {err}")))?;
        let pairs = PairDirectory::new(operator, config.pair_cache_ttl);
        let core = Arc::new(SmsCore::new(
            store.clone(),
            pairs,
            dispatcher,
            config.account_daily_cap,
        ));

        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(SERVICE_NAME, ServingStatus::Serving)
            .await;
        // The provider's breaker shows in health as its own service name.
        let provider_health = format!(
            "{SERVICE_NAME}/provider/{}",
            core.dispatcher().provider().name()
        );
        health
            .set_service_status(&provider_health, ServingStatus::Serving)
            .await;
        let mut open = core.dispatcher().breaker().watch();
        tokio::spawn(async move {
            while open.changed().await.is_ok() {
                let status = if *open.borrow() {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                health.set_service_status(&provider_health, status).await;
            }
        });

        let reconciler = Reconciler::new(store.clone(), core.clone(), config.reconcile);
        // Spent outbox rows are deleted as the broker confirms them, and
        // quota windows by the sweeper: messages are what grows.
        let retention = Retention::new(
            store.pool.clone(),
            vec![
                Horizon::new("sms_messages", "created_at", config.messages_keep).with_children(&[
                    ("sms_status_history", "message_id"),
                    ("sms_receipt_checks", "message_id"),
                ]),
            ],
            config.retention_every,
        );
        let relay = Relay::new(
            store,
            core.clone(),
            config.amqp_url.clone(),
            config.exchange.clone(),
        );
        let mut telemetry = Telemetry::new("sms-svc");
        relay.register(telemetry.registry());
        reconciler.register(telemetry.registry());
        retention.register(telemetry.registry());
        let telemetry = Arc::new(telemetry);
        let router = tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(Instrumented::new(
                SmsServiceServer::new(SmsGrpc::new(core.clone(), verifier)),
                telemetry.clone(),
            ));
        let server = GrpcServer::bind(config.grpc_addr, router)
            .await?
            .with_metrics(config.prometheus_addr, telemetry)
            .await?;
        Ok(Self {
            server,
            relay,
            reconciler,
            retention,
            core,
            delivery: config.delivery,
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

    /// Serves until `stop` resolves; the relay keeps publishing until then.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (stop_tasks, stopped) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped.clone()));
        let reconciler = tokio::spawn(self.reconciler.run(stopped.clone()));
        let retention = tokio::spawn(self.retention.run(stopped.clone()));
        let (core, stale_after) = (self.core, self.delivery.stale_after);
        let sweeper = tokio::spawn(smsops_common::shutdown::every(
            self.delivery.sweep_every,
            stopped,
            move || sweep(core.clone(), stale_after),
        ));
        let served = self.server.run_until(stop).await;
        let _ = stop_tasks.send(true);
        let _ = relay.await;
        let _ = reconciler.await;
        let _ = retention.await;
        let _ = sweeper.await;
        served
    }
}

/// Looks for messages their sender abandoned, and drops quota windows
/// long over.
async fn sweep(core: Arc<SmsCore>, stale_after: std::time::Duration) {
    if let Err(err) = core.sweep_stale(stale_after).await {
        tracing::warn!(error = %err, "stale message sweep failed");
    }
    if let Err(err) = core.prune_quota_windows().await {
        tracing::warn!(error = %err, "quota window prune failed");
    }
}
