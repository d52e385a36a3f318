//! Group commit for status changes. Every provider answer and callback is
//! one small change; applied one transaction each, MySQL spends more on
//! statements and commits than on the changes. Callers queue their change
//! here and wait; one writer takes whatever is queued and applies it in one
//! transaction, so the cost per change falls as the load rises. One, because
//! two writers locking the same messages deadlock (measured: no faster, and
//! retries) while one keeps MySQL as busy.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::OutboxEvent;
use crate::store::{Applied, Change, Store, StoreError, Target};

/// Most changes one transaction takes; bounds its statements' size.
const MAX_BATCH: usize = 500;
/// Changes waiting beyond this make callers wait to queue theirs.
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<Applied, StoreError>>;

struct Job {
    target: Target,
    change: Change,
    reply: Reply,
}

#[derive(Clone)]
pub struct StatusWriter {
    queue: mpsc::Sender<Job>,
}

impl StatusWriter {
    /// Starts the writer for `provider`'s messages; `applied` is told
    /// whenever new events are in the outbox. It ends with the last handle.
    pub fn start(store: Store, provider: &'static str, applied: Arc<tokio::sync::Notify>) -> Self {
        let (queue, mut jobs) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&mut jobs).await {
                apply(&store, provider, batch, &applied).await;
            }
        });
        Self { queue }
    }

    /// Applies one change and says what became of it.
    pub async fn apply(&self, target: Target, change: Change) -> Result<Applied, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            target,
            change,
            reply,
        };
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the status writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the status writer has stopped".into()))?
    }
}

/// Waits for one job, then takes every job already queued, up to a batch.
async fn next_batch(jobs: &mut mpsc::Receiver<Job>) -> Option<Vec<Job>> {
    let first = jobs.recv().await?;
    let mut batch = Vec::with_capacity(64);
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn apply(store: &Store, provider: &str, batch: Vec<Job>, applied: &tokio::sync::Notify) {
    let changes: Vec<(Target, Change)> = batch
        .iter()
        .map(|job| (job.target.clone(), job.change.clone()))
        .collect();
    let event = |row: &_| OutboxEvent::for_message(row, chrono::Utc::now());
    match store.apply_changes(provider, &changes, event).await {
        Ok(results) => {
            applied.notify_one();
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        // One bad change must not fail the others with it: apply each alone.
        Err(err) if batch.len() > 1 => {
            tracing::warn!(error = %err, changes = batch.len(), "status batch failed, applying one by one");
            for job in batch {
                let one = [(job.target, job.change)];
                let result = store.apply_changes(provider, &one, event).await;
                let result = result.map(|mut results| results.pop().unwrap_or(Applied::Unknown));
                applied.notify_one();
                let _ = job.reply.send(result);
            }
        }
        Err(err) => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(err));
            }
        }
    }
}
