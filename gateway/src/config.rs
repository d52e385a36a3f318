use std::net::SocketAddr;

use smsops_common::{
    config::{self, ConfigError, TokenSettings},
    grpc::ClientTimeouts,
};

use crate::client_ip::TrustedProxies;

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
    /// `POST /sms` and `POST /sessions` allowed per user, each.
    pub send_rate: RateLimit,
    /// Proxies whose `X-Forwarded-For` hops are believed.
    pub trusted_proxies: TrustedProxies,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Hand single sends that arrive together to sms-svc in batches
    /// (see [`crate::sends`]); off, each is a call of its own.
    pub batch_sends: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_minute: u32,
    pub burst: u32,
}

impl GatewayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        // It meant "believe the left-most hop", which the client writes: a
        // deployment still asking for it must not start as if it still held.
        if config::or(RETIRED_TRUST_VARIABLE, false)? {
            return Err(ConfigError::new(
                RETIRED_TRUST_VARIABLE,
                "is no longer read: set SMSOPS_GATEWAY_TRUSTED_PROXIES to the proxies' CIDRs",
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
            auth_rate: rate_limit(
                ("SMSOPS_GATEWAY_AUTH_RATE_PER_MIN", 30),
                ("SMSOPS_GATEWAY_AUTH_BURST", 10),
                60_000,
            )?,
            send_rate: rate_limit(
                ("SMSOPS_GATEWAY_SEND_RATE_PER_MIN", 600),
                ("SMSOPS_GATEWAY_SEND_BURST", 100),
                600_000,
            )?,
            trusted_proxies: config::or(
                "SMSOPS_GATEWAY_TRUSTED_PROXIES",
                TrustedProxies::default(),
            )?,
            workers: config::or("SMSOPS_GATEWAY_WORKERS", 0)?,
            batch_sends: config::or("SMSOPS_GATEWAY_BATCH_SENDS", true)?,
        })
    }
}

const RETIRED_TRUST_VARIABLE: &str = "SMSOPS_GATEWAY_TRUST_FORWARDED_FOR";

/// A rate (per minute, at most `max`) and a burst, each from its variable.
fn rate_limit(
    (rate_name, rate_default): (&str, u32),
    (burst_name, burst_default): (&str, u32),
    max: u32,
) -> Result<RateLimit, ConfigError> {
    let per_minute = config::or(rate_name, rate_default)?;
    if per_minute == 0 || per_minute > max {
        return Err(ConfigError::new(rate_name, format!("must be 1..={max}")));
    }
    let burst = config::or(burst_name, burst_default)?;
    if burst == 0 {
        return Err(ConfigError::new(burst_name, "must be greater than 0"));
    }
    Ok(RateLimit { per_minute, burst })
}
