use std::{net::SocketAddr, time::Duration};

use smsops_common::{
    account::ServiceAccount,
    config::{self, ConfigError, TokenSettings},
    grpc::ClientTimeouts,
};

#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Where Prometheus scrapes `GET /metrics`; port 0 picks a free port.
    pub prometheus_addr: SocketAddr,
    /// MySQL server; the database is created if missing.
    pub mysql_url: String,
    pub database: String,
    pub amqp_url: String,
    pub sms_exchange: String,
    pub session_exchange: String,
    /// This service's own durable queue, bound to both exchanges;
    /// `<queue>.dlq` takes what cannot be read.
    pub queue: String,
    pub prefetch: u16,
    /// How often the rules are evaluated, and the sick routes published.
    pub evaluate_every: Duration,
    /// Durable topic exchange the sick routes go to, for sms-svc.
    pub route_health_exchange: String,
    /// The account notify-svc records its route switches as; without
    /// one the switches are made and alerted but not in the audit log.
    pub account: Option<ServiceAccount>,
    pub telegram: TelegramConfig,
    pub auth_url: String,
    /// sms-svc, asked how many provider accounts it has.
    pub sms_url: String,
    pub tokens: TokenSettings,
    pub timeouts: ClientTimeouts,
    /// How long a taken-in event's id is kept to recognise a redelivery.
    pub dedupe_keep: Duration,
    pub retention_every: Duration,
}

#[derive(Clone)]
pub struct TelegramConfig {
    /// The Bot API's base URL (the sandbox's in tests and `make up`).
    pub base_url: String,
    /// Without a token or chats, alerts are recorded but sent nowhere.
    pub bot_token: Option<String>,
    pub chat_ids: Vec<String>,
    pub request_timeout: Duration,
}

/// Without the token: a config printed into a log must not carry it.
impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("base_url", &self.base_url)
            .field("bot_token", &self.bot_token.as_ref().map(|_| "<redacted>"))
            .field("chat_ids", &self.chat_ids)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl NotifyConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            prometheus_addr: config::or(
                "SMSOPS_NOTIFY_PROMETHEUS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9106)),
            )?,
            grpc_addr: config::or(
                "SMSOPS_NOTIFY_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50056)),
            )?,
            mysql_url: config::mysql_url()?,
            database: config::string_or("SMSOPS_NOTIFY_DB", "sms_notify")?,
            amqp_url: config::amqp_url()?,
            sms_exchange: config::string_or("SMSOPS_SMS_EXCHANGE", "sms.events")?,
            session_exchange: config::string_or("SMSOPS_SESSION_EXCHANGE", "session.events")?,
            queue: config::string_or("SMSOPS_NOTIFY_QUEUE", "notify-svc.events")?,
            prefetch: config::or("SMSOPS_NOTIFY_PREFETCH", 500)?,
            evaluate_every: config::millis_or("SMSOPS_NOTIFY_EVALUATE_MS", 1000)?,
            route_health_exchange: config::string_or(
                "SMSOPS_ROUTE_HEALTH_EXCHANGE",
                "route.health",
            )?,
            account: account()?,
            telegram: TelegramConfig {
                base_url: config::string_or("SMSOPS_TELEGRAM_URL", "https://api.telegram.org")?,
                bot_token: config::optional("SMSOPS_TELEGRAM_BOT_TOKEN")?,
                chat_ids: config::list("SMSOPS_TELEGRAM_CHAT_IDS")?,
                request_timeout: config::secs_or("SMSOPS_TELEGRAM_TIMEOUT_SECS", 10)?,
            },
            auth_url: config::auth_url()?,
            sms_url: config::string_or("SMSOPS_SMS_URL", "http://127.0.0.1:50053")?,
            dedupe_keep: config::secs_or("SMSOPS_NOTIFY_DEDUPE_SECS", 3 * 86_400)?,
            retention_every: config::secs_or("SMSOPS_RETENTION_EVERY_SECS", 60)?,
            tokens: TokenSettings::from_env()?,
            timeouts: ClientTimeouts::from_env()?,
        })
    }
}

fn account() -> Result<Option<ServiceAccount>, ConfigError> {
    let Some(password) = config::optional::<String>("SMSOPS_NOTIFY_PASSWORD")? else {
        return Ok(None);
    };
    if password.len() < 12 {
        return Err(ConfigError::new(
            "SMSOPS_NOTIFY_PASSWORD",
            "the service account's password, at least 12 characters",
        ));
    }
    Ok(Some(ServiceAccount {
        email: config::string_or("SMSOPS_NOTIFY_EMAIL", "notify-svc@smsops.local")?,
        password,
        settings: "SMSOPS_NOTIFY",
    }))
}
