use std::{collections::HashMap, net::SocketAddr, time::Duration};

use smsops_common::{
    account::ServiceAccount,
    config::{self, ConfigError, TokenSettings},
    grpc::ClientTimeouts,
};

use crate::core::plan::MIN_RATE_PER_MINUTE;

#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Where Prometheus scrapes `GET /metrics`; port 0 picks a free port.
    pub prometheus_addr: SocketAddr,
    pub mongo_url: String,
    pub database: String,
    pub collection: String,
    pub amqp_url: String,
    /// Durable topic exchange the lifecycle events go to.
    pub exchange: String,
    pub auth_url: String,
    pub operator_url: String,
    pub sms_url: String,
    pub tokens: TokenSettings,
    pub timeouts: ClientTimeouts,
    /// The account sessions send as; created by signing up if missing.
    pub account: ServiceAccount,
    pub supervision: Supervision,
    /// Messages per minute per country (upper case), shared by all of that
    /// country's sessions. A country not named has no cap.
    pub country_budgets: HashMap<String, f64>,
}

/// How sessions are held and kept alive.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// This replica's name on the leases it holds; unique per process.
    pub replica: String,
    /// A lease not renewed for this long is free for another replica.
    pub lease_ttl: Duration,
    /// How often a holder renews its leases and saves its progress, and
    /// every replica looks for sessions nobody holds.
    pub heartbeat: Duration,
    /// Failed sends in a row after which a session moves to `failed`.
    pub failure_streak: u32,
    /// Most messages one call to sms-svc carries.
    pub max_batch: usize,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            replica: format!("process-{}", uuid::Uuid::now_v7().simple()),
            lease_ttl: Duration::from_secs(5),
            heartbeat: Duration::from_millis(1000),
            failure_streak: 20,
            max_batch: 500,
        }
    }
}

impl ProcessConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Supervision::default();
        let supervision = Supervision {
            replica: config::string_or("SMSOPS_PROCESS_REPLICA", &defaults.replica)?,
            lease_ttl: config::millis_or("SMSOPS_PROCESS_LEASE_TTL_MS", 5000)?,
            heartbeat: config::millis_or("SMSOPS_PROCESS_HEARTBEAT_MS", 1000)?,
            failure_streak: config::or("SMSOPS_PROCESS_FAILURE_STREAK", defaults.failure_streak)?,
            max_batch: config::or("SMSOPS_PROCESS_MAX_BATCH", defaults.max_batch)?,
        };
        if supervision.heartbeat * 2 > supervision.lease_ttl {
            return Err(ConfigError::new(
                "SMSOPS_PROCESS_HEARTBEAT_MS",
                "must be at most half of SMSOPS_PROCESS_LEASE_TTL_MS",
            ));
        }
        let password = config::string_or("SMSOPS_PROCESS_PASSWORD", "")?;
        if password.len() < 12 {
            return Err(ConfigError::new(
                "SMSOPS_PROCESS_PASSWORD",
                "required: the service account's password, at least 12 characters",
            ));
        }
        Ok(Self {
            prometheus_addr: config::or(
                "SMSOPS_PROCESS_PROMETHEUS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9104)),
            )?,
            grpc_addr: config::or(
                "SMSOPS_PROCESS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50054)),
            )?,
            mongo_url: config::mongo_url()?,
            database: config::string_or("SMSOPS_PROCESS_DB", "smsops_process")?,
            collection: config::string_or("SMSOPS_PROCESS_COLLECTION", "sessions")?,
            amqp_url: config::amqp_url()?,
            exchange: config::string_or("SMSOPS_SESSION_EXCHANGE", "session.events")?,
            auth_url: config::auth_url()?,
            operator_url: config::string_or("SMSOPS_OPERATOR_URL", "http://127.0.0.1:50052")?,
            sms_url: config::string_or("SMSOPS_SMS_URL", "http://127.0.0.1:50053")?,
            tokens: TokenSettings::from_env()?,
            timeouts: ClientTimeouts::from_env()?,
            account: ServiceAccount {
                email: config::string_or("SMSOPS_PROCESS_EMAIL", "process-svc@smsops.local")?,
                password,
                settings: "SMSOPS_PROCESS",
            },
            supervision,
            country_budgets: budgets(&config::list("SMSOPS_COUNTRY_BUDGETS")?)?,
        })
    }
}

/// `GB=600,US=120` → per-country messages per minute, each at least one
/// an hour like a session's own rate: a lower cap would hold a pair's
/// session, and so its lock, for days per message.
fn budgets(items: &[String]) -> Result<HashMap<String, f64>, ConfigError> {
    let mut budgets = HashMap::new();
    for item in items {
        let parsed = item.split_once('=').and_then(|(country, rate)| {
            let rate: f64 = rate.trim().parse().ok()?;
            (rate >= MIN_RATE_PER_MINUTE).then(|| (country.trim().to_ascii_uppercase(), rate))
        });
        let (country, rate) = parsed.ok_or_else(|| {
            ConfigError::new(
                "SMSOPS_COUNTRY_BUDGETS",
                format!("{item:?} is not COUNTRY=messages_per_minute (at least 1/60)"),
            )
        })?;
        budgets.insert(country, rate);
    }
    Ok(budgets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_and_refuse_nonsense() {
        let parsed = budgets(&["gb=600".into(), "US = 120.5".into()]).unwrap();
        assert_eq!(parsed.get("GB"), Some(&600.0));
        assert_eq!(parsed.get("US"), Some(&120.5));
        assert!(budgets(&["GB".into()]).is_err());
        assert!(budgets(&["GB=0".into()]).is_err());
        assert!(budgets(&["GB=0.0000001".into()]).is_err());
        assert!(budgets(&["GB=0.017".into()]).is_ok());
        assert!(budgets(&["GB=x".into()]).is_err());
    }
}
