//! One session's run on the replica that holds its lease: paces sends to
//! the rate, renews the lease with its progress, and ends the run when the
//! session is stopped, restarted, done or failing.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::{StreamExt, future::BoxFuture, stream::FuturesUnordered};
use mongodb::bson::DateTime;
use serde_json::json;
use smsops_common::{
    ApiError, ErrorCode,
    audit::{Entry, Recorder, kind},
    trace::{TraceHeaders, link_to},
};
use smsops_proto::sms::v1::{SendSmsRequest, SendSmsResult, send_sms_result};
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};
use tracing::Instrument;

use super::{clients::Clients, event, pacer::Pacer};
use crate::{
    config::Supervision,
    store::{AuditDoc, Ending, FAILED, Progress, RUNNING, STOPPED, STOPPING, SessionDoc, Store},
};

/// Who the audit trail names for what the service did on its own.
pub const SERVICE: &str = "process-svc";
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// sms-svc's code for a send over its starter's quota.
const QUOTA_EXCEEDED: &str = "quota_exceeded";
const PROVIDER_UNCERTAIN: &str = "provider_uncertain";

/// Codes that say what a send goes through is away (sms-svc, its message
/// store), not that the session's messages are wrong.
fn is_outage(code: &str) -> bool {
    code == ErrorCode::Unavailable.as_str() || code == ErrorCode::Timeout.as_str()
}
/// The longest a quota pause lasts before trying again (a day's window
/// may open hours later; an admin may raise the quota meanwhile).
const QUOTA_WAIT_MAX: Duration = Duration::from_secs(300);

/// What every runner on a replica shares.
pub struct RunContext {
    pub store: Store,
    pub clients: Clients,
    pub supervision: Supervision,
    /// Each active session's allowed rate (messages per minute) under the
    /// country budgets; a session not in it runs at its own rate.
    pub shares: RwLock<HashMap<String, f64>>,
    /// The global audit log: people's actions, and the service's own.
    pub audit: Recorder,
}

impl RunContext {
    pub fn lease_until(&self) -> DateTime {
        let ttl = self.supervision.lease_ttl.as_millis() as i64;
        DateTime::from_millis(DateTime::now().timestamp_millis() + ttl)
    }

    pub fn rate_of(&self, session: &SessionDoc) -> f64 {
        let share = self
            .shares
            .read()
            .ok()
            .and_then(|shares| shares.get(&session.id).copied());
        share
            .unwrap_or(session.plan.rate_per_minute)
            .min(session.plan.rate_per_minute)
    }
}

/// A call's first sequence number, its message count, and sms-svc's answer.
type Answer = (u64, u64, Result<Vec<SendSmsResult>, ApiError>);

/// Calls to sms-svc a session has out at once: a slow answer must not hold
/// back the next message due, or sends would bunch up behind it.
const MAX_IN_FLIGHT: usize = 8;

pub struct Runner {
    ctx: Arc<RunContext>,
    session: SessionDoc,
    progress: Progress,
    pacer: Pacer,
    /// The next sequence number never handed out.
    sent_to: u64,
    /// Calls out, by first sequence number: their messages count.
    pending: BTreeMap<u64, u64>,
    in_flight: FuturesUnordered<BoxFuture<'static, Answer>>,
    /// Calls sms-svc did not take (it was down): sent again, same numbers.
    retry: VecDeque<(u64, u64)>,
    /// Failed sends in a row.
    streak: u32,
    backoff: Duration,
    paused_until: Instant,
    /// The lease is ours until then, as far as we know.
    held_until: Instant,
    pair_label: String,
}

/// What a run leads to next.
enum Step {
    Exit(Exit),
    /// Restarted: run again as the session's new generation.
    Again(Box<SessionDoc>),
}

/// How a run ended, for the supervisor.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped, failed or done: nothing more to run.
    Ended,
    /// Another replica holds it now, or the store cannot be reached.
    Lost,
    /// This replica is shutting down; the lease was let go.
    Released,
}

impl Runner {
    pub fn new(ctx: Arc<RunContext>, session: SessionDoc) -> Self {
        let progress = Progress {
            next_seq: session.next_seq,
            counters: session.counters.clone(),
            last_error: session.last_error.clone(),
            // A new run tries at once; it pauses again if it must.
            paused: String::new(),
        };
        let rate = ctx.rate_of(&session) / 60.0;
        let pair_label = format!("{}/{}", session.country, session.operator);
        let held_until = Instant::now() + ctx.supervision.lease_ttl;
        let next = session.next_seq.max(0) as u64;
        Self {
            pacer: Pacer::new(rate, next, Instant::now()),
            sent_to: next,
            pending: BTreeMap::new(),
            in_flight: FuturesUnordered::new(),
            retry: VecDeque::new(),
            ctx,
            session,
            progress,
            streak: 0,
            backoff: BACKOFF_FIRST,
            paused_until: Instant::now(),
            held_until,
            pair_label,
        }
    }

    /// Runs until the session ends or is lost, or `shutdown` turns true.
    pub async fn run(mut self, poke: Arc<Notify>, mut shutdown: watch::Receiver<bool>) -> Exit {
        let id = self.session.id.clone();
        let exit = loop {
            match self.run_once(&poke, &mut shutdown).await {
                Step::Exit(exit) => break exit,
                Step::Again(session) => {
                    let ctx = self.ctx.clone();
                    self = Runner::new(ctx, *session);
                }
            }
        };
        tracing::info!(session = %id, exit = ?exit, "session run ended");
        exit
    }

    async fn run_once(&mut self, poke: &Notify, shutdown: &mut watch::Receiver<bool>) -> Step {
        if self.session.state == STOPPING {
            return self.end_stopping().await;
        }
        if let Some(step) = self.begin().await {
            return step;
        }
        let mut heartbeat = tokio::time::interval(self.ctx.supervision.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            if let Some(reason) = self.finished() {
                self.drain().await;
                return Step::Exit(self.finish(reason).await);
            }
            let wake = self.next_send_at();
            tokio::select! {
                Some(answer) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.take_answer(answer);
                    if self.streak >= self.ctx.supervision.failure_streak {
                        self.drain().await;
                        return Step::Exit(self.fail().await);
                    }
                }
                () = tokio::time::sleep_until(wake) => self.send_due(),
                _ = heartbeat.tick() => {
                    if let Some(step) = self.check().await {
                        return step;
                    }
                }
                () = poke.notified() => {
                    if let Some(step) = self.check().await {
                        return step;
                    }
                }
                _ = shutdown.changed() => {
                    self.drain().await;
                    self.save().await;
                    let _ = self.ctx.store.release(&self.session.id, &self.ctx.supervision.replica).await;
                    return Step::Exit(Exit::Released);
                }
            }
        }
    }

    /// Marks the session running; a session that was already running was
    /// taken over from a replica that went away, which the audit records.
    async fn begin(&mut self) -> Option<Step> {
        let resumed = self.session.state == RUNNING;
        let reason = format!(
            "taken over by {} at message {}",
            self.ctx.supervision.replica, self.progress.next_seq
        );
        let audit = resumed.then(|| AuditDoc {
            action: "resume".into(),
            at: DateTime::now(),
            by: SERVICE.into(),
            by_email: String::new(),
            reason: reason.clone(),
            forced: false,
        });
        let replica = &self.ctx.supervision.replica;
        let id = &self.session.id;
        match self
            .ctx
            .store
            .mark_running(id, replica, self.session.generation, audit)
            .await
        {
            Ok(Some(session)) => {
                self.session = session;
                if resumed {
                    self.audit_service(kind::SESSION_RESUMED, None, reason);
                }
                return None;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(session = %id, error = %err, "cannot mark session running");
                return Some(Step::Exit(Exit::Lost));
            }
        }
        // Stopped before it began: end it here, if it is still ours.
        match self.ctx.store.get(id).await {
            Ok(Some(session))
                if session.state == STOPPING
                    && session.lease_owner.as_deref() == Some(replica.as_str())
                    && session.generation == self.session.generation =>
            {
                self.session = session;
                Some(self.end_stopping().await)
            }
            _ => Some(Step::Exit(Exit::Lost)),
        }
    }

    /// The first number not yet answered: what a new holder resumes from.
    fn watermark(&self) -> u64 {
        let pending = self.pending.keys().next().copied();
        let retry = self.retry.iter().map(|(first, _)| *first).min();
        [pending, retry]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.sent_to)
    }

    fn sync_progress(&mut self) {
        self.progress.next_seq = self.watermark() as i64;
    }

    /// Waits for every call out and counts its answer.
    /// Numbers queued to go again lie below others already sent: before a
    /// stop they get one more try, so a stop leaves no hole in what was sent.
    /// Those still refused stay below the saved position, for a restart.
    async fn fill_holes(&mut self) {
        let queued: Vec<(u64, u64)> = self.retry.drain(..).collect();
        for (first, count) in queued {
            self.launch(first, count);
        }
        self.drain().await;
    }

    async fn drain(&mut self) {
        while let Some(answer) = self.in_flight.next().await {
            self.take_answer(answer);
        }
        self.sync_progress();
    }

    /// Renews the lease with the progress so far, and acts on what the
    /// stored session says: stopping, or a new rate.
    async fn check(&mut self) -> Option<Step> {
        self.sync_progress();
        let renewed = self
            .ctx
            .store
            .renew(
                &self.session.id,
                &self.ctx.supervision.replica,
                self.session.generation,
                self.ctx.lease_until(),
                &self.progress,
            )
            .await;
        match renewed {
            Ok(Some(session)) => {
                self.held_until = Instant::now() + self.ctx.supervision.lease_ttl;
                self.session = session;
                if self.session.state == STOPPING {
                    // Nothing may be sent once the stop is answered: let
                    // what is out land and count it first.
                    self.drain().await;
                    self.fill_holes().await;
                    return Some(self.end_stopping().await);
                }
                let rate = self.ctx.rate_of(&self.session) / 60.0;
                self.pacer.set_rate(rate, self.sent_to, Instant::now());
                None
            }
            Ok(None) => Some(Step::Exit(Exit::Lost)),
            Err(err) => {
                tracing::warn!(session = %self.session.id, error = %err, "cannot renew session lease");
                // Past its lease another replica may run it: stop sending.
                (Instant::now() >= self.held_until).then_some(Step::Exit(Exit::Lost))
            }
        }
    }

    fn next_send_at(&self) -> Instant {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            // An answer wakes the loop first.
            return Instant::now() + Duration::from_secs(3600);
        }
        let at = if self.retry.is_empty() {
            self.pacer.next_at(self.sent_to)
        } else {
            Instant::now()
        };
        at.max(self.paused_until)
    }

    /// Sends what is due by now as one call: a call sms-svc did not take,
    /// or the new messages the pace allows.
    fn send_due(&mut self) {
        let now = Instant::now();
        if self.in_flight.len() >= MAX_IN_FLIGHT || now < self.paused_until {
            return;
        }
        if let Some((first, count)) = self.retry.pop_front() {
            // Never more in one call than sms-svc takes in one batch.
            let most = (self.ctx.supervision.max_batch as u64).max(1);
            if count > most {
                self.retry.push_front((first + most, count - most));
            }
            self.launch(first, count.min(most));
            return;
        }
        let next = self.sent_to;
        let mut due = self.pacer.due(now, next).saturating_sub(next);
        due = due.min(self.ctx.supervision.max_batch as u64);
        if self.session.plan.limit > 0 {
            due = due.min((self.session.plan.limit as u64).saturating_sub(next));
        }
        if due > 0 {
            self.launch(next, due);
            self.sent_to += due;
        }
    }

    fn launch(&mut self, first: u64, count: u64) {
        let plan = &self.session.plan;
        let messages: Vec<SendSmsRequest> = (first..first + count)
            .map(|seq| SendSmsRequest {
                country_operator_id: self.session.pair_id.clone(),
                to: plan.recipient(seq),
                body: plan.body(seq, &self.pair_label),
                // Resending after a crash must not send twice.
                idempotency_key: format!("{}:{seq}", self.session.id),
                session_id: self.session.id.clone(),
                // Charged to whoever started it, under the quota it had.
                charge_to: self.session.started_by.clone(),
                quota_per_minute: self.session.quota.per_minute,
                quota_per_day: self.session.quota.per_day,
                // The batch's own trace (its call's).
                traceparent: String::new(),
            })
            .collect();
        let clients = self.ctx.clients.clone();
        let span = self.batch_span(first, count);
        self.pending.insert(first, count);
        self.in_flight.push(Box::pin(async move {
            (first, count, clients.send(messages).instrument(span).await)
        }));
    }

    fn take_answer(&mut self, (first, count, answer): Answer) {
        self.pending.remove(&first);
        let mut outage = None;
        let mut waits = false;
        match answer {
            Ok(mut results) => {
                if let Some(pause) = self.over_quota(first, count, &mut results) {
                    self.pause_for_quota(pause);
                    waits = true;
                }
                for (seq, result) in (first..).zip(results) {
                    // The store or provider path was away for this one: not
                    // the session's failure. Sent again under its own
                    // idempotency key, so never twice.
                    if let Some(send_sms_result::Result::Error(err)) = &result.result
                        && is_outage(&err.code)
                    {
                        self.queue_retry(seq, 1);
                        outage = Some(format!("{}: {}", err.code, err.message));
                        continue;
                    }
                    self.progress.counters.submitted += 1;
                    match result.result {
                        Some(send_sms_result::Result::Sms(sms)) if sms.status != FAILED => {
                            self.progress.counters.accepted += 1;
                            self.streak = 0;
                        }
                        Some(send_sms_result::Result::Sms(sms)) => {
                            self.progress.counters.failed += 1;
                            // Uncertain is a timeout, a crash or an outage on
                            // the way, never the session's own doing.
                            if sms.error_code != PROVIDER_UNCERTAIN {
                                self.streak += 1;
                            }
                            self.progress.last_error =
                                format!("{}: {}", sms.error_code, sms.error_message);
                        }
                        Some(send_sms_result::Result::Error(err)) => {
                            self.progress.counters.failed += 1;
                            self.streak += 1;
                            self.progress.last_error = format!("{}: {}", err.code, err.message);
                        }
                        None => {}
                    }
                }
            }
            // Not taken: the same numbers go again after the pause. sms-svc
            // or its store being away is no failure of the session's.
            Err(err) if is_outage(err.code.as_str()) => {
                self.retry.push_back((first, count));
                outage = Some(format!("{}: {}", err.code, err.message));
            }
            Err(err) => {
                self.retry.push_back((first, count));
                self.streak += 1;
                self.progress.last_error = format!("{}: {}", err.code, err.message);
            }
        }
        if let Some(why) = outage {
            self.pause_for_outage(why);
            return;
        }
        // An answer to a call sent before the pause says nothing of its end.
        if !waits && !self.progress.paused.is_empty() && Instant::now() >= self.paused_until {
            tracing::info!(session = %self.session.id, "session sends again");
            self.progress.paused.clear();
        }
        if self.streak == 0 {
            self.backoff = BACKOFF_FIRST;
            return;
        }
        tracing::warn!(session = %self.session.id, streak = self.streak, error = %self.progress.last_error, "session send failed, backing off");
        self.paused_until = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.pacer.restart_at(self.sent_to, self.paused_until);
    }

    /// Takes the messages sms-svc refused for a quota (and those after
    /// them) out of `results` and queues them to go again: a quota is no
    /// failure of the session's, it only waits. How long to wait, if any.
    fn over_quota(
        &mut self,
        first: u64,
        count: u64,
        results: &mut Vec<SendSmsResult>,
    ) -> Option<(Duration, String)> {
        let at = results.iter().position(|r| {
            matches!(&r.result, Some(send_sms_result::Result::Error(err)) if err.code == QUOTA_EXCEEDED)
        })?;
        let wait = results[at..]
            .iter()
            .filter_map(|r| match &r.result {
                Some(send_sms_result::Result::Error(err)) if err.code == QUOTA_EXCEEDED => {
                    Some((u64::from(err.retry_after_secs.max(1)), err.message.clone()))
                }
                _ => None,
            })
            .max_by_key(|(secs, _)| *secs);
        results.truncate(at);
        self.retry.push_back((first + at as u64, count - at as u64));
        wait.map(|(secs, why)| (Duration::from_secs(secs).min(QUOTA_WAIT_MAX), why))
    }

    /// Queues messages to go again, joined to the last range queued when
    /// they follow it: a batch refused message by message goes again as one.
    fn queue_retry(&mut self, first: u64, count: u64) {
        let most = self.ctx.supervision.max_batch as u64;
        if let Some((last, n)) = self.retry.back_mut()
            && *last + *n == first
            && *n + count <= most
        {
            *n += count;
            return;
        }
        self.retry.push_back((first, count));
    }

    /// Waits out an outage, however long, backing off up to [`BACKOFF_MAX`]
    /// between tries; the first answer that is not an outage ends it.
    fn pause_for_outage(&mut self, why: String) {
        if self.progress.paused.is_empty() {
            tracing::warn!(session = %self.session.id, reason = %why, "session paused by an outage");
        }
        self.progress.last_error = why.clone();
        self.progress.paused = why;
        // Up to eight calls are out at once: the refusals of one try back
        // off once, not eight times over.
        let now = Instant::now();
        if now >= self.paused_until {
            self.paused_until = now + self.backoff;
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        }
        self.pacer.restart_at(self.sent_to, self.paused_until);
    }

    fn pause_for_quota(&mut self, (wait, why): (Duration, String)) {
        tracing::info!(session = %self.session.id, wait_secs = wait.as_secs(), "session paused by a quota");
        self.progress.last_error = format!("paused: {QUOTA_EXCEEDED}: {why}");
        self.progress.paused = format!("{QUOTA_EXCEEDED}: {why}");
        self.paused_until = self.paused_until.max(Instant::now() + wait);
        self.pacer.restart_at(self.sent_to, self.paused_until);
    }

    /// A limit reached or a stop time passed.
    fn finished(&self) -> Option<String> {
        let plan = &self.session.plan;
        let done = self.sent_to >= plan.limit.max(0) as u64
            && self.pending.is_empty()
            && self.retry.is_empty();
        if plan.limit > 0 && done {
            return Some(format!("limit of {} messages reached", plan.limit));
        }
        match plan.stop_at {
            Some(at) if DateTime::now() >= at => Some("stop_at reached".into()),
            _ => None,
        }
    }

    async fn finish(&mut self, reason: String) -> Exit {
        let audit = AuditDoc {
            action: "stop".into(),
            at: DateTime::now(),
            by: SERVICE.into(),
            by_email: String::new(),
            reason: reason.clone(),
            forced: false,
        };
        let event = event::lifecycle("stopped", &self.snapshot(), STOPPED, &reason, SERVICE);
        let exit = self
            .end(Ending {
                state: STOPPED,
                reason: reason.clone(),
                by: SERVICE.into(),
                audit: Some(audit),
                event,
            })
            .await;
        if matches!(exit, Exit::Ended) {
            self.audit_service(kind::SESSION_STOPPED, Some(STOPPED), reason);
        }
        exit
    }

    /// What the service did on its own, in the global audit log too, as
    /// its account: a running session ended in `state`, or (`None`) was
    /// taken over. In the background: the run does not wait for auth-svc.
    fn audit_service(&self, kind: &str, state: Option<&str>, reason: String) {
        let entry = match state {
            Some(state) => Entry::new(kind, &self.session.id)
                .before(json!({ "state": RUNNING }))
                .after(json!({ "state": state, "reason": reason })),
            None => Entry::new(kind, &self.session.id).after(json!({ "reason": reason })),
        };
        let audit = self.ctx.audit.clone();
        tokio::spawn(async move { audit.record_service(entry).await });
    }

    async fn fail(&mut self) -> Exit {
        let reason = format!(
            "{} sends failed in a row; last error: {}",
            self.streak, self.progress.last_error
        );
        tracing::warn!(session = %self.session.id, reason = %reason, "session failed");
        let audit = AuditDoc {
            action: "fail".into(),
            at: DateTime::now(),
            by: SERVICE.into(),
            by_email: String::new(),
            reason: reason.clone(),
            forced: false,
        };
        let event = event::lifecycle("failed", &self.snapshot(), FAILED, &reason, SERVICE);
        let exit = self
            .end(Ending {
                state: FAILED,
                reason: reason.clone(),
                by: SERVICE.into(),
                audit: Some(audit),
                event,
            })
            .await;
        if matches!(exit, Exit::Ended) {
            self.audit_service(kind::SESSION_FAILED, Some(FAILED), reason);
        }
        exit
    }

    /// Ends a run the session's `stopping` asked for: a plain stop, or the
    /// first half of a restart, after which the run goes on.
    async fn end_stopping(&mut self) -> Step {
        self.sync_progress();
        if !self.session.restart_requested {
            let by = self.session.stopped_by.clone();
            let reason = "stopped on request".to_string();
            let event = event::lifecycle("stopped", &self.snapshot(), STOPPED, &reason, &by);
            let ending = Ending {
                state: STOPPED,
                reason,
                by,
                audit: None,
                event,
            };
            return Step::Exit(self.end(ending).await);
        }
        let by = self
            .session
            .audit
            .last()
            .map(|audit| audit.by.clone())
            .unwrap_or_default();
        let event = event::lifecycle("restarted", &self.snapshot(), "starting", "restart", &by);
        let again = self
            .ctx
            .store
            .begin_again(
                &self.session.id,
                &self.ctx.supervision.replica,
                self.session.generation,
                &self.progress,
                event,
            )
            .await;
        match again {
            Ok(Some(session)) => {
                tracing::info!(session = %session.id, generation = session.generation, "session restarted");
                Step::Again(Box::new(session))
            }
            Ok(None) => Step::Exit(Exit::Lost),
            Err(err) => {
                tracing::warn!(session = %self.session.id, error = %err, "cannot restart session");
                Step::Exit(Exit::Lost)
            }
        }
    }

    async fn end(&mut self, ending: Ending) -> Exit {
        self.progress.paused.clear();
        self.sync_progress();
        let ended = self
            .ctx
            .store
            .finish(
                &self.session.id,
                &self.ctx.supervision.replica,
                self.session.generation,
                &self.progress,
                ending,
            )
            .await;
        match ended {
            Ok(Some(session)) => {
                // A failed unlock leaves a stale lock, which the next start takes over.
                let _ = self
                    .ctx
                    .store
                    .unlock_pair(&session.pair_id, &session.id)
                    .await;
                Exit::Ended
            }
            Ok(None) => Exit::Lost,
            Err(err) => {
                tracing::warn!(session = %self.session.id, error = %err, "cannot end session");
                Exit::Lost
            }
        }
    }

    /// Saves progress; used when letting the session go.
    async fn save(&mut self) {
        self.sync_progress();
        let _ = self
            .ctx
            .store
            .renew(
                &self.session.id,
                &self.ctx.supervision.replica,
                self.session.generation,
                DateTime::now(),
                &self.progress,
            )
            .await;
    }

    /// A trace of its own for one batch of sends, linked to the request
    /// that started the session; none while traces are off.
    fn batch_span(&self, first: u64, count: u64) -> tracing::Span {
        if !smsops_common::telemetry::traces_on() {
            return tracing::Span::none();
        }
        let span = tracing::info_span!(
            parent: None,
            "session batch",
            otel.name = "session send",
            session.id = %self.session.id,
            session.first = first,
            session.count = count,
        );
        let started = TraceHeaders {
            traceparent: self.session.traceparent.clone(),
            tracestate: None,
        };
        link_to(&span, &started);
        span
    }

    /// The session as it is now, progress included, for an event.
    fn snapshot(&self) -> SessionDoc {
        let mut session = self.session.clone();
        session.next_seq = self.progress.next_seq;
        session.counters = self.progress.counters.clone();
        session
    }
}
