//! A service as a child process, from its own binary and configured through
//! its environment as in production: for the tests that kill it (SIGKILL,
//! no goodbye) or stop it (SIGTERM) in the middle of a run.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use gateway::config::GatewayConfig;
use metrics_svc::config::MetricsConfig;
use notify_svc::config::NotifyConfig;
use smsops_common::{config::TokenSettings, grpc::ClientTimeouts};

/// One running service; killed when dropped.
pub struct ServiceChild {
    name: &'static str,
    child: Child,
}

impl ServiceChild {
    /// Starts `service` (sms-svc, metrics-svc or notify-svc) from the
    /// `replica` binary built beside the tests, with `env` on top of the
    /// test's own environment, logging to the test's stderr.
    pub fn start(service: &'static str, env: &[(String, String)]) -> Self {
        let mut command = Self::command(service);
        command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command.env(
            "SMSOPS_LOG",
            std::env::var("SMSOPS_LOG").unwrap_or_else(|_| "warn".into()),
        );
        Self::spawn(service, command)
    }

    /// The command that runs `service`, for a caller to add its environment to.
    pub fn command(service: &'static str) -> Command {
        let mut command = Command::new(crate::built_binary("replica"));
        command.arg(service);
        command
    }

    pub fn spawn(service: &'static str, mut command: Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {service}: {err}"));
        Self {
            name: service,
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: nothing is released, saved or acked.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as Kubernetes stops a pod; how long it took to exit, or
    /// `None` if it was still running after `grace` (then it is killed).
    pub fn terminate(&mut self, grace: Duration) -> Option<Duration> {
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-s", "TERM", &self.pid().to_string()])
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "cannot signal {}",
            self.name
        );
        while started.elapsed() < grace {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }
}

impl Drop for ServiceChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `env` and then `extra` (which wins: a child reads the last).
pub fn with_extra(
    mut env: Vec<(&'static str, String)>,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    env.retain(|(name, _)| !extra.iter().any(|(other, _)| other == name));
    env.into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .chain(extra.iter().cloned())
        .collect()
}

/// What every gRPC service reads to check tokens and call others.
fn shared(tokens: &TokenSettings, timeouts: &ClientTimeouts) -> Vec<(&'static str, String)> {
    vec![
        ("SMSOPS_JWT_ISSUER", tokens.issuer.clone()),
        ("SMSOPS_JWT_AUDIENCE", tokens.audience.clone()),
        (
            "SMSOPS_RPC_CONNECT_TIMEOUT_MS",
            timeouts.connect.as_millis().to_string(),
        ),
        (
            "SMSOPS_RPC_TIMEOUT_MS",
            timeouts.request.as_millis().to_string(),
        ),
    ]
}

pub fn metrics_env(config: &MetricsConfig) -> Vec<(&'static str, String)> {
    let mut env = shared(&config.tokens, &config.timeouts);
    env.extend([
        ("SMSOPS_METRICS_ADDR", config.grpc_addr.to_string()),
        (
            "SMSOPS_METRICS_PROMETHEUS_ADDR",
            config.prometheus_addr.to_string(),
        ),
        ("SMSOPS_MYSQL_URL", config.mysql_url.clone()),
        ("SMSOPS_METRICS_DB", config.database.clone()),
        ("SMSOPS_AMQP_URL", config.amqp_url.clone()),
        ("SMSOPS_SMS_EXCHANGE", config.exchange.clone()),
        ("SMSOPS_SESSION_EXCHANGE", config.session_exchange.clone()),
        ("SMSOPS_CHANGES_EXCHANGE", config.changes_exchange.clone()),
        ("SMSOPS_METRICS_QUEUE", config.queue.clone()),
        ("SMSOPS_METRICS_PREFETCH", config.prefetch.to_string()),
        ("SMSOPS_AUTH_URL", config.auth_url.clone()),
        (
            "SMSOPS_METRICS_DEDUPE_SECS",
            config.dedupe_keep.as_secs().to_string(),
        ),
        (
            "SMSOPS_RETENTION_EVERY_SECS",
            config.retention_every.as_secs().to_string(),
        ),
    ]);
    env
}

/// `trusted_proxies` as the config was parsed from.
pub fn gateway_env(config: &GatewayConfig, trusted_proxies: &str) -> Vec<(&'static str, String)> {
    let mut env = shared(&config.tokens, &config.timeouts);
    env.extend([
        ("SMSOPS_GATEWAY_ADDR", config.http_addr.to_string()),
        ("SMSOPS_AUTH_URL", config.auth_url.clone()),
        ("SMSOPS_OPERATOR_URL", config.operator_url.clone()),
        ("SMSOPS_SMS_URL", config.sms_url.clone()),
        ("SMSOPS_PROCESS_URL", config.process_url.clone()),
        ("SMSOPS_METRICS_URL", config.metrics_url.clone()),
        ("SMSOPS_NOTIFY_URL", config.notify_url.clone()),
        (
            "SMSOPS_GATEWAY_AUTH_RATE_PER_MIN",
            config.auth_rate.per_minute.to_string(),
        ),
        (
            "SMSOPS_GATEWAY_AUTH_BURST",
            config.auth_rate.burst.to_string(),
        ),
        (
            "SMSOPS_GATEWAY_SEND_RATE_PER_MIN",
            config.send_rate.per_minute.to_string(),
        ),
        (
            "SMSOPS_GATEWAY_SEND_BURST",
            config.send_rate.burst.to_string(),
        ),
        (
            "SMSOPS_GATEWAY_TRUSTED_PROXIES",
            trusted_proxies.to_string(),
        ),
        ("SMSOPS_GATEWAY_WORKERS", config.workers.to_string()),
        ("SMSOPS_GATEWAY_BATCH_SENDS", config.batch_sends.to_string()),
    ]);
    env
}

pub fn notify_env(config: &NotifyConfig) -> Vec<(&'static str, String)> {
    let mut env = shared(&config.tokens, &config.timeouts);
    let telegram = &config.telegram;
    env.extend([
        ("SMSOPS_NOTIFY_ADDR", config.grpc_addr.to_string()),
        (
            "SMSOPS_NOTIFY_PROMETHEUS_ADDR",
            config.prometheus_addr.to_string(),
        ),
        ("SMSOPS_MYSQL_URL", config.mysql_url.clone()),
        ("SMSOPS_NOTIFY_DB", config.database.clone()),
        ("SMSOPS_AMQP_URL", config.amqp_url.clone()),
        ("SMSOPS_SMS_EXCHANGE", config.sms_exchange.clone()),
        ("SMSOPS_SESSION_EXCHANGE", config.session_exchange.clone()),
        ("SMSOPS_NOTIFY_QUEUE", config.queue.clone()),
        ("SMSOPS_NOTIFY_PREFETCH", config.prefetch.to_string()),
        (
            "SMSOPS_NOTIFY_EVALUATE_MS",
            config.evaluate_every.as_millis().to_string(),
        ),
        ("SMSOPS_TELEGRAM_URL", telegram.base_url.clone()),
        (
            "SMSOPS_TELEGRAM_BOT_TOKEN",
            telegram.bot_token.clone().unwrap_or_default(),
        ),
        ("SMSOPS_TELEGRAM_CHAT_IDS", telegram.chat_ids.join(",")),
        (
            "SMSOPS_TELEGRAM_TIMEOUT_SECS",
            telegram.request_timeout.as_secs().max(1).to_string(),
        ),
        ("SMSOPS_AUTH_URL", config.auth_url.clone()),
        (
            "SMSOPS_NOTIFY_DEDUPE_SECS",
            config.dedupe_keep.as_secs().to_string(),
        ),
        (
            "SMSOPS_RETENTION_EVERY_SECS",
            config.retention_every.as_secs().to_string(),
        ),
        (
            "SMSOPS_ROUTE_HEALTH_EXCHANGE",
            config.route_health_exchange.clone(),
        ),
        ("SMSOPS_SMS_URL", config.sms_url.clone()),
    ]);
    if let Some(account) = &config.account {
        env.push(("SMSOPS_NOTIFY_EMAIL", account.email.clone()));
        env.push(("SMSOPS_NOTIFY_PASSWORD", account.password.clone()));
    }
    env
}
