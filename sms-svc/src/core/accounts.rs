//! The provider accounts sms-svc sends through, by name, in their
//! configured order (the route of a pair that has none), each with the
//! writer that records its answers and receipts.

use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use super::{
    health::RouteHealth,
    keep_receipts,
    providers::{Dispatcher, codes},
    writer::StatusWriter,
};
use crate::domain::{
    MessageRepository, RouteReason, RouteStep,
    route::{self, Candidate},
};

pub struct Account {
    pub dispatcher: Dispatcher,
    /// Group-commits this account's changes; a callback naming one of its
    /// provider ids waits here for the send that recorded it.
    pub(super) writer: StatusWriter,
}

pub struct Accounts {
    all: Vec<Account>,
    health: Arc<RouteHealth>,
}

/// Where a message is to go: positions in [`Accounts`], in order.
pub type Plan = Vec<(usize, RouteReason)>;

impl Accounts {
    /// Starts each account's writer and the keeping of the receipts it
    /// pushes; must run inside a runtime. At least one account.
    pub fn start<M: MessageRepository>(
        dispatchers: Vec<Dispatcher>,
        store: &M,
        outbox: &Arc<tokio::sync::Notify>,
    ) -> Self {
        let accounts = dispatchers
            .into_iter()
            .map(|dispatcher| {
                let writer = StatusWriter::start(
                    store.clone(),
                    dispatcher.name().to_string(),
                    outbox.clone(),
                );
                if let Some(receipts) = dispatcher.connector().take_receipts() {
                    tokio::spawn(keep_receipts(receipts, writer.clone()));
                }
                Account { dispatcher, writer }
            })
            .collect();
        Self {
            all: accounts,
            health: Arc::default(),
        }
    }

    /// Which routes stopped delivering; notify-svc's snapshots feed it.
    pub fn health(&self) -> &Arc<RouteHealth> {
        &self.health
    }

    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.all.iter()
    }

    pub fn at(&self, position: usize) -> &Account {
        &self.all[position.min(self.all.len() - 1)]
    }

    pub fn by_name(&self, name: &str) -> Option<&Account> {
        self.all
            .iter()
            .find(|account| account.dispatcher.name() == name)
    }

    /// The order to try the accounts in for `pair` with `route`, as they
    /// are up or down and deliver its messages now.
    pub fn plan(&self, pair: &str, route: &[RouteStep]) -> Plan {
        let (candidates, probe_share) = self.health.with_pair(pair, |sick, probe_share| {
            let candidates: Vec<Candidate<'_>> = self
                .all
                .iter()
                .map(|account| {
                    let name = account.dispatcher.name();
                    Candidate {
                        name,
                        up: account.dispatcher.is_up(),
                        sick: sick.iter().any(|provider| provider == name),
                    }
                })
                .collect();
            (candidates, probe_share)
        });
        let random = SystemRandom::new();
        let mut draw = || {
            let mut bytes = [0u8; 4];
            match random.fill(&mut bytes) {
                Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
                Err(_) => 0.5,
            }
        };
        let plan = route::plan(route, &candidates, probe_share, &mut draw);
        if plan
            .first()
            .is_some_and(|(_, why)| *why == RouteReason::Default)
            && !route.is_empty()
            && once_a_minute()
        {
            let named: Vec<&str> = route.iter().map(|step| step.provider.as_str()).collect();
            tracing::warn!(
                code = codes::UNKNOWN_ROUTE,
                route = ?named,
                "a pair's route names no provider account this service has; sending by the default order"
            );
        }
        plan
    }
}

/// True at most once a minute: a misrouted pair is logged, not every one
/// of its messages.
fn once_a_minute() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() / 60);
    LAST.swap(minute, Ordering::Relaxed) != minute
}
