//! Each replica's supervisor: runs the sessions this replica holds, takes
//! over sessions whose lease ran out (their replica died), and works out
//! the country budgets' shares for its runners.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};

use super::{
    budget,
    runner::{Exit, RunContext, Runner},
};
use crate::store::SessionDoc;

struct Running {
    poke: Arc<Notify>,
    task: JoinHandle<Exit>,
}

pub struct Supervisor {
    ctx: Arc<RunContext>,
    caps: HashMap<String, f64>,
    runners: Mutex<HashMap<String, Running>>,
    shutdown: watch::Sender<bool>,
}

impl Supervisor {
    pub fn new(ctx: Arc<RunContext>, caps: HashMap<String, f64>) -> Self {
        Self {
            ctx,
            caps,
            runners: Mutex::new(HashMap::new()),
            shutdown: watch::channel(false).0,
        }
    }

    pub fn context(&self) -> &Arc<RunContext> {
        &self.ctx
    }

    /// Runs a session this replica holds the lease of, unless it runs here
    /// already.
    pub fn adopt(&self, session: SessionDoc) {
        let Ok(mut runners) = self.runners.lock() else {
            return;
        };
        if let Some(running) = runners.get(&session.id)
            && !running.task.is_finished()
        {
            running.poke.notify_one();
            return;
        }
        tracing::info!(session = %session.id, state = %session.state, "running session");
        let poke = Arc::new(Notify::new());
        let runner = Runner::new(self.ctx.clone(), session.clone());
        let task = tokio::spawn(runner.run(poke.clone(), self.shutdown.subscribe()));
        runners.insert(session.id, Running { poke, task });
    }

    /// Has the runner of `id`, if it runs here, look at its session now.
    pub fn poke(&self, id: &str) {
        if let Ok(runners) = self.runners.lock()
            && let Some(running) = runners.get(id)
        {
            running.poke.notify_one();
        }
    }

    /// Until `stop` resolves: every heartbeat, shares out the country
    /// budgets and takes over sessions nobody holds. Then lets every
    /// session go, for other replicas to take at once.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let mut heartbeat = tokio::time::interval(self.ctx.supervision.heartbeat);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = heartbeat.tick() => {
                    self.refresh_shares().await;
                    self.claim_free().await;
                    self.reap();
                }
            }
        }
        let _ = self.shutdown.send(true);
        let tasks: Vec<JoinHandle<Exit>> = match self.runners.lock() {
            Ok(mut runners) => runners.drain().map(|(_, running)| running.task).collect(),
            Err(_) => Vec::new(),
        };
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Recomputes every active session's share of its country's budget.
    pub async fn refresh_shares(&self) {
        if self.caps.is_empty() {
            return;
        }
        match self.ctx.store.active_rates().await {
            Ok(active) => {
                let shares = budget::shares(&active, &self.caps);
                if let Ok(mut current) = self.ctx.shares.write() {
                    *current = shares;
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot read active sessions for budgets"),
        }
    }

    async fn claim_free(&self) {
        loop {
            let lease_until = self.ctx.lease_until();
            match self
                .ctx
                .store
                .claim(&self.ctx.supervision.replica, lease_until)
                .await
            {
                Ok(Some(session)) => {
                    tracing::info!(session = %session.id, replica = %self.ctx.supervision.replica, "took over session");
                    self.adopt(session);
                }
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot look for sessions to take over");
                    return;
                }
            }
        }
    }

    fn reap(&self) {
        if let Ok(mut runners) = self.runners.lock() {
            runners.retain(|_, running| !running.task.is_finished());
        }
    }
}
