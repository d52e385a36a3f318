mod accounts;

use std::{net::SocketAddr, time::Duration};

pub use accounts::{AccountKind, ProviderAccount, SmppConfig, TwilioApiKey, TwilioConfig};

use crate::core::ReconcileConfig;
use smsops_common::{
    config::{self, ConfigError, TokenSettings},
    grpc::ClientTimeouts,
};

#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Where Prometheus scrapes `GET /metrics`; port 0 picks a free port.
    pub prometheus_addr: SocketAddr,
    /// MySQL server; the database is created if missing.
    pub mysql_url: String,
    pub database: String,
    pub amqp_url: String,
    /// Durable topic exchange the events go to.
    pub exchange: String,
    /// Where notify-svc publishes the routes that stopped delivering.
    pub route_health_exchange: String,
    pub auth_url: String,
    pub operator_url: String,
    pub tokens: TokenSettings,
    pub timeouts: ClientTimeouts,
    /// At least one; a pair without a route tries them in this order.
    pub providers: Vec<ProviderAccount>,
    pub delivery: DeliveryConfig,
    /// How long a pair looked up in operator-svc is reused.
    pub pair_cache_ttl: Duration,
    /// The most messages sent a day through every provider account, across
    /// all users and replicas; `None` is no cap.
    pub account_daily_cap: Option<u64>,
    /// When late receipts are looked up at the provider, and how fast.
    pub reconcile: ReconcileConfig,
    /// How long a message and its status history are kept.
    pub messages_keep: Duration,
    pub retention_every: Duration,
}

/// How sending to a provider is retried and guarded.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryConfig {
    pub request_timeout: Duration,
    /// Attempts for a message the provider provably did not take.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker refuses before letting one trial through.
    pub breaker_cooldown: Duration,
    /// A message still `accepted` after this long lost its sender (a crash
    /// between recording it and the provider's answer): it is marked
    /// `failed` / `provider_uncertain`, never resent.
    pub stale_after: Duration,
    /// How often to look for such messages.
    pub sweep_every: Duration,
    /// Requests to the provider in flight at once. Twilio refuses an
    /// account's requests beyond its concurrency limit (100 by default)
    /// with 429s; below it, fewer connections also cost both ends less.
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff_base: Duration::from_millis(100),
            breaker_threshold: 20,
            breaker_cooldown: Duration::from_secs(10),
            stale_after: Duration::from_secs(300),
            sweep_every: Duration::from_secs(30),
            concurrency: 64,
        }
    }
}

impl SmsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let request_timeout = config::millis_or("SMSOPS_SMS_PROVIDER_TIMEOUT_MS", 10_000)?;
        let providers = accounts::from_env(request_timeout)?;
        let defaults = DeliveryConfig::default();
        let reconcile = ReconcileConfig {
            after: config::secs_or("SMSOPS_SMS_RECONCILE_AFTER_SECS", 300)?,
            give_up_after: config::secs_or("SMSOPS_SMS_RECONCILE_GIVE_UP_SECS", 48 * 3600)?,
            rate_per_second: config::or("SMSOPS_SMS_RECONCILE_RATE", 5u32)?.max(1),
        };
        reconcile
            .validate()
            .map_err(|why| ConfigError::new("SMSOPS_SMS_RECONCILE_GIVE_UP_SECS", why))?;
        Ok(Self {
            prometheus_addr: config::or(
                "SMSOPS_SMS_PROMETHEUS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9103)),
            )?,
            grpc_addr: config::or("SMSOPS_SMS_ADDR", SocketAddr::from(([127, 0, 0, 1], 50053)))?,
            mysql_url: config::mysql_url()?,
            database: config::string_or("SMSOPS_SMS_DB", "smsops_sms")?,
            amqp_url: config::amqp_url()?,
            exchange: config::string_or("SMSOPS_SMS_EXCHANGE", "sms.events")?,
            route_health_exchange: config::string_or(
                "SMSOPS_ROUTE_HEALTH_EXCHANGE",
                "route.health",
            )?,
            auth_url: config::auth_url()?,
            operator_url: config::string_or("SMSOPS_OPERATOR_URL", "http://127.0.0.1:50052")?,
            tokens: TokenSettings::from_env()?,
            timeouts: ClientTimeouts::from_env()?,
            providers,
            delivery: DeliveryConfig {
                request_timeout,
                max_attempts: config::or("SMSOPS_SMS_MAX_ATTEMPTS", defaults.max_attempts)?,
                backoff_base: config::millis_or("SMSOPS_SMS_BACKOFF_MS", 100)?,
                breaker_threshold: config::or(
                    "SMSOPS_SMS_BREAKER_THRESHOLD",
                    defaults.breaker_threshold,
                )?,
                breaker_cooldown: config::secs_or("SMSOPS_SMS_BREAKER_COOLDOWN_SECS", 10)?,
                stale_after: config::secs_or("SMSOPS_SMS_STALE_ACCEPTED_SECS", 300)?,
                sweep_every: defaults.sweep_every,
                concurrency: config::or("SMSOPS_SMS_PROVIDER_CONCURRENCY", defaults.concurrency)?
                    .max(1),
            },
            pair_cache_ttl: config::secs_or("SMSOPS_SMS_PAIR_CACHE_SECS", 30)?,
            account_daily_cap: Some(config::or("SMSOPS_SMS_ACCOUNT_DAILY_CAP", 1_000_000u64)?)
                .filter(|cap| *cap > 0),
            reconcile,
            messages_keep: config::secs_or("SMSOPS_SMS_RETENTION_SECS", 90 * 86_400)?,
            retention_every: config::secs_or("SMSOPS_RETENTION_EVERY_SECS", 60)?,
        })
    }
}
