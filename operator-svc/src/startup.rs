//! Builds operator-svc from its config and runs it until asked to stop.

use std::{future::Future, net::SocketAddr, sync::Arc};

use smsops_common::{
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::{lazy_channel, standard_routes},
    mongo, shutdown,
    startup::{StartupError, bind, serve_grpc},
};
use smsops_proto::operator::v1::operator_service_server::{OperatorServiceServer, SERVICE_NAME};
use tokio::net::TcpListener;
use tonic::transport::server::Router;

use crate::{config::OperatorConfig, core::OperatorCore, grpc::OperatorGrpc, store::Store};

pub struct Application {
    grpc_addr: SocketAddr,
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Connects to MongoDB, creates indexes and binds the gRPC listener.
    /// auth-svc may still be down: its keys are fetched on the first call.
    pub async fn build(config: OperatorConfig) -> Result<Self, StartupError> {
        let client = mongo::connect(&config.mongo_url, "operator-svc")
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let store = Store::open(&client, &config.database, &config.collection)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let auth = lazy_channel("SMSOPS_AUTH_URL", &config.auth_url, config.timeouts)?;
        let verifier = Arc::new(TokenVerifier::new(
            config.tokens.clone(),
            Arc::new(AuthServiceKeys::new(auth)),
        ));
        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;
        let core = Arc::new(OperatorCore::new(store));
        let router = tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(OperatorServiceServer::new(OperatorGrpc::new(
                core, verifier,
            )));
        let (listener, grpc_addr) = bind(config.grpc_addr).await?;
        tracing::info!(addr = %grpc_addr, "grpc listening");
        Ok(Self {
            grpc_addr,
            listener,
            router,
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub async fn run_until_stopped(self) -> Result<(), StartupError> {
        self.run_until(shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then lets in-flight calls finish.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), StartupError> {
        serve_grpc(self.router, self.listener, stop).await
    }
}
