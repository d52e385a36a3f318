use std::net::SocketAddr;

use smsops_common::{
    config::{self, ConfigError, TokenSettings},
    grpc::ClientTimeouts,
};

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// HTTP listen address; port 0 picks a free port.
    pub http_addr: SocketAddr,
    pub auth_url: String,
    pub operator_url: String,
    pub sms_url: String,
    pub process_url: String,
    pub metrics_url: String,
    pub notify_url: String,
    pub tokens: TokenSettings,
    pub timeouts: ClientTimeouts,
    /// Sign-in and sign-up attempts allowed per client IP.
    pub auth_rate: RateLimit,
    /// Take the client IP from `X-Forwarded-For` (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl GatewayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let auth_rate = RateLimit {
            per_minute: config::or("SMSOPS_GATEWAY_AUTH_RATE_PER_MIN", 30)?,
            burst: config::or("SMSOPS_GATEWAY_AUTH_BURST", 10)?,
        };
        if auth_rate.per_minute == 0 || auth_rate.per_minute > 60_000 {
            return Err(ConfigError::new(
                "SMSOPS_GATEWAY_AUTH_RATE_PER_MIN",
                "must be 1..=60000",
            ));
        }
        if auth_rate.burst == 0 {
            return Err(ConfigError::new(
                "SMSOPS_GATEWAY_AUTH_BURST",
                "must be greater than 0",
            ));
        }
        Ok(Self {
            http_addr: config::or(
                "SMSOPS_GATEWAY_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
            )?,
            auth_url: config::auth_url()?,
            operator_url: config::string_or("SMSOPS_OPERATOR_URL", "http://127.0.0.1:50052")?,
            sms_url: config::string_or("SMSOPS_SMS_URL", "http://127.0.0.1:50053")?,
            process_url: config::string_or("SMSOPS_PROCESS_URL", "http://127.0.0.1:50054")?,
            metrics_url: config::string_or("SMSOPS_METRICS_URL", "http://127.0.0.1:50055")?,
            notify_url: config::string_or("SMSOPS_NOTIFY_URL", "http://127.0.0.1:50056")?,
            tokens: TokenSettings::from_env()?,
            timeouts: ClientTimeouts::from_env()?,
            auth_rate,
            trust_forwarded_for: config::or("SMSOPS_GATEWAY_TRUST_FORWARDED_FOR", false)?,
            workers: config::or("SMSOPS_GATEWAY_WORKERS", 0)?,
        })
    }
}
