//! Delivers the stored Telegram messages through the Bot API's
//! `sendMessage`: at most one message a second per chat, waiting out a 429's
//! `retry_after`, and retrying every other failure with backoff. A message
//! leaves the table's retry loop only when Telegram took it.
//!
//! The bot token is part of every request's URL (`/bot<token>/sendMessage`),
//! and reqwest writes the URL into its errors: no error leaves [`Sender::send`]
//! with its URL, and what is logged or stored goes through
//! [`Sender::redact`] as well, in case a proxy or Telegram itself echoes it.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::{config::TelegramConfig, core::NotifyCore, store::Notification};

/// Telegram's limit for one chat.
const PER_CHAT_GAP: Duration = Duration::from_secs(1);
/// Messages taken per pass; a pass may take a few seconds of pacing.
const PER_PASS: u32 = 5;
/// How long a taken message is left alone by other replicas.
const HOLD: TimeDelta = TimeDelta::seconds(60);
const IDLE: Duration = Duration::from_millis(200);
const MAX_BACKOFF_SECS: i64 = 300;

pub struct Sender {
    core: Arc<NotifyCore>,
    http: reqwest::Client,
    config: TelegramConfig,
    next_per_chat: HashMap<String, Instant>,
}

enum Outcome {
    Sent,
    /// Telegram asked us to wait this long.
    Wait(Duration),
    Failed(String),
}

impl Sender {
    pub fn new(core: Arc<NotifyCore>, config: TelegramConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            core,
            http: reqwest::Client::builder()
                .timeout(config.request_timeout)
                .build()?,
            config,
            next_per_chat: HashMap::new(),
        })
    }

    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        if self.config.bot_token.is_none() || self.config.chat_ids.is_empty() {
            tracing::warn!("telegram is not configured: alerts are recorded but not sent");
            return;
        }
        while !*stop.borrow() {
            let worked = match self.pass().await {
                Ok(worked) => worked,
                Err(err) => {
                    tracing::warn!(error = %err, "telegram sender cannot reach its store");
                    false
                }
            };
            if !worked {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// Sends what is due; `true` if there was anything.
    async fn pass(&mut self) -> Result<bool, crate::store::StoreError> {
        let due = self.core.store().claim_due(PER_PASS, HOLD).await?;
        for notification in &due {
            if let Some(next) = self.next_per_chat.get(&notification.chat_id) {
                tokio::time::sleep_until((*next).into()).await;
            }
            let outcome = self.send(notification).await;
            let store = self.core.store();
            match outcome {
                Outcome::Sent => {
                    self.next_per_chat
                        .insert(notification.chat_id.clone(), Instant::now() + PER_CHAT_GAP);
                    store.sent(notification.id).await?;
                }
                Outcome::Wait(wait) => {
                    tracing::info!(chat = %notification.chat_id, wait_ms = wait.as_millis() as u64, "telegram asked to slow down");
                    self.next_per_chat
                        .insert(notification.chat_id.clone(), Instant::now() + wait);
                    let next =
                        Utc::now() + TimeDelta::from_std(wait).unwrap_or(TimeDelta::seconds(1));
                    store
                        .retry(notification.id, next, "429 too many requests")
                        .await?;
                }
                Outcome::Failed(error) => {
                    let error = self.redact(&error);
                    let backoff = 2_i64
                        .saturating_pow(notification.attempts.clamp(0, 16) as u32)
                        .min(MAX_BACKOFF_SECS);
                    tracing::warn!(notification = notification.id, attempts = notification.attempts + 1, error = %error, "telegram message not delivered, will retry");
                    store
                        .retry(
                            notification.id,
                            Utc::now() + TimeDelta::seconds(backoff),
                            &error,
                        )
                        .await?;
                }
            }
        }
        Ok(!due.is_empty())
    }

    async fn send(&self, notification: &Notification) -> Outcome {
        let token = self.config.bot_token.as_deref().unwrap_or_default();
        let url = format!(
            "{}/bot{token}/sendMessage",
            self.config.base_url.trim_end_matches('/')
        );
        let body = json!({
            "chat_id": notification.chat_id,
            "text": notification.text,
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
        });
        let response = match self.http.post(&url).json(&body).send().await {
            Ok(response) => response,
            Err(err) => return Outcome::Failed(describe(err)),
        };
        let status = response.status();
        let reply: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() && reply["ok"] == Value::Bool(true) {
            return Outcome::Sent;
        }
        if status.as_u16() == 429 {
            let secs = reply["parameters"]["retry_after"]
                .as_u64()
                .unwrap_or(1)
                .clamp(1, 3600);
            return Outcome::Wait(Duration::from_secs(secs));
        }
        let description = reply["description"].as_str().unwrap_or("no description");
        Outcome::Failed(format!("telegram answered {status}: {description}"))
    }

    /// `text` with every occurrence of the bot token masked.
    fn redact(&self, text: &str) -> String {
        match self.config.bot_token.as_deref() {
            Some(token) if !token.is_empty() => redact(text, token),
            _ => text.to_string(),
        }
    }
}

fn redact(text: &str, secret: &str) -> String {
    text.replace(secret, "<redacted>")
}

/// A failed request in words, without its URL (which holds the token).
fn describe(err: reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "telegram request timed out"
    } else if err.is_connect() {
        "telegram connection failed"
    } else {
        "telegram request failed"
    };
    // reqwest's own text ("error sending request") hides the cause, which is
    // in its sources: e.g. "Connection refused (os error 111)".
    let err = err.without_url();
    let mut text = what.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_request_is_described_without_its_url() {
        let token = "123456:secret-bot-token";
        let err = reqwest::Client::new()
            .post(format!("http://127.0.0.1:9/bot{token}/sendMessage"))
            .send()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(token),
            "reqwest shows the url: {err}"
        );
        let text = describe(err);
        assert!(text.starts_with("telegram connection failed"), "{text}");
        assert!(!text.contains(token) && !text.contains("/bot"), "{text}");
    }

    #[test]
    fn the_token_is_masked_wherever_it_appears() {
        let token = "123456:secret-bot-token";
        let echoed = format!("telegram answered 404: no such path /bot{token}/sendMessage");
        assert_eq!(
            redact(&echoed, token),
            "telegram answered 404: no such path /bot<redacted>/sendMessage"
        );
    }
}
