//! Builds process-svc from its config and runs it until asked to stop.

use std::{collections::HashMap, future::Future, net::SocketAddr, sync::Arc, sync::RwLock};

use smsops_common::prom::{Instrumented, Telemetry};
use smsops_common::{
    audit::Recorder,
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::{lazy_channel, standard_routes},
    mongo,
    startup::{GrpcServer, StartupError},
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

pub struct Application {
    server: GrpcServer,
    supervisor: Arc<Supervisor>,
    relay: Relay,
}

impl Application {
    /// Connects to MongoDB, creates indexes and binds the gRPC listener.
    /// The services it calls may still be down; sessions wait for them.
    pub async fn build(config: ProcessConfig) -> Result<Self, StartupError> {
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

        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;
        let relay = Relay::new(
            store,
            config.amqp_url,
            config.exchange,
            config.supervision.clone(),
        );
        let mut telemetry = Telemetry::new("process-svc");
        relay.register(telemetry.registry());
        audit.register(telemetry.registry());
        let telemetry = Arc::new(telemetry);
        let router = tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(Instrumented::new(
                ProcessServiceServer::new(ProcessGrpc::new(core, verifier)),
                telemetry.clone(),
            ));
        Ok(Self {
            server: GrpcServer::bind(config.grpc_addr, router)
                .await?
                .with_metrics(config.prometheus_addr, telemetry)
                .await?,
            supervisor,
            relay,
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

    /// Serves and supervises until `stop` resolves; then lets its sessions
    /// go so that another replica takes them over at once.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        // Sign the service account in now, not on the first message.
        let clients = self.supervisor.context().clients.clone();
        tokio::spawn(async move { clients.warm_up().await });
        let (stop_all, stopped) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(self.relay.run(stopped.clone()));
        let mut supervisor_stop = stopped;
        let supervisor = tokio::spawn(self.supervisor.run(async move {
            let _ = supervisor_stop.wait_for(|stop| *stop).await;
        }));
        let served = self.server.run_until(stop).await;
        let _ = stop_all.send(true);
        let _ = supervisor.await;
        let _ = relay.await;
        served
    }
}
