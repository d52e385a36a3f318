//! Changes applied to a batch of messages at once, in order: what the
//! repositories write in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Applied, Change, Message, Origin, OutboxEvent, StatusChange, Target};

/// What a batch of changes did to the messages it was given.
#[derive(Debug, Default)]
pub struct AppliedBatch {
    /// Per change, in order.
    pub results: Vec<Applied>,
    /// Ids of the messages that moved, each once, in the order they first did.
    pub moved: Vec<String>,
    pub history: Vec<(String, StatusChange)>,
    pub events: Vec<OutboxEvent>,
}

/// Applies `changes` in order through [`Message::apply`] to `messages`
/// (by id). A change by provider id finds its message by the id it holds,
/// or was given earlier in the batch (`queued` with its id, then `sent`).
pub fn apply_all(
    messages: &mut HashMap<String, Message>,
    changes: &[(Target, Change)],
    at: DateTime<Utc>,
    origin: Origin,
) -> AppliedBatch {
    let mut by_sid: HashMap<String, String> = messages
        .values()
        .filter_map(|message| Some((message.provider_sid.clone()?, message.id.clone())))
        .collect();
    let mut batch = AppliedBatch {
        results: Vec::with_capacity(changes.len()),
        ..AppliedBatch::default()
    };
    for (target, change) in changes {
        let id = match target {
            Target::Id(id) => Some(id),
            Target::Sid(sid) => by_sid.get(sid),
        };
        let Some(message) = id.and_then(|id| messages.get_mut(id)) else {
            batch.results.push(Applied::Unknown);
            continue;
        };
        let Some(moved) = message.apply(change, at, origin) else {
            batch
                .results
                .push(Applied::Stale(Box::new(message.clone())));
            continue;
        };
        if let Some(sid) = &change.provider_sid {
            by_sid.insert(sid.clone(), message.id.clone());
        }
        if !batch.moved.contains(&message.id) {
            batch.moved.push(message.id.clone());
        }
        batch.history.push((message.id.clone(), moved.history));
        batch.events.push(moved.event);
        batch
            .results
            .push(Applied::Moved(Box::new(message.clone())));
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    fn accepted(id: &str) -> Message {
        Message {
            id: id.into(),
            ..crate::domain::message::tests::message()
        }
    }

    fn change(status: Status, sid: Option<&str>) -> Change {
        Change {
            status,
            provider_sid: sid.map(str::to_string),
            provider_status: None,
            error_code: None,
            error_message: None,
        }
    }

    #[test]
    fn a_batch_follows_ids_given_earlier_in_it_and_moves_each_message_forward_once() {
        let mut messages: HashMap<String, Message> =
            [("m1".to_string(), accepted("m1"))].into_iter().collect();
        let changes = [
            (Target::Id("m1".into()), change(Status::Queued, Some("SM1"))),
            (Target::Sid("SM1".into()), change(Status::Delivered, None)),
            (Target::Sid("SM1".into()), change(Status::Sent, None)),
            (Target::Sid("SM2".into()), change(Status::Sent, None)),
        ];
        let batch = apply_all(&mut messages, &changes, Utc::now(), Origin::Live);
        let kinds: Vec<&str> = batch
            .results
            .iter()
            .map(|r| match r {
                Applied::Moved(_) => "moved",
                Applied::Stale(_) => "stale",
                Applied::Unknown => "unknown",
            })
            .collect();
        assert_eq!(kinds, ["moved", "moved", "stale", "unknown"]);
        assert_eq!(batch.moved, ["m1"]);
        assert_eq!(batch.history.len(), 2);
        assert_eq!(batch.events.len(), 2);
        assert_eq!(messages["m1"].status, Status::Delivered);
    }
}
