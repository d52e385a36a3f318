//! Changes applied to a batch of messages at once, in order: what the
//! repositories write in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Applied, Change, Message, Origin, OutboxEvent, Part, StatusChange, Target, combined};

/// What a batch of changes did to the messages it was given.
#[derive(Debug, Default)]
pub struct AppliedBatch {
    /// Per change, in order.
    pub results: Vec<Applied>,
    /// Ids of the messages that moved, each once, in the order they first did.
    pub moved: Vec<String>,
    pub history: Vec<(String, StatusChange)>,
    pub events: Vec<OutboxEvent>,
    /// Provider ids of the parts made or changed, each once.
    pub parts: Vec<String>,
}

/// Messages and the parts of theirs that a batch may touch, as kept.
#[derive(Debug, Default)]
pub struct Working {
    pub messages: HashMap<String, Message>,
    /// By the provider's id; every part of a message named is here.
    pub parts: HashMap<String, Part>,
}

impl Working {
    /// The parts of a message, in order.
    fn parts_of(&self, message_id: &str) -> Vec<&Part> {
        let mut parts: Vec<&Part> = self
            .parts
            .values()
            .filter(|part| part.message_id == message_id)
            .collect();
        parts.sort_by_key(|part| part.number);
        parts
    }
}

/// Applies `changes` in order through [`Message::apply`]. A change by
/// provider id finds its message by the id it holds, or was given earlier
/// in the batch (`queued` with its id, then `sent`). A part's receipt is
/// kept on the part, and moves the message once every part has one
/// ([`combined`]).
pub fn apply_all(
    working: &mut Working,
    changes: &[(Target, Change)],
    at: DateTime<Utc>,
    origin: Origin,
) -> AppliedBatch {
    let mut by_sid: HashMap<String, String> = working
        .messages
        .values()
        .filter_map(|message| Some((message.provider_sid.clone()?, message.id.clone())))
        .collect();
    let mut batch = AppliedBatch {
        results: Vec::with_capacity(changes.len()),
        ..AppliedBatch::default()
    };
    for (target, change) in changes {
        let (id, change) = match target {
            Target::Id(id) => (Some(id.clone()), Some(change.clone())),
            Target::Sid(sid) => (by_sid.get(sid).cloned(), Some(change.clone())),
            Target::Part(sid) => match part_receipt(working, &mut batch, sid, change) {
                Some((id, whole)) => (Some(id), whole),
                None => (None, None),
            },
        };
        let Some(message) = id.and_then(|id| working.messages.get_mut(&id)) else {
            batch.results.push(Applied::Unknown);
            continue;
        };
        let moved = change
            .as_ref()
            .and_then(|change| Some((change, message.apply(change, at, origin)?)));
        let Some((change, moved)) = moved else {
            batch
                .results
                .push(Applied::Stale(Box::new(message.clone())));
            continue;
        };
        if let Some(sid) = &change.provider_sid {
            by_sid.insert(sid.clone(), message.id.clone());
        }
        let id = message.id.clone();
        if !batch.moved.contains(&id) {
            batch.moved.push(id.clone());
        }
        batch.history.push((id.clone(), moved.history));
        batch.events.push(moved.event);
        batch
            .results
            .push(Applied::Moved(Box::new(message.clone())));
        for part in Part::all_of(&id, &change.parts) {
            note(&mut batch.parts, &part.sid);
            working.parts.insert(part.sid.clone(), part);
        }
    }
    batch
}

/// Keeps a part's receipt; answers its message's id, and the message's
/// one change once every part is final.
fn part_receipt(
    working: &mut Working,
    batch: &mut AppliedBatch,
    sid: &str,
    change: &Change,
) -> Option<(String, Option<Change>)> {
    let part = working.parts.get_mut(sid)?;
    if part.receipt(change) {
        note(&mut batch.parts, sid);
    }
    let id = part.message_id.clone();
    let whole = combined(&working.parts_of(&id));
    Some((id, whole))
}

fn note(sids: &mut Vec<String>, sid: &str) {
    if !sids.iter().any(|kept| kept == sid) {
        sids.push(sid.to_string());
    }
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
            parts: Vec::new(),
            routed: None,
        }
    }

    #[test]
    fn a_batch_follows_ids_given_earlier_in_it_and_moves_each_message_forward_once() {
        let mut working = Working {
            messages: [("m1".to_string(), accepted("m1"))].into_iter().collect(),
            ..Working::default()
        };
        let changes = [
            (Target::Id("m1".into()), change(Status::Queued, Some("SM1"))),
            (Target::Sid("SM1".into()), change(Status::Delivered, None)),
            (Target::Sid("SM1".into()), change(Status::Sent, None)),
            (Target::Sid("SM2".into()), change(Status::Sent, None)),
        ];
        let batch = apply_all(&mut working, &changes, Utc::now(), Origin::Live);
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
        assert_eq!(working.messages["m1"].status, Status::Delivered);
    }

    #[test]
    fn parts_made_with_queued_take_receipts_and_the_last_one_ends_the_message() {
        let mut working = Working {
            messages: [("m1".to_string(), accepted("m1"))].into_iter().collect(),
            ..Working::default()
        };
        let mut queued = change(Status::Queued, Some("a1"));
        queued.parts = vec!["a1".into(), "a2".into()];
        let changes = [
            (Target::Id("m1".into()), queued),
            (Target::Part("a2".into()), change(Status::Delivered, None)),
            (Target::Part("a2".into()), change(Status::Undelivered, None)),
            (Target::Part("zz".into()), change(Status::Delivered, None)),
            (Target::Part("a1".into()), change(Status::Delivered, None)),
        ];
        let batch = apply_all(&mut working, &changes, Utc::now(), Origin::Live);
        let kinds: Vec<&str> = batch
            .results
            .iter()
            .map(|r| match r {
                Applied::Moved(_) => "moved",
                Applied::Stale(_) => "stale",
                Applied::Unknown => "unknown",
            })
            .collect();
        assert_eq!(kinds, ["moved", "stale", "stale", "unknown", "moved"]);
        assert_eq!(working.messages["m1"].status, Status::Delivered);
        assert_eq!(batch.parts, ["a1", "a2"]);
        assert_eq!(working.parts["a2"].status, Some(Status::Delivered));
    }
}
