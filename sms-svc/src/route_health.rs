//! Follows notify-svc's snapshots of sick routes: this replica's own
//! exclusive, auto-deleted queue on the route-health exchange, consumed
//! without acks. Only the newest snapshot matters, so one lost with the
//! broker is replaced by the next a second later.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{Connection, ConnectionProperties};
use smsops_common::amqp::{Backoff, feed};

use crate::core::health::{RouteHealth, Snapshot};

pub struct HealthFollower {
    health: Arc<RouteHealth>,
    amqp_url: String,
    exchange: String,
}

impl HealthFollower {
    pub fn new(health: Arc<RouteHealth>, amqp_url: String, exchange: String) -> Self {
        Self {
            health,
            amqp_url,
            exchange,
        }
    }

    /// Runs until `stop` turns true; never gives up on the broker.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut backoff = Backoff::default();
        while !*stop.borrow() {
            match self.follow(&mut stop).await {
                Ok(()) => backoff.reset(),
                Err(err) => {
                    tracing::warn!(error = %err, "route health feed lost the broker");
                    backoff.wait(&mut stop).await;
                }
            }
        }
    }

    async fn follow(
        &self,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<(), lapin::Error> {
        let connection =
            Connection::connect(&self.amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let bindings = [(self.exchange.clone(), "route.health".to_string())];
        let mut deliveries = feed(&channel, &bindings, "sms-svc.route-health").await?;
        loop {
            tokio::select! {
                delivery = deliveries.next() => match delivery {
                    Some(delivery) => self.take(&delivery?.data),
                    None => break,
                },
                _ = stop.changed() => break,
            }
        }
        let _ =
            tokio::time::timeout(Duration::from_secs(1), connection.close(200, "bye".into())).await;
        Ok(())
    }

    fn take(&self, body: &[u8]) {
        match serde_json::from_slice::<Snapshot>(body) {
            Ok(snapshot) => {
                for change in self.health.apply(snapshot) {
                    tracing::warn!(route = %change, "route health changed");
                }
            }
            Err(err) => tracing::warn!(error = %err, "unreadable route health snapshot"),
        }
    }
}
