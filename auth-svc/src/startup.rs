//! Builds auth-svc from its config and runs it until asked to stop.

use std::sync::Arc;

use smsops_common::{
    auth::TokenVerifier,
    changes::Changes,
    mongo,
    service::{Bootstrap, Service},
    startup::StartupError,
};
use smsops_proto::auth::v1::auth_service_server::{AuthServiceServer, SERVICE_NAME};

use crate::{
    audit_store::AuditStore,
    config::AuthConfig,
    core::{AuditLog, AuthCore, KeyRing, Policy},
    grpc::{AuthGrpc, LocalKeys},
    store::Store,
};

/// Assembles auth-svc; the [`Service`] it returns serves it.
pub struct Application;

impl Application {
    /// Loads keys, connects to MongoDB, creates indexes, seeds the admin and
    /// binds the gRPC listener. Nothing is served until `run_*` is called.
    pub async fn build(config: AuthConfig) -> Result<Service, StartupError> {
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
        for account in config.service_account.iter().chain(&config.notify_account) {
            core.ensure_service_account(&account.email, &account.password)
                .await
                .map_err(|err| StartupError::Setup(format!("a service account: {err}")))?;
        }
        let verifier = TokenVerifier::following(
            config.tokens.clone(),
            Arc::new(LocalKeys {
                keys,
                core: core.clone(),
            }),
        );
        let mut bootstrap = Bootstrap::new("auth-svc", SERVICE_NAME).await?;
        core.audit_recorder().register(bootstrap.registry());
        changes.register(bootstrap.registry());
        let service = AuthServiceServer::new(AuthGrpc::new(
            core,
            verifier,
            crate::limits::Limits::start(&config.limits),
        ));
        bootstrap
            .serve(config.grpc_addr, config.prometheus_addr, service)
            .await
    }
}
