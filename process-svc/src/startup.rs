//! Builds process-svc from its config and runs it until asked to stop.

use std::{collections::HashMap, sync::Arc, sync::RwLock};

use smsops_common::{
    audit::Recorder,
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::lazy_channel,
    mongo,
    service::{Bootstrap, Service},
    startup::StartupError,
};
use smsops_proto::process::v1::process_service_server::{ProcessServiceServer, SERVICE_NAME};

use crate::{
    config::ProcessConfig,
    core::{ProcessCore, clients::Clients, runner::RunContext, supervisor::Supervisor},
    grpc::ProcessGrpc,
    relay::Relay,
    store::Store,
};

/// What `process-svc` (the binary) does: config from the environment,
/// then serve until SIGTERM or Ctrl-C.
pub async fn run_from_env() -> Result<(), StartupError> {
    Application::build(ProcessConfig::from_env()?)
        .await?
        .run_until_stopped()
        .await
}

/// Assembles process-svc; the [`Service`] it returns serves it.
pub struct Application;

impl Application {
    /// Connects to MongoDB, creates indexes and binds the gRPC listener.
    /// The services it calls may still be down; sessions wait for them.
    pub async fn build(config: ProcessConfig) -> Result<Service, StartupError> {
        // Calling codes are read on the first send otherwise, which then waits.
        smsops_common::phone::warm_up();
        let client = mongo::connect(&config.mongo_url, "process-svc")
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let store = Store::open(&client, &config.database, &config.collection)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let operator = lazy_channel("SMSOPS_OPERATOR_URL", &config.operator_url, config.timeouts)?;
        let sms = lazy_channel("SMSOPS_SMS_URL", &config.sms_url, config.timeouts)?;
        let verifier = TokenVerifier::following(
            config.tokens.clone(),
            Arc::new(AuthServiceKeys::new(auth.clone())),
        );
        let clients = Clients::new(auth.clone(), operator, sms, config.account.clone());
        let audit = Recorder::auth_service(auth, Some(Arc::new(clients.clone())));
        let ctx = Arc::new(RunContext {
            store: store.clone(),
            clients,
            supervision: config.supervision.clone(),
            shares: RwLock::new(HashMap::new()),
            audit: audit.clone(),
        });
        let supervisor = Arc::new(Supervisor::new(ctx, config.country_budgets.clone()));
        let core = Arc::new(ProcessCore::new(supervisor.clone()));

        let relay = Relay::new(
            store,
            config.amqp_url,
            config.exchange,
            config.supervision.clone(),
        );
        let mut bootstrap = Bootstrap::new("process-svc", SERVICE_NAME).await?;
        relay.register(bootstrap.registry());
        audit.register(bootstrap.registry());
        // Sign the service account in now, not on the first message.
        let clients = supervisor.context().clients.clone();
        bootstrap.task(|mut stop| async move {
            tokio::select! {
                () = clients.warm_up() => {}
                _ = stop.wait_for(|stop| *stop) => {}
            }
        });
        bootstrap.task(|stop| relay.run(stop));
        // Once stopped, it lets its sessions go, so that another replica
        // takes them over at once.
        bootstrap.task(|mut stop| {
            supervisor.run(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
        });
        let service = ProcessServiceServer::new(ProcessGrpc::new(core, verifier));
        bootstrap
            .serve(config.grpc_addr, config.prometheus_addr, service)
            .await
    }
}
