use std::{net::SocketAddr, time::Duration};

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
    pub auth_url: String,
    pub operator_url: String,
    pub tokens: TokenSettings,
    pub timeouts: ClientTimeouts,
    pub twilio: TwilioConfig,
    /// When set, messages go to this SMSC over SMPP instead of to Twilio.
    pub smpp: Option<SmppConfig>,
    pub delivery: DeliveryConfig,
    /// How long a pair looked up in operator-svc is reused.
    pub pair_cache_ttl: Duration,
    /// The most messages the provider account may send a day, across all
    /// users and replicas; `None` is no cap.
    pub account_daily_cap: Option<u64>,
    /// When late receipts are looked up at the provider, and how fast.
    pub reconcile: ReconcileConfig,
    /// How long a message and its status history are kept.
    pub messages_keep: Duration,
    pub retention_every: Duration,
}

#[derive(Clone)]
pub struct TwilioConfig {
    pub base_url: String,
    pub account_sid: String,
    /// Signs status callbacks; authenticates requests too when no API key
    /// is set.
    pub auth_token: String,
    /// An API key of the account, as Twilio recommends for API requests:
    /// it can be revoked and rotated without the auth token.
    pub api_key: Option<TwilioApiKey>,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// The public URL Twilio calls with status updates (the gateway's
    /// `/webhooks/twilio/status`); signatures are checked against it.
    pub status_callback_url: Option<String>,
}

#[derive(Clone)]
pub struct TwilioApiKey {
    /// `SK…`.
    pub sid: String,
    pub secret: String,
}

/// Without the account SID, auth token or API key: a config printed into
/// a log must not carry them.
impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("from", &self.from)
            .field("messaging_service_sid", &self.messaging_service_sid)
            .field("status_callback_url", &self.status_callback_url)
            .finish_non_exhaustive()
    }
}

/// An SMSC, met over SMPP 3.4 with one bind_transceiver per replica.
#[derive(Clone)]
pub struct SmppConfig {
    /// `host:port`.
    pub addr: String,
    pub system_id: String,
    pub password: String,
    /// The sender messages show: an alphanumeric id.
    pub source_addr: String,
    /// Submits awaiting their answer at once, per replica.
    pub window: usize,
    /// How often an idle bind is checked; three silent in a row end it.
    pub enquire_link_every: Duration,
    /// How long connecting, binding and each submit wait for an answer.
    pub response_timeout: Duration,
}

/// Without the password: a config printed into a log must not carry it.
impl std::fmt::Debug for SmppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmppConfig")
            .field("addr", &self.addr)
            .field("system_id", &self.system_id)
            .field("source_addr", &self.source_addr)
            .field("window", &self.window)
            .field("enquire_link_every", &self.enquire_link_every)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl SmppConfig {
    /// `None` unless SMSOPS_SMPP_ADDR is set.
    fn from_env(response_timeout: Duration) -> Result<Option<Self>, ConfigError> {
        let Some(addr) = config::optional("SMSOPS_SMPP_ADDR")? else {
            return Ok(None);
        };
        let system_id = config::string_or("SMSOPS_SMPP_SYSTEM_ID", "")?;
        let password = config::string_or("SMSOPS_SMPP_PASSWORD", "")?;
        // SMPP 3.4: system_id up to 15 characters, password up to 8.
        if system_id.is_empty() || system_id.len() > 15 {
            return Err(ConfigError::new(
                "SMSOPS_SMPP_SYSTEM_ID",
                "set SMSOPS_SMPP_SYSTEM_ID (1 to 15 characters) with SMSOPS_SMPP_ADDR",
            ));
        }
        if password.len() > 8 {
            return Err(ConfigError::new(
                "SMSOPS_SMPP_PASSWORD",
                "an SMPP password has at most 8 characters",
            ));
        }
        Ok(Some(Self {
            addr,
            system_id,
            password,
            source_addr: config::string_or("SMSOPS_SMPP_SOURCE_ADDR", "smsops")?,
            window: config::or("SMSOPS_SMPP_WINDOW", 10usize)?.max(1),
            enquire_link_every: config::secs_or("SMSOPS_SMPP_ENQUIRE_LINK_SECS", 30)?,
            response_timeout,
        }))
    }
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

/// Both of SMSOPS_TWILIO_API_KEY_SID and _SECRET, or neither.
fn api_key() -> Result<Option<TwilioApiKey>, ConfigError> {
    let sid = config::optional("SMSOPS_TWILIO_API_KEY_SID")?;
    let secret = config::optional("SMSOPS_TWILIO_API_KEY_SECRET")?;
    match (sid, secret) {
        (Some(sid), Some(secret)) => Ok(Some(TwilioApiKey { sid, secret })),
        (None, None) => Ok(None),
        _ => Err(ConfigError::new(
            "SMSOPS_TWILIO_API_KEY_SID",
            "set both SMSOPS_TWILIO_API_KEY_SID and SMSOPS_TWILIO_API_KEY_SECRET, or neither",
        )),
    }
}

impl SmsConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let twilio = TwilioConfig {
            base_url: config::string_or("SMSOPS_TWILIO_BASE_URL", "https://api.twilio.com")?,
            account_sid: config::string_or("SMSOPS_TWILIO_ACCOUNT_SID", "")?,
            auth_token: config::string_or("SMSOPS_TWILIO_AUTH_TOKEN", "")?,
            api_key: api_key()?,
            from: config::optional("SMSOPS_TWILIO_FROM")?,
            messaging_service_sid: config::optional("SMSOPS_TWILIO_MESSAGING_SERVICE_SID")?,
            status_callback_url: config::optional("SMSOPS_TWILIO_STATUS_CALLBACK_URL")?,
        };
        let request_timeout = config::millis_or("SMSOPS_SMS_PROVIDER_TIMEOUT_MS", 10_000)?;
        let smpp = SmppConfig::from_env(request_timeout)?;
        if smpp.is_none() && (twilio.account_sid.is_empty() || twilio.auth_token.is_empty()) {
            return Err(ConfigError::new(
                "SMSOPS_TWILIO_ACCOUNT_SID",
                "SMSOPS_TWILIO_ACCOUNT_SID and SMSOPS_TWILIO_AUTH_TOKEN are required",
            ));
        }
        if smpp.is_none() && twilio.from.is_none() && twilio.messaging_service_sid.is_none() {
            return Err(ConfigError::new(
                "SMSOPS_TWILIO_FROM",
                "set SMSOPS_TWILIO_FROM or SMSOPS_TWILIO_MESSAGING_SERVICE_SID",
            ));
        }
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
            auth_url: config::auth_url()?,
            operator_url: config::string_or("SMSOPS_OPERATOR_URL", "http://127.0.0.1:50052")?,
            tokens: TokenSettings::from_env()?,
            timeouts: ClientTimeouts::from_env()?,
            twilio,
            smpp,
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
