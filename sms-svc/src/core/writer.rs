//! Group commit for status changes. Every provider answer and callback is
//! one small change; applied one transaction each, MySQL spends more on
//! statements and commits than on the changes. Callers queue their change
//! here and wait; one writer takes whatever is queued and applies it in one
//! transaction, so the cost per change falls as the load rises. One, because
//! two writers locking the same messages deadlock (measured: no faster, and
//! retries) while one keeps MySQL as busy.
//!
//! Nothing queued is dropped. The queue is unbounded, so queuing never waits
//! and a caller that gives up (a webhook call timing out under load) has
//! still handed its change over. A callback for a provider id not recorded
//! yet (it overtook our own record of the provider's answer, which may be
//! further back in this queue) is kept and tried with every batch until
//! [`EARLY_CALLBACK_WAIT`] has passed, instead of being lost.
//!
//! New sends wait while the writer is far behind ([`StatusWriter::wait_for_room`]):
//! the callbacks of messages already sent then get through in bounded
//! time, rather than queueing behind ever more new sends until Twilio's
//! callback requests time out (measured: a 10 s backlog at 3,000 msg/s
//! offered, and callbacks lost to timeouts).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::domain::{Applied, Change, MessageRepository, Origin, RepoError, Target};

/// Most changes one transaction takes; bounds its statements' size.
const MAX_BATCH: usize = 500;
/// How long a callback for an unknown provider id waits for it to appear.
const EARLY_CALLBACK_WAIT: Duration = Duration::from_secs(30);
/// How often kept callbacks are tried when nothing else comes in.
const RETRY_EVERY: Duration = Duration::from_millis(100);
/// Changes waiting beyond this hold back new sends (about a second's work).
const ROOM: usize = 4000;

type Reply = oneshot::Sender<Result<Applied, RepoError>>;

struct Job {
    target: Target,
    change: Change,
    reply: Reply,
    /// Until when an unknown provider id is waited for.
    wait_until: Instant,
}

#[derive(Clone)]
pub struct StatusWriter {
    queue: mpsc::UnboundedSender<Job>,
    load: Arc<Load>,
}

/// Changes queued or being applied, and a signal when that number falls.
#[derive(Default)]
struct Load {
    waiting: AtomicUsize,
    fell: tokio::sync::Notify,
}

impl StatusWriter {
    /// Starts the writer for `provider`'s messages; `applied` is told
    /// whenever new events are in the outbox. It ends with the last handle.
    pub fn start<R: MessageRepository>(
        messages: R,
        provider: String,
        applied: Arc<tokio::sync::Notify>,
    ) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        let load = Arc::new(Load::default());
        tokio::spawn(run(messages, provider, jobs, applied, load.clone()));
        Self { queue, load }
    }

    /// Waits until the writer is not far behind.
    pub async fn wait_for_room(&self) {
        loop {
            let fell = self.load.fell.notified();
            if self.load.waiting.load(Ordering::Acquire) < ROOM {
                return;
            }
            fell.await;
        }
    }

    /// Applies one change and says what became of it. A change by
    /// provider id waits a while for that id to be recorded.
    pub async fn apply(&self, target: Target, change: Change) -> Result<Applied, RepoError> {
        let (reply, answer) = oneshot::channel();
        let wait_until = match target {
            Target::Sid(_) | Target::Part(_) => Instant::now() + EARLY_CALLBACK_WAIT,
            Target::Id(_) => Instant::now(),
        };
        let job = Job {
            target,
            change,
            reply,
            wait_until,
        };
        let stopped = || RepoError::Unavailable("the status writer has stopped".into());
        self.load.waiting.fetch_add(1, Ordering::AcqRel);
        if self.queue.send(job).is_err() {
            self.load.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(stopped());
        }
        answer.await.map_err(|_| stopped())?
    }
}

async fn run<R: MessageRepository>(
    messages: R,
    provider: String,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    applied: Arc<tokio::sync::Notify>,
    load: Arc<Load>,
) {
    let mut waiting: Vec<Job> = Vec::new();
    loop {
        let first = if waiting.is_empty() {
            jobs.recv().await
        } else {
            match tokio::time::timeout(RETRY_EVERY, jobs.recv()).await {
                Ok(Some(job)) => Some(job),
                // Closed: nothing new will come, but kept callbacks still wait.
                Ok(None) => {
                    tokio::time::sleep(RETRY_EVERY).await;
                    None
                }
                Err(_) => None,
            }
        };
        let closed = first.is_none() && waiting.is_empty();
        if closed {
            return;
        }
        // Kept callbacks go after the new changes: the answer they wait
        // for is more likely among those.
        let mut batch: Vec<Job> = first.into_iter().collect();
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        batch.append(&mut waiting);
        let taken = batch.len();
        waiting = apply(&messages, &provider, batch, &applied).await;
        load.waiting
            .fetch_sub(taken - waiting.len(), Ordering::AcqRel);
        load.fell.notify_waiters();
    }
}

/// Applies a batch; returns the callbacks to try again.
async fn apply<R: MessageRepository>(
    messages: &R,
    provider: &str,
    batch: Vec<Job>,
    applied: &tokio::sync::Notify,
) -> Vec<Job> {
    let changes: Vec<(Target, Change)> = batch
        .iter()
        .map(|job| (job.target.clone(), job.change.clone()))
        .collect();
    let results = match messages
        .apply_changes(provider, &changes, Origin::Live)
        .await
    {
        Ok(results) => results.into_iter().map(Ok).collect(),
        // One bad change must not fail the others with it: apply each alone.
        Err(err) if batch.len() > 1 => {
            tracing::warn!(error = %err, changes = batch.len(), "status batch failed, applying one by one");
            let mut results = Vec::with_capacity(batch.len());
            for change in changes {
                let one = messages
                    .apply_changes(provider, &[change], Origin::Live)
                    .await;
                results.push(one.map(|mut r| r.pop().unwrap_or(Applied::Unknown)));
            }
            results
        }
        Err(err) => vec![Err(err)],
    };
    applied.notify_one();
    let now = Instant::now();
    let mut again = Vec::new();
    let mut given_up = 0usize;
    for (job, result) in batch.into_iter().zip(results) {
        match result {
            // Kept even when its caller has given up: it is not lost.
            Ok(Applied::Unknown) if now < job.wait_until => again.push(job),
            result => {
                if matches!(result, Ok(Applied::Unknown))
                    && matches!(job.target, Target::Sid(_) | Target::Part(_))
                {
                    given_up += 1;
                }
                let _ = job.reply.send(result);
            }
        }
    }
    // Nobody else would hear of it: the caller (a callback's request, an
    // SMSC's receipt) had its answer long ago.
    if given_up > 0 {
        tracing::warn!(
            provider,
            callbacks = given_up,
            waited_secs = EARLY_CALLBACK_WAIT.as_secs(),
            "status callbacks for provider ids never recorded were given up; their messages are left to receipt reconciliation"
        );
    }
    again
}
