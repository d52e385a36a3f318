//! Repositories in memory, for unit tests of the logic: the same traits
//! the MySQL store implements, with the same rule ([`Message::apply`]).

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, MutexGuard},
};

use chrono::{DateTime, Utc};
use smsops_common::{ApiError, auth::Caller};

use super::{
    Applied, Change, ListFilter, Message, MessageRepository, Origin, OutboxEvent, Pair, PairLookup,
    QuotaLedger, RepoError, Status, StatusChange, Target, apply_all,
    quota::{Granted, Window, grant},
};

#[derive(Default)]
pub struct State {
    pub messages: BTreeMap<String, Message>,
    pub history: Vec<(String, StatusChange)>,
    pub outbox: Vec<OutboxEvent>,
    quota_used: HashMap<(String, char, DateTime<Utc>), u64>,
    /// While set, every write fails as a database outage would.
    pub down: bool,
    /// While set, inserts are kept but answered with an error, as a commit
    /// whose answer was lost with its connection.
    pub lose_insert_answers: bool,
}

#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

impl MemoryStore {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn writable(&self) -> Result<MutexGuard<'_, State>, RepoError> {
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
        Ok(self.state().messages.get(id).cloned())
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
        let mut state = self.writable()?;
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
            return Err(RepoError::Unavailable("connection lost".into()));
        }
        Ok(())
    }

    async fn apply_changes(
        &self,
        provider: &str,
        changes: &[(Target, Change)],
        origin: Origin,
    ) -> Result<Vec<Applied>, RepoError> {
        let mut state = self.writable()?;
        // As the store selects them: by id, or by provider id among the
        // provider's own messages.
        let by_id = |id: &String| changes.iter().any(|(t, _)| *t == Target::Id(id.clone()));
        let mut messages: HashMap<String, Message> = state
            .messages
            .iter()
            .filter(|(id, m)| m.provider == provider || by_id(id))
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        let batch = apply_all(&mut messages, changes, Utc::now(), origin);
        for id in &batch.moved {
            if let Some(message) = messages.remove(id) {
                state.messages.insert(id.clone(), message);
            }
        }
        state.history.extend(batch.history);
        state.outbox.extend(batch.events);
        Ok(batch.results)
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

    async fn stale_accepted(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, RepoError> {
        let state = self.state();
        let stale = state
            .messages
            .values()
            .filter(|m| m.status == Status::Accepted && m.created_at < before);
        Ok(stale.take(limit as usize).map(|m| m.id.clone()).collect())
    }

    async fn insert_events(&self, events: &[OutboxEvent]) -> Result<(), RepoError> {
        self.writable()?.outbox.extend_from_slice(events);
        Ok(())
    }
}

impl QuotaLedger for MemoryStore {
    async fn reserve(&self, windows: &[Window], asked: u64) -> Result<Granted, RepoError> {
        let mut state = self.writable()?;
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
