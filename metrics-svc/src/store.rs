//! Metrics in MySQL: per-pair minute rows and the events already counted,
//! changed together in one transaction per batch of events.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use smsops_common::{ApiError, latency::Histogram};
use sqlx::{MySql, MySqlPool, QueryBuilder, Row};

use crate::core::{SmsEvent, Tally};

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
            StoreError::Sql(err) => smsops_common::mysql::api_error("metrics store", err),
            StoreError::Migrate(err) => ApiError::internal(err),
        }
    }
}

/// One pair's totals over a window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PairTotals {
    pub pair_id: String,
    pub country: String,
    pub operator: String,
    pub sms_sent: i64,
    pub delivered: i64,
    pub undelivered: i64,
    pub failed: i64,
    /// Filled in after the totals query: (code, count), most first.
    #[sqlx(skip)]
    pub top_errors: Vec<(String, i64)>,
    #[sqlx(skip)]
    pub latency: Latency,
}

/// Acceptance to sent and to delivered, over a window.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    pub to_sent: Histogram,
    pub to_delivered: Histogram,
}

impl Latency {
    fn add(&mut self, step: u8, bin: u16, count: i64) {
        let histogram = match step {
            STEP_SENT => &mut self.to_sent,
            _ => &mut self.to_delivered,
        };
        histogram.add(bin, count.max(0) as u64);
    }
}

/// Whether a summary reads the latency bins too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latencies {
    Read,
    Skip,
}

/// `sms_latency.step`.
const STEP_SENT: u8 = 1;
const STEP_DELIVERED: u8 = 2;

/// Error codes kept per pair in a summary.
const TOP_ERRORS: usize = 5;

/// One time bucket's counts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Bucket {
    pub at: DateTime<Utc>,
    pub sms_sent: i64,
    pub delivered: i64,
    pub undelivered: i64,
    pub failed: i64,
    #[sqlx(skip)]
    pub latency: Latency,
}

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

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Counts the events not counted before, in one transaction; returns
    /// what the new ones added, per pair and minute. Two consumers racing on one event both try to
    /// record it; the loser's transaction fails on the key and is retried
    /// by its caller, and then finds it counted.
    pub async fn count(&self, events: &[SmsEvent]) -> Result<Vec<Tally>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut select =
            QueryBuilder::<MySql>::new("SELECT event_id FROM processed_events WHERE event_id IN (");
        let mut ids = select.separated(", ");
        for event in events {
            ids.push_bind(&event.event_id);
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
        let new: Vec<&SmsEvent> = events
            .iter()
            .filter(|e| !seen.contains(&e.event_id) && taken.insert(e.event_id.as_str()))
            .collect();
        if new.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let now = Utc::now();
        let mut record =
            QueryBuilder::<MySql>::new("INSERT INTO processed_events (event_id, processed_at) ");
        record.push_values(&new, |mut values, event| {
            values.push_bind(&event.event_id).push_bind(now);
        });
        record.build().execute(&mut *tx).await?;
        let tallies = crate::core::tally(new.iter().copied());
        add(&mut tx, &tallies).await?;
        add_errors(&mut tx, &crate::core::error_tally(new.iter().copied())).await?;
        add_latency(&mut tx, &tallies).await?;
        tx.commit().await?;
        Ok(tallies.into_values().collect())
    }

    pub async fn summary(
        &self,
        since: DateTime<Utc>,
        country: Option<&str>,
        operator: Option<&str>,
        latencies: Latencies,
    ) -> Result<Vec<PairTotals>, StoreError> {
        let mut query = QueryBuilder::<MySql>::new(
            "SELECT pair_id, MAX(country) AS country, MAX(operator) AS operator, \
             CAST(SUM(sms_sent) AS SIGNED) AS sms_sent, CAST(SUM(delivered) AS SIGNED) AS delivered, \
             CAST(SUM(undelivered) AS SIGNED) AS undelivered, CAST(SUM(failed) AS SIGNED) AS failed \
             FROM sms_metrics WHERE `timestamp` >= ",
        );
        query.push_bind(since);
        if let Some(country) = country {
            query.push(" AND country = ").push_bind(country);
        }
        if let Some(operator) = operator {
            query.push(" AND operator = ").push_bind(operator);
        }
        query.push(" GROUP BY pair_id ORDER BY MAX(country), MAX(operator)");
        let mut totals: Vec<PairTotals> = query.build_query_as().fetch_all(&self.pool).await?;
        let errors: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT pair_id, error_code, CAST(SUM(count) AS SIGNED) AS n FROM sms_error_counts \
             WHERE `timestamp` >= ? GROUP BY pair_id, error_code ORDER BY n DESC, error_code",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        for pair in &mut totals {
            pair.top_errors = errors
                .iter()
                .filter(|(id, _, _)| *id == pair.pair_id)
                .take(TOP_ERRORS)
                .map(|(_, code, n)| (code.clone(), *n))
                .collect();
        }
        if latencies == Latencies::Skip || totals.is_empty() {
            return Ok(totals);
        }
        // Only the pairs listed: a country's summary reads its own bins.
        let mut query = QueryBuilder::<MySql>::new(
            "SELECT pair_id, step, bin, CAST(SUM(count) AS SIGNED) AS n FROM sms_latency \
             WHERE `timestamp` >= ",
        );
        query.push_bind(since).push(" AND pair_id IN (");
        let mut pairs = query.separated(", ");
        for pair in &totals {
            pairs.push_bind(pair.pair_id.clone());
        }
        query.push(") GROUP BY pair_id, step, bin");
        let bins: Vec<(String, u8, u16, i64)> =
            query.build_query_as().fetch_all(&self.pool).await?;
        let mut latency: BTreeMap<String, Latency> = BTreeMap::new();
        for (pair, step, bin, n) in bins {
            latency.entry(pair).or_default().add(step, bin, n);
        }
        for pair in &mut totals {
            pair.latency = latency.remove(&pair.pair_id).unwrap_or_default();
        }
        Ok(totals)
    }

    /// Counts per `bucket_secs` between `since` and `until`, for one pair
    /// or all.
    pub async fn series(
        &self,
        pair_id: Option<&str>,
        bucket_secs: u64,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Bucket>, StoreError> {
        let mut query =
            QueryBuilder::<MySql>::new("SELECT FROM_UNIXTIME(FLOOR(UNIX_TIMESTAMP(`timestamp`) / ");
        query
            .push_bind(bucket_secs)
            .push(") * ")
            .push_bind(bucket_secs)
            .push(
                ") AS at, CAST(SUM(sms_sent) AS SIGNED) AS sms_sent, \
             CAST(SUM(delivered) AS SIGNED) AS delivered, \
             CAST(SUM(undelivered) AS SIGNED) AS undelivered, \
             CAST(SUM(failed) AS SIGNED) AS failed FROM sms_metrics WHERE `timestamp` >= ",
            );
        query
            .push_bind(since)
            .push(" AND `timestamp` < ")
            .push_bind(until);
        if let Some(pair) = pair_id {
            query.push(" AND pair_id = ").push_bind(pair);
        }
        query.push(" GROUP BY at ORDER BY at");
        let mut buckets: Vec<Bucket> = query.build_query_as().fetch_all(&self.pool).await?;
        let mut bins =
            QueryBuilder::<MySql>::new("SELECT FROM_UNIXTIME(FLOOR(UNIX_TIMESTAMP(`timestamp`) / ");
        bins.push_bind(bucket_secs)
            .push(") * ")
            .push_bind(bucket_secs)
            .push(
                ") AS at, step, bin, CAST(SUM(count) AS SIGNED) AS n FROM sms_latency \
                 WHERE `timestamp` >= ",
            )
            .push_bind(since)
            .push(" AND `timestamp` < ")
            .push_bind(until);
        if let Some(pair) = pair_id {
            bins.push(" AND pair_id = ").push_bind(pair);
        }
        bins.push(" GROUP BY at, step, bin");
        let bins: Vec<(DateTime<Utc>, u8, u16, i64)> =
            bins.build_query_as().fetch_all(&self.pool).await?;
        let mut latency: BTreeMap<DateTime<Utc>, Latency> = BTreeMap::new();
        for (at, step, bin, n) in bins {
            latency.entry(at).or_default().add(step, bin, n);
        }
        for bucket in &mut buckets {
            bucket.latency = latency.remove(&bucket.at).unwrap_or_default();
        }
        Ok(buckets)
    }
}

/// Adds each (pair, minute, code) count to its row, one statement for the batch.
async fn add_errors(
    tx: &mut sqlx::Transaction<'_, MySql>,
    counts: &BTreeMap<(String, DateTime<Utc>, String), u32>,
) -> Result<(), StoreError> {
    if counts.is_empty() {
        return Ok(());
    }
    let mut upsert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_error_counts (pair_id, `timestamp`, error_code, count) ",
    );
    upsert.push_values(counts, |mut values, ((pair, minute, code), count)| {
        values
            .push_bind(pair)
            .push_bind(*minute)
            .push_bind(code)
            .push_bind(*count);
    });
    upsert.push(" ON DUPLICATE KEY UPDATE count = count + VALUES(count)");
    upsert.build().execute(&mut **tx).await?;
    Ok(())
}

/// Adds each pair-minute's latencies to their bins, one statement for the batch.
async fn add_latency(
    tx: &mut sqlx::Transaction<'_, MySql>,
    tallies: &BTreeMap<(String, DateTime<Utc>), Tally>,
) -> Result<(), StoreError> {
    let mut counts: BTreeMap<(&str, DateTime<Utc>, u8, u16), u32> = BTreeMap::new();
    for ((pair, minute), tally) in tallies {
        for (step, samples) in [
            (STEP_SENT, &tally.to_sent_ms),
            (STEP_DELIVERED, &tally.to_delivered_ms),
        ] {
            for ms in samples {
                let bin = smsops_common::latency::bin(*ms);
                *counts.entry((pair, *minute, step, bin)).or_insert(0) += 1;
            }
        }
    }
    if counts.is_empty() {
        return Ok(());
    }
    let mut upsert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_latency (pair_id, `timestamp`, step, bin, count) ",
    );
    upsert.push_values(&counts, |mut values, ((pair, minute, step, bin), count)| {
        values
            .push_bind(*pair)
            .push_bind(*minute)
            .push_bind(*step)
            .push_bind(*bin)
            .push_bind(*count);
    });
    upsert.push(" ON DUPLICATE KEY UPDATE count = count + VALUES(count)");
    upsert.build().execute(&mut **tx).await?;
    Ok(())
}

/// Adds each pair-minute's tally to its row, one statement for the batch.
async fn add(
    tx: &mut sqlx::Transaction<'_, MySql>,
    tallies: &BTreeMap<(String, DateTime<Utc>), Tally>,
) -> Result<(), StoreError> {
    let mut upsert = QueryBuilder::<MySql>::new(
        "INSERT INTO sms_metrics (pair_id, `timestamp`, country, operator, sms_sent, delivered, \
         undelivered, failed, failures, success_rate) ",
    );
    upsert.push_values(tallies, |mut values, ((pair, minute), tally)| {
        let finished = tally.delivered + tally.undelivered + tally.failed;
        let rate = if finished > 0 {
            f64::from(tally.delivered) / f64::from(finished)
        } else {
            0.0
        };
        values
            .push_bind(pair)
            .push_bind(*minute)
            .push_bind(&tally.country)
            .push_bind(&tally.operator)
            .push_bind(tally.sent)
            .push_bind(tally.delivered)
            .push_bind(tally.undelivered)
            .push_bind(tally.failed)
            .push_bind(tally.undelivered + tally.failed)
            .push_bind(rate);
    });
    // Assignments run left to right and see the columns already updated.
    upsert.push(
        " ON DUPLICATE KEY UPDATE sms_sent = sms_sent + VALUES(sms_sent), \
         delivered = delivered + VALUES(delivered), \
         undelivered = undelivered + VALUES(undelivered), \
         failed = failed + VALUES(failed), \
         failures = undelivered + failed, \
         success_rate = IF(delivered + undelivered + failed > 0, \
             delivered / (delivered + undelivered + failed), 0)",
    );
    upsert.build().execute(&mut **tx).await?;
    Ok(())
}
