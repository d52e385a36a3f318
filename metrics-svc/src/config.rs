use std::{net::SocketAddr, time::Duration};

use smsops_common::{
    config::{self, ConfigError, TokenSettings},
    grpc::ClientTimeouts,
};

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Where Prometheus scrapes `GET /metrics`; port 0 picks a free port.
    pub prometheus_addr: SocketAddr,
    /// MySQL server; the database is created if missing.
    pub mysql_url: String,
    pub database: String,
    pub amqp_url: String,
    /// The exchange SMS events come from.
    pub exchange: String,
    /// Session events, for the live feed only.
    pub session_exchange: String,
    /// Notices of directory changes (auth-svc, from the audit log), for
    /// the live feed only.
    pub changes_exchange: String,
    /// This service's own durable queue on it; `<queue>.dlq` takes the
    /// messages that cannot be read.
    pub queue: String,
    /// Deliveries the broker may have out to this consumer at once.
    pub prefetch: u16,
    pub auth_url: String,
    pub tokens: TokenSettings,
    pub timeouts: ClientTimeouts,
    /// How long a counted event's id is kept to recognise a redelivery:
    /// longer than any can come (a relay or consumer down for days).
    pub dedupe_keep: Duration,
    /// How long the per-minute metric rows are kept.
    pub metrics_keep: Duration,
    pub retention_every: Duration,
}

impl MetricsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            prometheus_addr: config::or(
                "SMSOPS_METRICS_PROMETHEUS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9105)),
            )?,
            grpc_addr: config::or(
                "SMSOPS_METRICS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50055)),
            )?,
            mysql_url: config::mysql_url()?,
            database: config::string_or("SMSOPS_METRICS_DB", "sms_metrics")?,
            amqp_url: config::amqp_url()?,
            exchange: config::string_or("SMSOPS_SMS_EXCHANGE", "sms.events")?,
            session_exchange: config::string_or("SMSOPS_SESSION_EXCHANGE", "session.events")?,
            changes_exchange: config::string_or("SMSOPS_CHANGES_EXCHANGE", "changes.events")?,
            queue: config::string_or("SMSOPS_METRICS_QUEUE", "metrics-svc.sms")?,
            prefetch: config::or("SMSOPS_METRICS_PREFETCH", 3000)?,
            auth_url: config::auth_url()?,
            dedupe_keep: config::secs_or("SMSOPS_METRICS_DEDUPE_SECS", 3 * 86_400)?,
            metrics_keep: config::secs_or("SMSOPS_METRICS_RETENTION_SECS", 400 * 86_400)?,
            retention_every: config::secs_or("SMSOPS_RETENTION_EVERY_SECS", 60)?,
            tokens: TokenSettings::from_env()?,
            timeouts: ClientTimeouts::from_env()?,
        })
    }
}
