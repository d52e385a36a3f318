//! Builds notify-svc from its config and runs it until asked to stop.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use smsops_common::retention::{Horizon, Retention};
use smsops_common::{
    account::AccountToken,
    audit::{Recorder, ServiceToken},
    auth::{AuthServiceKeys, TokenVerifier},
    changes::Changes,
    grpc::lazy_channel,
    service::{Bootstrap, Service},
    startup::StartupError,
};
use smsops_proto::notify::v1::notify_service_server::{NotifyServiceServer, SERVICE_NAME};
use tokio::sync::watch;

use crate::{
    config::NotifyConfig,
    consumer::EventConsumer,
    core::{NotifyCore, RouteHealthFeed, providers::Providers},
    grpc::NotifyGrpc,
    store::Store,
    telegram::Sender,
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

/// Assembles notify-svc; the [`Service`] it returns serves it.
pub struct Application;

impl Application {
    /// Creates the database, applies migrations, loads the rules and binds
    /// the gRPC listener. RabbitMQ and Telegram may be down: both are
    /// waited for.
    pub async fn build(config: NotifyConfig) -> Result<Service, StartupError> {
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
        let account = config
            .account
            .clone()
            .map(|account| Arc::new(AccountToken::new(auth.clone(), account)));
        if account.is_none() {
            tracing::warn!(
                "no SMSOPS_NOTIFY_PASSWORD: route switches are made and alerted, not audited"
            );
        }
        let audit = Recorder::auth_service(
            auth.clone(),
            account.clone().map(|a| a as Arc<dyn ServiceToken>),
        );
        let sms = lazy_channel("SMSOPS_SMS_URL", &config.sms_url, config.timeouts)?;
        let route_health = RouteHealthFeed {
            changes: Changes::start(
                config.amqp_url.clone(),
                config.route_health_exchange.clone(),
            ),
            every: config.evaluate_every,
            providers: Providers::new(sms, account),
        };
        let core = NotifyCore::new(store, chats, audit.clone(), route_health)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let verifier =
            TokenVerifier::following(config.tokens.clone(), Arc::new(AuthServiceKeys::new(auth)));
        let mut bootstrap = Bootstrap::new("notify-svc", SERVICE_NAME).await?;
        core.exported().register(bootstrap.registry());
        audit.register(bootstrap.registry());
        let retention = Retention::new(
            core.store().pool().clone(),
            vec![Horizon::new(
                "processed_events",
                "processed_at",
                config.dedupe_keep,
            )],
            config.retention_every,
        );
        retention.register(bootstrap.registry());
        let sender = Sender::new(core.clone(), config.telegram.clone())
            .map_err(|err| StartupError::Setup(err.to_string()))?;
        let consumer = EventConsumer::new(core.clone(), &config);
        bootstrap.task(|stop| consumer.run(stop));
        bootstrap.task(|stop| sender.run(stop));
        bootstrap.task(|stop| retention.run(stop));
        let judging = core.clone();
        bootstrap.every(config.evaluate_every, move || evaluate(judging.clone()));
        let pruning = core.clone();
        bootstrap.every(PRUNE_EVERY, move || prune(pruning.clone()));
        let watching = core.clone();
        bootstrap.task(|stop| watch_changes(watching, stop));
        // Watch streams end first, so the server's drain does not wait on them.
        let closing = core.clone();
        bootstrap.on_stop(move || closing.close());
        let service = NotifyServiceServer::new(NotifyGrpc::new(core, verifier));
        bootstrap
            .serve(config.grpc_addr, config.prometheus_addr, service)
            .await
    }
}

/// Runs the rules once over every pair, then tells sms-svc which routes
/// are sick (even when evaluating failed: the routes are as stored).
async fn evaluate(core: Arc<NotifyCore>) {
    match core.evaluate().await {
        Ok(()) => core.exported().evaluated(),
        Err(err) => tracing::warn!(error = %err, "evaluating alert rules failed"),
    }
    if let Err(err) = core.publish_route_health().await {
        tracing::warn!(error = %err, "reading the sick routes failed");
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
