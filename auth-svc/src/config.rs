use std::{net::SocketAddr, path::PathBuf, time::Duration};

use smsops_common::config::{self, ConfigError, TokenSettings};

use smsops_common::auth::Quota;

use crate::core::{RoleQuotas, SignupPolicy};

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// gRPC listen address; port 0 picks a free port.
    pub grpc_addr: SocketAddr,
    /// Where Prometheus scrapes `GET /metrics`; port 0 picks a free port.
    pub prometheus_addr: SocketAddr,
    pub mongo_url: String,
    pub database: String,
    /// PKCS#8 PEM of the Ed25519 key that signs new access tokens.
    pub signing_key: PathBuf,
    /// Older keys (private or public PEM) whose tokens stay valid during a rotation.
    pub extra_keys: Vec<PathBuf>,
    pub tokens: TokenSettings,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// The first admin, created at start-up when no user has this email.
    pub admin: Option<AccountSeed>,
    /// process-svc's service account, created (or reset) at start-up with
    /// the same email and password process-svc signs in with.
    pub service_account: Option<AccountSeed>,
    /// notify-svc's, likewise: it records the route switches it makes.
    pub notify_account: Option<AccountSeed>,
    /// Who may sign up: `invite` (default), `open` (as viewers) or `closed`.
    pub signup: SignupPolicy,
    /// What each role may send unless a user has a quota of its own.
    pub quotas: RoleQuotas,
    pub limits: crate::limits::LimitsConfig,
    /// Where the notices of directory changes go (the live feed), and on
    /// which exchange; `None` sends none.
    pub changes: Option<ChangesConfig>,
}

/// The broker and topic exchange of [`smsops_common::changes`].
#[derive(Debug, Clone)]
pub struct ChangesConfig {
    pub amqp_url: String,
    pub exchange: String,
}

#[derive(Clone)]
pub struct AccountSeed {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AccountSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSeed")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let admin = match (
            config::optional::<String>("SMSOPS_ADMIN_EMAIL")?,
            config::optional::<String>("SMSOPS_ADMIN_PASSWORD")?,
        ) {
            (Some(email), Some(password)) => Some(AccountSeed { email, password }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "SMSOPS_ADMIN_PASSWORD",
                    "required with SMSOPS_ADMIN_EMAIL",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "SMSOPS_ADMIN_EMAIL",
                    "required with SMSOPS_ADMIN_PASSWORD",
                ));
            }
        };
        let service_account = seed("SMSOPS_PROCESS", "process-svc@smsops.local")?;
        let notify_account = seed("SMSOPS_NOTIFY", "notify-svc@smsops.local")?;
        Ok(Self {
            prometheus_addr: config::or(
                "SMSOPS_AUTH_PROMETHEUS_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 9101)),
            )?,
            grpc_addr: config::or(
                "SMSOPS_AUTH_ADDR",
                SocketAddr::from(([127, 0, 0, 1], 50051)),
            )?,
            mongo_url: config::mongo_url()?,
            database: config::string_or("SMSOPS_AUTH_DB", "smsops_auth")?,
            signing_key: config::or(
                "SMSOPS_AUTH_SIGNING_KEY",
                PathBuf::from("data/keys/signing.pem"),
            )?,
            extra_keys: config::list("SMSOPS_AUTH_EXTRA_KEYS")?
                .into_iter()
                .map(PathBuf::from)
                .collect(),
            tokens: TokenSettings::from_env()?,
            access_ttl: config::secs_or("SMSOPS_AUTH_ACCESS_TTL_SECS", 15 * 60)?,
            refresh_ttl: config::secs_or("SMSOPS_AUTH_REFRESH_TTL_SECS", 30 * 24 * 3600)?,
            admin,
            service_account,
            notify_account,
            changes: Some(ChangesConfig {
                amqp_url: config::amqp_url()?,
                exchange: config::string_or("SMSOPS_CHANGES_EXCHANGE", "changes.events")?,
            }),
            signup: config::or("SMSOPS_SIGNUP", SignupPolicy::Invite)?,
            quotas: RoleQuotas {
                admin: quota(
                    ("SMSOPS_QUOTA_ADMIN_PER_MINUTE", 0),
                    ("SMSOPS_QUOTA_ADMIN_PER_DAY", 0),
                )?,
                operator: quota(
                    ("SMSOPS_QUOTA_OPERATOR_PER_MINUTE", 600),
                    ("SMSOPS_QUOTA_OPERATOR_PER_DAY", 100_000),
                )?,
            },
            limits: crate::limits::LimitsConfig::from_env()?,
        })
    }
}

/// A role's quota from its two variables (name, default); 0 is no cap.
fn quota(per_minute: (&str, u64), per_day: (&str, u64)) -> Result<Quota, ConfigError> {
    let cap =
        |(name, default): (&str, u64)| config::or(name, default).map(|n: u64| (n > 0).then_some(n));
    Ok(Quota {
        per_minute: cap(per_minute)?,
        per_day: cap(per_day)?,
    })
}

/// A service account from `<settings>_PASSWORD` and `<settings>_EMAIL`;
/// none without the password.
fn seed(settings: &str, email: &str) -> Result<Option<AccountSeed>, ConfigError> {
    let Some(password) = config::optional::<String>(&format!("{settings}_PASSWORD"))? else {
        return Ok(None);
    };
    Ok(Some(AccountSeed {
        email: config::string_or(&format!("{settings}_EMAIL"), email)?,
        password,
    }))
}
