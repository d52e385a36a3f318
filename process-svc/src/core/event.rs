//! Session lifecycle events (see docs/events.md): `session.started`,
//! `session.stopped`, `session.failed`, `session.restarted`.

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::store::{CountersDoc, EventDoc, SessionDoc};

#[derive(Debug, Serialize)]
struct SessionEvent<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    occurred_at: String,
    session_id: &'a str,
    country_operator_id: &'a str,
    country: &'a str,
    operator: &'a str,
    is_high_priority: bool,
    state: &'a str,
    reason: &'a str,
    by: &'a str,
    next_seq: i64,
    counters: &'a CountersDoc,
}

/// The event for `session` entering `state` (its new state), caused by `by`.
pub fn lifecycle(
    kind: &str,
    session: &SessionDoc,
    state: &str,
    reason: &str,
    by: &str,
) -> EventDoc {
    let event_id = uuid::Uuid::now_v7().to_string();
    let event_type = format!("session.{kind}");
    let event = SessionEvent {
        event_id: &event_id,
        event_type: &event_type,
        occurred_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        session_id: &session.id,
        country_operator_id: &session.pair_id,
        country: &session.country,
        operator: &session.operator,
        is_high_priority: session.is_high_priority,
        state,
        reason,
        by,
        next_seq: session.next_seq,
        counters: &session.counters,
    };
    let payload = serde_json::to_string(&event).unwrap_or_default();
    EventDoc {
        // The request's trace that made it, else the session's start's,
        // else one made of the session's id, which groups its events.
        traceparent: smsops_common::trace::TraceHeaders::of_span(&tracing::Span::current())
            .traceparent
            .or_else(|| session.traceparent.clone())
            .unwrap_or_else(|| smsops_common::amqp::traceparent(&session.id, &event_id)),
        routing_key: event_type,
        event_id,
        payload,
    }
}
