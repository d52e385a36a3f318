//! Transport-neutral session logic: create, look up, stop, restart. The
//! runs themselves belong to the [`Supervisor`] of whichever replica holds
//! each session's lease.

pub mod access;
mod budget;
pub mod clients;
mod error;
mod event;
mod pacer;
pub mod plan;
pub mod runner;
pub mod supervisor;

use std::{sync::Arc, time::Duration};

use mongodb::bson::{DateTime, Document, doc};
use serde_json::json;
use smsops_common::{
    audit::{Entry, kind},
    auth::Caller,
    trace::TraceHeaders,
};

pub use error::ProcessError;
pub use plan::PlanRequest;

use self::{
    access::{Action, Actor, Target},
    supervisor::Supervisor,
};
use crate::store::{
    AuditDoc, CountersDoc, FAILED, LockFor, PAUSED, PairLock, RUNNING, STARTING, STOPPED, STOPPING,
    SessionDoc,
};

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;
const STATES: [&str; 5] = [STARTING, RUNNING, STOPPING, STOPPED, FAILED];
/// How often a stop or restart looks whether the holder has acted on it.
const WAIT_STEP: Duration = Duration::from_millis(25);

/// A session as callers see it: the stored one and the rate it runs at.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: SessionDoc,
    pub effective_rate_per_minute: f64,
}

#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    pub state: Option<String>,
    pub country: Option<String>,
    pub pair_id: Option<String>,
    pub page_size: u32,
    pub page_token: String,
}

pub struct ProcessCore {
    supervisor: Arc<Supervisor>,
}

impl ProcessCore {
    pub fn new(supervisor: Arc<Supervisor>) -> Self {
        Self { supervisor }
    }

    fn store(&self) -> &crate::store::Store {
        &self.supervisor.context().store
    }

    fn view(&self, session: SessionDoc) -> SessionView {
        let rate = if matches!(session.state.as_str(), STARTING | RUNNING) {
            self.supervisor.context().rate_of(&session)
        } else {
            0.0
        };
        SessionView {
            session,
            effective_rate_per_minute: rate,
        }
    }

    /// Starts a session for a pair that has none active; this replica runs it.
    pub async fn create(
        &self,
        caller: &Caller,
        pair_id: &str,
        request: PlanRequest,
    ) -> Result<SessionView, ProcessError> {
        let ctx = self.supervisor.context();
        let pair = ctx.clients.pair(caller, pair_id.trim()).await?;
        let label = format!("{}/{}", pair.country, pair.operator);
        let plan = plan::check(request, &pair.country, &label)?;
        within_quota(caller, &plan)?;
        let now = DateTime::now();
        let mut session = SessionDoc {
            id: uuid::Uuid::now_v7().to_string(),
            pair_id: pair.id,
            country: pair.country,
            operator: pair.operator,
            is_high_priority: pair.is_high_priority,
            plan,
            state: STARTING.into(),
            reason: String::new(),
            counters: CountersDoc::default(),
            next_seq: 0,
            last_error: String::new(),
            paused: String::new(),
            started_at: Some(now),
            stopped_at: None,
            started_by: caller.user_id.clone(),
            stopped_by: String::new(),
            created_at: now,
            updated_at: now,
            lease_owner: Some(ctx.supervision.replica.clone()),
            lease_until: Some(ctx.lease_until()),
            generation: 0,
            restart_requested: false,
            audit: vec![audit("start", caller, false)],
            outbox: Vec::new(),
            has_events: true,
            quota: caller.quota,
            traceparent: TraceHeaders::of_span(&tracing::Span::current()).traceparent,
        };
        let started = event::lifecycle("started", &session, STARTING, "", &caller.user_id);
        session.outbox.push(started);
        let locked = self
            .store()
            .lock_pair(&session.pair_id, &session.id, LockFor::Create)
            .await?;
        self.refuse_unless_taken(caller, locked, &session.pair_id)
            .await?;
        // The pair may have been deleted since it was looked up. A delete
        // takes this lock first, so with the lock held, a pair that is
        // still there stays until the session ends.
        if let Err(err) = ctx.clients.pair(caller, &session.pair_id).await {
            let _ = self
                .store()
                .unlock_pair(&session.pair_id, &session.id)
                .await;
            return Err(err);
        }
        if let Err(err) = self.store().insert(&session).await {
            let _ = self
                .store()
                .unlock_pair(&session.pair_id, &session.id)
                .await;
            return Err(err.into());
        }
        tracing::info!(session = %session.id, pair = %session.pair_id, by = %caller.user_id, "session started");
        self.supervisor.refresh_shares().await;
        self.supervisor.adopt(session.clone());
        self.audit_started(caller, &session).await;
        Ok(self.view(session))
    }

    pub async fn get(&self, _caller: &Caller, id: &str) -> Result<SessionView, ProcessError> {
        Ok(self.view(self.load(id).await?))
    }

    pub async fn audit_trail(
        &self,
        _caller: &Caller,
        id: &str,
    ) -> Result<Vec<AuditDoc>, ProcessError> {
        Ok(self.load(id).await?.audit)
    }

    pub async fn list(
        &self,
        _caller: &Caller,
        query: SessionQuery,
    ) -> Result<(Vec<SessionView>, Option<String>), ProcessError> {
        let size = match query.page_size {
            0 => DEFAULT_PAGE_SIZE,
            1..=MAX_PAGE_SIZE => query.page_size,
            _ => {
                return Err(ProcessError::InvalidArgument(format!(
                    "page_size must be between 1 and {MAX_PAGE_SIZE}"
                )));
            }
        };
        let mut filter = Document::new();
        if let Some(state) = query.state.filter(|s| !s.is_empty()) {
            if state == PAUSED {
                // Running sessions waiting: `running` lists them too.
                filter.insert("state", RUNNING);
                filter.insert("paused", doc! { "$gt": "" });
            } else if STATES.contains(&state.as_str()) {
                filter.insert("state", state);
            } else {
                return Err(ProcessError::InvalidArgument(format!(
                    "state must be one of {}, {PAUSED}",
                    STATES.join(", ")
                )));
            }
        }
        if let Some(country) = query.country.filter(|c| !c.is_empty()) {
            filter.insert("country", country.trim().to_ascii_uppercase());
        }
        if let Some(pair) = query.pair_id.filter(|p| !p.is_empty()) {
            filter.insert("pair_id", pair);
        }
        let after = Some(query.page_token).filter(|t| !t.is_empty());
        let mut sessions = self
            .store()
            .list(filter, after.as_deref(), i64::from(size) + 1)
            .await?;
        let next = if sessions.len() > size as usize {
            sessions.truncate(size as usize);
            sessions.last().map(|s| s.id.clone())
        } else {
            None
        };
        let views = sessions.into_iter().map(|s| self.view(s)).collect();
        Ok((views, next))
    }

    /// Stops the session and answers once it has stopped sending.
    pub async fn stop(
        &self,
        caller: &Caller,
        id: &str,
        force: bool,
    ) -> Result<SessionView, ProcessError> {
        let session = self.load(id).await?;
        let grant = Actor::from(caller).may(Action::Stop, Target::from(&session), force)?;
        if matches!(session.state.as_str(), STOPPED | FAILED) {
            return Ok(self.view(session));
        }
        let record = audit("stop", caller, grant.forced);
        if self
            .store()
            .request_stop(id, record, false)
            .await?
            .is_none()
        {
            return Ok(self.view(self.load(id).await?));
        }
        tracing::info!(session = %id, by = %caller.user_id, "session stop requested");
        self.supervisor.poke(id);
        let stopped = self
            .wait_for(id, |s| matches!(s.state.as_str(), STOPPED | FAILED))
            .await;
        self.audit_action(
            caller,
            kind::SESSION_STOPPED,
            &session,
            stopped.as_ref().ok(),
            grant.forced,
        )
        .await;
        Ok(self.view(stopped?))
    }

    /// Stops the session if it runs and starts it again where it left
    /// off; its counters and sequence go on.
    pub async fn restart(
        &self,
        caller: &Caller,
        id: &str,
        force: bool,
    ) -> Result<SessionView, ProcessError> {
        let session = self.load(id).await?;
        let grant = Actor::from(caller).may(Action::Restart, Target::from(&session), force)?;
        let record = audit("restart", caller, grant.forced);
        let forced = grant.forced;
        tracing::info!(session = %id, by = %caller.user_id, "session restart requested");
        if matches!(session.state.as_str(), STOPPED | FAILED) {
            let ctx = self.supervisor.context();
            let event =
                event::lifecycle("restarted", &session, STARTING, "restart", &caller.user_id);
            let locked = self
                .store()
                .lock_pair(&session.pair_id, id, LockFor::Restart)
                .await?;
            self.refuse_unless_taken(caller, locked, &session.pair_id)
                .await?;
            // A pair deleted while its session was idle takes no new run:
            // it would only fail, send after send, with pair_not_found.
            if let Err(err) = ctx.clients.pair(caller, &session.pair_id).await {
                let _ = self.store().unlock_pair(&session.pair_id, id).await;
                return Err(err);
            }
            let restarted = self
                .store()
                .restart_idle(
                    id,
                    &ctx.supervision.replica,
                    ctx.lease_until(),
                    record,
                    event,
                )
                .await;
            return match restarted {
                Ok(Some(restarted)) => {
                    self.supervisor.refresh_shares().await;
                    self.supervisor.adopt(restarted.clone());
                    self.audit_action(
                        caller,
                        kind::SESSION_RESTARTED,
                        &session,
                        Some(&restarted),
                        forced,
                    )
                    .await;
                    Ok(self.view(restarted))
                }
                Ok(None) => Ok(self.view(self.load(id).await?)),
                Err(err) => {
                    let _ = self.store().unlock_pair(&session.pair_id, id).await;
                    Err(err.into())
                }
            };
        }
        let generation = session.generation;
        if self.store().request_stop(id, record, true).await?.is_none() {
            return Ok(self.view(self.load(id).await?));
        }
        self.supervisor.poke(id);
        let restarted = self
            .wait_for(id, |s| {
                s.generation > generation || matches!(s.state.as_str(), STOPPED | FAILED)
            })
            .await;
        self.audit_action(
            caller,
            kind::SESSION_RESTARTED,
            &session,
            restarted.as_ref().ok(),
            forced,
        )
        .await;
        Ok(self.view(restarted?))
    }

    /// A start in the global audit log (the session keeps its own trail too).
    async fn audit_started(&self, caller: &Caller, session: &SessionDoc) {
        let plan = &session.plan;
        let recipients = match plan.range_first {
            Some(_) => plan.range_count.max(0) as usize,
            None => plan.numbers.len(),
        };
        let after = json!({
            "state": session.state,
            "country_operator_id": session.pair_id,
            "rate_per_minute": plan.rate_per_minute,
            "recipients": recipients,
            "limit": (plan.limit > 0).then_some(plan.limit),
            "stop_at": plan.stop_at.and_then(|at| at.try_to_rfc3339_string().ok()),
        });
        let entry = Entry::new(kind::SESSION_STARTED, &session.id).after(after);
        self.supervisor.context().audit.record(caller, entry).await;
    }

    /// A stop or restart in the global audit log: the state it found and
    /// the state it answers with (`stopping` if it did not see the end).
    async fn audit_action(
        &self,
        caller: &Caller,
        kind: &str,
        was: &SessionDoc,
        now: Option<&SessionDoc>,
        forced: bool,
    ) {
        let mut after = json!({ "state": now.map_or(STOPPING, |s| s.state.as_str()) });
        if forced {
            after["forced"] = json!(true);
        }
        let entry = Entry::new(kind, &was.id)
            .before(json!({ "state": was.state }))
            .after(after);
        self.supervisor.context().audit.record(caller, entry).await;
    }

    /// Answers operator-svc, before it deletes a pair, whether a session
    /// still uses it, and if none does keeps sessions off the pair while
    /// the delete goes on (see [`crate::store::Store::retire_pair`]).
    pub async fn retire_pair(&self, caller: &Caller, pair_id: &str) -> Result<(), ProcessError> {
        if !caller.is_admin() {
            return Err(ProcessError::Forbidden(
                "only an admin may delete a country-operator pair".into(),
            ));
        }
        let pair_id = pair_id.trim();
        if pair_id.is_empty() {
            return Err(ProcessError::InvalidArgument(
                "country_operator_id is required".into(),
            ));
        }
        match self.store().retire_pair(pair_id).await? {
            PairLock::Taken | PairLock::Retiring => {
                tracing::info!(pair = %pair_id, by = %caller.user_id, "pair retired for deletion");
                Ok(())
            }
            PairLock::Active(session, state) => {
                let which = if session.is_empty() {
                    format!("a session {state}")
                } else {
                    format!("session {session} ({state})")
                };
                Err(ProcessError::PairInUse(format!(
                    "country-operator pair {pair_id} is in use by {which}: stop it before deleting the pair"
                )))
            }
        }
    }

    /// Why a pair's lock was not taken, as the caller's error.
    async fn refuse_unless_taken(
        &self,
        caller: &Caller,
        lock: PairLock,
        pair_id: &str,
    ) -> Result<(), ProcessError> {
        match lock {
            PairLock::Taken => Ok(()),
            PairLock::Active(..) => Err(ProcessError::SessionActive(pair_id.to_string())),
            PairLock::Retiring => {
                // The delete has most likely gone through: pair_not_found
                // says so better than "being deleted" would.
                self.supervisor
                    .context()
                    .clients
                    .pair(caller, pair_id)
                    .await?;
                Err(ProcessError::PairRetiring(pair_id.to_string()))
            }
        }
    }

    async fn load(&self, id: &str) -> Result<SessionDoc, ProcessError> {
        self.store()
            .get(id.trim())
            .await?
            .ok_or_else(|| ProcessError::NotFound(id.to_string()))
    }

    /// Waits until the session's holder has acted (at most a lease and a
    /// few heartbeats: a dead holder's session is taken over first), then
    /// answers the session as it is.
    async fn wait_for(
        &self,
        id: &str,
        done: impl Fn(&SessionDoc) -> bool,
    ) -> Result<SessionDoc, ProcessError> {
        let supervision = &self.supervisor.context().supervision;
        let deadline =
            tokio::time::Instant::now() + supervision.lease_ttl + supervision.heartbeat * 3;
        loop {
            let session = self.load(id).await?;
            if done(&session) || tokio::time::Instant::now() >= deadline {
                return Ok(session);
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }
}

fn audit(action: &str, caller: &Caller, forced: bool) -> AuditDoc {
    AuditDoc {
        action: action.into(),
        at: DateTime::now(),
        by: caller.user_id.clone(),
        by_email: caller.email.clone(),
        reason: String::new(),
        forced,
    }
}

/// A session its starter's quota could never carry is refused now, not
/// discovered as refusals later: its rate above the quota per minute, or
/// more recipients than the quota per day.
fn within_quota(caller: &Caller, plan: &crate::store::PlanDoc) -> Result<(), ProcessError> {
    if let Some(per_minute) = caller.quota.per_minute
        && plan.rate_per_minute > per_minute as f64
    {
        return Err(ProcessError::InvalidRate(format!(
            "rate_per_minute {} is above your quota of {per_minute} messages a minute",
            plan.rate_per_minute
        )));
    }
    let recipients = if plan.numbers.is_empty() {
        plan.range_count.max(0) as u64
    } else {
        plan.numbers.len() as u64
    };
    if let Some(per_day) = caller.quota.per_day
        && recipients > per_day
    {
        return Err(ProcessError::InvalidRecipients(format!(
            "{recipients} recipients are more than your quota of {per_day} messages a day"
        )));
    }
    Ok(())
}
