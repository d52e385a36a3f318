//! `GET /api/v1/live`: a WebSocket that pushes per-pair metric updates, SMS
//! status changes, session state changes and alerts to a dashboard.
//!
//! The token comes as `?token=`, as an `Authorization` header, or in the
//! first message (`{"token": "..."}`, within 10 s). Each socket follows
//! metrics-svc's `Live` stream and notify-svc's `Watch` stream with the
//! caller's own token, so a service checks every watcher itself. The socket
//! closes with 4001 when the token expires or is revoked; a client that
//! sends `{"token": "..."}` with a fresh one before then stays.

use std::{pin::Pin, time::Duration};

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use smsops_common::{ApiError, ErrorCode, auth::Caller};
use smsops_proto::{metrics::v1 as metrics_pb, notify::v1 as notify_pb};
use utoipa::IntoParams;

use crate::{error::HttpError, grpc::Services};

const FIRST_MESSAGE_WITHIN: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long to wait before following a stream again after it broke.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// How often a socket checks its token is still good: within the 5 s a
/// revocation must take, with the verifier's own 1 s poll.
const RECHECK_EVERY: Duration = Duration::from_secs(1);
/// The close code for an expired or revoked token (4000-4999 are the
/// application's; 4001 echoes HTTP 401).
const TOKEN_ENDED: u16 = 4001;

#[derive(Debug, Deserialize, IntoParams)]
pub struct LiveQuery {
    /// An access token, for clients that cannot set headers (browsers).
    pub token: Option<String>,
}

#[derive(Deserialize)]
struct Hello {
    token: String,
}

type Upstream = Pin<Box<dyn Stream<Item = Result<Value, tonic::Status>>>>;

/// Opens the live feed. Messages are JSON objects with a `type`:
/// `ready`; `following` {events} once every event published from then on
/// reaches the socket (`events: false`: the broker is away, metrics still
/// come); `metrics` {at, pairs: [pair summary]}; an event's own type
/// (`sms.delivered`, `session.started`, …) with `event` as published
/// (docs/events.md); `alert` {alert}; `lagged` {missed} when this socket
/// fell behind and skipped events; `error` {code, message}.
#[utoipa::path(get, path = "/api/v1/live", extensions(("x-roles" = json!(crate::openapi::READERS))), tag = "live", params(LiveQuery),
    responses((status = 101, description = "switching to WebSocket"),
        (status = 400, description = "invalid_argument: not a WebSocket upgrade request", body = crate::error::ErrorBody),
        (status = 401, description = "unauthorized / invalid_token", body = crate::error::ErrorBody)))]
pub async fn live(
    req: HttpRequest,
    body: web::Payload,
    services: web::Data<Services>,
    query: web::Query<LiveQuery>,
) -> Result<HttpResponse, HttpError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query.token.as_ref().map(|t| format!("Bearer {t}")));
    // A token given up front is checked before the upgrade, so a bad one
    // gets a plain 401.
    let caller = match authorization {
        Some(authorization) => Some(services.verifier.caller(Some(&authorization)).await?),
        // Without a token only an upgrade may go on (and send it first).
        None if !is_upgrade(&req) => {
            return Err(ApiError::unauthorized(
                "missing token: send ?token=, a bearer header, or upgrade and send it first",
            )
            .into());
        }
        None => None,
    };
    let (response, session, messages) = actix_ws::handle(&req, body).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            format!("expected a WebSocket upgrade: {err}"),
        )
    })?;
    let messages = messages
        .aggregate_continuations()
        .max_continuation_size(64 * 1024);
    actix_web::rt::spawn(serve(services.into_inner(), caller, session, messages));
    Ok(response)
}

fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn serve(
    services: std::sync::Arc<Services>,
    caller: Option<Caller>,
    mut session: Session,
    mut messages: actix_ws::AggregatedMessageStream,
) {
    let mut caller = match caller {
        Some(caller) => caller,
        None => match first_message_token(&services, &mut messages).await {
            Ok(caller) => caller,
            Err(reason) => {
                let _ = session
                    .close(Some(CloseReason {
                        code: CloseCode::Policy,
                        description: Some(reason),
                    }))
                    .await;
                return;
            }
        },
    };
    if send(
        &mut session,
        json!({"type": "ready", "user_id": caller.user_id}),
    )
    .await
    .is_err()
    {
        return;
    }
    let mut metrics = follow_metrics(&services, &caller);
    let mut alerts = follow_alerts(&services, &caller);
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut recheck = tokio::time::interval(RECHECK_EVERY);
    loop {
        tokio::select! {
            _ = recheck.tick() => {
                if !services.verifier.still_valid(&caller) {
                    let _ = session
                        .close(Some(CloseReason {
                            code: CloseCode::Other(TOKEN_ENDED),
                            description: Some("token expired or revoked".into()),
                        }))
                        .await;
                    return;
                }
            }
            item = metrics.next() => match item {
                Some(Ok(message)) => {
                    if forward_metrics(&mut session, message).await.is_err() {
                        return;
                    }
                }
                Some(Err(status)) => {
                    if lost(&mut session, "metrics-svc", &status).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(RESUBSCRIBE_AFTER).await;
                    metrics = follow_metrics(&services, &caller);
                }
                None => {
                    tokio::time::sleep(RESUBSCRIBE_AFTER).await;
                    metrics = follow_metrics(&services, &caller);
                }
            },
            item = alerts.next() => match item {
                Some(Ok(alert)) => {
                    if send(&mut session, json!({"type": "alert", "alert": alert})).await.is_err() {
                        return;
                    }
                }
                Some(Err(status)) => {
                    if lost(&mut session, "notify-svc", &status).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(RESUBSCRIBE_AFTER).await;
                    alerts = follow_alerts(&services, &caller);
                }
                None => {
                    tokio::time::sleep(RESUBSCRIBE_AFTER).await;
                    alerts = follow_alerts(&services, &caller);
                }
            },
            message = messages.next() => match message {
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Close(_))) | None | Some(Err(_)) => {
                    let _ = session.close(None).await;
                    return;
                }
                Some(Ok(AggregatedMessage::Text(text))) => {
                    match renewed(&services, &caller, &text).await {
                        Some(Ok(fresh)) => {
                            // The upstreams carry the old token: follow them
                            // again under the new one.
                            metrics = follow_metrics(&services, &fresh);
                            alerts = follow_alerts(&services, &fresh);
                            let reply = json!({"type": "renewed", "expires_at": fresh.exp});
                            caller = fresh;
                            if send(&mut session, reply).await.is_err() {
                                return;
                            }
                        }
                        Some(Err(error)) => {
                            let reply = json!({"type": "error", "code": error.code.as_str(), "message": error.message});
                            if send(&mut session, reply).await.is_err() {
                                return;
                            }
                        }
                        // Anything else the client says is ignored: the feed is one way.
                        None => {}
                    }
                }
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn first_message_token(
    services: &Services,
    messages: &mut actix_ws::AggregatedMessageStream,
) -> Result<Caller, String> {
    let first = tokio::time::timeout(FIRST_MESSAGE_WITHIN, messages.next())
        .await
        .map_err(|_| "no token within 10 s".to_string())?;
    let Some(Ok(AggregatedMessage::Text(text))) = first else {
        return Err("the first message must be {\"token\": \"...\"}".into());
    };
    let hello: Hello = serde_json::from_str(&text)
        .map_err(|_| "the first message must be {\"token\": \"...\"}".to_string())?;
    services
        .verifier
        .caller(Some(&format!("Bearer {}", hello.token)))
        .await
        .map_err(|err| err.message)
}

/// A `{"token": ...}` message: the caller it proves, if it is the same
/// user's; `None` for any other message.
async fn renewed(
    services: &Services,
    caller: &Caller,
    text: &str,
) -> Option<Result<Caller, ApiError>> {
    let hello: Hello = serde_json::from_str(text).ok()?;
    let fresh = services
        .verifier
        .caller(Some(&format!("Bearer {}", hello.token)))
        .await;
    Some(fresh.and_then(|fresh| {
        if fresh.user_id == caller.user_id {
            Ok(fresh)
        } else {
            Err(ApiError::forbidden(
                "a socket keeps the user it was opened by",
            ))
        }
    }))
}

async fn send(session: &mut Session, message: Value) -> Result<(), actix_ws::Closed> {
    session.text(message.to_string()).await
}

/// Tells the client a service's stream broke; the socket follows it again.
/// An expired or revoked token ends the socket instead.
async fn lost(
    session: &mut Session,
    service: &str,
    status: &tonic::Status,
) -> Result<(), actix_ws::Closed> {
    let error = ApiError::from_status(status);
    if matches!(
        error.code,
        ErrorCode::Unauthorized | ErrorCode::InvalidToken
    ) {
        let _ = session
            .clone()
            .close(Some(CloseReason {
                code: CloseCode::Policy,
                description: Some(error.message),
            }))
            .await;
        return Err(actix_ws::Closed);
    }
    tracing::debug!(service, error = %error.message, "live upstream lost, following again");
    send(
        session,
        json!({"type": "error", "code": error.code.as_str(), "message": format!("{service}: {}", error.message)}),
    )
    .await
}

async fn forward_metrics(session: &mut Session, update: Value) -> Result<(), actix_ws::Closed> {
    let Value::Object(mut update) = update else {
        return Ok(());
    };
    let events = update.remove("events");
    let has_pairs = update
        .get("pairs")
        .and_then(Value::as_array)
        .is_some_and(|pairs| !pairs.is_empty());
    if has_pairs {
        update.insert("type".into(), "metrics".into());
        send(session, Value::Object(update)).await?;
    }
    for event in events
        .and_then(|e| match e {
            Value::Array(events) => Some(events),
            _ => None,
        })
        .unwrap_or_default()
    {
        send(session, event).await?;
    }
    Ok(())
}

fn follow_metrics(services: &Services, caller: &Caller) -> Upstream {
    let mut client = services.metrics.clone();
    let request = caller.authorize(tonic::Request::new(metrics_pb::LiveRequest {}));
    let stream = async move { client.live(request).await.map(|r| r.into_inner()) };
    Box::pin(
        futures::stream::once(stream)
            .map(|opened| match opened {
                Ok(updates) => updates
                    .map(|update| update.map(metrics_message))
                    .left_stream(),
                Err(status) => futures::stream::once(async { Err(status) }).right_stream(),
            })
            .flatten(),
    )
}

fn follow_alerts(services: &Services, caller: &Caller) -> Upstream {
    let mut client = services.notify.clone();
    let request = caller.authorize(tonic::Request::new(notify_pb::WatchRequest {}));
    let stream = async move { client.watch(request).await.map(|r| r.into_inner()) };
    Box::pin(
        futures::stream::once(stream)
            .map(|opened| match opened {
                Ok(alerts) => alerts
                    .map(|alert| {
                        alert.map(|a| {
                            serde_json::to_value(super::alerts::view(a)).unwrap_or(Value::Null)
                        })
                    })
                    .left_stream(),
                Err(status) => futures::stream::once(async { Err(status) }).right_stream(),
            })
            .flatten(),
    )
}

/// One `Live` update as JSON: the pairs, and each event as its own message.
fn metrics_message(update: metrics_pb::LiveUpdate) -> Value {
    let events: Vec<Value> = update
        .events
        .into_iter()
        .map(|event| {
            let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
            if event.r#type == "live.lagged" {
                json!({"type": "lagged", "missed": body["missed"]})
            } else if event.r#type == "live.following" {
                json!({"type": "following", "events": body["events"]})
            } else {
                json!({"type": event.r#type, "event": body})
            }
        })
        .collect();
    let pairs: Vec<Value> = update
        .pairs
        .into_iter()
        .map(|p| serde_json::to_value(super::metrics::pair_view(p)).unwrap_or(Value::Null))
        .collect();
    json!({"at": update.at, "pairs": pairs, "events": events})
}
