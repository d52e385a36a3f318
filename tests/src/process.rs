//! process-svc as a child process, for the tests that kill it: the real
//! binary's wiring, configured through its environment like in production.

use std::process::Command;

use process_svc::config::ProcessConfig;

use crate::child::ServiceChild;

/// One process-svc replica; killed (SIGKILL, no goodbye) when dropped.
pub struct Replica {
    child: ServiceChild,
}

impl Replica {
    pub fn start(config: &ProcessConfig, extra_env: &[(String, String)]) -> Self {
        let budgets: Vec<String> = config
            .country_budgets
            .iter()
            .map(|(country, rate)| format!("{country}={rate}"))
            .collect();
        let supervision = &config.supervision;
        let mut command = Command::new(crate::built_binary("process-replica"));
        command
            .env("SMSOPS_PROCESS_ADDR", config.grpc_addr.to_string())
            .env(
                "SMSOPS_PROCESS_PROMETHEUS_ADDR",
                config.prometheus_addr.to_string(),
            )
            .env("SMSOPS_MONGO_URL", &config.mongo_url)
            .env("SMSOPS_PROCESS_DB", &config.database)
            .env("SMSOPS_PROCESS_COLLECTION", &config.collection)
            .env("SMSOPS_AMQP_URL", &config.amqp_url)
            .env("SMSOPS_SESSION_EXCHANGE", &config.exchange)
            .env("SMSOPS_AUTH_URL", &config.auth_url)
            .env("SMSOPS_OPERATOR_URL", &config.operator_url)
            .env("SMSOPS_SMS_URL", &config.sms_url)
            .env("SMSOPS_PROCESS_EMAIL", &config.account.email)
            .env("SMSOPS_PROCESS_PASSWORD", &config.account.password)
            .env("SMSOPS_PROCESS_REPLICA", &supervision.replica)
            .env(
                "SMSOPS_PROCESS_LEASE_TTL_MS",
                supervision.lease_ttl.as_millis().to_string(),
            )
            .env(
                "SMSOPS_PROCESS_HEARTBEAT_MS",
                supervision.heartbeat.as_millis().to_string(),
            )
            .env(
                "SMSOPS_PROCESS_FAILURE_STREAK",
                supervision.failure_streak.to_string(),
            )
            .env("SMSOPS_COUNTRY_BUDGETS", budgets.join(","))
            .env(
                "SMSOPS_LOG",
                std::env::var("SMSOPS_LOG").unwrap_or_else(|_| "warn".into()),
            );
        command.envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self {
            child: ServiceChild::spawn("process-svc", command),
        }
    }

    /// Waits until it answers gRPC on `addr`.
    pub async fn ready(&self, addr: std::net::SocketAddr) {
        crate::wait_listening(addr, "process-svc replica").await;
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// SIGKILL: no lease is released, nothing is saved.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// SIGTERM; how long it took to exit, `None` past `grace`.
    pub fn terminate(&mut self, grace: std::time::Duration) -> Option<std::time::Duration> {
        self.child.terminate(grace)
    }
}
