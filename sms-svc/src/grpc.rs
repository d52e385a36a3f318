//! The gRPC face of sms-svc: checks the caller's token, converts messages and
//! calls [`SmsCore`].

use std::{pin::Pin, sync::Arc};

use futures::{Stream, StreamExt};

use chrono::SecondsFormat;
use smsops_common::{
    ApiError,
    auth::{Caller, Quota, TokenVerifier},
};
use smsops_proto::sms::v1::{
    self as pb, send_sms_result::Result as SendResult, sms_service_server::SmsService,
};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::{
    core::{ListQuery, SendRequest, SmsCore, SmsError, ingest::Report, segments},
    domain::{Message, StatusChange},
};

pub struct SmsGrpc {
    core: Arc<SmsCore>,
    verifier: Arc<TokenVerifier>,
}

impl SmsGrpc {
    pub fn new(core: Arc<SmsCore>, verifier: Arc<TokenVerifier>) -> Self {
        Self { core, verifier }
    }
}

fn send_request(req: pb::SendSmsRequest) -> SendRequest {
    SendRequest {
        pair_id: req.country_operator_id,
        to: req.to,
        body: req.body,
        idempotency_key: req.idempotency_key,
        session_id: req.session_id,
        charge_to: Some(req.charge_to).filter(|to| !to.is_empty()),
        charge_quota: Quota {
            per_minute: req.quota_per_minute,
            per_day: req.quota_per_day,
        },
        traceparent: Some(req.traceparent).filter(|t| !t.is_empty()),
    }
}

/// Callbacks one `HandleStatusCallbacks` call may carry.
const MAX_CALLBACKS: usize = 1000;

/// Requests taken from a stream per batch, and batches in flight at once.
const STREAM_CHUNK: usize = 200;
const STREAM_BATCHES_IN_FLIGHT: usize = 4;

type ResultStream = Pin<Box<dyn Stream<Item = Result<pb::SendSmsStreamResult, Status>> + Send>>;

fn batch_result(result: Result<Message, SmsError>) -> pb::SendSmsResult {
    pb::SendSmsResult {
        result: Some(match result {
            Ok(row) => SendResult::Sms(sms_to_pb(row)),
            Err(err) => {
                let err = ApiError::from(err);
                SendResult::Error(pb::SendError {
                    code: err.code.as_str().into(),
                    message: err.message,
                    retry_after_secs: err.retry_after.unwrap_or(0),
                })
            }
        }),
    }
}

fn callback_result(index: u32, result: Result<(), SmsError>) -> pb::CallbackResult {
    match result {
        Ok(()) => pb::CallbackResult {
            index,
            ..Default::default()
        },
        Err(err) => {
            let (error_code, error_message) = wire_error(err);
            pb::CallbackResult {
                index,
                error_code,
                error_message,
            }
        }
    }
}

/// The stable code and message of an error reported inside a reply.
fn wire_error(err: SmsError) -> (String, String) {
    let err = ApiError::from(err);
    (err.code.as_str().into(), err.message)
}

async fn status_callback(core: &SmsCore, req: pb::StatusCallbackRequest) -> Result<(), SmsError> {
    let params = req.params.into_iter().map(|p| (p.name, p.value)).collect();
    core.status_callback(&req.provider, &req.query, params, &req.signature)
        .await
}

/// Runs a send to its end even if the caller hangs up mid-call: a message
/// recorded as accepted must also get its provider's answer recorded, or it
/// would sit `accepted` until the sweep fails it.
async fn detached_send(
    core: Arc<SmsCore>,
    caller: Arc<Caller>,
    requests: Vec<SendRequest>,
) -> Result<Vec<Result<Message, SmsError>>, SmsError> {
    // In the call's span: the messages' trace is the request's.
    let send = async move { core.send_batch(&caller, requests).await };
    tokio::spawn(send.instrument(tracing::Span::current()))
        .await
        .map_err(|err| SmsError::Internal(format!("send task failed: {err}")))?
}

#[tonic::async_trait]
impl SmsService for SmsGrpc {
    type SendSmsStreamStream = ResultStream;
    type HandleStatusCallbacksStream =
        Pin<Box<dyn Stream<Item = Result<pb::CallbackResult, Status>> + Send>>;

    async fn send_sms_stream(
        &self,
        request: Request<Streaming<pb::SendSmsRequest>>,
    ) -> Result<Response<ResultStream>, Status> {
        let caller = Arc::new(self.verifier.caller_of(&request).await?);
        let core = self.core.clone();
        let mut next_index = 0u64;
        let results = request
            .into_inner()
            // A broken inbound stream ends the exchange; what came before is answered.
            .take_while(|item| futures::future::ready(item.is_ok()))
            .filter_map(|item| futures::future::ready(item.ok()))
            .ready_chunks(STREAM_CHUNK)
            .map(move |chunk| {
                let first = next_index;
                next_index += chunk.len() as u64;
                let (core, caller) = (core.clone(), caller.clone());
                async move {
                    let requests = chunk.into_iter().map(send_request).collect();
                    detached_send(core, caller, requests)
                        .await
                        .map(|results| (first, results))
                }
            })
            .buffered(STREAM_BATCHES_IN_FLIGHT)
            .flat_map(|outcome| {
                let items: Vec<Result<pb::SendSmsStreamResult, Status>> = match outcome {
                    Ok((first, results)) => results
                        .into_iter()
                        .enumerate()
                        .map(|(i, result)| {
                            Ok(pb::SendSmsStreamResult {
                                index: first + i as u64,
                                result: Some(batch_result(result)),
                            })
                        })
                        .collect(),
                    Err(err) => vec![Err(Status::from(err))],
                };
                futures::stream::iter(items)
            });
        Ok(Response::new(Box::pin(results)))
    }

    async fn send_sms(
        &self,
        request: Request<pb::SendSmsRequest>,
    ) -> Result<Response<pb::Sms>, Status> {
        let caller = Arc::new(self.verifier.caller_of(&request).await?);
        let request = send_request(request.into_inner());
        let row = detached_send(self.core.clone(), caller, vec![request])
            .await?
            .pop()
            .unwrap_or_else(|| Err(SmsError::InvalidArgument("nothing to send".into())))?;
        Ok(Response::new(sms_to_pb(row)))
    }

    async fn send_sms_batch(
        &self,
        request: Request<pb::SendSmsBatchRequest>,
    ) -> Result<Response<pb::SendSmsBatchResponse>, Status> {
        let caller = Arc::new(self.verifier.caller_of(&request).await?);
        let requests = request
            .into_inner()
            .messages
            .into_iter()
            .map(send_request)
            .collect();
        let results = detached_send(self.core.clone(), caller, requests)
            .await?
            .into_iter()
            .map(batch_result)
            .collect();
        Ok(Response::new(pb::SendSmsBatchResponse { results }))
    }

    async fn get_sms(
        &self,
        request: Request<pb::GetSmsRequest>,
    ) -> Result<Response<pb::SmsDetail>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let (row, history) = self.core.get(&caller, &request.into_inner().id).await?;
        Ok(Response::new(pb::SmsDetail {
            sms: Some(sms_to_pb(row)),
            history: history.into_iter().map(history_to_pb).collect(),
        }))
    }

    async fn list_sms(
        &self,
        request: Request<pb::ListSmsRequest>,
    ) -> Result<Response<pb::ListSmsResponse>, Status> {
        let caller = self.verifier.caller_of(&request).await?;
        let req = request.into_inner();
        let query = ListQuery {
            pair_id: req.country_operator_id,
            status: req.status,
            session_id: req.session_id,
            since: req.since,
            until: req.until,
            page_size: req.page_size,
            page_token: req.page_token,
        };
        let (rows, next) = self.core.list(&caller, query).await?;
        Ok(Response::new(pb::ListSmsResponse {
            items: rows.into_iter().map(sms_to_pb).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn handle_status_callback(
        &self,
        request: Request<pb::StatusCallbackRequest>,
    ) -> Result<Response<pb::StatusCallbackResponse>, Status> {
        status_callback(&self.core, request.into_inner()).await?;
        Ok(Response::new(pb::StatusCallbackResponse {}))
    }

    async fn handle_status_callbacks(
        &self,
        request: Request<pb::StatusCallbacksRequest>,
    ) -> Result<Response<Self::HandleStatusCallbacksStream>, Status> {
        let callbacks = request.into_inner().callbacks;
        if callbacks.len() > MAX_CALLBACKS {
            return Err(ApiError::from(SmsError::InvalidArgument(format!(
                "at most {MAX_CALLBACKS} callbacks per call"
            )))
            .into());
        }
        let mut handled: futures::stream::FuturesUnordered<_> = (0u32..)
            .zip(callbacks)
            .map(|(index, req)| {
                let core = self.core.clone();
                async move { Ok(callback_result(index, status_callback(&core, req).await)) }
            })
            .collect();
        // Every callback is applied even if the caller hangs up mid-call:
        // the provider will not send that status again.
        let (results, answers) = futures::channel::mpsc::unbounded();
        let apply = async move {
            while let Some(result) = handled.next().await {
                let _ = results.unbounded_send(result);
            }
        };
        tokio::spawn(apply.instrument(tracing::Span::current()));
        Ok(Response::new(Box::pin(answers)))
    }

    async fn ingest_events(
        &self,
        request: Request<pb::IngestEventsRequest>,
    ) -> Result<Response<pb::IngestEventsResponse>, Status> {
        let caller = self.verifier.any_caller_of(&request).await?;
        let req = request.into_inner();
        let reports: Vec<Report> = req
            .events
            .into_iter()
            .map(|e| Report {
                event_id: e.event_id,
                country: e.country,
                operator: e.operator,
                status: e.status,
                error_code: e.error_code,
                occurred_at: e.occurred_at,
            })
            .collect();
        let accepted = self.core.ingest(&caller, &req.source, &reports).await?;
        Ok(Response::new(pb::IngestEventsResponse {
            accepted: accepted as u32,
        }))
    }

    async fn preview_sms(
        &self,
        request: Request<pb::PreviewSmsRequest>,
    ) -> Result<Response<pb::SmsPreview>, Status> {
        self.verifier.caller_of(&request).await?;
        let count = segments::preview(&request.into_inner().body)?;
        Ok(Response::new(pb::SmsPreview {
            encoding: count.encoding.as_str().into(),
            characters: count.chars,
            units: count.units,
            parts: count.parts,
            per_part: count.per_part,
            ucs2_characters: count.ucs2_because.iter().map(char::to_string).collect(),
        }))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        self.verifier.caller_of(&request).await?;
        let items = self
            .core
            .accounts()
            .iter()
            .map(|account| {
                let dispatcher = &account.dispatcher;
                pb::Provider {
                    name: dispatcher.name().to_string(),
                    kind: dispatcher.connector().name().to_string(),
                    rate_per_second: dispatcher.rate_per_second(),
                    concurrency: u32::try_from(dispatcher.config().concurrency).unwrap_or(u32::MAX),
                    healthy: dispatcher.is_up(),
                }
            })
            .collect();
        Ok(Response::new(pb::ListProvidersResponse { items }))
    }
}

fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn sms_to_pb(message: Message) -> pb::Sms {
    pb::Sms {
        id: message.id,
        country_operator_id: message.pair.id,
        country: message.pair.country,
        operator: message.pair.operator,
        is_high_priority: message.pair.is_high_priority,
        session_id: message.session_id.unwrap_or_default(),
        to: message.to,
        body_length: message.body_length,
        segments: message.segments,
        status: message.status.as_str().into(),
        provider: message.provider,
        route_reason: message
            .route_reason
            .map(|reason| reason.as_str().to_string())
            .unwrap_or_default(),
        provider_sid: message.provider_sid.unwrap_or_default(),
        error_code: message.error_code.unwrap_or_default(),
        error_message: message.error_message.unwrap_or_default(),
        created_at: time(message.created_at),
        updated_at: time(message.updated_at),
    }
}

fn history_to_pb(change: StatusChange) -> pb::StatusChange {
    pb::StatusChange {
        status: change.status.as_str().into(),
        error_code: change.error_code.unwrap_or_default(),
        provider_status: change.provider_status.unwrap_or_default(),
        occurred_at: time(change.occurred_at),
    }
}
