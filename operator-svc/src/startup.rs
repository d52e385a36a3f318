//! Builds operator-svc from its config and runs it until asked to stop.

use std::sync::Arc;

use smsops_common::{
    audit::Recorder,
    auth::{AuthServiceKeys, TokenVerifier},
    grpc::lazy_channel,
    mongo,
    service::{Bootstrap, Service},
    startup::StartupError,
};
use smsops_proto::operator::v1::operator_service_server::{OperatorServiceServer, SERVICE_NAME};

use crate::{
    config::OperatorConfig,
    core::{OperatorCore, sessions::Sessions},
    grpc::OperatorGrpc,
    store::Store,
};

/// Assembles operator-svc; the [`Service`] it returns serves it.
pub struct Application;

impl Application {
    /// Connects to MongoDB, creates indexes and binds the gRPC listener.
    /// auth-svc may still be down: its keys are fetched on the first call;
    /// so may process-svc, which only deletes need.
    pub async fn build(config: OperatorConfig) -> Result<Service, StartupError> {
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
        let mut bootstrap = Bootstrap::new("operator-svc", SERVICE_NAME).await?;
        audit.register(bootstrap.registry());
        let core = Arc::new(OperatorCore::new(store, Sessions::new(process), audit));
        let service = OperatorServiceServer::new(OperatorGrpc::new(core, verifier));
        bootstrap
            .serve(config.grpc_addr, config.prometheus_addr, service)
            .await
    }
}
