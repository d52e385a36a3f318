//! SMPP 3.4 to an SMSC: one bind_transceiver per replica, kept up by
//! [`session`]; each message goes as one submit_sm per part ([`text`]),
//! and each part's receipt comes back in a deliver_sm ([`receipt`]) on
//! whichever replica's bind the SMSC chooses. Receipts are handed to sms-svc
//! through [`Connector::take_receipts`] and answered once kept.

mod receipt;
mod session;
mod text;

use std::{
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use futures::future::BoxFuture;
use rusmpp::{
    CommandStatus, Pdu,
    pdus::SubmitSm,
    types::{COctetString, OctetString},
    values::{DataCoding, EsmClass, Npi, RegisteredDelivery, Ton},
};
use tokio::sync::{Semaphore, mpsc, oneshot};

use self::session::{Answer, Link, Request};
use super::{Attempt, Connector, Lookup, OutgoingSms, ProviderReply, PushedReceipt, jittered};
use crate::{config::SmppConfig, domain::Status};

/// Receipts waiting for sms-svc to take them.
const RECEIPT_QUEUE: usize = 1024;
/// Tries of a part after the first of its message was taken, while the
/// SMSC throttles or the bind is down: resending the message whole would
/// send its first parts twice.
const LATER_PART_TRIES: u32 = 8;

pub struct Smpp {
    config: SmppConfig,
    link: Arc<Link>,
    /// Submits sent and not yet answered, across the bind.
    window: Semaphore,
    receipts: Mutex<Option<mpsc::Receiver<PushedReceipt>>>,
    /// The concatenation reference of the next message in parts.
    reference: AtomicU8,
}

/// How one part's submit ended.
enum PartOutcome {
    Taken(String),
    /// Provably not taken, and worth trying again soon.
    NotTaken(String),
    Throttled,
    Refused {
        code: String,
        message: String,
    },
    Lost(String),
}

impl Smpp {
    /// Starts binding at once; must run inside a runtime.
    pub fn start(config: SmppConfig) -> Self {
        let (sender, receipts) = mpsc::channel(RECEIPT_QUEUE);
        let link = session::start(config.clone(), sender);
        Self {
            window: Semaphore::new(config.window.max(1)),
            config,
            link,
            receipts: Mutex::new(Some(receipts)),
            reference: AtomicU8::new(1),
        }
    }

    fn submit_sm(&self, to: &str, data_coding: u8, esm_class: u8, bytes: &[u8]) -> Option<Pdu> {
        let submit = SubmitSm::builder()
            .source_addr_ton(Ton::Alphanumeric)
            .source_addr_npi(Npi::Unknown)
            .source_addr(COctetString::from_str(&self.config.source_addr).ok()?)
            .dest_addr_ton(Ton::International)
            .dest_addr_npi(Npi::Isdn)
            .destination_addr(COctetString::from_str(to.trim_start_matches('+')).ok()?)
            .esm_class(EsmClass::from(esm_class))
            .registered_delivery(RegisteredDelivery::from(1u8))
            .data_coding(DataCoding::from(data_coding))
            .short_message(OctetString::from_vec(bytes.to_vec()).ok()?)
            .build();
        Some(submit.into())
    }

    async fn submit_part(&self, pdu: Pdu) -> PartOutcome {
        let Some(sender) = self.link.sender() else {
            return PartOutcome::NotTaken("not bound to the smsc".into());
        };
        let Ok(_permit) = self.window.acquire().await else {
            return PartOutcome::NotTaken("shutting down".into());
        };
        let (answer, answered) = oneshot::channel();
        if sender.send(Request { pdu, answer }).await.is_err() {
            return PartOutcome::NotTaken("the bind closed".into());
        }
        let command = match tokio::time::timeout(self.config.response_timeout, answered).await {
            Ok(Ok(Answer::Answered(command))) => command,
            Ok(Ok(Answer::NotSent)) => return PartOutcome::NotTaken("the bind closed".into()),
            Ok(Err(_)) => {
                return PartOutcome::Lost("the bind closed before the smsc answered".into());
            }
            Err(_) => return PartOutcome::Lost("the smsc did not answer in time".into()),
        };
        match command.status() {
            CommandStatus::EsmeRok => match command.pdu() {
                Some(Pdu::SubmitSmResp(resp)) => {
                    PartOutcome::Taken(resp.message_id().as_str().to_string())
                }
                _ => PartOutcome::Lost("the smsc took the part without an id".into()),
            },
            CommandStatus::EsmeRthrottled | CommandStatus::EsmeRmsgqful => PartOutcome::Throttled,
            // Not bound (yet) or the SMSC's own trouble: refused, so not taken.
            CommandStatus::EsmeRinvbndsts | CommandStatus::EsmeRsyserr => {
                PartOutcome::NotTaken(format!("the smsc refused: {:?}", command.status()))
            }
            status => PartOutcome::Refused {
                code: format!("smpp_status_{:#x}", u32::from(status)),
                message: format!("the smsc refused the message: {status:?}"),
            },
        }
    }

    /// Submits a part that follows parts already taken, trying again while
    /// it is provably not taken.
    async fn submit_later_part(&self, pdu: Pdu) -> Result<String, String> {
        let mut pause = Duration::from_millis(50);
        let mut why = String::new();
        for _ in 0..LATER_PART_TRIES {
            why = match self.submit_part(pdu.clone()).await {
                PartOutcome::Taken(id) => return Ok(id),
                PartOutcome::Throttled => "throttled".into(),
                PartOutcome::NotTaken(why) => why,
                PartOutcome::Refused { message, .. } | PartOutcome::Lost(message) => {
                    return Err(message);
                }
            };
            tokio::time::sleep(jittered(pause)).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
        Err(format!("still not taken ({why})"))
    }

    async fn submit_all(&self, sms: &OutgoingSms<'_>) -> Attempt {
        let reference = self.reference.fetch_add(1, Ordering::Relaxed);
        let encoded = text::encode(sms.body, reference);
        let total = encoded.parts.len();
        let mut ids = Vec::with_capacity(total);
        for (number, bytes) in encoded.parts.iter().enumerate() {
            let Some(pdu) = self.submit_sm(sms.to, encoded.data_coding, encoded.esm_class(), bytes)
            else {
                return Attempt::Answered(ProviderReply::Rejected {
                    code: "smpp_unencodable".into(),
                    message: "the number or text does not fit a submit_sm".into(),
                });
            };
            if number == 0 {
                match self.submit_part(pdu).await {
                    PartOutcome::Taken(id) => ids.push(id),
                    PartOutcome::Throttled => return Attempt::Answered(ProviderReply::RateLimited),
                    PartOutcome::NotTaken(why) => {
                        tracing::debug!(reason = %why, "smpp submit not taken");
                        return Attempt::Unreachable;
                    }
                    PartOutcome::Refused { code, message } => {
                        return Attempt::Answered(ProviderReply::Rejected { code, message });
                    }
                    PartOutcome::Lost(why) => return Attempt::Lost(why),
                }
                continue;
            }
            match self.submit_later_part(pdu).await {
                Ok(id) => ids.push(id),
                Err(why) => {
                    return Attempt::Lost(format!(
                        "part {} of {total} not taken after the ones before it were: {why}",
                        number + 1
                    ));
                }
            }
        }
        Attempt::Answered(ProviderReply::Accepted {
            sid: ids.first().cloned().unwrap_or_default(),
            status: Status::Queued,
            provider_status: "ESME_ROK".into(),
            parts: ids,
        })
    }
}

impl Connector for Smpp {
    fn name(&self) -> &'static str {
        "smpp"
    }

    fn submit<'a>(&'a self, sms: &'a OutgoingSms<'a>) -> BoxFuture<'a, Attempt> {
        Box::pin(self.submit_all(sms))
    }

    /// query_sm is not asked: SMSCs answer it unevenly, and receipts come
    /// on the bind; late ones are left to reconciliation's deadline.
    fn lookup<'a>(&'a self, _sid: &'a str) -> BoxFuture<'a, Lookup> {
        Box::pin(async { Lookup::Failed("lookups are not asked over smpp".into()) })
    }

    fn take_receipts(&self) -> Option<mpsc::Receiver<PushedReceipt>> {
        self.receipts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    fn is_up(&self) -> bool {
        self.link.sender().is_some()
    }

    fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in [&self.config.password, &self.config.system_id] {
            if !secret.is_empty() {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }
}
