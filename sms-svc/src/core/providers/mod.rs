//! SMS providers. Each implements [`Provider`] in its own module (build the
//! request, read the answer, read and verify status callbacks); everything
//! else — timeouts, retries, the circuit breaker — is [`Dispatcher`]'s, so
//! adding a provider touches one folder.

pub mod breaker;
pub mod twilio;

use std::{sync::Arc, time::Duration};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use smsops_common::trace::TraceHeaders;
use tracing::Instrument;

pub use breaker::Breaker;

use super::Status;
use crate::config::DeliveryConfig;

/// A message on its way to a provider.
pub struct OutgoingSms<'a> {
    pub to: &'a str,
    pub body: &'a str,
}

/// The client span of one request to a provider; none while traces are off.
fn provider_span(provider: &str) -> tracing::Span {
    if !smsops_common::telemetry::traces_on() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "provider request",
        otel.name = %format!("POST {provider}"),
        otel.kind = "client",
        http.request.method = "POST",
        http.response.status_code = tracing::field::Empty,
        provider,
    )
}

/// What a provider's HTTP answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderReply {
    /// The provider took the message.
    Accepted {
        sid: String,
        status: Status,
        provider_status: String,
    },
    /// The provider refused it for good (bad number, bad credentials, ...).
    Rejected { code: String, message: String },
    /// Over the provider's rate: provably not taken, safe to retry.
    RateLimited,
    /// The provider failed; it may or may not have taken the message.
    ServerError { status: u16 },
}

/// A status update read from a provider's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUpdate {
    pub sid: String,
    pub status: Status,
    pub provider_status: String,
    pub error_code: Option<String>,
}

/// What a provider answers when asked for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// It has the message, with this status now.
    Found(CallbackUpdate),
    /// It does not know the message (any more).
    Unknown,
    /// No answer to go by (down, throttled, unreadable); ask again later.
    Failed(String),
}

pub trait Provider: Send + Sync + 'static {
    /// Stored with every message, e.g. "twilio".
    fn name(&self) -> &'static str;
    fn build_request(
        &self,
        http: &reqwest::Client,
        sms: &OutgoingSms<'_>,
    ) -> reqwest::RequestBuilder;
    fn parse_response(&self, status: u16, body: &[u8]) -> ProviderReply;
    /// Whether a callback really comes from the provider. `url` is the full
    /// public URL it was sent to.
    fn verify_callback(&self, url: &str, params: &[(String, String)], signature: &str) -> bool;
    fn parse_callback(&self, params: &[(String, String)]) -> Option<CallbackUpdate>;
    /// Asks for the message the provider knows as `sid`.
    fn build_lookup(&self, http: &reqwest::Client, sid: &str) -> reqwest::RequestBuilder;
    fn parse_lookup(&self, sid: &str, status: u16, body: &[u8]) -> Lookup;
    /// The public URL the provider calls back, if configured.
    fn callback_url(&self) -> Option<&str>;
    /// `text` without the account's identifiers and credentials, wherever
    /// they appear: what the provider answers may quote them, and every
    /// message of a [`SendOutcome`] is shown to users and logged.
    fn redact(&self, text: &str) -> String;
}

/// Our own error codes for sends that never got a clear answer.
pub mod codes {
    /// Timeout or 5xx: the provider may have the message; never resent.
    pub const UNCERTAIN: &str = "provider_uncertain";
    /// Still over the provider's rate after every retry.
    pub const RATE_LIMITED: &str = "provider_rate_limited";
    /// Could not connect after every retry.
    pub const UNREACHABLE: &str = "provider_unreachable";
    /// The circuit breaker is open: the provider has been failing.
    pub const CIRCUIT_OPEN: &str = "provider_unavailable";
    /// Reconciliation: the provider did not know the message by the last deadline.
    pub const RECEIPT_UNKNOWN: &str = "receipt_unknown";
    /// Reconciliation: the provider still had it short of final by the last deadline.
    pub const RECEIPT_EXPIRED: &str = "receipt_expired";
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Accepted {
        sid: String,
        status: Status,
        provider_status: String,
    },
    Rejected {
        code: String,
        message: String,
    },
    /// The message may have been taken; it is never sent again.
    Uncertain {
        message: String,
    },
    /// Provably not taken.
    NotTaken {
        code: &'static str,
        message: String,
    },
}

pub struct Dispatcher {
    provider: Arc<dyn Provider>,
    http: reqwest::Client,
    config: DeliveryConfig,
    breaker: Breaker,
    in_flight: tokio::sync::Semaphore,
}

impl Dispatcher {
    pub fn new(
        provider: Arc<dyn Provider>,
        config: DeliveryConfig,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(3)))
            .pool_max_idle_per_host(config.concurrency)
            .build()?;
        let breaker = Breaker::new(
            provider.name(),
            config.breaker_threshold,
            config.breaker_cooldown,
        );
        Ok(Self {
            provider,
            http,
            in_flight: tokio::sync::Semaphore::new(config.concurrency),
            config,
            breaker,
        })
    }

    pub fn provider(&self) -> &dyn Provider {
        self.provider.as_ref()
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Sends once, retrying only while the provider provably did not take
    /// the message (connect errors, 429), with exponential backoff and jitter.
    pub async fn send(&self, sms: OutgoingSms<'_>) -> SendOutcome {
        let redact = |message: String| self.provider.redact(&message);
        match self.attempt(sms).await {
            accepted @ SendOutcome::Accepted { .. } => accepted,
            SendOutcome::Rejected { code, message } => SendOutcome::Rejected {
                code,
                message: redact(message),
            },
            SendOutcome::Uncertain { message } => SendOutcome::Uncertain {
                message: redact(message),
            },
            SendOutcome::NotTaken { code, message } => SendOutcome::NotTaken {
                code,
                message: redact(message),
            },
        }
    }

    async fn attempt(&self, sms: OutgoingSms<'_>) -> SendOutcome {
        let mut last = SendOutcome::NotTaken {
            code: codes::UNREACHABLE,
            message: "not attempted".into(),
        };
        for attempt in 1..=self.config.max_attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            if !self.breaker.allow() {
                return SendOutcome::NotTaken {
                    code: codes::CIRCUIT_OPEN,
                    message: format!("{} is failing; circuit breaker open", self.provider.name()),
                };
            }
            // Held for one attempt, not across the backoff.
            let Ok(_slot) = self.in_flight.acquire().await else {
                return last;
            };
            let span = provider_span(self.provider.name());
            let mut request = self.provider.build_request(&self.http, &sms);
            if let Some(traceparent) = TraceHeaders::of_span(&span).traceparent {
                request = request.header("traceparent", traceparent);
            }
            let response = match request.send().instrument(span.clone()).await {
                Ok(response) => response,
                Err(err) if err.is_connect() => {
                    self.breaker.failure();
                    self.log_transport(attempt, err);
                    last = SendOutcome::NotTaken {
                        code: codes::UNREACHABLE,
                        message: "provider connection failed".into(),
                    };
                    continue;
                }
                Err(err) => {
                    self.breaker.failure();
                    let message = in_words(&err, "provider request failed");
                    self.log_transport(attempt, err);
                    return SendOutcome::Uncertain { message };
                }
            };
            let status = response.status().as_u16();
            span.record("http.response.status_code", status);
            let body = match response.bytes().instrument(span.clone()).await {
                Ok(body) => body,
                Err(err) => {
                    self.breaker.failure();
                    let message = in_words(&err, "provider answer could not be read");
                    self.log_transport(attempt, err);
                    return SendOutcome::Uncertain { message };
                }
            };
            match self.provider.parse_response(status, &body) {
                ProviderReply::Accepted {
                    sid,
                    status,
                    provider_status,
                } => {
                    self.breaker.success();
                    return SendOutcome::Accepted {
                        sid,
                        status,
                        provider_status,
                    };
                }
                ProviderReply::Rejected { code, message } => {
                    self.breaker.success();
                    return SendOutcome::Rejected { code, message };
                }
                ProviderReply::RateLimited => {
                    last = SendOutcome::NotTaken {
                        code: codes::RATE_LIMITED,
                        message: format!("{} rate limit", self.provider.name()),
                    };
                }
                ProviderReply::ServerError { status } => {
                    self.breaker.failure();
                    return SendOutcome::Uncertain {
                        message: format!("provider answered {status}"),
                    };
                }
            }
        }
        last
    }

    /// The message's status at the provider now. Within the account's
    /// concurrency, as sends are (the provider counts both), but not the
    /// breaker's business: a failed lookup says nothing about sending.
    pub async fn lookup(&self, sid: &str) -> Lookup {
        let Ok(_slot) = self.in_flight.acquire().await else {
            return Lookup::Failed("shutting down".into());
        };
        let request = self.provider.build_lookup(&self.http, sid);
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Lookup::Failed(in_words(&err, "provider lookup failed")),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(body) => match self.provider.parse_lookup(sid, status, &body) {
                Lookup::Failed(why) => Lookup::Failed(self.provider.redact(&why)),
                other => other,
            },
            Err(err) => Lookup::Failed(in_words(&err, "provider answer could not be read")),
        }
    }

    /// Full jitter over an exponential step, capped at 5 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .config
            .backoff_base
            .saturating_mul(1 << (attempt - 1).min(10));
        let cap = step.min(Duration::from_secs(5));
        let mut bytes = [0u8; 4];
        let unit = match SystemRandom::new().fill(&mut bytes) {
            Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
            Err(_) => 0.5,
        };
        cap.mul_f64(0.5 + unit / 2.0)
    }

    /// The cause of a transport failure, for operators. reqwest puts the
    /// request's URL into its errors, and Twilio's holds the account SID:
    /// the URL is dropped and the rest redacted too.
    fn log_transport(&self, attempt: u32, err: reqwest::Error) {
        let err = err.without_url();
        // reqwest's own text ("error sending request") hides the cause.
        let mut cause = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(next) = source {
            cause.push_str(": ");
            cause.push_str(&next.to_string());
            source = next.source();
        }
        tracing::warn!(
            provider = self.provider.name(),
            attempt,
            error = %self.provider.redact(&cause),
            "provider request failed"
        );
    }
}

/// A transport failure in plain words: what a user may read in a message's
/// `error_message`, which must never carry a URL or credentials.
fn in_words(err: &reqwest::Error, otherwise: &str) -> String {
    if err.is_timeout() {
        "provider request timed out".into()
    } else if err.is_connect() {
        "provider connection failed".into()
    } else {
        otherwise.into()
    }
}
