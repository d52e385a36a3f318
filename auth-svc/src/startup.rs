//! Builds auth-svc from its config and runs it until asked to stop.

use std::{future::Future, net::SocketAddr, sync::Arc};

use smsops_common::prom::{Instrumented, Telemetry};
use smsops_common::{
    auth::TokenVerifier,
    changes::Changes,
    grpc::standard_routes,
    mongo,
    startup::{GrpcServer, StartupError},
};
use smsops_proto::auth::v1::auth_service_server::{AuthServiceServer, SERVICE_NAME};

use crate::{
    audit_store::AuditStore,
    config::AuthConfig,
    core::{AuditLog, AuthCore, KeyRing, Policy},
    grpc::{AuthGrpc, LocalKeys},
    store::Store,
};

pub struct Application {
    server: GrpcServer,
}

impl Application {
    /// Loads keys, connects to MongoDB, creates indexes, seeds the admin and
    /// binds the gRPC listener. Nothing is served until `run_*` is called.
    pub async fn build(config: AuthConfig) -> Result<Self, StartupError> {
        if !crate::limits::configure_hashing(config.limits.hashing) {
            tracing::debug!("password hashing pool already sized in this process");
        }
        let keys = KeyRing::load(&config.signing_key, &config.extra_keys)
            .map_err(|err| StartupError::Setup(err.to_string()))?;
        tracing::info!(
            kid = keys.signing_kid(),
            published = keys.public_keys().len(),
            "keys loaded"
        );
        let keys = Arc::new(keys);
        let client = mongo::connect(&config.mongo_url, "auth-svc")
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let store = Store::open(&client, &config.database)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let audit = AuditStore::open(&client, &config.database)
            .await
            .map_err(|err| StartupError::Database(err.to_string()))?;
        let changes = match &config.changes {
            Some(changes) => Changes::start(changes.amqp_url.clone(), changes.exchange.clone()),
            None => Changes::off(),
        };
        let core = Arc::new(AuthCore::new(
            store,
            AuditLog {
                store: audit,
                changes: changes.clone(),
            },
            keys.clone(),
            config.tokens.clone(),
            Policy {
                access_ttl: config.access_ttl,
                refresh_ttl: config.refresh_ttl,
                signup: config.signup,
                quotas: config.quotas,
            },
        ));
        core.migrate_roles()
            .await
            .map_err(|err| StartupError::Setup(format!("migrating roles: {err}")))?;
        if let Some(admin) = &config.admin {
            core.ensure_admin(&admin.email, &admin.password)
                .await
                .map_err(|err| StartupError::Setup(format!("seeding the admin: {err}")))?;
        }
        if let Some(account) = &config.service_account {
            core.ensure_service_account(&account.email, &account.password)
                .await
                .map_err(|err| StartupError::Setup(format!("the service account: {err}")))?;
        }
        let verifier = TokenVerifier::following(
            config.tokens.clone(),
            Arc::new(LocalKeys {
                keys,
                core: core.clone(),
            }),
        );
        let (health, routes) =
            standard_routes().map_err(|err| StartupError::Setup(err.to_string()))?;
        health
            .set_service_status(SERVICE_NAME, tonic_health::ServingStatus::Serving)
            .await;
        let mut telemetry = Telemetry::new("auth-svc");
        core.audit_recorder().register(telemetry.registry());
        changes.register(telemetry.registry());
        let telemetry = Arc::new(telemetry);
        let router = tonic::transport::Server::builder()
            .add_routes(routes)
            .add_service(Instrumented::new(
                AuthServiceServer::new(AuthGrpc::new(
                    core,
                    verifier,
                    crate::limits::Limits::start(&config.limits),
                )),
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
