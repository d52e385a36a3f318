//! Hands provider status callbacks to sms-svc in batches. Every message
//! brings two or three callbacks; one gRPC call each cost the gateway and
//! sms-svc more than handling the callbacks themselves. Callbacks that
//! arrive while earlier ones are on their way go together in the next
//! call, so a lone callback goes at once and a busy gateway makes few calls.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use smsops_common::grpc::Channel;
use smsops_common::{ApiError, ErrorCode};
use smsops_proto::sms::v1::{self as pb, sms_service_client::SmsServiceClient};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Callbacks in one call; sms-svc takes up to 1,000.
const MOST_PER_CALL: usize = 250;
/// Calls on their way at once; more callbacks wait and make the next call bigger.
const CALLS_IN_FLIGHT: usize = 16;
/// Callbacks waiting for a call; beyond this, new ones wait to be queued.
const QUEUE: usize = 10_000;

type Reply = oneshot::Sender<Result<(), ApiError>>;

#[derive(Clone)]
pub struct CallbackBatcher {
    queue: mpsc::Sender<(pb::StatusCallbackRequest, Reply)>,
}

impl CallbackBatcher {
    /// Starts the task that makes the calls; it ends with the last handle.
    pub fn start(client: SmsServiceClient<Channel>) -> Self {
        let (queue, callbacks) = mpsc::channel(QUEUE);
        tokio::spawn(run(client, callbacks));
        Self { queue }
    }

    /// Hands one callback to sms-svc and says what it made of it. Once
    /// queued, the callback reaches sms-svc even if the provider hangs up
    /// before the answer (providers do not send a status again). While the
    /// queue is full the request waits: refusing it would lose the status
    /// (measured: 2,900 of 318,000 events lost in bench-pipeline at 3,000
    /// msg/s offered), waiting only slows the provider's callbacks down.
    pub async fn handle(&self, callback: pb::StatusCallbackRequest) -> Result<(), ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((callback, reply))
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn run(
    client: SmsServiceClient<Channel>,
    mut callbacks: mpsc::Receiver<(pb::StatusCallbackRequest, Reply)>,
) {
    let calls = Arc::new(Semaphore::new(CALLS_IN_FLIGHT));
    let batches_work = Arc::new(AtomicBool::new(false));
    loop {
        // Waiting for a free call first lets callbacks gather meanwhile.
        let Ok(permit) = calls.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::new();
        if callbacks.recv_many(&mut batch, MOST_PER_CALL).await == 0 {
            return;
        }
        let (client, batches_work) = (client.clone(), batches_work.clone());
        tokio::spawn(async move {
            call(client, batch, &batches_work).await;
            drop(permit);
        });
    }
}

/// Makes one call for `batch`. Until sms-svc has taken a batch once, a copy
/// is kept so that an sms-svc older than this gateway (during a rolling
/// update) still gets every callback, one call each.
async fn call(
    mut client: SmsServiceClient<Channel>,
    batch: Vec<(pb::StatusCallbackRequest, Reply)>,
    batches_work: &AtomicBool,
) {
    let (requests, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    let copy = (!batches_work.load(Ordering::Relaxed)).then(|| requests.clone());
    let request = pb::StatusCallbacksRequest {
        callbacks: requests,
    };
    match client.handle_status_callbacks(request).await {
        Ok(response) => {
            batches_work.store(true, Ordering::Relaxed);
            let mut unanswered = replies.len();
            let mut replies: Vec<Option<Reply>> = replies.into_iter().map(Some).collect();
            let mut results = response.into_inner();
            let ended = loop {
                if unanswered == 0 {
                    return;
                }
                match results.message().await {
                    Ok(Some(result)) => {
                        let reply = usize::try_from(result.index)
                            .ok()
                            .and_then(|at| replies.get_mut(at))
                            .and_then(Option::take);
                        if let Some(reply) = reply {
                            unanswered -= 1;
                            let _ = reply.send(answer(result));
                        }
                    }
                    Ok(None) => break ApiError::internal("sms-svc left callbacks unanswered"),
                    Err(status) => break ApiError::from_status(&status),
                }
            };
            for reply in replies.into_iter().flatten() {
                let _ = reply.send(Err(ended.clone()));
            }
        }
        // An sms-svc older than this gateway, during a rolling update.
        Err(status) if status.code() == tonic::Code::Unimplemented && copy.is_some() => {
            for (request, reply) in copy.unwrap_or_default().into_iter().zip(replies) {
                let result = client
                    .handle_status_callback(request)
                    .await
                    .map(drop)
                    .map_err(|status| ApiError::from_status(&status));
                let _ = reply.send(result);
            }
        }
        Err(status) => {
            let err = ApiError::from_status(&status);
            for reply in replies {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

fn gone() -> ApiError {
    ApiError::new(ErrorCode::Unavailable, "the gateway is shutting down")
}

fn answer(result: pb::CallbackResult) -> Result<(), ApiError> {
    if result.error_code.is_empty() {
        return Ok(());
    }
    let code = result.error_code.parse().unwrap_or(ErrorCode::Internal);
    Err(ApiError::new(code, result.error_message))
}
