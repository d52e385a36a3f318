//! Transport-neutral SMS logic: validate, record, send, follow callbacks.

mod accounts;
mod cut_off;
mod error;
pub mod health;
pub mod ingest;
pub mod pace;
pub mod pairs;
pub mod providers;
mod reconcile;
pub mod segments;
#[cfg(test)]
mod send_tests;
mod validate;
mod writer;

use std::{collections::HashMap, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use smsops_common::auth::{Caller, Quota, Role};
use smsops_common::trace::TraceHeaders;

pub use accounts::{Account, Accounts};
pub use error::SmsError;
pub use reconcile::{ReconcileConfig, Round};

use self::{
    accounts::Plan,
    cut_off::CutOff,
    pairs::PairDirectory,
    providers::{Dispatcher, OutgoingSms, SendOutcome, codes},
    writer::StatusWriter,
};
use crate::{
    domain::{
        Applied, Change, ListFilter, Message, MessageRepository, OutboxEvent, Pair, PairLookup,
        QuotaLedger, RepoError, RouteReason, Status, StatusChange, Target, quota,
    },
    store::Store,
};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;
pub const MAX_BATCH: usize = 1000;
/// Longest provider message id kept (the column's width).
const MAX_SID_LENGTH: usize = 64;
/// How long a send whose insert failed waits to learn whether it was kept.
const KEPT_ANSWER_WITHIN: Duration = Duration::from_secs(15 * 60);
/// A status callback is answered within this, under the gateway's timeout.
const CALLBACK_ANSWER_WITHIN: Duration = Duration::from_secs(4);

/// A message to send, as a caller gives it.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    pub pair_id: String,
    pub to: String,
    pub body: String,
    pub idempotency_key: String,
    pub session_id: String,
    /// From process-svc only: the session starter the send is charged to,
    /// and that user's quota.
    pub charge_to: Option<String>,
    pub charge_quota: Quota,
    /// The trace of the request the message came in, when not the call's.
    pub traceparent: Option<String>,
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

/// The logic, over its repositories: MySQL and operator-svc in production
/// (the defaults), in-memory ones in the unit tests.
pub struct SmsCore<M = Store, P = PairDirectory> {
    /// The cap a day across every provider account, if any.
    account_cap: Option<(String, u64)>,
    store: M,
    pairs: P,
    accounts: Accounts,
    /// Wakes the outbox relay when there is something new to publish.
    outbox: Arc<tokio::sync::Notify>,
    /// When this replica last failed to reach the message store.
    cut_off: CutOff,
}

impl<M, P> SmsCore<M, P>
where
    M: MessageRepository + QuotaLedger,
    P: PairLookup,
{
    /// Also starts the status writers, so it must run inside a runtime.
    /// `dispatchers`: the provider accounts, at least one, in the order a
    /// pair without a route tries them.
    pub fn new(
        store: M,
        pairs: P,
        dispatchers: Vec<Dispatcher>,
        account_daily_cap: Option<u64>,
    ) -> Self {
        assert!(!dispatchers.is_empty(), "sms-svc needs a provider account");
        let outbox = Arc::new(tokio::sync::Notify::new());
        let accounts = Accounts::start(dispatchers, &store, &outbox);
        Self {
            account_cap: account_daily_cap.map(|cap| ("account:all".to_string(), cap)),
            store,
            pairs,
            accounts,
            outbox,
            cut_off: CutOff::default(),
        }
    }

    pub fn outbox_signal(&self) -> &tokio::sync::Notify {
        &self.outbox
    }

    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// Sends each message on its own terms (a bad one does not stop the
    /// others). One transaction accepts the whole batch; each send's outcome
    /// is recorded as soon as the provider answers it.
    pub async fn send_batch(
        &self,
        caller: &Caller,
        requests: Vec<SendRequest>,
    ) -> Result<Vec<Result<Message, SmsError>>, SmsError> {
        if requests.len() > MAX_BATCH {
            return Err(SmsError::InvalidArgument(format!(
                "a batch holds at most {MAX_BATCH} messages"
            )));
        }
        let charge = charge_of(caller, &requests);
        let mut slots = self.prepare(caller, requests).await?;
        let mut fresh: Vec<usize> = (0..slots.len())
            .filter(|&i| slots[i].new_row().is_some())
            .collect();
        self.reserve(&charge, &mut slots, &mut fresh).await?;
        let messages: Vec<Message> = fresh
            .iter()
            .filter_map(|&i| slots[i].new_row().cloned())
            .collect();
        let events: Vec<OutboxEvent> = messages
            .iter()
            .map(|message| message.accepted().event)
            .collect();
        match self.store.insert_many(&messages, &events).await {
            Ok(()) => {}
            // Another request holds one of the keys: accept one by one instead.
            Err(RepoError::Duplicate) => self.insert_one_by_one(&mut slots, &fresh).await?,
            Err(err @ RepoError::Unanswered(_)) => {
                let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
                let Some(claimed) = self.claim_after_all(&ids).await else {
                    return Err(err.into());
                };
                // None claimed: never kept, or all swept already.
                let kept = match ids.first() {
                    _ if !claimed.is_empty() => true,
                    Some(first) => matches!(self.store.get(first).await, Ok(Some(_))),
                    None => false,
                };
                if !kept {
                    return Err(err.into());
                }
                tracing::warn!(error = %err, messages = ids.len(), claimed = claimed.len(), "message store failed to answer a commit that landed");
                self.settle_unclaimed(&mut slots, &fresh, &claimed).await;
            }
            Err(err) => return Err(err.into()),
        }
        self.outbox.notify_one();

        // Recorded as accepted; the provider gets them once the writer
        // can keep up with what sending them will bring back.
        for account in self.accounts.iter() {
            account.writer.wait_for_room().await;
        }
        let still_new: Vec<usize> = fresh
            .into_iter()
            .filter(|&i| slots[i].new_row().is_some())
            .collect();
        let sends = still_new.iter().filter_map(|&i| match &slots[i] {
            Slot::New {
                message,
                body,
                plan,
            } => Some(self.send_and_record(i, message, body, plan)),
            Slot::Done(_) | Slot::SameAs(_) | Slot::Valid { .. } => None,
        });
        for (i, result) in futures::future::join_all(sends).await {
            slots[i] = Slot::Done(result);
        }
        Ok(resolve(slots))
    }

    /// Claims what a batch whose insert failed kept all the same: a commit
    /// can land and its answer be lost with the connection. Kept, its
    /// messages are this request's to send; nobody else will (a retry with
    /// the same key finds them accepted and leaves them be). The claim
    /// keeps the sweep off them; those it already failed stay failed. Asks
    /// until the store answers, within [`KEPT_ANSWER_WITHIN`]: the send is
    /// detached from its caller, so waiting out an outage costs nobody.
    /// `None` when the store never answered.
    async fn claim_after_all(&self, ids: &[String]) -> Option<Vec<String>> {
        let deadline = tokio::time::Instant::now() + KEPT_ANSWER_WITHIN;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.store.claim_accepted(ids).await {
                Ok(claimed) => return Some(claimed),
                Err(err) if tokio::time::Instant::now() + pause > deadline => {
                    tracing::warn!(error = %err, messages = ids.len(), "could not learn whether a failed insert was kept");
                    return None;
                }
                Err(_) => {
                    self.cut_off.note();
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Kept but not claimed: the sweep failed them first. They are
    /// answered as stored, and not sent.
    async fn settle_unclaimed(&self, slots: &mut [Slot], fresh: &[usize], claimed: &[String]) {
        for &i in fresh {
            let Some(message) = slots[i].new_row() else {
                continue;
            };
            if claimed.contains(&message.id) {
                continue;
            }
            let stored = match self.store.get(&message.id).await {
                Ok(Some(stored)) => Ok(stored),
                Ok(None) => Err(SmsError::NotFound(format!("no message {}", message.id))),
                Err(err) => Err(err.into()),
            };
            slots[i] = Slot::Done(stored);
        }
    }

    /// Counts the new messages against their quotas before they are
    /// accepted; those past what a window has room for are refused with
    /// `quota_exceeded` (and when to try again), in request order.
    async fn reserve(
        &self,
        charge: &quota::Charge,
        slots: &mut [Slot],
        fresh: &mut Vec<usize>,
    ) -> Result<(), SmsError> {
        let account = self
            .account_cap
            .as_ref()
            .map(|(subject, cap)| (subject.as_str(), *cap));
        let windows = quota::windows(charge, account, Utc::now());
        if windows.is_empty() || fresh.is_empty() {
            return Ok(());
        }
        let granted = self.store.reserve(&windows, fresh.len() as u64).await?;
        let kept = granted.count as usize;
        if kept < fresh.len() {
            let why = format!(
                "over {}; try again in {}s",
                granted.limited_by.unwrap_or_else(|| "a quota".into()),
                granted.retry_after.unwrap_or(1)
            );
            for &i in &fresh[kept..] {
                slots[i] = Slot::Done(Err(SmsError::QuotaExceeded(
                    why.clone(),
                    granted.retry_after.unwrap_or(1),
                )));
            }
            fresh.truncate(kept);
        }
        Ok(())
    }

    /// Sends one accepted message and records the outcome at once, so the
    /// provider's id is stored before its status callbacks can need it.
    /// Goes down its plan only while a provider provably did not take it.
    async fn send_and_record(
        &self,
        slot: usize,
        message: &Message,
        body: &str,
        plan: &Plan,
    ) -> (usize, Result<Message, SmsError>) {
        let mut tried = None;
        for (i, &(at, reason)) in plan.iter().enumerate() {
            let account = self.accounts.at(at);
            let outcome = account
                .dispatcher
                .send(OutgoingSms {
                    to: &message.to,
                    body,
                })
                .await;
            let last = i + 1 == plan.len();
            if let SendOutcome::NotTaken { code, .. } = &outcome
                && !last
            {
                tracing::info!(message_id = %message.id, provider = %account.dispatcher.name(), code, "not taken; trying the next provider of the route");
                continue;
            }
            // The first of the plan is on the message already.
            let routed = (i > 0).then(|| (account.dispatcher.name().to_string(), reason));
            tried = Some((account, outcome, routed));
            break;
        }
        let Some((account, outcome, routed)) = tried else {
            return (slot, Err(SmsError::Internal("no provider account".into())));
        };
        let change = Change {
            routed,
            ..change_for(&message.id, outcome)
        };
        let target = Target::Id(message.id.clone());
        let recorded = match account.writer.apply(target, change).await {
            Ok(Applied::Moved(message) | Applied::Stale(message)) => Ok(*message),
            Ok(Applied::Unknown) => Err(SmsError::NotFound(format!("no message {}", message.id))),
            Err(err) => Err(err.into()),
        };
        (slot, recorded)
    }

    /// Validates every request, finds those whose key was already used, and
    /// looks up their pairs.
    async fn prepare(
        &self,
        caller: &Caller,
        requests: Vec<SendRequest>,
    ) -> Result<Vec<Slot>, SmsError> {
        caller
            .require_sender()
            .map_err(|err| SmsError::Forbidden(err.message))?;
        let mut slots = Vec::with_capacity(requests.len());
        // Scoped key → (first request with it, what that request asked).
        let mut keys: HashMap<String, (usize, String)> = HashMap::new();
        for (i, request) in requests.into_iter().enumerate() {
            let slot = match validated(caller, request) {
                Err(err) => Slot::Done(Err(err)),
                Ok(valid) => match valid.key.as_ref().and_then(|k| keys.get(k)) {
                    Some((first, hash)) if *hash == valid.hash => Slot::SameAs(*first),
                    Some((first, _)) => Slot::Done(Err(mismatch(&format!("item {first}")))),
                    None => {
                        if let Some(key) = &valid.key {
                            keys.insert(key.clone(), (i, valid.hash.clone()));
                        }
                        Slot::Valid(Box::new(valid))
                    }
                },
            };
            slots.push(slot);
        }
        let wanted: Vec<&str> = keys.keys().map(String::as_str).collect();
        for message in self.store.by_idempotency_keys(&wanted).await? {
            let first = message
                .idempotency_key
                .as_ref()
                .and_then(|key| keys.get(key));
            if let Some((i, hash)) = first {
                slots[*i] = Slot::Done(same_request(message, hash));
            }
        }
        let now = Utc::now();
        for slot in &mut slots {
            let Slot::Valid(valid) = slot else { continue };
            let valid = std::mem::take(valid.as_mut());
            let pair = self
                .pair(caller, valid.request.pair_id.trim())
                .await
                .and_then(|pair| validate::in_country(&valid.to, pair));
            *slot = match pair {
                Err(err) => Slot::Done(Err(err)),
                Ok(pair) => {
                    let plan = self.accounts.plan(&pair.id, &pair.route);
                    let (first, reason) =
                        plan.first().copied().unwrap_or((0, RouteReason::Default));
                    Slot::New {
                        message: Box::new(Message {
                            id: uuid::Uuid::now_v7().to_string(),
                            idempotency_key: valid.key,
                            pair,
                            session_id: Some(valid.request.session_id.trim().to_string())
                                .filter(|s| !s.is_empty()),
                            to: valid.to,
                            body_length: valid.length,
                            segments: valid.segments,
                            status: Status::Accepted,
                            provider: self.accounts.at(first).dispatcher.name().to_string(),
                            route_reason: Some(reason),
                            provider_sid: None,
                            error_code: None,
                            error_message: None,
                            created_at: now,
                            updated_at: now,
                            request_hash: Some(valid.hash),
                            traceparent: trace_of(valid.request.traceparent),
                        }),
                        body: valid.request.body,
                        plan,
                    }
                }
            };
        }
        Ok(slots)
    }

    async fn pair(&self, caller: &Caller, id: &str) -> Result<Pair, SmsError> {
        if id.is_empty() {
            return Err(SmsError::InvalidArgument(
                "country_operator_id is required".into(),
            ));
        }
        match self.pairs.get(caller, id).await {
            Ok(Some(pair)) => Ok(pair),
            Ok(None) => Err(SmsError::PairNotFound(id.to_string())),
            Err(err) => Err(SmsError::Upstream(err)),
        }
    }

    async fn insert_one_by_one(&self, slots: &mut [Slot], fresh: &[usize]) -> Result<(), SmsError> {
        for &i in fresh {
            let Some(message) = slots[i].new_row().cloned() else {
                continue;
            };
            let event = message.accepted().event;
            match self
                .store
                .insert_many(std::slice::from_ref(&message), &[event])
                .await
            {
                Ok(()) => {}
                Err(RepoError::Duplicate) => {
                    let key = message.idempotency_key.unwrap_or_default();
                    let hash = message.request_hash.unwrap_or_default();
                    let existing = self.store.by_idempotency_keys(&[&key]).await?.pop();
                    slots[i] = Slot::Done(match existing {
                        Some(existing) => same_request(existing, &hash),
                        None => Err(SmsError::NotFound("message with this key".into())),
                    });
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    pub async fn get(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Message, Vec<StatusChange>), SmsError> {
        let not_found = || SmsError::NotFound(format!("no message with id {id}"));
        // Ids are UUIDs; anything else names no message (and MySQL would
        // refuse to compare non-ASCII text with the ASCII id column).
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(not_found());
        }
        let mut message = self.store.get(id).await?.ok_or_else(not_found)?;
        let history = self.store.history(id).await?;
        message.to = caller.shown_number(&message.to);
        Ok((message, history))
    }

    pub async fn list(
        &self,
        caller: &Caller,
        query: ListQuery,
    ) -> Result<(Vec<Message>, Option<String>), SmsError> {
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
            before_id: page_token(query.page_token)?,
            limit: size + 1,
        };
        let mut messages = self.store.list(&filter).await?;
        let next = if messages.len() > size as usize {
            messages.truncate(size as usize);
            messages.last().map(|message| message.id.clone())
        } else {
            None
        };
        for message in &mut messages {
            message.to = caller.shown_number(&message.to);
        }
        Ok((messages, next))
    }

    pub async fn prune_quota_windows(&self) -> Result<u64, SmsError> {
        Ok(self.store.prune_quota_windows().await?)
    }

    /// Marks messages that stayed `accepted` longer than `stale_after` as
    /// `failed` / `provider_uncertain`: whoever was sending them is gone, and
    /// the provider may or may not have them, so they are never resent.
    pub async fn sweep_stale(&self, stale_after: Duration) -> Result<usize, SmsError> {
        // Cut off from the store, its senders could not claim what they
        // had kept either: they get a whole `stale_after` to do so first.
        if self.cut_off.within(stale_after) {
            return Ok(0);
        }
        let before = Utc::now() - chrono::Duration::from_std(stale_after).unwrap_or_default();
        let change = Change::failed(
            codes::UNCERTAIN,
            "no provider answer was recorded; not resent",
        );
        let applied = match self.store.sweep_stale(before, 500, &change).await {
            Ok(applied) => applied,
            Err(err) => {
                self.cut_off.note();
                return Err(err.into());
            }
        };
        let swept = applied
            .iter()
            .filter(|applied| matches!(applied, Applied::Moved(_)))
            .count();
        if swept > 0 {
            tracing::warn!(swept, "stale accepted messages marked provider_uncertain");
            self.outbox.notify_one();
        }
        Ok(swept)
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
        // Each account of the kind checks the signature with its own
        // secret against its own URL: the one that signed it is the sender.
        let of_kind: Vec<&Account> = self
            .accounts
            .iter()
            .filter(|account| account.dispatcher.connector().name() == provider)
            .collect();
        if of_kind.is_empty() {
            return Err(SmsError::NotFound(format!("no provider {provider:?}")));
        }
        let mut configured = false;
        let signed_by = of_kind.into_iter().find(|account| {
            let handler = account.dispatcher.connector();
            let Some(base) = handler.callback_url() else {
                return false;
            };
            configured = true;
            let url = if query.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{query}")
            };
            handler.verify_callback(&url, &params, signature)
        });
        let Some(account) = signed_by else {
            if !configured {
                return Err(SmsError::InvalidArgument(
                    "no status callback URL is configured".into(),
                ));
            }
            return Err(SmsError::InvalidSignature);
        };
        let handler = account.dispatcher.connector();
        let update = handler.parse_callback(&params).ok_or_else(|| {
            SmsError::InvalidArgument("callback without a known message id and status".into())
        })?;
        if !keepable_sid(&update.sid) {
            return Err(SmsError::NotFound(format!(
                "no message with provider id {:?}",
                update.sid
            )));
        }
        let sid = update.sid.clone();
        let change = update.into_change();
        // The callback can overtake our own record of the provider's answer;
        // the writer keeps it until that is recorded. Answer within the
        // gateway's call timeout: past it the callback stays kept, and a
        // provider id that never appears is unknown (a 404).
        let target = Target::Sid(sid.clone());
        let applied = account.writer.apply(target, change);
        match tokio::time::timeout(CALLBACK_ANSWER_WITHIN, applied).await {
            Ok(Ok(Applied::Moved(_) | Applied::Stale(_))) => Ok(()),
            Ok(Err(err)) => Err(err.into()),
            Ok(Ok(Applied::Unknown)) | Err(_) => Err(SmsError::NotFound(format!(
                "no message with provider id {sid}"
            ))),
        }
    }
}

/// One request's way through a batch. Short-lived, one per request, moved
/// rarely: boxing the finished result would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Slot {
    Done(Result<Message, SmsError>),
    /// Repeats the idempotency key of an earlier request in the same batch.
    SameAs(usize),
    Valid(Box<Valid>),
    New {
        message: Box<Message>,
        body: String,
        plan: Plan,
    },
}

impl Slot {
    fn new_row(&self) -> Option<&Message> {
        match self {
            Slot::New { message, .. } => Some(message),
            Slot::Done(_) | Slot::SameAs(_) | Slot::Valid(_) => None,
        }
    }
}

#[derive(Default)]
struct Valid {
    request: SendRequest,
    /// The idempotency key as stored: scoped to its caller.
    key: Option<String>,
    /// What was asked (see [`request_hash`]).
    hash: String,
    to: String,
    length: u32,
    segments: u32,
}

fn validated(caller: &Caller, request: SendRequest) -> Result<Valid, SmsError> {
    // A session's messages are process-svc's to write: anyone else naming
    // a session could make it skip a recipient it counts as sent.
    if !request.session_id.trim().is_empty() && caller.role != Role::Service {
        return Err(SmsError::Forbidden(
            "only process-svc sends a session's messages".into(),
        ));
    }
    let to = validate::phone(&request.to)?;
    let (length, segments) = validate::body(&request.body)?;
    let key =
        validate::idempotency_key(&request.idempotency_key)?.map(|key| scoped_key(caller, &key));
    let hash = request_hash(request.pair_id.trim(), &to, &request.body);
    Ok(Valid {
        request,
        key,
        hash,
        to,
        length,
        segments,
    })
}

/// The trace a message's events continue: its request's, if it names a
/// valid one, else the call's.
fn trace_of(request: Option<String>) -> Option<String> {
    let own = TraceHeaders {
        traceparent: request,
        tracestate: None,
    };
    if own.span_context().is_some() {
        return own.traceparent;
    }
    TraceHeaders::of_span(&tracing::Span::current()).traceparent
}

/// Whom a batch is charged to: the caller, or for process-svc the
/// session's starter it names (with the quota the starter had).
fn charge_of(caller: &Caller, requests: &[SendRequest]) -> quota::Charge {
    if caller.role == Role::Service
        && let Some(first) = requests.first()
    {
        return match &first.charge_to {
            Some(user) => quota::Charge {
                subject: format!("user:{user}"),
                quota: first.charge_quota,
            },
            None => quota::Charge {
                subject: format!("user:{}", caller.user_id),
                quota: Quota::UNLIMITED,
            },
        };
    }
    quota::Charge {
        subject: format!("user:{}", caller.user_id),
        quota: caller.quota,
    }
}

/// An idempotency key as stored. Each caller's keys are its own: the same
/// key from two users is two messages. process-svc's keys (`<session>:<seq>`)
/// stay as written, so sessions resume across this change without a resend;
/// no scoped key can look like one (base64url has no `:`).
fn scoped_key(caller: &Caller, key: &str) -> String {
    if caller.role == Role::Service {
        return key.to_string();
    }
    let scoped = format!("{}\n{key}", caller.user_id);
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, scoped.as_bytes());
    format!("u.{}", URL_SAFE_NO_PAD.encode(hash.as_ref()))
}

/// SHA-256 of what a send asked for, base64url: 43 characters.
fn request_hash(pair_id: &str, to: &str, body: &str) -> String {
    let asked = format!("{pair_id}\n{to}\n{body}");
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, asked.as_bytes());
    URL_SAFE_NO_PAD.encode(hash.as_ref())
}

/// The message a repeated key names, if the repeat asked for the same.
fn same_request(message: Message, hash: &str) -> Result<Message, SmsError> {
    match &message.request_hash {
        Some(stored) if stored != hash => Err(mismatch("an earlier message")),
        _ => Ok(message),
    }
}

fn mismatch(earlier: &str) -> SmsError {
    SmsError::IdempotencyMismatch(format!(
        "idempotency_key was used by {earlier} with another pair, number or body"
    ))
}

/// Final answers in request order; a repeated key gets its first request's message.
fn resolve(slots: Vec<Slot>) -> Vec<Result<Message, SmsError>> {
    let mut done: Vec<Result<Message, SmsError>> = Vec::with_capacity(slots.len());
    for slot in slots {
        let result = match slot {
            Slot::Done(result) => result,
            Slot::SameAs(first) => match done.get(first) {
                Some(Ok(message)) => Ok(message.clone()),
                Some(Err(_)) | None => Err(SmsError::InvalidArgument(format!(
                    "same idempotency_key as item {first}, which failed"
                ))),
            },
            Slot::Valid(_) | Slot::New { .. } => Err(SmsError::InvalidArgument(
                "message was not processed".into(),
            )),
        };
        done.push(result);
    }
    done
}

/// Records the receipts a provider pushes, each as soon as it comes, and
/// tells the provider whether it was kept. A receipt for a part not
/// recorded yet waits for it in the writer; one for a part never recorded
/// is answered as kept, or the provider would send it for ever.
async fn keep_receipts(
    mut receipts: tokio::sync::mpsc::Receiver<providers::PushedReceipt>,
    writer: StatusWriter,
) {
    while let Some(receipt) = receipts.recv().await {
        let writer = writer.clone();
        tokio::spawn(async move {
            let part = receipt.update.sid.clone();
            let change = receipt.update.into_change();
            let kept = match writer.apply(Target::Part(part.clone()), change).await {
                Ok(Applied::Unknown) => {
                    tracing::warn!(part = %part, "receipt for an unknown part");
                    true
                }
                Ok(_) => true,
                Err(err) => {
                    tracing::warn!(error = %err, part = %part, "receipt not kept; the provider will send it again");
                    false
                }
            };
            let _ = receipt.done.send(kept);
        });
    }
}

/// The provider message ids sms-svc can keep (and look callbacks up by).
fn keepable_sid(sid: &str) -> bool {
    !sid.is_empty() && sid.len() <= MAX_SID_LENGTH && sid.bytes().all(|b| b.is_ascii_graphic())
}

fn change_for(id: &str, outcome: SendOutcome) -> Change {
    match outcome {
        // Taken, but under an id we could not match its callbacks to.
        SendOutcome::Accepted { sid, parts, .. }
            if !keepable_sid(&sid) || !parts.iter().all(|part| keepable_sid(part)) =>
        {
            tracing::warn!(message_id = %id, sid_length = sid.len(), "provider message id not kept");
            Change::failed(
                codes::UNCERTAIN,
                "the provider answered with a message id that cannot be kept",
            )
        }
        SendOutcome::Accepted {
            sid,
            status,
            provider_status,
            parts,
        } => Change {
            status,
            provider_sid: Some(sid),
            provider_status: Some(provider_status),
            error_code: None,
            error_message: None,
            parts,
            routed: None,
        },
        SendOutcome::Rejected { code, message } => Change::failed(code, &message),
        SendOutcome::Uncertain { message } => {
            tracing::warn!(message_id = %id, reason = %message, "provider outcome uncertain");
            Change::failed(codes::UNCERTAIN, &message)
        }
        SendOutcome::NotTaken { code, message } => Change::failed(code, &message),
    }
}

fn timestamp(name: &str, value: &str) -> Result<DateTime<Utc>, SmsError> {
    DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| SmsError::InvalidArgument(format!("{name} must be an RFC 3339 time")))
}

/// A page token is the last id of the page before: a UUID.
fn page_token(token: String) -> Result<Option<String>, SmsError> {
    if token.is_empty() {
        return Ok(None);
    }
    if uuid::Uuid::try_parse(&token).is_err() {
        return Err(SmsError::InvalidArgument(
            "page_token is not one this API gave".into(),
        ));
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_printable_ascii_provider_ids_are_kept() {
        assert!(keepable_sid("SM0123456789abcdef0123456789abcdef"));
        assert!(!keepable_sid(""));
        assert!(!keepable_sid("SMé"));
        assert!(!keepable_sid("SM 1"));
        assert!(!keepable_sid(&"S".repeat(65)));
    }

    #[test]
    fn an_unkeepable_provider_id_fails_the_message_as_uncertain() {
        let outcome = SendOutcome::Accepted {
            sid: "SMé".into(),
            status: Status::Queued,
            provider_status: "queued".into(),
            parts: Vec::new(),
        };
        let change = change_for("m1", outcome);
        assert_eq!(change.status, Status::Failed);
        assert_eq!(change.error_code.as_deref(), Some(codes::UNCERTAIN));
        // Nor a part's: its receipt could not be matched either.
        let outcome = SendOutcome::Accepted {
            sid: "a1".into(),
            status: Status::Queued,
            provider_status: "ESME_ROK".into(),
            parts: vec!["a1".into(), "a".repeat(65)],
        };
        assert_eq!(change_for("m1", outcome).status, Status::Failed);
    }
}
