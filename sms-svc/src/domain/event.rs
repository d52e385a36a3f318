//! The SMS event: what every status change publishes (see docs/events.md).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{Message, Origin};

/// The JSON body of an event on the `sms.events` exchange.
#[derive(Debug, Serialize)]
struct SmsEvent<'a> {
    pub event_id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub occurred_at: String,
    /// When smsops accepted the message: with `occurred_at`, how long it
    /// took to reach this status.
    pub accepted_at: String,
    pub message_id: &'a str,
    pub session_id: Option<&'a str>,
    pub country_operator_id: &'a str,
    pub country: &'a str,
    pub operator: &'a str,
    pub is_high_priority: bool,
    pub status: &'a str,
    pub error_code: Option<&'a str>,
    pub provider: &'a str,
    /// Why that provider (see `RouteReason`); absent for reported results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route_reason: Option<&'a str>,
    pub provider_sid: Option<&'a str>,
    /// The status was read from the provider by reconciliation, its
    /// receipt having never come; absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reconciled: bool,
}

/// An event ready for the outbox.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event_id: String,
    pub routing_key: String,
    pub event_type: String,
    pub traceparent: String,
    pub payload: String,
}

impl OutboxEvent {
    /// The event for `message` as it is now (its status is the new one).
    pub fn of(message: &Message, at: DateTime<Utc>, origin: Origin) -> Self {
        let event_id = uuid::Uuid::now_v7().to_string();
        let event_type = format!("sms.{}", message.status);
        let event = SmsEvent {
            event_id: &event_id,
            event_type: &event_type,
            occurred_at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
            accepted_at: message
                .created_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            message_id: &message.id,
            session_id: message.session_id.as_deref(),
            country_operator_id: &message.pair.id,
            country: &message.pair.country,
            operator: &message.pair.operator,
            is_high_priority: message.pair.is_high_priority,
            status: message.status.as_str(),
            error_code: message.error_code.as_deref(),
            provider: &message.provider,
            route_reason: message.route_reason.map(super::RouteReason::as_str),
            provider_sid: message.provider_sid.as_deref(),
            reconciled: origin == Origin::Reconciled,
        };
        let payload = serde_json::to_string(&event).unwrap_or_default();
        Self {
            routing_key: event_type.clone(),
            // The request's own context while traces are on; otherwise one
            // made of the message's id, which groups its events.
            traceparent: message
                .traceparent
                .clone()
                .unwrap_or_else(|| smsops_common::amqp::traceparent(&message.id, &event_id)),
            event_type,
            event_id,
            payload,
        }
    }
}
