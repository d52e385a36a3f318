//! Transport-neutral alerting: the rules, what they decide over the event
//! windows, and the alerts callers raise and read.

mod error;
pub mod event;
pub mod exported;
pub mod providers;
mod reroute;
pub mod route_health;
pub mod rules;
mod text;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use smsops_common::{
    audit::{Entry, Recorder, kind},
    auth::Caller,
    changes::Changes,
};

pub use error::NotifyError;

use crate::store::{AlertRow, NewAlert, SessionAction, Store, StoreError};
use event::SessionEvent;
use rules::{Rules, Verdict};

pub const RULE_SUCCESS_RATE: &str = "success_rate";
pub const RULE_FAILURE_BURST: &str = "failure_burst";
pub const RULE_SESSION_FAILED: &str = "session_failed";
pub const RULE_RECEIPT_GAP: &str = "receipt_gap";
pub const RULE_SLOW_DELIVERY: &str = "slow_delivery";
pub const RULE_ROUTE_HEALTH: &str = "route_health";
pub const RULE_MANUAL: &str = "manual";

const MAX_MESSAGE_CHARS: usize = 1000;

pub struct NotifyCore {
    store: Store,
    rules: RwLock<Rules>,
    chats: Vec<String>,
    /// Alerts as they open, resolve or change delivery, for watchers.
    changes: tokio::sync::broadcast::Sender<Arc<AlertRow>>,
    closing: tokio::sync::watch::Sender<bool>,
    exported: exported::Exported,
    audit: Recorder,
    route_health: RouteHealthFeed,
}

/// Where the sick routes go, and how often.
pub struct RouteHealthFeed {
    pub changes: Changes,
    pub every: std::time::Duration,
    pub providers: providers::Providers,
}

impl NotifyCore {
    /// Reads the stored rules, storing the defaults on first start.
    pub async fn new(
        store: Store,
        chats: Vec<String>,
        audit: Recorder,
        route_health: RouteHealthFeed,
    ) -> Result<Arc<Self>, StoreError> {
        let default = serde_json::to_string(&Rules::default()).unwrap_or_default();
        let stored = store.rules(&default).await?;
        let rules = serde_json::from_str(&stored).unwrap_or_else(|err| {
            tracing::error!(error = %err, "stored rules are unreadable, using the defaults");
            Rules::default()
        });
        Ok(Arc::new(Self {
            store,
            rules: RwLock::new(rules),
            chats,
            changes: tokio::sync::broadcast::channel(256).0,
            closing: tokio::sync::watch::channel(false).0,
            exported: exported::Exported::default(),
            audit,
            route_health,
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Its Prometheus counters.
    pub fn exported(&self) -> &exported::Exported {
        &self.exported
    }

    pub fn rules(&self) -> Rules {
        match self.rules.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_rules(&self, rules: Rules) {
        match self.rules.write() {
            Ok(mut current) => *current = rules,
            Err(poisoned) => *poisoned.into_inner() = rules,
        }
    }

    /// Picks up rules another replica stored.
    async fn reload_rules(&self) -> Result<(), NotifyError> {
        let default = serde_json::to_string(&Rules::default()).unwrap_or_default();
        let stored = self.store.rules(&default).await?;
        if let Ok(rules) = serde_json::from_str(&stored) {
            self.set_rules(rules);
        }
        Ok(())
    }

    pub async fn get_rules(&self, caller: &Caller) -> Result<Rules, NotifyError> {
        admin(caller)?;
        self.reload_rules().await?;
        Ok(self.rules())
    }

    pub async fn update_rules(&self, caller: &Caller, rules: Rules) -> Result<Rules, NotifyError> {
        admin(caller)?;
        rules.validate()?;
        let body = serde_json::to_string(&rules)
            .map_err(|err| NotifyError::InvalidArgument(err.to_string()))?;
        // As stored, which another replica may have changed since this one read them.
        let default = serde_json::to_string(&Rules::default()).unwrap_or_default();
        let was = self.store.rules(&default).await?;
        self.store.save_rules(&body, &caller.user_id).await?;
        tracing::info!(by = %caller.user_id, "alert rules updated");
        self.set_rules(rules.clone());
        let before = serde_json::from_str(&was).unwrap_or_default();
        let after = serde_json::to_value(&rules).unwrap_or_default();
        let entry = Entry::new(kind::ALERT_RULES_UPDATED, "alert_rules").change(before, after);
        if !entry.changes_nothing() {
            self.audit.record(caller, entry).await;
        }
        Ok(rules)
    }

    /// Raises an alert by hand: recorded and sent to every chat.
    pub async fn trigger(&self, caller: &Caller, message: &str) -> Result<AlertRow, NotifyError> {
        admin(caller)?;
        let message = message.trim();
        if message.is_empty() || message.chars().count() > MAX_MESSAGE_CHARS {
            return Err(NotifyError::InvalidArgument(format!(
                "message must be 1 to {MAX_MESSAGE_CHARS} characters"
            )));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let html = text::manual(&id, message, &caller.email);
        let alert = NewAlert {
            texts: self.to_every_chat(&html),
            id: id.clone(),
            rule: RULE_MANUAL.into(),
            pair_id: None,
            country: None,
            operator: None,
            provider: None,
            message: message.to_string(),
            notice: true,
        };
        self.store.open(&alert, TimeDelta::zero()).await?;
        tracing::info!(alert = %id, by = %caller.user_id, "manual alert raised");
        let after = json!({ "rule": RULE_MANUAL, "message": alert.message });
        self.audit
            .record(caller, Entry::new(kind::ALERT_RAISED, &id).after(after))
            .await;
        self.store
            .get(&id)
            .await?
            .ok_or_else(|| NotifyError::Store(StoreError::Sql(sqlx::Error::RowNotFound)))
    }

    pub async fn list(
        &self,
        _caller: &Caller,
        state: &str,
        limit: u32,
    ) -> Result<Vec<AlertRow>, NotifyError> {
        let state = match state {
            "" | "all" => None,
            "open" | "resolved" => Some(state),
            _ => {
                return Err(NotifyError::InvalidArgument(
                    "state must be open, resolved or all".into(),
                ));
            }
        };
        let limit = match limit {
            0 => 100,
            1..=500 => limit,
            _ => {
                return Err(NotifyError::InvalidArgument(
                    "limit must be 1 to 500".into(),
                ));
            }
        };
        Ok(self.store.list(state, limit).await?)
    }

    fn to_every_chat(&self, html: &str) -> Vec<(String, String)> {
        self.chats
            .iter()
            .map(|chat| (chat.clone(), html.to_string()))
            .collect()
    }

    /// What a session event does to the session-failed rule.
    pub fn session_action(&self, event: &SessionEvent) -> Option<SessionAction> {
        let rules = self.rules();
        match event.kind.as_str() {
            "session.failed" if rules.session_failed.enabled => {
                let id = uuid::Uuid::now_v7().to_string();
                let reason = event
                    .reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".into());
                let html = text::session_failed(&id, event, &reason);
                Some(SessionAction::Open {
                    alert: NewAlert {
                        texts: self.to_every_chat(&html),
                        rule: RULE_SESSION_FAILED.into(),
                        pair_id: Some(event.country_operator_id.clone()),
                        country: Some(event.country.clone()),
                        operator: Some(event.operator.clone()),
                        provider: None,
                        message: format!(
                            "session {} on {} / {} failed: {reason}",
                            event.session_id, event.country, event.operator
                        ),
                        notice: false,
                        id,
                    },
                    cooldown: cooldown(&rules),
                })
            }
            "session.started" | "session.restarted" => Some(SessionAction::Resolve {
                rule: RULE_SESSION_FAILED.into(),
                pair_id: event.country_operator_id.clone(),
                texts: self.to_every_chat(&text::session_recovered(event)),
            }),
            _ => None,
        }
    }

    /// Runs every rule over the current windows once: opens what crossed a
    /// threshold and resolves what recovered. Replicas may run this at the
    /// same time; the store keeps one open alert per rule and pair.
    pub async fn evaluate(&self) -> Result<(), NotifyError> {
        self.reload_rules().await?;
        let rules = self.rules();
        let now = Utc::now();
        let all_open = self.store.open_alerts().await?;
        self.evaluate_route_health(&rules, &all_open).await?;
        // One open alert per rule and pair; route_health's are per provider too.
        let open: HashMap<(String, String), AlertRow> = all_open
            .into_iter()
            .filter(|a| a.rule != RULE_ROUTE_HEALTH)
            .filter_map(|a| Some(((a.rule.clone(), a.pair_id.clone()?), a)))
            .collect();
        let is_open = |rule: &str, pair: &str| open.get(&(rule.to_string(), pair.to_string()));
        let mut looked_at: HashSet<(String, String)> = HashSet::new();

        let rate = &rules.success_rate;
        let windows = self
            .store
            .windows(now - TimeDelta::seconds(rate.window_seconds as i64))
            .await?;
        for w in &windows {
            let delivered = w.delivered.max(0) as u64;
            let finished = delivered + w.undelivered.max(0) as u64 + w.failed.max(0) as u64;
            let current = is_open(RULE_SUCCESS_RATE, &w.pair_id);
            looked_at.insert((RULE_SUCCESS_RATE.into(), w.pair_id.clone()));
            let verdict = rules::success_rate_verdict(
                rate,
                w.is_high_priority != 0,
                delivered,
                finished,
                current.is_some(),
            );
            let facts = text::RateFacts {
                country: &w.country,
                operator: &w.operator,
                delivered,
                finished,
                threshold: rules::threshold(rate, w.is_high_priority != 0),
                high_priority: w.is_high_priority != 0,
                window_seconds: rate.window_seconds,
            };
            match (verdict, current) {
                (Verdict::Open, None) => {
                    let id = uuid::Uuid::now_v7().to_string();
                    let alert = NewAlert {
                        texts: self.to_every_chat(&text::rate_low(&id, &facts)),
                        rule: RULE_SUCCESS_RATE.into(),
                        pair_id: Some(w.pair_id.clone()),
                        country: Some(w.country.clone()),
                        operator: Some(w.operator.clone()),
                        provider: None,
                        message: text::rate_low_plain(&facts),
                        notice: false,
                        id,
                    };
                    self.open(&alert, cooldown(&rules)).await?;
                }
                (Verdict::Resolve, Some(alert)) => {
                    let html = text::rate_recovered(&alert.id, &facts);
                    self.resolve(alert, &html).await?;
                }
                _ => {}
            }
        }

        self.evaluate_receipt_gaps(&rules, &open).await?;
        self.evaluate_slow_delivery(&rules, &open).await?;

        let burst = &rules.failure_burst;
        let worst = self
            .store
            .worst_errors(now - TimeDelta::seconds(burst.window_seconds as i64))
            .await?;
        let mut burst_pairs: Vec<&String> = worst.keys().collect();
        burst_pairs.extend(
            open.keys()
                .filter(|(rule, _)| rule == RULE_FAILURE_BURST)
                .map(|(_, pair)| pair),
        );
        for pair in burst_pairs {
            if !looked_at.insert((RULE_FAILURE_BURST.into(), pair.clone())) {
                continue;
            }
            let error = worst.get(pair).cloned().unwrap_or_default();
            let current = is_open(RULE_FAILURE_BURST, pair);
            match (
                rules::burst_verdict(burst, error.count.max(0) as u64, current.is_some()),
                current,
            ) {
                (Verdict::Open, None) => {
                    let id = uuid::Uuid::now_v7().to_string();
                    let facts = text::BurstFacts {
                        country: &error.country,
                        operator: &error.operator,
                        code: &error.code,
                        count: error.count.max(0) as u64,
                        window_seconds: burst.window_seconds,
                    };
                    let alert = NewAlert {
                        texts: self.to_every_chat(&text::burst(&id, &facts)),
                        rule: RULE_FAILURE_BURST.into(),
                        pair_id: Some(pair.clone()),
                        country: Some(error.country.clone()),
                        operator: Some(error.operator.clone()),
                        provider: None,
                        message: text::burst_plain(&facts),
                        notice: false,
                        id,
                    };
                    self.open(&alert, cooldown(&rules)).await?;
                }
                (Verdict::Resolve, Some(alert)) => {
                    let html = text::burst_over(alert);
                    self.resolve(alert, &html).await?;
                }
                _ => {}
            }
        }

        // A rule switched off resolves what it had open.
        for ((rule, _), alert) in &open {
            let off = match rule.as_str() {
                RULE_SUCCESS_RATE => !rules.success_rate.enabled,
                RULE_FAILURE_BURST => !rules.failure_burst.enabled,
                RULE_SESSION_FAILED => !rules.session_failed.enabled,
                RULE_RECEIPT_GAP => !rules.receipt_gap.enabled,
                RULE_SLOW_DELIVERY => !rules.slow_delivery.enabled,
                _ => false,
            };
            if off {
                self.resolve(alert, &text::rule_off(alert)).await?;
            }
        }
        Ok(())
    }

    /// The receipt-gap rule over its own window. A pair with no outcomes
    /// left in the window keeps its alert: too few finished say nothing.
    async fn evaluate_receipt_gaps(
        &self,
        rules: &Rules,
        open: &HashMap<(String, String), AlertRow>,
    ) -> Result<(), NotifyError> {
        let gap = &rules.receipt_gap;
        if !gap.enabled {
            // The rule-off pass resolves what it had open.
            return Ok(());
        }
        let since = Utc::now() - TimeDelta::seconds(gap.window_seconds as i64);
        for w in self.store.windows(since).await? {
            let finished = (w.delivered + w.undelivered + w.failed).max(0) as u64;
            let reconciled = w.reconciled.max(0) as u64;
            let current = open.get(&(RULE_RECEIPT_GAP.to_string(), w.pair_id.clone()));
            let facts = text::GapFacts {
                country: &w.country,
                operator: &w.operator,
                reconciled,
                finished,
                threshold: gap.threshold,
                window_seconds: gap.window_seconds,
            };
            match (
                rules::receipt_gap_verdict(gap, reconciled, finished, current.is_some()),
                current,
            ) {
                (Verdict::Open, None) => {
                    let id = uuid::Uuid::now_v7().to_string();
                    let alert = NewAlert {
                        texts: self.to_every_chat(&text::gap(&id, &facts)),
                        rule: RULE_RECEIPT_GAP.into(),
                        pair_id: Some(w.pair_id.clone()),
                        country: Some(w.country.clone()),
                        operator: Some(w.operator.clone()),
                        provider: None,
                        message: text::gap_plain(&facts),
                        notice: false,
                        id,
                    };
                    self.open(&alert, cooldown(rules)).await?;
                }
                (Verdict::Resolve, Some(alert)) => {
                    self.resolve(alert, &text::gap_closed(&alert.id, &facts))
                        .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The slow-delivery rule over its own window. A pair with too few
    /// delivered in the window keeps its alert, as with the other rules.
    async fn evaluate_slow_delivery(
        &self,
        rules: &Rules,
        open: &HashMap<(String, String), AlertRow>,
    ) -> Result<(), NotifyError> {
        let slow = &rules.slow_delivery;
        if !slow.enabled {
            return Ok(());
        }
        let since = Utc::now() - TimeDelta::seconds(slow.window_seconds as i64);
        for (pair, latency) in self.store.latencies(since).await? {
            let Some(p95_ms) = latency.delivered.quantile(0.95) else {
                continue;
            };
            let delivered = latency.delivered.count();
            let current = open.get(&(RULE_SLOW_DELIVERY.to_string(), pair.clone()));
            let facts = text::SlowFacts {
                country: &latency.country,
                operator: &latency.operator,
                p95_ms,
                delivered,
                threshold_seconds: slow.threshold_seconds,
                window_seconds: slow.window_seconds,
            };
            match (
                rules::slow_delivery_verdict(slow, p95_ms, delivered, current.is_some()),
                current,
            ) {
                (Verdict::Open, None) => {
                    let id = uuid::Uuid::now_v7().to_string();
                    let alert = NewAlert {
                        texts: self.to_every_chat(&text::slow(&id, &facts)),
                        rule: RULE_SLOW_DELIVERY.into(),
                        pair_id: Some(pair.clone()),
                        country: Some(latency.country.clone()),
                        operator: Some(latency.operator.clone()),
                        provider: None,
                        message: text::slow_plain(&facts),
                        notice: false,
                        id,
                    };
                    self.open(&alert, cooldown(rules)).await?;
                }
                (Verdict::Resolve, Some(alert)) => {
                    self.resolve(alert, &text::slow_over(&alert.id, &facts))
                        .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn open(&self, alert: &NewAlert, cooldown: TimeDelta) -> Result<(), NotifyError> {
        if self.store.open(alert, cooldown).await? {
            tracing::warn!(alert = %alert.id, rule = %alert.rule, pair = ?alert.pair_id, "alert opened");
        }
        Ok(())
    }

    async fn resolve(&self, alert: &AlertRow, html: &str) -> Result<(), NotifyError> {
        if self
            .store
            .resolve(&alert.id, &self.to_every_chat(html))
            .await?
        {
            tracing::info!(alert = %alert.id, rule = %alert.rule, pair = ?alert.pair_id, "alert resolved");
        }
        Ok(())
    }

    /// Forgets outcomes no rule can look at any more.
    pub async fn prune(&self) -> Result<(), NotifyError> {
        let keep = self.rules().longest_window() as i64 + 60;
        Ok(self
            .store
            .prune(Utc::now() - TimeDelta::seconds(keep))
            .await?)
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<AlertRow>> {
        self.changes.subscribe()
    }

    pub fn has_watchers(&self) -> bool {
        self.changes.receiver_count() > 0
    }

    pub fn publish_change(&self, alert: AlertRow) {
        let _ = self.changes.send(Arc::new(alert));
    }

    /// Ends every watch stream.
    pub fn close(&self) {
        let _ = self.closing.send(true);
    }

    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

fn admin(caller: &Caller) -> Result<(), NotifyError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(NotifyError::Forbidden("only an admin may do this".into()))
    }
}

fn cooldown(rules: &Rules) -> TimeDelta {
    TimeDelta::seconds(rules.cooldown_seconds as i64)
}
