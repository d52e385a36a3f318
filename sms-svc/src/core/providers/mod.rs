//! SMS providers. Each is a [`Connector`] in its own module (one try at
//! handing a message over, lookups, status callbacks, redaction); everything
//! else (retries, the circuit breaker, the account's concurrency) is
//! [`Dispatcher`]'s, so adding a provider touches one folder.

pub mod breaker;
pub mod http;
pub mod smpp;
pub mod twilio;

use std::{sync::Arc, time::Duration};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use futures::future::BoxFuture;

pub use breaker::Breaker;

use crate::{
    config::DeliveryConfig,
    domain::{Change, Status},
};

/// A message on its way to a provider.
pub struct OutgoingSms<'a> {
    pub to: &'a str,
    pub body: &'a str,
}

/// What a provider answered one try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderReply {
    /// The provider took the message.
    Accepted {
        sid: String,
        status: Status,
        provider_status: String,
        /// Its ids for the parts, when it took the message in parts that
        /// each get a receipt (SMPP); empty otherwise.
        parts: Vec<String>,
    },
    /// The provider refused it for good (bad number, bad credentials, ...).
    Rejected { code: String, message: String },
    /// Over the provider's rate: provably not taken, safe to retry.
    RateLimited,
    /// The provider says the request never fully reached it (HTTP 408):
    /// provably not taken, safe to retry.
    NotReceived,
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

/// A receipt for one part (see [`crate::domain::Part`]), pushed by the
/// provider; `done` says whether it was kept, so the provider is answered
/// only then, and sends it again if it was not.
pub struct PushedReceipt {
    /// `sid` is the part's id.
    pub update: CallbackUpdate,
    pub done: tokio::sync::oneshot::Sender<bool>,
}

impl CallbackUpdate {
    /// The change it asks of its message (or part).
    pub fn into_change(self) -> Change {
        Change {
            status: self.status,
            provider_sid: None,
            provider_status: Some(self.provider_status),
            error_code: self.error_code,
            error_message: None,
            parts: Vec::new(),
            routed: None,
        }
    }
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

/// One try at handing a message to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Answered(ProviderReply),
    /// No connection was made: provably not taken.
    Unreachable,
    /// Connected, but no answer could be read: it may have been taken.
    Lost(String),
}

/// A provider as the dispatcher uses it.
pub trait Connector: Send + Sync + 'static {
    /// Stored with every message, e.g. "twilio".
    fn name(&self) -> &'static str;
    /// One try, no retries: those are the dispatcher's.
    fn submit<'a>(&'a self, sms: &'a OutgoingSms<'a>) -> BoxFuture<'a, Attempt>;
    /// The message the provider knows as `sid`, as it is now.
    fn lookup<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Lookup>;
    /// The public URL the provider calls back, for providers that call back.
    fn callback_url(&self) -> Option<&str> {
        None
    }
    /// Whether a callback really comes from the provider. `url` is the full
    /// public URL it was sent to.
    fn verify_callback(&self, _url: &str, _params: &[(String, String)], _signature: &str) -> bool {
        false
    }
    fn parse_callback(&self, _params: &[(String, String)]) -> Option<CallbackUpdate> {
        None
    }
    /// Receipts the provider pushes on a connection of its own (SMPP's
    /// deliver_sm), once: whoever takes them records them.
    fn take_receipts(&self) -> Option<tokio::sync::mpsc::Receiver<PushedReceipt>> {
        None
    }
    /// Whether it can take messages now as far as it knows (SMPP: bound);
    /// routing sends elsewhere while it cannot.
    fn is_up(&self) -> bool {
        true
    }
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
    /// A route names no account this service has (logged, not stored).
    pub const UNKNOWN_ROUTE: &str = "route_unknown_providers";
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
        parts: Vec<String>,
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

/// Keeps an account's sends under its rate, across every replica.
pub trait Pace: Send + Sync {
    /// Waits for this replica's next turn; `Err` (why) when the account's
    /// turns are taken too far ahead, or cannot be booked.
    fn wait(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// One provider account: its connector, breaker, concurrency and rate.
pub struct Dispatcher {
    name: String,
    connector: Arc<dyn Connector>,
    config: DeliveryConfig,
    breaker: Breaker,
    in_flight: tokio::sync::Semaphore,
    pace: Option<Arc<dyn Pace>>,
    /// What `pace` keeps it to, for those who ask; 0 without one.
    rate_per_second: u32,
}

impl Dispatcher {
    /// `name` is the account's, as routes and messages name it.
    pub fn new(name: &str, connector: Arc<dyn Connector>, config: DeliveryConfig) -> Self {
        let breaker = Breaker::new(name, config.breaker_threshold, config.breaker_cooldown);
        Self {
            name: name.to_string(),
            connector,
            in_flight: tokio::sync::Semaphore::new(config.concurrency),
            config,
            breaker,
            pace: None,
            rate_per_second: 0,
        }
    }

    /// Every try waits its turn at `pace` first, which keeps the account
    /// to `rate_per_second`.
    pub fn paced(mut self, pace: Arc<dyn Pace>, rate_per_second: u32) -> Self {
        self.pace = Some(pace);
        self.rate_per_second = rate_per_second;
        self
    }

    pub fn rate_per_second(&self) -> u32 {
        self.rate_per_second
    }

    pub fn connector(&self) -> &dyn Connector {
        self.connector.as_ref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// Worth sending to now: bound (as far as the connector knows) and
    /// its breaker not refusing.
    pub fn is_up(&self) -> bool {
        self.connector.is_up() && self.breaker.available()
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Sends once, retrying only while the provider provably did not take
    /// the message (no connection, over its rate), with exponential backoff
    /// and jitter.
    pub async fn send(&self, sms: OutgoingSms<'_>) -> SendOutcome {
        let redact = |message: String| self.connector.redact(&message);
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
        let name = &self.name;
        for attempt in 1..=self.config.max_attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
            if !self.breaker.allow() {
                return SendOutcome::NotTaken {
                    code: codes::CIRCUIT_OPEN,
                    message: format!("{name} is failing; circuit breaker open"),
                };
            }
            // Held for one attempt, not across the backoff.
            let Ok(_slot) = self.in_flight.acquire().await else {
                return last;
            };
            // Its turn once it holds a slot: a turn taken first and then
            // spent waiting for a slot would go out with the next ones.
            if let Some(pace) = &self.pace
                && let Err(why) = pace.wait().await
            {
                return SendOutcome::NotTaken {
                    code: codes::RATE_LIMITED,
                    message: why,
                };
            }
            let reply = match self.connector.submit(&sms).await {
                Attempt::Answered(reply) => reply,
                Attempt::Unreachable => {
                    // A connector that knows it is down (SMPP, unbound)
                    // says so itself, and is back the moment it binds: the
                    // breaker is for failures nothing else reports.
                    if self.connector.is_up() {
                        self.breaker.failure();
                    }
                    last = SendOutcome::NotTaken {
                        code: codes::UNREACHABLE,
                        message: "provider connection failed".into(),
                    };
                    continue;
                }
                Attempt::Lost(message) => {
                    self.breaker.failure();
                    return SendOutcome::Uncertain { message };
                }
            };
            match reply {
                ProviderReply::Accepted {
                    sid,
                    status,
                    provider_status,
                    parts,
                } => {
                    self.breaker.success();
                    return SendOutcome::Accepted {
                        sid,
                        status,
                        provider_status,
                        parts,
                    };
                }
                ProviderReply::Rejected { code, message } => {
                    self.breaker.success();
                    return SendOutcome::Rejected { code, message };
                }
                ProviderReply::RateLimited => {
                    last = SendOutcome::NotTaken {
                        code: codes::RATE_LIMITED,
                        message: format!("{name} rate limit"),
                    };
                }
                ProviderReply::NotReceived => {
                    self.breaker.failure();
                    last = SendOutcome::NotTaken {
                        code: codes::UNREACHABLE,
                        message: format!("{name} did not receive the request in time"),
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
        match self.connector.lookup(sid).await {
            Lookup::Failed(why) => Lookup::Failed(self.connector.redact(&why)),
            other => other,
        }
    }

    /// Full jitter over an exponential step, capped at 5 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .config
            .backoff_base
            .saturating_mul(1 << (attempt - 1).min(10));
        jittered(step.min(Duration::from_secs(5)))
    }
}

/// Between half of `pause` and all of it, so callers that failed together
/// do not try again together.
pub(crate) fn jittered(pause: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    let unit = match SystemRandom::new().fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    pause.mul_f64(0.5 + unit / 2.0)
}
