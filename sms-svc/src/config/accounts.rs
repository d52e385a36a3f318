//! Provider accounts, by name. `SMSOPS_PROVIDERS=smsc,twilio` lists them
//! (in the order a pair without a route tries them) and each is set by
//! `SMSOPS_PROVIDER_<NAME>_*` (the name upper-cased, `-` as `_`):
//! `KIND` (`twilio` or `smpp`), `RATE` (messages a second across every
//! replica; 0, the default, is no limit), `CONCURRENCY`, and its kind's
//! settings, named as below after the prefix. Without `SMSOPS_PROVIDERS`
//! there is one account: `smpp` from `SMSOPS_SMPP_*` when
//! `SMSOPS_SMPP_ADDR` is set, else `twilio` from `SMSOPS_TWILIO_*`, with
//! `SMSOPS_SMS_PROVIDER_RATE`.

use std::time::Duration;

use smsops_common::config::{self, ConfigError};

/// One account: what routes name, how fast it may go, and how to reach it.
#[derive(Debug, Clone)]
pub struct ProviderAccount {
    /// 1 to 32 of a-z, 0-9 and '-'.
    pub name: String,
    /// Messages a second across every replica; 0 is no limit.
    pub rate_per_second: u32,
    /// Requests in flight at once per replica; `None` is
    /// `DeliveryConfig::concurrency`.
    pub concurrency: Option<usize>,
    pub kind: AccountKind,
}

#[derive(Debug, Clone)]
pub enum AccountKind {
    Twilio(TwilioConfig),
    Smpp(SmppConfig),
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

impl TwilioConfig {
    /// `ACCOUNT_SID`, `AUTH_TOKEN`, `FROM` or `MESSAGING_SERVICE_SID`,
    /// and optionally `BASE_URL`, `API_KEY_SID` with `API_KEY_SECRET`,
    /// `STATUS_CALLBACK_URL`, each after `prefix`.
    fn from_env(prefix: &str) -> Result<Self, ConfigError> {
        let var = |name: &str| format!("{prefix}{name}");
        let twilio = Self {
            base_url: config::string_or(&var("BASE_URL"), "https://api.twilio.com")?,
            account_sid: config::string_or(&var("ACCOUNT_SID"), "")?,
            auth_token: config::string_or(&var("AUTH_TOKEN"), "")?,
            api_key: api_key(prefix)?,
            from: config::optional(&var("FROM"))?,
            messaging_service_sid: config::optional(&var("MESSAGING_SERVICE_SID"))?,
            status_callback_url: config::optional(&var("STATUS_CALLBACK_URL"))?,
        };
        if twilio.account_sid.is_empty() || twilio.auth_token.is_empty() {
            return Err(ConfigError::new(
                &var("ACCOUNT_SID"),
                format!("{0}ACCOUNT_SID and {0}AUTH_TOKEN are required", prefix),
            ));
        }
        if twilio.from.is_none() && twilio.messaging_service_sid.is_none() {
            return Err(ConfigError::new(
                &var("FROM"),
                format!("set {0}FROM or {0}MESSAGING_SERVICE_SID", prefix),
            ));
        }
        Ok(twilio)
    }
}

/// Both of `API_KEY_SID` and `API_KEY_SECRET`, or neither.
fn api_key(prefix: &str) -> Result<Option<TwilioApiKey>, ConfigError> {
    let var = |setting: &str| format!("{prefix}{setting}");
    let sid = config::optional(&var("API_KEY_SID"))?;
    let secret = config::optional(&var("API_KEY_SECRET"))?;
    match (sid, secret) {
        (Some(sid), Some(secret)) => Ok(Some(TwilioApiKey { sid, secret })),
        (None, None) => Ok(None),
        _ => Err(ConfigError::new(
            &var("API_KEY_SID"),
            format!(
                "set both {0}API_KEY_SID and {0}API_KEY_SECRET, or neither",
                prefix
            ),
        )),
    }
}

impl SmppConfig {
    /// `ADDR`, `SYSTEM_ID`, `PASSWORD`, and optionally `SOURCE_ADDR`,
    /// `WINDOW`, `ENQUIRE_LINK_SECS`, each after `prefix`.
    fn from_env(prefix: &str, response_timeout: Duration) -> Result<Self, ConfigError> {
        let var = |name: &str| format!("{prefix}{name}");
        let addr = config::string_or(&var("ADDR"), "")?;
        if addr.is_empty() {
            return Err(ConfigError::new(
                &var("ADDR"),
                "the SMSC's host:port is required",
            ));
        }
        let system_id = config::string_or(&var("SYSTEM_ID"), "")?;
        let password = config::string_or(&var("PASSWORD"), "")?;
        // SMPP 3.4: system_id up to 15 characters, password up to 8.
        if system_id.is_empty() || system_id.len() > 15 {
            return Err(ConfigError::new(
                &var("SYSTEM_ID"),
                format!("set {prefix}SYSTEM_ID (1 to 15 characters) with {prefix}ADDR"),
            ));
        }
        if password.len() > 8 {
            return Err(ConfigError::new(
                &var("PASSWORD"),
                "an SMPP password has at most 8 characters",
            ));
        }
        Ok(Self {
            addr,
            system_id,
            password,
            source_addr: config::string_or(&var("SOURCE_ADDR"), "smsops")?,
            window: config::or(&var("WINDOW"), 10usize)?.max(1),
            enquire_link_every: config::secs_or(&var("ENQUIRE_LINK_SECS"), 30)?,
            response_timeout,
        })
    }
}

/// The accounts as the environment sets them (see the module's doc).
pub fn from_env(response_timeout: Duration) -> Result<Vec<ProviderAccount>, ConfigError> {
    let Some(names) = config::optional::<String>("SMSOPS_PROVIDERS")? else {
        return legacy(response_timeout).map(|account| vec![account]);
    };
    let mut accounts: Vec<ProviderAccount> = Vec::new();
    for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !is_account_name(name) {
            return Err(ConfigError::new(
                "SMSOPS_PROVIDERS",
                format!("{name:?}: a name is 1 to 32 of a-z, 0-9 and '-'"),
            ));
        }
        if accounts.iter().any(|account| account.name == name) {
            return Err(ConfigError::new(
                "SMSOPS_PROVIDERS",
                format!("{name} twice"),
            ));
        }
        let prefix = format!(
            "SMSOPS_PROVIDER_{}_",
            name.to_ascii_uppercase().replace('-', "_")
        );
        let var = |setting: &str| format!("{prefix}{setting}");
        let kind = match config::string_or(&var("KIND"), "")?.as_str() {
            "twilio" => AccountKind::Twilio(TwilioConfig::from_env(&prefix)?),
            "smpp" => AccountKind::Smpp(SmppConfig::from_env(&prefix, response_timeout)?),
            other => {
                return Err(ConfigError::new(
                    &var("KIND"),
                    format!("twilio or smpp, got {other:?}"),
                ));
            }
        };
        accounts.push(ProviderAccount {
            name: name.to_string(),
            rate_per_second: config::or(&var("RATE"), 0u32)?,
            concurrency: config::optional::<usize>(&var("CONCURRENCY"))?.map(|n| n.max(1)),
            kind,
        });
    }
    if accounts.is_empty() {
        return Err(ConfigError::new("SMSOPS_PROVIDERS", "names no account"));
    }
    Ok(accounts)
}

/// The one account of a config older than accounts.
fn legacy(response_timeout: Duration) -> Result<ProviderAccount, ConfigError> {
    let rate_per_second = config::or("SMSOPS_SMS_PROVIDER_RATE", 0u32)?;
    if config::optional::<String>("SMSOPS_SMPP_ADDR")?.is_some() {
        return Ok(ProviderAccount {
            name: "smpp".into(),
            rate_per_second,
            concurrency: None,
            kind: AccountKind::Smpp(SmppConfig::from_env("SMSOPS_SMPP_", response_timeout)?),
        });
    }
    Ok(ProviderAccount {
        name: "twilio".into(),
        rate_per_second,
        concurrency: None,
        kind: AccountKind::Twilio(TwilioConfig::from_env("SMSOPS_TWILIO_")?),
    })
}

/// What operator-svc accepts in a route, too.
fn is_account_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
