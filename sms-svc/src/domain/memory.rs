//! Repositories in memory, for unit tests of the logic: the same traits
//! the MySQL store implements, with the same rule ([`Message::apply`]).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use smsops_common::{ApiError, auth::Caller};

use super::{
    Applied, Change, ListFilter, Message, MessageRepository, Origin, OutboxEvent, PaceLedger, Pair,
    PairLookup, Part, QuotaLedger, RepoError, Status, StatusChange, Target, Working, apply_all,
    quota::{Granted, Window, grant},
};

#[derive(Default)]
pub struct State {
    pub messages: BTreeMap<String, Message>,
    pub history: Vec<(String, StatusChange)>,
    pub outbox: Vec<OutboxEvent>,
    /// By the provider's id for the part.
    pub parts: HashMap<String, Part>,
    quota_used: HashMap<(String, char, DateTime<Utc>), u64>,
    /// Each account's next free turn.
    pace: HashMap<String, Instant>,
    /// While set, every write and every `get` fails as a database outage
    /// would.
    pub down: bool,
    /// While set, inserts are kept but answered with an error, as a commit
    /// whose answer was lost with its connection.
    pub lose_insert_answers: bool,
    /// With `lose_insert_answers`: the store goes down with the answer.
    pub cut_after_lost_answer: bool,
}

#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

impl MemoryStore {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn reachable(&self) -> Result<MutexGuard<'_, State>, RepoError> {
        let state = self.state();
        if state.down {
            return Err(RepoError::Unavailable(
                "the message store is unavailable".into(),
            ));
        }
        Ok(state)
    }
}

impl MessageRepository for MemoryStore {
    async fn get(&self, id: &str) -> Result<Option<Message>, RepoError> {
        Ok(self.reachable()?.messages.get(id).cloned())
    }

    async fn history(&self, id: &str) -> Result<Vec<StatusChange>, RepoError> {
        let state = self.state();
        let of = state.history.iter().filter(|(message, _)| message == id);
        Ok(of.map(|(_, change)| change.clone()).collect())
    }

    async fn by_idempotency_keys(&self, keys: &[&str]) -> Result<Vec<Message>, RepoError> {
        let state = self.state();
        let held = |m: &&Message| {
            m.idempotency_key
                .as_deref()
                .is_some_and(|k| keys.contains(&k))
        };
        Ok(state.messages.values().filter(held).cloned().collect())
    }

    async fn insert_many(
        &self,
        messages: &[Message],
        events: &[OutboxEvent],
    ) -> Result<(), RepoError> {
        let mut state = self.reachable()?;
        for message in messages {
            let taken = state.messages.values().any(|kept| {
                kept.id == message.id
                    || (kept.idempotency_key.is_some()
                        && kept.idempotency_key == message.idempotency_key)
            });
            if taken {
                return Err(RepoError::Duplicate);
            }
        }
        for message in messages {
            state
                .history
                .push((message.id.clone(), message.accepted().history));
            state.messages.insert(message.id.clone(), message.clone());
        }
        state.outbox.extend_from_slice(events);
        if state.lose_insert_answers {
            state.down = state.cut_after_lost_answer;
            return Err(RepoError::Unanswered("connection lost".into()));
        }
        Ok(())
    }

    async fn apply_changes(
        &self,
        provider: &str,
        changes: &[(Target, Change)],
        origin: Origin,
    ) -> Result<Vec<Applied>, RepoError> {
        let mut state = self.reachable()?;
        Ok(apply_in(&mut state, provider, changes, origin))
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<Message>, RepoError> {
        let state = self.state();
        let wanted = |m: &&Message| {
            filter.pair_id.as_ref().is_none_or(|p| *p == m.pair.id)
                && filter.status.is_none_or(|s| s == m.status)
                && filter
                    .session_id
                    .as_ref()
                    .is_none_or(|s| m.session_id.as_ref() == Some(s))
                && filter.before_id.as_ref().is_none_or(|b| m.id < *b)
        };
        let found = state.messages.values().rev().filter(wanted);
        Ok(found.take(filter.limit as usize).cloned().collect())
    }

    async fn claim_accepted(&self, ids: &[String]) -> Result<Vec<String>, RepoError> {
        let mut state = self.reachable()?;
        let now = Utc::now();
        let mut claimed = Vec::new();
        for id in ids {
            if let Some(message) = state.messages.get_mut(id)
                && message.status == Status::Accepted
            {
                message.updated_at = now;
                claimed.push(id.clone());
            }
        }
        Ok(claimed)
    }

    async fn sweep_stale(
        &self,
        before: DateTime<Utc>,
        limit: u32,
        change: &Change,
    ) -> Result<Vec<Applied>, RepoError> {
        let mut state = self.reachable()?;
        let stale: Vec<(Target, Change)> = state
            .messages
            .values()
            .filter(|m| m.status == Status::Accepted && m.updated_at < before)
            .take(limit as usize)
            .map(|m| (Target::Id(m.id.clone()), change.clone()))
            .collect();
        Ok(apply_in(&mut state, "", &stale, Origin::Live))
    }

    async fn insert_events(&self, events: &[OutboxEvent]) -> Result<(), RepoError> {
        self.reachable()?.outbox.extend_from_slice(events);
        Ok(())
    }
}

/// As the store selects them: by id, or by provider id among the
/// provider's own messages, with every part.
fn apply_in(
    state: &mut State,
    provider: &str,
    changes: &[(Target, Change)],
    origin: Origin,
) -> Vec<Applied> {
    let by_id = |id: &String| changes.iter().any(|(t, _)| *t == Target::Id(id.clone()));
    let mut working = Working {
        messages: state
            .messages
            .iter()
            .filter(|(id, m)| m.provider == provider || by_id(id))
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect(),
        parts: state.parts.clone(),
    };
    let batch = apply_all(&mut working, changes, Utc::now(), origin);
    for id in &batch.moved {
        if let Some(message) = working.messages.remove(id) {
            state.messages.insert(id.clone(), message);
        }
    }
    for sid in &batch.parts {
        if let Some(part) = working.parts.remove(sid) {
            state.parts.insert(sid.clone(), part);
        }
    }
    state.history.extend(batch.history);
    state.outbox.extend(batch.events);
    batch.results
}

impl QuotaLedger for MemoryStore {
    async fn reserve(&self, windows: &[Window], asked: u64) -> Result<Granted, RepoError> {
        let mut state = self.reachable()?;
        let key = |w: &Window| (w.subject.clone(), w.period, w.start);
        let used: Vec<u64> = windows
            .iter()
            .map(|w| state.quota_used.get(&key(w)).copied().unwrap_or(0))
            .collect();
        let granted = grant(windows, &used, asked, Utc::now());
        for window in windows {
            *state.quota_used.entry(key(window)).or_default() += granted.count;
        }
        Ok(granted)
    }

    async fn prune_quota_windows(&self) -> Result<u64, RepoError> {
        Ok(0)
    }
}

impl PaceLedger for MemoryStore {
    async fn book(
        &self,
        provider: &str,
        count: u32,
        spacing: Duration,
        ahead: Duration,
    ) -> Result<Option<Duration>, RepoError> {
        let mut state = self.reachable()?;
        let now = Instant::now();
        let next = state.pace.get(provider).copied().unwrap_or(now).max(now);
        if next - now > ahead {
            return Ok(None);
        }
        state
            .pace
            .insert(provider.to_string(), next + spacing * count);
        Ok(Some(next - now))
    }
}

/// Pairs by id.
#[derive(Default)]
pub struct MemoryPairs(pub Vec<Pair>);

impl PairLookup for MemoryPairs {
    async fn get(&self, _caller: &Caller, id: &str) -> Result<Option<Pair>, ApiError> {
        Ok(self.0.iter().find(|pair| pair.id == id).cloned())
    }

    async fn find(
        &self,
        _caller: &Caller,
        country: &str,
        operator: &str,
    ) -> Result<Option<Pair>, ApiError> {
        let named = |pair: &&Pair| {
            pair.country.eq_ignore_ascii_case(country)
                && pair.operator.eq_ignore_ascii_case(operator)
        };
        Ok(self.0.iter().find(named).cloned())
    }
}
