//! What the sandbox accepts and how messages end, from a JSON file.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub twilio: TwilioConfig,
    pub telegram: TelegramConfig,
    pub smsc: SmscConfig,
    /// First rule whose prefix matches the destination wins.
    pub rules: Vec<Rule>,
    pub default_rule: Rule,
}

impl Config {
    pub fn load(path: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|err| format!("{path}: {err}"))?;
        serde_json::from_str(&text).map_err(|err| format!("{path}: {err}"))
    }

    pub fn rule_for(&self, to: &str) -> &Rule {
        self.rules
            .iter()
            .find(|rule| to.starts_with(&rule.prefix))
            .unwrap_or(&self.default_rule)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
    /// An API key of the account: Twilio's libraries authenticate with
    /// one (`Client(api_key, api_secret, account_sid)`) as well as with
    /// the account's own SID and token.
    pub api_key_sid: String,
    pub api_key_secret: String,
    /// Messages accepted per second before 20429; 0 means no limit.
    pub rate_per_second: u32,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            account_sid: "AC00000000000000000000000000000000".into(),
            auth_token: "sandbox-auth-token".into(),
            api_key_sid: "SK00000000000000000000000000000000".into(),
            api_key_secret: "sandbox-api-key-secret".into(),
            rate_per_second: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramConfig {
    pub bot_token: String,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            bot_token: "123456:sandbox-bot-token".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rule {
    /// E.164 prefix, e.g. "+4477".
    pub prefix: String,
    pub delivered: f64,
    pub undelivered: f64,
    pub failed: f64,
    pub undelivered_codes: Vec<u32>,
    pub failed_codes: Vec<u32>,
    /// Delay before each status callback (sent, then the final status).
    pub callback_latency_ms: u64,
}

impl Default for Rule {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            delivered: 1.0,
            undelivered: 0.0,
            failed: 0.0,
            undelivered_codes: vec![30003],
            failed_codes: vec![30008],
            callback_latency_ms: 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmscConfig {
    /// What a bind must carry (SMPP allows a password of 8 characters).
    pub system_id: String,
    pub password: String,
    /// submit_sm accepted per second before ESME_RTHROTTLED; 0 means no limit.
    pub rate_per_second: u32,
    /// How many may come at once within that rate; 0 is a second's worth.
    pub burst: u32,
    /// Receipts name the message in decimal though submit_sm_resp gave
    /// it in hex, as some SMSCs write them.
    pub receipt_ids_decimal: bool,
}

impl Default for SmscConfig {
    fn default() -> Self {
        Self {
            system_id: "smsops".into(),
            password: "sbx-smpp".into(),
            rate_per_second: 0,
            burst: 0,
            receipt_ids_decimal: false,
        }
    }
}
