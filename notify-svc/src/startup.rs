//! Builds notify-svc from its config and runs it until asked to stop.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use chrono::Utc;
use smsops_common::prom::{Instrumented, Telemetry};
use smsops_common::retention::{Horizon, Retention};
use smsops_common::{
    audit::Recorder,
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::{lazy_channel, standard_routes},
    shutdown::every,
    startup::{GrpcServer, StartupError},
};
use smsops_proto::notify::v1::notify_service_server::{NotifyServiceServer, SERVICE_NAME};
use tokio::sync::watch;

use crate::{
    config::NotifyConfig, consumer::EventConsumer, core::NotifyCore, grpc::NotifyGrpc,
    store::Store, telegram::Sender,
};

/// How often watchers' alert changes are looked for.
const WATCH_EVERY: Duration = Duration::from_millis(250);
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs notify-svc as its binary does: configured from the environment,
/// until SIGTERM or SIGINT.
pub async fn run_from_env() -> Result<(), StartupError> {
    Application::build(crate::config::NotifyConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}

pub struct Application {
    server: GrpcServer,
    core: Arc<NotifyCore>,
    consumer: EventConsumer,
    sender: Sender,
    evaluate_every: Duration,
    retention: Retention,
}

impl Application {
    /// Creates the database, applies migrations, loads the rules and binds
    /// the gRPC listener. RabbitMQ and Telegram may be down: both are
    /// waited for.
    pub async fn build(config: NotifyConfig) -> Result<Self, StartupError> {
        let store = Store::connect(&config.mysql_url, &config.database)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        // Without a bot token nothing can be sent: record alerts with no
        // Telegram messages (delivery `not_configured`) rather than leave
        // messages pending forever.
        let chats = if config.telegram.bot_token.is_some() {
            config.telegram.chat_ids.clone()
        } else {
            Vec::new()
        };
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let audit = Recorder::auth_service(auth.clone(), None);
        let core = NotifyCore::new(store, chats, audit.clone())
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let verifier =
            TokenVerifier::following(config.tokens.clone(), Arc::new(AuthServiceKeys::new(auth)));
        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;
        let mut telemetry = Telemetry::new("notify-svc");
        core.exported().register(telemetry.registry());
        audit.register(telemetry.registry());
        let retention = Retention::new(
            core.store().pool().clone(),
            vec![Horizon::new(
                "processed_events",
                "processed_at",
                config.dedupe_keep,
            )],
            config.retention_every,
        );
        retention.register(telemetry.registry());
        let telemetry = Arc::new(telemetry);
        let router = tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(Instrumented::new(
                NotifyServiceServer::new(NotifyGrpc::new(core.clone(), verifier)),
                telemetry.clone(),
            ));
        let sender = Sender::new(core.clone(), config.telegram.clone())
            .map_err(|err| StartupError::Setup(err.to_string()))?;
        Ok(Self {
            server: GrpcServer::bind(config.grpc_addr, router)
                .await?
                .with_metrics(config.prometheus_addr, telemetry)
                .await?,
            consumer: EventConsumer::new(core.clone(), &config),
            core,
            sender,
            evaluate_every: config.evaluate_every,
            retention,
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

    /// Serves, consumes, evaluates and sends until `stop` resolves.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        let (stop_tasks, stopped) = watch::channel(false);
        let tasks = [
            tokio::spawn(self.consumer.run(stopped.clone())),
            tokio::spawn(self.sender.run(stopped.clone())),
            tokio::spawn(every(self.evaluate_every, stopped.clone(), {
                let core = self.core.clone();
                move || evaluate(core.clone())
            })),
            tokio::spawn(every(PRUNE_EVERY, stopped.clone(), {
                let core = self.core.clone();
                move || prune(core.clone())
            })),
            tokio::spawn(self.retention.run(stopped.clone())),
            tokio::spawn(watch_changes(self.core.clone(), stopped)),
        ];
        let core = self.core;
        let served = self
            .server
            .run_until(async move {
                stop.await;
                core.close();
            })
            .await;
        let _ = stop_tasks.send(true);
        for task in tasks {
            let _ = task.await;
        }
        served
    }
}

/// Runs the rules once over every pair.
async fn evaluate(core: Arc<NotifyCore>) {
    match core.evaluate().await {
        Ok(()) => core.exported().evaluated(),
        Err(err) => tracing::warn!(error = %err, "evaluating alert rules failed"),
    }
}

/// Forgets outcomes older than any window.
async fn prune(core: Arc<NotifyCore>) {
    if let Err(err) = core.prune().await {
        tracing::warn!(error = %err, "pruning old outcomes failed");
    }
}

/// Feeds watchers every alert change any replica made, read back from the
/// store, while anyone watches.
async fn watch_changes(core: Arc<NotifyCore>, mut stop: watch::Receiver<bool>) {
    let mut after = Utc::now();
    while !*stop.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            _ = stop.changed() => return,
        }
        if !core.has_watchers() {
            after = Utc::now();
            continue;
        }
        match core.store().changed_since(after).await {
            Ok(alerts) => {
                for alert in alerts {
                    after = after.max(alert.updated_at);
                    core.publish_change(alert);
                }
            }
            Err(err) => tracing::warn!(error = %err, "reading alert changes failed"),
        }
    }
}
