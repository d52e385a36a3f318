//! Retention: rows older than their table's horizon are deleted in small
//! batches, by one replica at a time, and every table's size is exported as
//! `smsops_table_rows{table}`. Small batches keep each delete's locks and
//! undo log short, so the hot path's inserts never wait long behind them.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use sqlx::{ConnectOptions, Connection, MySqlConnection, MySqlPool};
use tokio::sync::watch;

/// Rows deleted per statement.
const BATCH: u32 = 1000;
/// The most batches one table gets per round: a backlog (a horizon just
/// shortened) drains over several rounds instead of in one long burst.
const MAX_BATCHES: u32 = 50;
/// Between two batches, so the deletes take a share of the server, not all.
const PAUSE: Duration = Duration::from_millis(20);

/// One table's horizon: rows whose `column` is older than `keep` go.
#[derive(Debug, Clone)]
pub struct Horizon {
    pub table: &'static str,
    /// An indexed time column.
    pub column: &'static str,
    pub keep: Duration,
    /// Tables whose rows belong to a row of this one, as (table, column
    /// holding this table's `id`): deleted with it, in the same transaction.
    pub children: &'static [(&'static str, &'static str)],
}

impl Horizon {
    pub fn new(table: &'static str, column: &'static str, keep: Duration) -> Self {
        Self {
            table,
            column,
            keep,
            children: &[],
        }
    }

    pub fn with_children(mut self, children: &'static [(&'static str, &'static str)]) -> Self {
        self.children = children;
        self
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

pub struct Retention {
    pool: MySqlPool,
    horizons: Vec<Horizon>,
    every: Duration,
    rows: Family<TableLabels, Gauge>,
    pruned: Family<TableLabels, Counter>,
}

impl Retention {
    /// Prunes `horizons` every `every`; the gauge covers every table of
    /// the pool's database, pruned or not.
    pub fn new(pool: MySqlPool, horizons: Vec<Horizon>, every: Duration) -> Self {
        Self {
            pool,
            horizons,
            every,
            rows: Family::default(),
            pruned: Family::default(),
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "table_rows",
            "Rows in each table of this service's database (InnoDB's estimate), on the replica pruning",
            self.rows.clone(),
        );
        registry.register(
            "rows_pruned",
            "Rows deleted for being older than their table's horizon",
            self.pruned.clone(),
        );
    }

    /// Runs until `stop` turns true. One replica holds the retention lock
    /// and prunes; the others ask for it every round.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut held: Option<MySqlConnection> = None;
        while !*stop.borrow() {
            held = match held {
                Some(mut connection) => {
                    if still_held(&mut connection).await {
                        Some(connection)
                    } else {
                        tracing::warn!("retention lost its lock, standing by");
                        None
                    }
                }
                None => take_lock(&self.pool).await,
            };
            if held.is_some() {
                if let Err(err) = self.round().await {
                    tracing::warn!(error = %err, "retention round failed");
                }
            } else {
                self.rows.clear();
            }
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                _ = stop.changed() => {}
            }
        }
        if let Some(mut connection) = held {
            let _ = sqlx::query(&format!("DO RELEASE_LOCK({LOCK})"))
                .execute(&mut connection)
                .await;
            let _ = connection.close().await;
        }
    }

    /// Prunes each table once, then measures them all.
    pub async fn round(&self) -> Result<(), sqlx::Error> {
        for horizon in &self.horizons {
            let before = Utc::now() - TimeDelta::from_std(horizon.keep).unwrap_or(TimeDelta::MAX);
            let mut deleted = 0;
            for _ in 0..MAX_BATCHES {
                let n = prune_batch(&self.pool, horizon, before).await?;
                deleted += n;
                if n < u64::from(BATCH) {
                    break;
                }
                tokio::time::sleep(PAUSE).await;
            }
            if deleted > 0 {
                let labels = TableLabels {
                    table: horizon.table.into(),
                };
                self.pruned.get_or_create(&labels).inc_by(deleted);
                tracing::info!(
                    table = horizon.table,
                    deleted,
                    "rows past their horizon pruned"
                );
            }
        }
        let sizes: Vec<(String, Option<u64>)> = sqlx::query_as(
            "SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> '_sqlx_migrations'",
        )
        .fetch_all(&self.pool)
        .await?;
        for (table, rows) in sizes {
            let rows = i64::try_from(rows.unwrap_or(0)).unwrap_or(i64::MAX);
            self.rows.get_or_create(&TableLabels { table }).set(rows);
        }
        Ok(())
    }
}

/// Deletes up to [`BATCH`] rows of `horizon`'s table older than `before`,
/// with their children; how many.
async fn prune_batch(
    pool: &MySqlPool,
    horizon: &Horizon,
    before: chrono::DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let (table, column) = (horizon.table, horizon.column);
    if horizon.children.is_empty() {
        let sql = format!("DELETE FROM `{table}` WHERE `{column}` < ? LIMIT {BATCH}");
        return Ok(sqlx::query(&sql)
            .bind(before)
            .execute(pool)
            .await?
            .rows_affected());
    }
    let mut tx = pool.begin().await?;
    let sql = format!(
        "SELECT id FROM `{table}` WHERE `{column}` < ? ORDER BY `{column}` LIMIT {BATCH} FOR UPDATE"
    );
    let ids: Vec<(String,)> = sqlx::query_as(&sql)
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let marks = vec!["?"; ids.len()].join(", ");
    for (child, key) in horizon.children {
        let sql = format!("DELETE FROM `{child}` WHERE `{key}` IN ({marks})");
        let mut query = sqlx::query(&sql);
        for (id,) in &ids {
            query = query.bind(id);
        }
        query.execute(&mut *tx).await?;
    }
    let sql = format!("DELETE FROM `{table}` WHERE id IN ({marks})");
    let mut query = sqlx::query(&sql);
    for (id,) in &ids {
        query = query.bind(id);
    }
    let deleted = query.execute(&mut *tx).await?.rows_affected();
    tx.commit().await?;
    Ok(deleted)
}

/// One lock per database, so each deployment (and each test) has its own.
const LOCK: &str = "CONCAT('smsops.retention.', SHA1(DATABASE()))";

async fn take_lock(pool: &MySqlPool) -> Option<MySqlConnection> {
    let options = (*pool.connect_options()).clone();
    let mut connection = options.connect().await.ok()?;
    let taken: Option<(Option<i64>,)> = sqlx::query_as(&format!("SELECT GET_LOCK({LOCK}, 0)"))
        .fetch_one(&mut connection)
        .await
        .ok();
    if matches!(taken, Some((Some(1),))) {
        Some(connection)
    } else {
        let _ = connection.close().await;
        None
    }
}

async fn still_held(connection: &mut MySqlConnection) -> bool {
    let sql = format!("SELECT IS_USED_LOCK({LOCK}) = CONNECTION_ID()");
    let asked = sqlx::query_as::<_, (Option<bool>,)>(&sql).fetch_one(connection);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), asked).await,
        Ok(Ok((Some(true),)))
    )
}
