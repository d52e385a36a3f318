//! Transport-neutral SMS logic: validate, record, send, follow callbacks.

mod error;
mod event;
pub mod pairs;
pub mod providers;
mod status;
mod validate;

use std::time::Duration;

use chrono::{DateTime, Utc};
use smsops_common::auth::Caller;

pub use error::SmsError;
pub use event::{OutboxEvent, SmsEvent};
pub use status::Status;

use self::{
    pairs::PairDirectory,
    providers::{Dispatcher, OutgoingSms, SendOutcome, codes},
};
use crate::store::{Applied, Change, HistoryRow, ListFilter, MessageRow, Store, StoreError};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;
pub const MAX_BATCH: usize = 1000;

/// A message to send, as a caller gives it.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub pair_id: String,
    pub to: String,
    pub body: String,
    pub idempotency_key: String,
    pub session_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub pair_id: Option<String>,
    pub status: Option<String>,
    pub session_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub page_size: u32,
    pub page_token: String,
}

pub struct SmsCore {
    store: Store,
    pairs: PairDirectory,
    dispatcher: Dispatcher,
    /// Wakes the outbox relay when there is something new to publish.
    outbox: tokio::sync::Notify,
}

impl SmsCore {
    pub fn new(store: Store, pairs: PairDirectory, dispatcher: Dispatcher) -> Self {
        Self {
            store,
            pairs,
            dispatcher,
            outbox: tokio::sync::Notify::new(),
        }
    }

    pub fn outbox_signal(&self) -> &tokio::sync::Notify {
        &self.outbox
    }

    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Records the message, sends it once, and records how that went. The
    /// same idempotency key always returns the same message, sent once.
    pub async fn send(
        &self,
        caller: &Caller,
        request: SendRequest,
    ) -> Result<MessageRow, SmsError> {
        let to = validate::phone(&request.to)?;
        let (body_length, segments) = validate::body(&request.body)?;
        let key = validate::idempotency_key(&request.idempotency_key)?;
        if let Some(key) = &key
            && let Some(existing) = self.store.by_idempotency_key(key).await?
        {
            return Ok(existing);
        }
        let pair = self.pairs.get(caller, request.pair_id.trim()).await?;
        let now = Utc::now();
        let row = MessageRow {
            id: uuid::Uuid::now_v7().to_string(),
            idempotency_key: key.clone(),
            pair_id: pair.id,
            country: pair.country,
            operator: pair.operator,
            is_high_priority: pair.is_high_priority,
            session_id: Some(request.session_id.trim().to_string()).filter(|s| !s.is_empty()),
            to_number: to,
            body_length,
            segments,
            status: Status::Accepted.as_str().to_string(),
            provider: self.dispatcher.provider().name().to_string(),
            provider_sid: None,
            error_code: None,
            error_message: None,
            created_at: now,
            updated_at: now,
        };
        match self
            .store
            .insert(&row, &OutboxEvent::for_message(&row, now))
            .await
        {
            Ok(()) => self.outbox.notify_one(),
            // Lost a race with the same key: the winner sends, we answer with its message.
            Err(StoreError::Duplicate) if key.is_some() => {
                let key = key.unwrap_or_default();
                return self
                    .store
                    .by_idempotency_key(&key)
                    .await?
                    .ok_or_else(|| SmsError::NotFound(format!("message with key {key}")));
            }
            Err(err) => return Err(err.into()),
        }
        let outcome = self
            .dispatcher
            .send(&OutgoingSms {
                to: &row.to_number,
                body: &request.body,
            })
            .await;
        let change = match outcome {
            SendOutcome::Accepted {
                sid,
                status,
                provider_status,
            } => Change {
                status,
                provider_sid: Some(sid),
                provider_status: Some(provider_status),
                error_code: None,
                error_message: None,
            },
            SendOutcome::Rejected { code, message } => failed(code, message),
            SendOutcome::Uncertain { message } => {
                tracing::warn!(message_id = %row.id, reason = %message, "provider outcome uncertain");
                failed(codes::UNCERTAIN.into(), message)
            }
            SendOutcome::NotTaken { code, message } => failed(code.into(), message),
        };
        let applied = self
            .store
            .apply(&row.id, &change, |row| {
                OutboxEvent::for_message(row, Utc::now())
            })
            .await?;
        self.outbox.notify_one();
        Ok(match applied {
            Applied::Moved(row) | Applied::Stale(row) => *row,
            Applied::Unknown => row,
        })
    }

    /// Sends each message on its own; a bad one does not stop the others.
    pub async fn send_batch(
        &self,
        caller: &Caller,
        requests: Vec<SendRequest>,
    ) -> Result<Vec<Result<MessageRow, SmsError>>, SmsError> {
        if requests.len() > MAX_BATCH {
            return Err(SmsError::InvalidArgument(format!(
                "a batch holds at most {MAX_BATCH} messages"
            )));
        }
        let sends = requests
            .into_iter()
            .map(|request| self.send(caller, request));
        Ok(futures::future::join_all(sends).await)
    }

    pub async fn get(
        &self,
        _caller: &Caller,
        id: &str,
    ) -> Result<(MessageRow, Vec<HistoryRow>), SmsError> {
        let row = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| SmsError::NotFound(format!("no message with id {id}")))?;
        let history = self.store.history(id).await?;
        Ok((row, history))
    }

    pub async fn list(
        &self,
        _caller: &Caller,
        query: ListQuery,
    ) -> Result<(Vec<MessageRow>, Option<String>), SmsError> {
        let size = match query.page_size {
            0 => DEFAULT_PAGE_SIZE,
            1..=MAX_PAGE_SIZE => query.page_size,
            _ => {
                return Err(SmsError::InvalidArgument(format!(
                    "page_size must be between 1 and {MAX_PAGE_SIZE}"
                )));
            }
        };
        let status =
            match query.status.as_deref() {
                None => None,
                Some(value) => Some(Status::parse(value).ok_or_else(|| {
                    SmsError::InvalidArgument(format!("unknown status {value:?}"))
                })?),
            };
        let filter = ListFilter {
            pair_id: query.pair_id,
            status,
            session_id: query.session_id,
            since: query
                .since
                .as_deref()
                .map(|v| timestamp("since", v))
                .transpose()?,
            until: query
                .until
                .as_deref()
                .map(|v| timestamp("until", v))
                .transpose()?,
            before_id: Some(query.page_token).filter(|t| !t.is_empty()),
            limit: size + 1,
        };
        let mut rows = self.store.list(&filter).await?;
        let next = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last().map(|row| row.id.clone())
        } else {
            None
        };
        Ok((rows, next))
    }

    /// A provider's status callback: verified, then applied if it moves the
    /// message forward. Replays and late, older statuses change nothing.
    pub async fn status_callback(
        &self,
        provider: &str,
        query: &str,
        params: Vec<(String, String)>,
        signature: &str,
    ) -> Result<(), SmsError> {
        let handler = self.dispatcher.provider();
        if provider != handler.name() {
            return Err(SmsError::NotFound(format!("no provider {provider:?}")));
        }
        let base = handler.callback_url().ok_or_else(|| {
            SmsError::InvalidArgument("no status callback URL is configured".into())
        })?;
        let url = if query.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{query}")
        };
        if !handler.verify_callback(&url, &params, signature) {
            return Err(SmsError::InvalidSignature);
        }
        let update = handler.parse_callback(&params).ok_or_else(|| {
            SmsError::InvalidArgument("callback without a known message id and status".into())
        })?;
        let change = Change {
            status: update.status,
            provider_sid: None,
            provider_status: Some(update.provider_status),
            error_code: update.error_code,
            error_message: None,
        };
        // The callback can overtake our own record of the provider's answer;
        // give that a moment before calling the message unknown.
        for _ in 0..20 {
            let applied = self
                .store
                .apply_by_sid(handler.name(), &update.sid, &change, |row| {
                    OutboxEvent::for_message(row, Utc::now())
                })
                .await?;
            match applied {
                Applied::Moved(_) => {
                    self.outbox.notify_one();
                    return Ok(());
                }
                Applied::Stale(_) => return Ok(()),
                Applied::Unknown => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Err(SmsError::NotFound(format!(
            "no message with provider id {}",
            update.sid
        )))
    }
}

fn failed(code: String, message: String) -> Change {
    Change {
        status: Status::Failed,
        provider_sid: None,
        provider_status: None,
        error_code: Some(code),
        error_message: Some(message.chars().take(250).collect()),
    }
}

fn timestamp(name: &str, value: &str) -> Result<DateTime<Utc>, SmsError> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| SmsError::InvalidArgument(format!("{name} must be an RFC 3339 time")))
}
