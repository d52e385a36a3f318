//! auth-svc as a child process, from its own binary and configured through
//! its environment like in production: so a test can read its peak memory
//! apart from the services that share the test's process, and its password
//! hashing pool (one per process) is its own.

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
};

use auth_svc::config::AuthConfig;

/// The running auth-svc; killed when dropped.
pub struct AuthProcess {
    child: Child,
}

impl AuthProcess {
    pub fn start(config: &AuthConfig) -> Self {
        let limits = &config.limits;
        let extra: Vec<String> = config
            .extra_keys
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        let mut command = Command::new(crate::built_binary("auth-replica"));
        command
            .env("SMSOPS_AUTH_ADDR", config.grpc_addr.to_string())
            .env(
                "SMSOPS_AUTH_PROMETHEUS_ADDR",
                config.prometheus_addr.to_string(),
            )
            .env("SMSOPS_MONGO_URL", &config.mongo_url)
            .env("SMSOPS_AUTH_DB", &config.database)
            .env("SMSOPS_AUTH_SIGNING_KEY", &config.signing_key)
            .env("SMSOPS_AUTH_EXTRA_KEYS", extra.join(","))
            .env("SMSOPS_JWT_ISSUER", &config.tokens.issuer)
            .env("SMSOPS_JWT_AUDIENCE", &config.tokens.audience)
            .env(
                "SMSOPS_AUTH_ACCESS_TTL_SECS",
                config.access_ttl.as_secs().to_string(),
            )
            .env(
                "SMSOPS_AUTH_REFRESH_TTL_SECS",
                config.refresh_ttl.as_secs().to_string(),
            )
            .env(
                "SMSOPS_AUTH_LIMITS_PRUNE_SECS",
                limits.prune_every.as_secs().max(1).to_string(),
            )
            .env(
                "SMSOPS_AUTH_HASH_CONCURRENCY",
                limits.hashing.concurrency.to_string(),
            )
            .env("SMSOPS_AUTH_HASH_QUEUE", limits.hashing.queue.to_string())
            .env(
                "SMSOPS_LOG",
                std::env::var("SMSOPS_LOG").unwrap_or_else(|_| "warn".into()),
            );
        for (name, limit) in [
            ("SIGN_IN", limits.sign_in),
            ("SIGN_UP", limits.sign_up),
            ("REFRESH", limits.refresh),
            ("EXCHANGE", limits.exchange_api_key),
        ] {
            command
                .env(
                    format!("SMSOPS_AUTH_{name}_RATE"),
                    limit.per_key.to_string(),
                )
                .env(
                    format!("SMSOPS_AUTH_{name}_TOTAL_RATE"),
                    limit.overall.to_string(),
                );
        }
        if let Some(admin) = &config.admin {
            command
                .env("SMSOPS_ADMIN_EMAIL", &admin.email)
                .env("SMSOPS_ADMIN_PASSWORD", &admin.password);
        }
        if let Some(account) = &config.service_account {
            command
                .env("SMSOPS_PROCESS_EMAIL", &account.email)
                .env("SMSOPS_PROCESS_PASSWORD", &account.password);
        }
        if let Some(account) = &config.notify_account {
            command
                .env("SMSOPS_NOTIFY_EMAIL", &account.email)
                .env("SMSOPS_NOTIFY_PASSWORD", &account.password);
        }
        if let Some(changes) = &config.changes {
            command
                .env("SMSOPS_AMQP_URL", &changes.amqp_url)
                .env("SMSOPS_CHANGES_EXCHANGE", &changes.exchange);
        }
        let cap = |n: Option<u64>| n.unwrap_or(0).to_string();
        command
            .env("SMSOPS_SIGNUP", config.signup.as_str())
            .env(
                "SMSOPS_QUOTA_ADMIN_PER_MINUTE",
                cap(config.quotas.admin.per_minute),
            )
            .env(
                "SMSOPS_QUOTA_ADMIN_PER_DAY",
                cap(config.quotas.admin.per_day),
            )
            .env(
                "SMSOPS_QUOTA_OPERATOR_PER_MINUTE",
                cap(config.quotas.operator.per_minute),
            )
            .env(
                "SMSOPS_QUOTA_OPERATOR_PER_DAY",
                cap(config.quotas.operator.per_day),
            );
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start auth-svc: {err}"));
        Self { child }
    }

    /// Waits until it answers gRPC on `addr`.
    pub async fn ready(&self, addr: SocketAddr) {
        crate::wait_listening(addr, "auth-svc").await;
    }

    /// Its peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        crate::host::peak_rss_mib(self.child.id())
    }
}

impl Drop for AuthProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
