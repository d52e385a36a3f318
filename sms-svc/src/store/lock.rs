//! Which replica relays the outbox, and which does the upkeep (receipt
//! reconciliation). Every replica could publish every waiting event, but
//! two relays publish each event twice: double the broker's work and every
//! consumer's, for nothing; two reconcilers would look each message up
//! twice. One replica holds a MySQL named lock on a connection of its own
//! and does the work; the others wait and take over when it goes. MySQL
//! frees the lock when that connection ends, so a replica that dies, or
//! loses its database, hands over by itself.

use std::time::Duration;

use smsops_common::amqp::Lease;
use sqlx::{ConnectOptions, Connection, MySqlConnection, mysql::MySqlConnectOptions};

use super::{RepoError, Store};

/// One lock per database: replicas of other deployments (and parallel
/// tests) on the same server do not share it. Hashed, because the server
/// takes names of at most 64 characters.
const RELAY: &str = "CONCAT('smsops.outbox_relay.', SHA1(DATABASE()))";
const UPKEEP: &str = "CONCAT('smsops.upkeep.', SHA1(DATABASE()))";

/// Longer than this, a database may have ended the connection and freed
/// the lock meanwhile.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// A named lock, held for as long as this lives.
pub struct NamedLock {
    connection: MySqlConnection,
    name: &'static str,
}

pub type RelayLock = NamedLock;
pub type UpkeepLock = NamedLock;

impl Store {
    /// The relay lock, if no other replica holds it.
    pub async fn try_relay_lock(&self) -> Result<Option<RelayLock>, RepoError> {
        self.try_lock(RELAY).await
    }

    /// The upkeep lock, if no other replica holds it.
    pub async fn try_upkeep_lock(&self) -> Result<Option<UpkeepLock>, RepoError> {
        self.try_lock(UPKEEP).await
    }

    async fn try_lock(&self, name: &'static str) -> Result<Option<NamedLock>, RepoError> {
        let options: MySqlConnectOptions = (*self.pool.connect_options()).clone();
        let mut connection = options.connect().await?;
        let (taken,): (Option<i64>,) = sqlx::query_as(&format!("SELECT GET_LOCK({name}, 0)"))
            .fetch_one(&mut connection)
            .await?;
        if taken == Some(1) {
            Ok(Some(NamedLock { connection, name }))
        } else {
            connection.close().await?;
            Ok(None)
        }
    }
}

impl Lease for NamedLock {
    /// Whether the lock is still this connection's. `false` once the
    /// connection broke: the server has freed the lock, and another
    /// replica may hold it by now.
    async fn still_held(&mut self) -> bool {
        let sql = format!("SELECT IS_USED_LOCK({}) = CONNECTION_ID()", self.name);
        let asked = sqlx::query_as::<_, (Option<bool>,)>(&sql).fetch_one(&mut self.connection);
        matches!(
            tokio::time::timeout(ANSWER_WITHIN, asked).await,
            Ok(Ok((Some(true),)))
        )
    }
}

impl NamedLock {
    /// Frees the lock at once, so another replica need not wait for this
    /// connection to time out.
    pub async fn release(mut self) {
        let _ = sqlx::query(&format!("DO RELEASE_LOCK({})", self.name))
            .execute(&mut self.connection)
            .await;
        let _ = self.connection.close().await;
    }
}
