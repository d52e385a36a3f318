//! Builds sms-svc from its config and runs it until asked to stop.

use std::sync::Arc;

use smsops_common::retention::{Horizon, Retention};
use smsops_common::{
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::lazy_channel,
    service::{Bootstrap, Service},
    startup::StartupError,
};
use smsops_proto::sms::v1::sms_service_server::{SERVICE_NAME, SmsServiceServer};
use tonic_health::ServingStatus;

use crate::{
    config::{AccountKind, ProviderAccount, SmsConfig},
    core::{
        SmsCore,
        pace::Pacer,
        pairs::PairDirectory,
        providers::{Connector, Dispatcher, http::HttpConnector, smpp::Smpp, twilio::Twilio},
    },
    grpc::SmsGrpc,
    reconciler::Reconciler,
    relay::Relay,
    route_health::HealthFollower,
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

/// Assembles sms-svc; the [`Service`] it returns serves it.
pub struct Application;

impl Application {
    /// Creates the database and applies migrations, prepares the provider and
    /// the outbox relay, and binds the gRPC listener. RabbitMQ may be down:
    /// messages are still accepted and their events wait in the outbox.
    pub async fn build(config: SmsConfig) -> Result<Service, StartupError> {
        // Calling codes are read on the first send otherwise, which then waits.
        smsops_common::phone::warm_up();
        let store = Store::connect(&config.mysql_url, &config.database)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let operator = lazy_channel("SMSOPS_OPERATOR_URL", &config.operator_url, config.timeouts)?;
        let verifier =
            TokenVerifier::following(config.tokens.clone(), Arc::new(AuthServiceKeys::new(auth)));
        let dispatchers = config
            .providers
            .iter()
            .map(|account| dispatcher(account, &config, &store))
            .collect::<Result<Vec<_>, _>>()?;
        let pairs = PairDirectory::new(operator, config.pair_cache_ttl);
        let core = Arc::new(SmsCore::new(
            store.clone(),
            pairs,
            dispatchers,
            config.account_daily_cap,
        ));

        let mut bootstrap = Bootstrap::new("sms-svc", SERVICE_NAME).await?;
        // Each account's breaker shows in health as a service name of its own.
        for account in core.accounts().iter() {
            let provider_health = format!("{SERVICE_NAME}/provider/{}", account.dispatcher.name());
            let health = bootstrap.health();
            health
                .set_service_status(&provider_health, ServingStatus::Serving)
                .await;
            let mut open = account.dispatcher.breaker().watch();
            bootstrap.task(|mut stop| async move {
                loop {
                    tokio::select! {
                        changed = open.changed() => if changed.is_err() { return },
                        _ = stop.changed() => return,
                    }
                    let status = if *open.borrow() {
                        ServingStatus::NotServing
                    } else {
                        ServingStatus::Serving
                    };
                    health.set_service_status(&provider_health, status).await;
                }
            });
        }

        let reconciler = Reconciler::new(store.clone(), core.clone(), config.reconcile);
        // Spent outbox rows are deleted as the broker confirms them, and
        // quota windows by the sweeper: messages are what grows.
        let retention = Retention::new(
            store.pool.clone(),
            vec![
                Horizon::new("sms_messages", "created_at", config.messages_keep).with_children(&[
                    ("sms_status_history", "message_id"),
                    ("sms_receipt_checks", "message_id"),
                    ("sms_parts", "message_id"),
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
        relay.register(bootstrap.registry());
        reconciler.register(bootstrap.registry());
        retention.register(bootstrap.registry());
        let follower = HealthFollower::new(
            core.accounts().health().clone(),
            config.amqp_url.clone(),
            config.route_health_exchange.clone(),
        );
        bootstrap.task(|stop| follower.run(stop));
        bootstrap.task(|stop| relay.run(stop));
        bootstrap.task(|stop| reconciler.run(stop));
        bootstrap.task(|stop| retention.run(stop));
        let (sweeping, stale_after) = (core.clone(), config.delivery.stale_after);
        bootstrap.every(config.delivery.sweep_every, move || {
            sweep(sweeping.clone(), stale_after)
        });
        let service = SmsServiceServer::new(SmsGrpc::new(core, verifier));
        bootstrap
            .serve(config.grpc_addr, config.prometheus_addr, service)
            .await
    }
}

/// One provider account, ready to send: its connector, its concurrency
/// and, with a rate, its pace on the schedule every replica shares.
fn dispatcher(
    account: &ProviderAccount,
    config: &SmsConfig,
    store: &Store,
) -> Result<Dispatcher, StartupError> {
    let delivery = crate::config::DeliveryConfig {
        concurrency: account.concurrency.unwrap_or(config.delivery.concurrency),
        ..config.delivery
    };
    let connector: Arc<dyn Connector> = match &account.kind {
        AccountKind::Smpp(smpp) => Arc::new(Smpp::start(smpp.clone())),
        AccountKind::Twilio(twilio) => Arc::new(
            HttpConnector::new(Arc::new(Twilio::new(twilio.clone())), &delivery)
                .map_err(|err| StartupError::Setup(format!("http client: {err}")))?,
        ),
    };
    let dispatcher = Dispatcher::new(&account.name, connector, delivery);
    Ok(match account.rate_per_second {
        0 => dispatcher,
        rate => {
            let pacer = Pacer::new(store.clone(), &account.name, rate);
            dispatcher.paced(Arc::new(pacer), rate)
        }
    })
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
