//! sms-svc as a child process, from its own binary and configured through
//! its environment like in production: so a benchmark can read its peak
//! memory apart from the services that share the test's process.

use std::{net::SocketAddr, time::Duration};

use sms_svc::config::{AccountKind, ProviderAccount, SmsConfig};

use crate::child::ServiceChild;

/// The running sms-svc; killed when dropped.
pub struct SmsProcess {
    child: ServiceChild,
}

impl SmsProcess {
    pub fn start(config: &SmsConfig, extra_env: &[(String, String)]) -> Self {
        let delivery = &config.delivery;
        let millis = |d: Duration| d.as_millis().to_string();
        let secs = |d: Duration| d.as_secs().to_string();
        let mut command = ServiceChild::command("sms-svc");
        command
            .env("SMSOPS_SMS_ADDR", config.grpc_addr.to_string())
            .env(
                "SMSOPS_SMS_PROMETHEUS_ADDR",
                config.prometheus_addr.to_string(),
            )
            .env("SMSOPS_MYSQL_URL", &config.mysql_url)
            .env("SMSOPS_SMS_DB", &config.database)
            .env("SMSOPS_AMQP_URL", &config.amqp_url)
            .env("SMSOPS_SMS_EXCHANGE", &config.exchange)
            .env(
                "SMSOPS_ROUTE_HEALTH_EXCHANGE",
                &config.route_health_exchange,
            )
            .env("SMSOPS_AUTH_URL", &config.auth_url)
            .env("SMSOPS_OPERATOR_URL", &config.operator_url)
            .env("SMSOPS_JWT_ISSUER", &config.tokens.issuer)
            .env("SMSOPS_JWT_AUDIENCE", &config.tokens.audience)
            .env(
                "SMSOPS_RPC_CONNECT_TIMEOUT_MS",
                millis(config.timeouts.connect),
            )
            .env("SMSOPS_RPC_TIMEOUT_MS", millis(config.timeouts.request))
            .env(
                "SMSOPS_SMS_PROVIDER_TIMEOUT_MS",
                millis(delivery.request_timeout),
            )
            .env("SMSOPS_SMS_MAX_ATTEMPTS", delivery.max_attempts.to_string())
            .env("SMSOPS_SMS_BACKOFF_MS", millis(delivery.backoff_base))
            .env(
                "SMSOPS_SMS_BREAKER_THRESHOLD",
                delivery.breaker_threshold.to_string(),
            )
            .env(
                "SMSOPS_SMS_BREAKER_COOLDOWN_SECS",
                secs(delivery.breaker_cooldown),
            )
            .env("SMSOPS_SMS_STALE_ACCEPTED_SECS", secs(delivery.stale_after))
            .env(
                "SMSOPS_SMS_PROVIDER_CONCURRENCY",
                delivery.concurrency.to_string(),
            )
            .env("SMSOPS_SMS_PAIR_CACHE_SECS", secs(config.pair_cache_ttl))
            .env(
                "SMSOPS_SMS_RECONCILE_AFTER_SECS",
                secs(config.reconcile.after),
            )
            .env(
                "SMSOPS_SMS_RECONCILE_GIVE_UP_SECS",
                secs(config.reconcile.give_up_after),
            )
            .env("SMSOPS_SMS_RETENTION_SECS", secs(config.messages_keep))
            .env("SMSOPS_RETENTION_EVERY_SECS", secs(config.retention_every))
            .env(
                "SMSOPS_SMS_RECONCILE_RATE",
                config.reconcile.rate_per_second.to_string(),
            )
            .env(
                "SMSOPS_LOG",
                std::env::var("SMSOPS_LOG").unwrap_or_else(|_| "warn".into()),
            );
        command.envs(account_env(&config.providers));
        command.envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self {
            child: ServiceChild::spawn("sms-svc", command),
        }
    }

    /// The process, to kill or stop.
    pub fn child(&mut self) -> &mut ServiceChild {
        &mut self.child
    }

    /// Waits until it answers gRPC on `addr`.
    pub async fn ready(&self, addr: SocketAddr) {
        crate::wait_listening(addr, "sms-svc").await;
    }

    /// Its peak resident memory so far (VmHWM), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        crate::host::peak_rss_mib(self.child.pid())
    }
}

/// `SMSOPS_PROVIDERS` and each account's `SMSOPS_PROVIDER_<NAME>_*`.
fn account_env(accounts: &[ProviderAccount]) -> Vec<(String, String)> {
    let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
    let mut env = vec![("SMSOPS_PROVIDERS".to_string(), names.join(","))];
    for account in accounts {
        let prefix = format!(
            "SMSOPS_PROVIDER_{}_",
            account.name.to_ascii_uppercase().replace('-', "_")
        );
        let mut set = |name: &str, value: &str| env.push((format!("{prefix}{name}"), value.into()));
        set("RATE", &account.rate_per_second.to_string());
        if let Some(concurrency) = account.concurrency {
            set("CONCURRENCY", &concurrency.to_string());
        }
        match &account.kind {
            AccountKind::Twilio(twilio) => {
                set("KIND", "twilio");
                set("BASE_URL", &twilio.base_url);
                set("ACCOUNT_SID", &twilio.account_sid);
                set("AUTH_TOKEN", &twilio.auth_token);
                if let Some(key) = &twilio.api_key {
                    set("API_KEY_SID", &key.sid);
                    set("API_KEY_SECRET", &key.secret);
                }
                for (name, value) in [
                    ("FROM", &twilio.from),
                    ("MESSAGING_SERVICE_SID", &twilio.messaging_service_sid),
                    ("STATUS_CALLBACK_URL", &twilio.status_callback_url),
                ] {
                    if let Some(value) = value {
                        set(name, value);
                    }
                }
            }
            AccountKind::Smpp(smpp) => {
                set("KIND", "smpp");
                set("ADDR", &smpp.addr);
                set("SYSTEM_ID", &smpp.system_id);
                set("PASSWORD", &smpp.password);
                set("SOURCE_ADDR", &smpp.source_addr);
                set("WINDOW", &smpp.window.to_string());
                set(
                    "ENQUIRE_LINK_SECS",
                    &smpp.enquire_link_every.as_secs().to_string(),
                );
            }
        }
    }
    env
}
