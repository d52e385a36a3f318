//! Builds operator-svc from its config and runs it until asked to stop.

use std::{future::Future, net::SocketAddr, sync::Arc};

use smsops_common::prom::{Instrumented, Telemetry};
use smsops_common::{
    audit::Recorder,
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::{lazy_channel, standard_routes},
    mongo,
    startup::{GrpcServer, StartupError},
};
use smsops_proto::operator::v1::operator_service_server::{OperatorServiceServer, SERVICE_NAME};

use crate::{
    config::OperatorConfig,
    core::{OperatorCore, sessions::Sessions},
    grpc::OperatorGrpc,
    store::Store,
};

pub struct Application {
    server: GrpcServer,
}

impl Application {
    /// Connects to MongoDB, creates indexes and binds the gRPC listener.
    /// auth-svc may still be down: its keys are fetched on the first call;
    /// so may process-svc, which only deletes need.
    pub async fn build(config: OperatorConfig) -> Result<Self, StartupError> {
        let client = mongo::connect(&config.mongo_url, "operator-svc")
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let store = Store::open(&client, &config.database, &config.collection)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let process = lazy_channel("SMSOPS_PROCESS_URL", &config.process_url, config.timeouts)?;
        let audit = Recorder::auth_service(auth.clone(), None);
        let verifier =
            TokenVerifier::following(config.tokens.clone(), Arc::new(AuthServiceKeys::new(auth)));
        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;
        let mut telemetry = Telemetry::new("operator-svc");
        audit.register(telemetry.registry());
        let telemetry = Arc::new(telemetry);
        let core = Arc::new(OperatorCore::new(store, Sessions::new(process), audit));
        let router = tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(Instrumented::new(
                OperatorServiceServer::new(OperatorGrpc::new(core, verifier)),
                telemetry.clone(),
            ));
        Ok(Self {
            server: GrpcServer::bind(config.grpc_addr, router)
                .await?
                .with_metrics(config.prometheus_addr, telemetry)
                .await?,
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
        self.server.run_until_stopped().await
    }

    /// Serves until `stop` resolves, then lets in-flight calls finish.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        self.server.run_until(stop).await
    }
}
