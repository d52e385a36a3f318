//! Alerts, their Telegram messages, the rules and the per-pair outcome
//! windows in MySQL.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use smsops_common::{ApiError, latency::Histogram};
use sqlx::{MySql, MySqlPool, QueryBuilder, Row, Transaction};

use crate::core::event::{Event, SmsOutcome};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Sql(err) => smsops_common::mysql::api_error("alert store", err),
            StoreError::Migrate(err) => ApiError::internal(err),
        }
    }
}

/// Outcomes are kept in buckets this long; windows are sums of buckets.
const BUCKET_SECS: i64 = 5;

/// An alert about to be opened, with its Telegram messages.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub id: String,
    pub rule: String,
    pub pair_id: Option<String>,
    pub country: Option<String>,
    pub operator: Option<String>,
    /// The provider account of a route_health alert.
    pub provider: Option<String>,
    pub message: String,
    /// A manual alert is a notice: recorded resolved at once.
    pub notice: bool,
    pub texts: Vec<(String, String)>,
}

/// What a session event does to the session-failed rule, decided before
/// the transaction and applied in it only if the event is new.
#[derive(Debug, Clone)]
pub enum SessionAction {
    Open {
        alert: NewAlert,
        cooldown: TimeDelta,
    },
    /// Resolve the pair's open alert of this rule, with these messages.
    Resolve {
        rule: String,
        pair_id: String,
        texts: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AlertRow {
    pub id: String,
    pub rule: String,
    pub pair_id: Option<String>,
    pub country: Option<String>,
    pub operator: Option<String>,
    pub state: String,
    pub opened_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub message: String,
    pub updated_at: DateTime<Utc>,
    pub delivery: String,
    pub provider: Option<String>,
}

/// One pair's finished messages over a window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PairWindow {
    pub pair_id: String,
    pub country: String,
    pub operator: String,
    /// 1 for a high-priority pair (MySQL has no boolean aggregate).
    pub is_high_priority: i64,
    pub delivered: i64,
    pub undelivered: i64,
    pub failed: i64,
    /// Finished through receipt reconciliation, their callback never having come.
    pub reconciled: i64,
}

/// What one provider account finished of one pair's messages over a window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RouteWindow {
    pub pair_id: String,
    pub provider: String,
    pub country: String,
    pub operator: String,
    pub is_high_priority: i64,
    pub delivered: i64,
    pub finished: i64,
}

/// How long a pair's delivered messages took over a window.
#[derive(Debug, Clone, Default)]
pub struct PairLatency {
    pub country: String,
    pub operator: String,
    pub delivered: Histogram,
}

/// A pair's most frequent error code over a window.
#[derive(Debug, Clone, Default)]
pub struct WorstError {
    pub code: String,
    pub count: i64,
    pub country: String,
    pub operator: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Notification {
    pub id: u64,
    pub chat_id: String,
    pub text: String,
    pub attempts: i32,
}

const ALERT_COLUMNS: &str = "a.id, a.rule, a.pair_id, a.country, a.operator, a.state, a.opened_at, \
     a.resolved_at, a.message, a.updated_at, a.provider, \
     (SELECT CASE WHEN COUNT(*) = 0 THEN 'not_configured' \
             WHEN SUM(n.status <> 'sent') = 0 THEN 'sent' \
             WHEN SUM(n.status <> 'sent' AND n.attempts > 0) > 0 THEN 'retrying' \
             ELSE 'pending' END \
      FROM notifications n WHERE n.alert_id = a.id) AS delivery";

#[derive(Clone)]
pub struct Store {
    pool: MySqlPool,
}

impl Store {
    /// Creates the database if missing, connects and applies migrations.
    pub async fn connect(server_url: &str, database: &str) -> Result<Self, StoreError> {
        let pool = smsops_common::mysql::connect(server_url, database, 8).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// The stored rules (JSON), writing `default` first if there are none.
    pub async fn rules(&self, default: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT IGNORE INTO rules (id, body, updated_at, updated_by) VALUES (1, ?, ?, 'default')",
        )
        .bind(default)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_scalar("SELECT body FROM rules WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn save_rules(&self, body: &str, by: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rules (id, body, updated_at, updated_by) VALUES (1, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE body = VALUES(body), updated_at = VALUES(updated_at), \
             updated_by = VALUES(updated_by)",
        )
        .bind(body)
        .bind(Utc::now())
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes in the events not seen before, in one transaction: their
    /// outcomes join the windows, and their session actions are applied.
    /// Returns how many were new.
    pub async fn record(
        &self,
        events: &[Event],
        actions: &HashMap<String, SessionAction>,
    ) -> Result<usize, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut select =
            QueryBuilder::<MySql>::new("SELECT event_id FROM processed_events WHERE event_id IN (");
        let mut ids = select.separated(", ");
        for event in events {
            ids.push_bind(event.id());
        }
        select.push(") FOR UPDATE");
        let seen: HashSet<String> = select
            .build()
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .filter_map(|row| row.try_get("event_id").ok())
            .collect();
        let mut taken = HashSet::new();
        let new: Vec<&Event> = events
            .iter()
            .filter(|e| !seen.contains(e.id()) && taken.insert(e.id()))
            .collect();
        if new.is_empty() {
            tx.commit().await?;
            return Ok(0);
        }
        let now = Utc::now();
        let mut record =
            QueryBuilder::<MySql>::new("INSERT INTO processed_events (event_id, processed_at) ");
        record.push_values(&new, |mut values, event| {
            values.push_bind(event.id()).push_bind(now);
        });
        record.build().execute(&mut *tx).await?;
        let outcomes: Vec<&SmsOutcome> = new
            .iter()
            .filter_map(|e| match e {
                Event::Sms(outcome) => Some(outcome),
                Event::Session(_) => None,
            })
            .collect();
        add_outcomes(&mut tx, &outcomes).await?;
        for event in &new {
            match actions.get(event.id()) {
                Some(SessionAction::Open { alert, cooldown }) => {
                    open_in(&mut tx, alert, *cooldown).await?;
                }
                Some(SessionAction::Resolve {
                    rule,
                    pair_id,
                    texts,
                }) => {
                    let open: Option<String> =
                        sqlx::query_scalar("SELECT id FROM alerts WHERE open_key = ? FOR UPDATE")
                            .bind(open_key(rule, Some(pair_id), None))
                            .fetch_optional(&mut *tx)
                            .await?;
                    if let Some(id) = open {
                        resolve_in(&mut tx, &id, texts).await?;
                    }
                }
                None => {}
            }
        }
        tx.commit().await?;
        Ok(new.len())
    }

    /// Each pair's finished messages since `since`.
    pub async fn windows(&self, since: DateTime<Utc>) -> Result<Vec<PairWindow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pair_id, MAX(country) AS country, MAX(operator) AS operator, \
             CAST(MAX(is_high_priority) AS SIGNED) AS is_high_priority, \
             CAST(SUM(delivered) AS SIGNED) AS delivered, \
             CAST(SUM(undelivered) AS SIGNED) AS undelivered, \
             CAST(SUM(failed) AS SIGNED) AS failed, \
             CAST(SUM(reconciled) AS SIGNED) AS reconciled \
             FROM pair_outcomes WHERE bucket_at >= ? GROUP BY pair_id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Per pair, the error code that ended the most messages since
    /// `since`, how many, and the pair's names. The names come from the
    /// same statement: read apart, events landing in between left a new
    /// pair's first burst alert without them (seen in the alert test).
    pub async fn worst_errors(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, WorstError>, StoreError> {
        // Every error bucket has its outcome bucket: one transaction writes both.
        let rows: Vec<(String, String, i64, String, String)> = sqlx::query_as(
            "SELECT e.pair_id, e.error_code, CAST(SUM(e.count) AS SIGNED) AS n, \
             MAX(o.country) AS country, MAX(o.operator) AS operator \
             FROM pair_errors e JOIN pair_outcomes o \
             ON o.pair_id = e.pair_id AND o.bucket_at = e.bucket_at \
             WHERE e.bucket_at >= ? GROUP BY e.pair_id, e.error_code \
             ORDER BY n DESC, e.error_code",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        // Rows come commonest first, so each pair keeps its first.
        let mut worst = BTreeMap::new();
        for (pair, code, count, country, operator) in rows {
            worst.entry(pair).or_insert(WorstError {
                code,
                count,
                country,
                operator,
            });
        }
        Ok(worst)
    }

    /// Per pair, how long its messages delivered since `since` took.
    pub async fn latencies(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<String, PairLatency>, StoreError> {
        // Every latency bucket has its outcome bucket: one transaction writes both.
        let rows: Vec<(String, u16, i64, String, String)> = sqlx::query_as(
            "SELECT l.pair_id, l.bin, CAST(SUM(l.count) AS SIGNED) AS n, \
             MAX(o.country) AS country, MAX(o.operator) AS operator \
             FROM pair_latency l JOIN pair_outcomes o \
             ON o.pair_id = l.pair_id AND o.bucket_at = l.bucket_at \
             WHERE l.bucket_at >= ? GROUP BY l.pair_id, l.bin",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut pairs: BTreeMap<String, PairLatency> = BTreeMap::new();
        for (pair, bin, count, country, operator) in rows {
            let entry = pairs.entry(pair).or_insert_with(|| PairLatency {
                country,
                operator,
                ..PairLatency::default()
            });
            entry.delivered.add(bin, count.max(0) as u64);
        }
        Ok(pairs)
    }

    /// What each provider finished of each pair's messages since `since`,
    /// high-priority pairs first: they move first.
    pub async fn route_windows(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<RouteWindow>, StoreError> {
        // Every provider bucket has its outcome bucket: one transaction writes both.
        Ok(sqlx::query_as(
            "SELECT p.pair_id, p.provider, MAX(o.country) AS country, MAX(o.operator) AS operator, \
             CAST(MAX(o.is_high_priority) AS SIGNED) AS is_high_priority, \
             CAST(SUM(p.delivered) AS SIGNED) AS delivered, \
             CAST(SUM(p.finished) AS SIGNED) AS finished \
             FROM provider_outcomes p JOIN pair_outcomes o \
             ON o.pair_id = p.pair_id AND o.bucket_at = p.bucket_at \
             WHERE p.bucket_at >= ? GROUP BY p.pair_id, p.provider \
             ORDER BY is_high_priority DESC, p.pair_id, p.provider",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The routes whose route_health alert is open: (pair, provider).
    pub async fn sick_routes(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pair_id, provider FROM alerts WHERE rule = 'route_health' AND state = 'open' \
             AND pair_id IS NOT NULL AND provider IS NOT NULL ORDER BY pair_id, provider",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn open_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts a WHERE a.state = 'open'");
        Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    /// Opens an alert unless one of its rule and pair is open or it is
    /// cooling down; `true` if it opened.
    pub async fn open(&self, alert: &NewAlert, cooldown: TimeDelta) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let opened = open_in(&mut tx, alert, cooldown).await?;
        tx.commit().await?;
        Ok(opened)
    }

    /// Resolves an open alert; `false` if another replica did first.
    pub async fn resolve(
        &self,
        alert_id: &str,
        texts: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let resolved = resolve_in(&mut tx, alert_id, texts).await?;
        tx.commit().await?;
        Ok(resolved)
    }

    /// Newest first; `state` is "open", "resolved" or `None` for both.
    pub async fn list(&self, state: Option<&str>, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        let mut query = QueryBuilder::<MySql>::new(format!("SELECT {ALERT_COLUMNS} FROM alerts a"));
        if let Some(state) = state {
            query.push(" WHERE a.state = ").push_bind(state);
        }
        query
            .push(" ORDER BY a.updated_at DESC, a.id DESC LIMIT ")
            .push_bind(limit);
        Ok(query.build_query_as().fetch_all(&self.pool).await?)
    }

    pub async fn get(&self, id: &str) -> Result<Option<AlertRow>, StoreError> {
        let sql = format!("SELECT {ALERT_COLUMNS} FROM alerts a WHERE a.id = ?");
        Ok(sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Alerts changed after `after`, oldest change first.
    pub async fn changed_since(&self, after: DateTime<Utc>) -> Result<Vec<AlertRow>, StoreError> {
        let sql = format!(
            "SELECT {ALERT_COLUMNS} FROM alerts a WHERE a.updated_at > ? ORDER BY a.updated_at LIMIT 500"
        );
        Ok(sqlx::query_as(&sql)
            .bind(after)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Takes up to `limit` due notifications for `hold`: another sender
    /// (another replica) skips them until then.
    pub async fn claim_due(
        &self,
        limit: u32,
        hold: TimeDelta,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        let due: Vec<Notification> = sqlx::query_as(
            "SELECT id, chat_id, text, attempts FROM notifications \
             WHERE status <> 'sent' AND next_attempt_at <= ? ORDER BY id LIMIT ? \
             FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if !due.is_empty() {
            let mut hold_them =
                QueryBuilder::<MySql>::new("UPDATE notifications SET next_attempt_at = ");
            hold_them.push_bind(now + hold).push(" WHERE id IN (");
            let mut ids = hold_them.separated(", ");
            for n in &due {
                ids.push_bind(n.id);
            }
            hold_them.push(")");
            hold_them.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(due)
    }

    pub async fn sent(&self, id: u64) -> Result<(), StoreError> {
        let now = Utc::now();
        sqlx::query(
            "UPDATE notifications SET status = 'sent', sent_at = ?, attempts = attempts + 1 \
             WHERE id = ?",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.touch_alert_of(id, now).await
    }

    /// Records a failed attempt; the notification is tried again at `next`.
    pub async fn retry(&self, id: u64, next: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
        let error: String = error.chars().take(250).collect();
        sqlx::query(
            "UPDATE notifications SET status = 'retrying', attempts = attempts + 1, \
             last_error = ?, next_attempt_at = ? WHERE id = ?",
        )
        .bind(error)
        .bind(next)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.touch_alert_of(id, Utc::now()).await
    }

    /// Marks a notification's alert changed, so watchers see its delivery.
    async fn touch_alert_of(&self, notification: u64, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alerts SET updated_at = ? WHERE id = \
             (SELECT alert_id FROM notifications WHERE id = ?)",
        )
        .bind(at)
        .bind(notification)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Forgets outcomes older than the rules can look at.
    pub async fn prune(&self, outcomes_before: DateTime<Utc>) -> Result<(), StoreError> {
        for table in [
            "pair_outcomes",
            "pair_errors",
            "pair_latency",
            "provider_outcomes",
        ] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE bucket_at < ? LIMIT 10000"
            ))
            .bind(outcomes_before)
            .execute(&self.pool)
            .await?;
        }
        // Seen events go by retention (SMSOPS_NOTIFY_DEDUPE_SECS).
        Ok(())
    }
}

fn open_key(rule: &str, pair: Option<&String>, provider: Option<&String>) -> String {
    let pair = pair.map(String::as_str).unwrap_or("");
    match provider {
        Some(provider) => format!("{rule}|{pair}|{provider}"),
        None => format!("{rule}|{pair}"),
    }
}

async fn open_in(
    tx: &mut Transaction<'_, MySql>,
    alert: &NewAlert,
    cooldown: TimeDelta,
) -> Result<bool, StoreError> {
    let now = Utc::now();
    if !alert.notice {
        let last: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT MAX(resolved_at) FROM alerts WHERE rule = ? AND pair_id = ?",
        )
        .bind(&alert.rule)
        .bind(&alert.pair_id)
        .fetch_one(&mut **tx)
        .await?;
        if last.is_some_and(|at| now - at < cooldown) {
            return Ok(false);
        }
    }
    let (state, key, resolved_at) = if alert.notice {
        ("resolved", None, Some(now))
    } else {
        (
            "open",
            Some(open_key(
                &alert.rule,
                alert.pair_id.as_ref(),
                alert.provider.as_ref(),
            )),
            None,
        )
    };
    let inserted = sqlx::query(
        "INSERT IGNORE INTO alerts (id, rule, pair_id, country, operator, provider, state, \
         open_key, opened_at, resolved_at, message, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&alert.id)
    .bind(&alert.rule)
    .bind(&alert.pair_id)
    .bind(&alert.country)
    .bind(&alert.operator)
    .bind(&alert.provider)
    .bind(state)
    .bind(key)
    .bind(now)
    .bind(resolved_at)
    .bind(&alert.message)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    insert_notifications(tx, &alert.id, &alert.texts).await?;
    Ok(true)
}

async fn resolve_in(
    tx: &mut Transaction<'_, MySql>,
    alert_id: &str,
    texts: &[(String, String)],
) -> Result<bool, StoreError> {
    let now = Utc::now();
    let resolved = sqlx::query(
        "UPDATE alerts SET state = 'resolved', open_key = NULL, resolved_at = ?, updated_at = ? \
         WHERE id = ? AND state = 'open'",
    )
    .bind(now)
    .bind(now)
    .bind(alert_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if resolved == 0 {
        return Ok(false);
    }
    insert_notifications(tx, alert_id, texts).await?;
    Ok(true)
}

async fn insert_notifications(
    tx: &mut Transaction<'_, MySql>,
    alert_id: &str,
    texts: &[(String, String)],
) -> Result<(), StoreError> {
    if texts.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let mut insert = QueryBuilder::<MySql>::new(
        "INSERT INTO notifications (alert_id, chat_id, text, status, next_attempt_at, created_at) ",
    );
    insert.push_values(texts, |mut values, (chat, text)| {
        values
            .push_bind(alert_id)
            .push_bind(chat)
            .push_bind(text)
            .push_bind("pending")
            .push_bind(now)
            .push_bind(now);
    });
    insert.build().execute(&mut **tx).await?;
    Ok(())
}

fn bucket(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::seconds(BUCKET_SECS))
        .unwrap_or(at)
}

async fn add_outcomes(
    tx: &mut Transaction<'_, MySql>,
    outcomes: &[&SmsOutcome],
) -> Result<(), StoreError> {
    // (pair, bucket) → (country, operator, high priority, delivered, undelivered, failed, reconciled)
    type Counts = (String, String, bool, i64, i64, i64, i64);
    let mut counts: BTreeMap<(String, DateTime<Utc>), Counts> = BTreeMap::new();
    let mut errors: BTreeMap<(String, DateTime<Utc>, String), i64> = BTreeMap::new();
    let mut latency: BTreeMap<(String, DateTime<Utc>, u16), i64> = BTreeMap::new();
    // (pair, provider, bucket) → (delivered, finished)
    let mut routes: BTreeMap<(String, String, DateTime<Utc>), (i64, i64)> = BTreeMap::new();
    for outcome in outcomes {
        let at = bucket(outcome.occurred_at);
        if let Some((provider, delivered)) = outcome.route_outcome() {
            let entry = routes
                .entry((
                    outcome.country_operator_id.clone(),
                    provider.to_string(),
                    at,
                ))
                .or_insert((0, 0));
            entry.0 += i64::from(delivered);
            entry.1 += 1;
        }
        if let Some(ms) = outcome.delivery_ms() {
            let bin = smsops_common::latency::bin(ms);
            *latency
                .entry((outcome.country_operator_id.clone(), at, bin))
                .or_insert(0) += 1;
        }
        let entry = counts
            .entry((outcome.country_operator_id.clone(), at))
            .or_insert_with(|| {
                (
                    outcome.country.clone(),
                    outcome.operator.clone(),
                    outcome.is_high_priority,
                    0,
                    0,
                    0,
                    0,
                )
            });
        let finished = match outcome.status.as_str() {
            "delivered" => &mut entry.3,
            "undelivered" => &mut entry.4,
            "failed" => &mut entry.5,
            _ => continue,
        };
        *finished += 1;
        if outcome.reconciled {
            entry.6 += 1;
        }
        if let Some(code) = outcome.burst_code() {
            *errors
                .entry((outcome.country_operator_id.clone(), at, code.to_string()))
                .or_insert(0) += 1;
        }
    }
    if !counts.is_empty() {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO pair_outcomes (pair_id, bucket_at, country, operator, is_high_priority, \
             delivered, undelivered, failed, reconciled) ",
        );
        insert.push_values(&counts, |mut values, ((pair, at), c)| {
            values
                .push_bind(pair)
                .push_bind(at)
                .push_bind(&c.0)
                .push_bind(&c.1)
                .push_bind(c.2)
                .push_bind(c.3)
                .push_bind(c.4)
                .push_bind(c.5)
                .push_bind(c.6);
        });
        insert.push(
            " ON DUPLICATE KEY UPDATE delivered = delivered + VALUES(delivered), \
             undelivered = undelivered + VALUES(undelivered), failed = failed + VALUES(failed), \
             reconciled = reconciled + VALUES(reconciled), \
             is_high_priority = VALUES(is_high_priority)",
        );
        insert.build().execute(&mut **tx).await?;
    }
    if !errors.is_empty() {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO pair_errors (pair_id, bucket_at, error_code, count) ",
        );
        insert.push_values(&errors, |mut values, ((pair, at, code), count)| {
            values
                .push_bind(pair)
                .push_bind(at)
                .push_bind(code)
                .push_bind(count);
        });
        insert.push(" ON DUPLICATE KEY UPDATE count = count + VALUES(count)");
        insert.build().execute(&mut **tx).await?;
    }
    if !routes.is_empty() {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO provider_outcomes (pair_id, provider, bucket_at, delivered, finished) ",
        );
        insert.push_values(
            &routes,
            |mut values, ((pair, provider, at), (delivered, finished))| {
                values
                    .push_bind(pair)
                    .push_bind(provider)
                    .push_bind(at)
                    .push_bind(delivered)
                    .push_bind(finished);
            },
        );
        insert.push(
            " ON DUPLICATE KEY UPDATE delivered = delivered + VALUES(delivered), \
             finished = finished + VALUES(finished)",
        );
        insert.build().execute(&mut **tx).await?;
    }
    if !latency.is_empty() {
        let mut insert = QueryBuilder::<MySql>::new(
            "INSERT INTO pair_latency (pair_id, bucket_at, bin, count) ",
        );
        insert.push_values(&latency, |mut values, ((pair, at, bin), count)| {
            values
                .push_bind(pair)
                .push_bind(at)
                .push_bind(bin)
                .push_bind(count);
        });
        insert.push(" ON DUPLICATE KEY UPDATE count = count + VALUES(count)");
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}
