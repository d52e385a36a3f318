//! Receipt reconciliation: a message whose final status has not come some
//! time after it was sent is looked up at its provider, and moves forward
//! as its callback would have moved it. Providers do not send a status
//! callback twice, so one lost (dropped on the way, or refused while MySQL
//! was away) would otherwise leave the message `queued` or `sent` for ever.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;

use super::{
    Account, SmsCore, SmsError, Status,
    providers::{Lookup, codes},
};
use crate::{
    domain::{Applied, Change, MessageRepository, Origin, Target},
    store::{AwaitingReceipt, ReceiptCheck},
};

/// Lookups in flight at once within a round.
const CONCURRENCY: usize = 4;
/// The longest wait between two lookups of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
pub struct ReconcileConfig {
    /// A message still not final this long after it was sent is looked up.
    pub after: Duration,
    /// Past this age a message is ended: `failed` / `receipt_unknown` if its
    /// provider does not know it, `undelivered` / `receipt_expired` if the
    /// provider still has it short of final. One whose lookups get no usable
    /// answer at all ends `receipt_expired` at twice this age; older ones
    /// are never looked up (messages from before reconciliation existed).
    pub give_up_after: Duration,
    /// Lookups per second, at most: reconciliation must never compete with
    /// sending for the provider account's rate.
    pub rate_per_second: u32,
}

impl ReconcileConfig {
    /// The longest last deadline accepted.
    pub const MAX_GIVE_UP: Duration = Duration::from_secs(30 * 86_400);

    pub fn validate(&self) -> Result<(), String> {
        if self.after > self.give_up_after || self.give_up_after > Self::MAX_GIVE_UP {
            return Err(
                "the reconciliation delay must not pass the last deadline, at most 30 days".into(),
            );
        }
        Ok(())
    }
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            after: Duration::from_secs(300),
            give_up_after: Duration::from_secs(48 * 3600),
            rate_per_second: 5,
        }
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    pub looked_up: usize,
    /// Messages a lookup moved forward.
    pub moved: usize,
    /// Of those, the ones ended at the last deadline.
    pub ended: usize,
    /// Lookups that got no answer to go by.
    pub failed: usize,
}

/// What to do with one message after its lookup.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Applied in order; a change that moves nothing is harmless.
    pub changes: Vec<Change>,
    /// When to look again, and why, if the message is still waiting.
    pub again: Option<(DateTime<Utc>, Option<String>)>,
    pub ended: bool,
}

/// The forward-only rule and the deadlines, for one looked-up message.
pub fn decide(
    message: &AwaitingReceipt,
    lookup: Lookup,
    now: DateTime<Utc>,
    config: &ReconcileConfig,
) -> Decision {
    let deadline = message.created_at + delta(config.give_up_after);
    let past_deadline = now >= deadline;
    let past_last_chance = now >= deadline + delta(config.give_up_after);
    let backoff = config
        .after
        .saturating_mul(1 << message.checks.min(16))
        .min(MAX_BACKOFF);
    // The last lookup falls on the deadline; past it, only a lookup that
    // got no answer is made again, and then no more often than backoff.
    let next = if deadline > now {
        (now + delta(backoff)).min(deadline)
    } else {
        now + delta(backoff)
    };
    match lookup {
        Lookup::Found(update) if update.status.rank() == Status::Delivered.rank() => {
            // A carrier that delivered (or did not) had the message: its
            // `sent`, when missing too, comes first, as its callbacks would.
            let mut changes = Vec::with_capacity(2);
            if matches!(update.status, Status::Delivered | Status::Undelivered) {
                changes.push(change(Status::Sent, "sent", None, None));
            }
            changes.push(update.into_change());
            Decision {
                changes,
                again: None,
                ended: false,
            }
        }
        Lookup::Found(update) if past_deadline => Decision {
            changes: vec![
                update.into_change(),
                change(
                    Status::Undelivered,
                    "reconciled",
                    Some(codes::RECEIPT_EXPIRED),
                    Some("no final status from the provider by the last deadline"),
                ),
            ],
            again: None,
            ended: true,
        },
        Lookup::Found(update) => Decision {
            changes: vec![update.into_change()],
            again: Some((next, None)),
            ended: false,
        },
        Lookup::Unknown if past_deadline => Decision {
            changes: vec![change(
                Status::Failed,
                "reconciled",
                Some(codes::RECEIPT_UNKNOWN),
                Some("the provider does not know the message"),
            )],
            again: None,
            ended: true,
        },
        Lookup::Unknown => Decision {
            changes: Vec::new(),
            again: Some((next, Some("the provider does not know the message".into()))),
            ended: false,
        },
        // Without an answer nothing is known, so ask again; but an answer
        // that is never usable (an unknown status, say) must not keep a
        // message waiting for ever.
        Lookup::Failed(_) if past_last_chance => Decision {
            changes: vec![change(
                Status::Undelivered,
                "reconciled",
                Some(codes::RECEIPT_EXPIRED),
                Some("no usable answer from the provider by the last deadline"),
            )],
            again: None,
            ended: true,
        },
        Lookup::Failed(why) => Decision {
            changes: Vec::new(),
            again: Some((next, Some(why))),
            ended: false,
        },
    }
}

fn change(status: Status, provider_status: &str, code: Option<&str>, why: Option<&str>) -> Change {
    Change {
        status,
        provider_sid: None,
        provider_status: Some(provider_status.into()),
        error_code: code.map(Into::into),
        error_message: why.map(Into::into),
        parts: Vec::new(),
        routed: None,
    }
}

/// Configured durations are validated to at most 30 days; anything else
/// is capped there, never a date arithmetic overflow.
fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration.min(ReconcileConfig::MAX_GIVE_UP)).unwrap_or(TimeDelta::zero())
}

impl SmsCore {
    /// Looks up at most `rate_per_second` late messages and applies what
    /// their provider says: half the budget for messages looked up before
    /// and due again, the rest for newly late ones, oldest first, so a
    /// backlog of either never starves the other. Every status moved
    /// publishes its event, marked `reconciled`. All it keeps between
    /// rounds is in MySQL, so it resumes where it was after a crash.
    pub async fn reconcile_round(&self, config: &ReconcileConfig) -> Result<Round, SmsError> {
        let mut round = Round::default();
        for account in self.accounts().iter() {
            let one = self.reconcile_account(account, config).await?;
            round.looked_up += one.looked_up;
            round.moved += one.moved;
            round.ended += one.ended;
            round.failed += one.failed;
        }
        Ok(round)
    }

    /// One round for the messages of one provider account, within the
    /// budget every account gets.
    async fn reconcile_account(
        &self,
        account: &Account,
        config: &ReconcileConfig,
    ) -> Result<Round, SmsError> {
        let now = Utc::now();
        let dispatcher = &account.dispatcher;
        let provider = dispatcher.name();
        let budget = config.rate_per_second.max(1);
        let mut due = self
            .store
            .receipts_due_again(provider, now, budget.div_ceil(2))
            .await?;
        let oldest = now - delta(config.give_up_after) - delta(config.give_up_after);
        let fresh = budget - due.len() as u32;
        due.extend(
            self.store
                .receipts_unchecked(provider, oldest, now - delta(config.after), fresh)
                .await?,
        );
        let mut round = Round {
            looked_up: due.len(),
            ..Round::default()
        };
        let looked: Vec<(AwaitingReceipt, Lookup)> = futures::stream::iter(due)
            .map(|message| async move {
                let lookup = dispatcher.lookup(&message.provider_sid).await;
                (message, lookup)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut changes = Vec::new();
        let mut checks = Vec::new();
        for (message, lookup) in looked {
            round.failed += usize::from(matches!(lookup, Lookup::Failed(_)));
            let decision = decide(&message, lookup, Utc::now(), config);
            round.ended += usize::from(decision.ended);
            for change in decision.changes {
                changes.push((Target::Id(message.id.clone()), change));
            }
            // Kept before the changes are written: should that fail, the
            // message waits its backoff instead of coming first again.
            let (next_at, last_error) = decision
                .again
                .unwrap_or_else(|| (Utc::now() + delta(config.after), None));
            checks.push(ReceiptCheck {
                message_id: message.id,
                checks: message.checks + 1,
                next_at,
                last_error,
            });
        }
        self.store.check_again(&checks).await?;
        if !changes.is_empty() {
            let applied = self
                .store
                .apply_changes(provider, &changes, Origin::Reconciled)
                .await?;
            let mut moved: Vec<&str> = changes
                .iter()
                .zip(&applied)
                .filter(|(_, applied)| matches!(applied, Applied::Moved(_)))
                .filter_map(|((target, _), _)| match target {
                    Target::Id(id) => Some(id.as_str()),
                    Target::Sid(_) | Target::Part(_) => None,
                })
                .collect();
            moved.dedup();
            round.moved = moved.len();
            self.outbox.notify_one();
        }
        self.store.forget_settled_checks(500).await?;
        Ok(round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::providers::CallbackUpdate;

    fn waiting(age: TimeDelta, checks: u64) -> (AwaitingReceipt, DateTime<Utc>) {
        let now = Utc::now();
        let message = AwaitingReceipt {
            id: "m1".into(),
            provider_sid: "SM1".into(),
            created_at: now - age,
            checks,
        };
        (message, now)
    }

    fn found(status: Status, code: Option<&str>) -> Lookup {
        Lookup::Found(CallbackUpdate {
            sid: "SM1".into(),
            status,
            provider_status: status.as_str().into(),
            error_code: code.map(Into::into),
        })
    }

    fn statuses(decision: &Decision) -> Vec<Status> {
        decision.changes.iter().map(|c| c.status).collect()
    }

    #[test]
    fn a_final_status_found_ends_the_wait_as_its_callbacks_would() {
        let config = ReconcileConfig::default();
        let (message, now) = waiting(TimeDelta::minutes(10), 0);
        let delivered = decide(&message, found(Status::Delivered, None), now, &config);
        assert_eq!(statuses(&delivered), [Status::Sent, Status::Delivered]);
        assert_eq!(delivered.again, None);
        let undelivered = decide(
            &message,
            found(Status::Undelivered, Some("30003")),
            now,
            &config,
        );
        assert_eq!(statuses(&undelivered), [Status::Sent, Status::Undelivered]);
        assert_eq!(undelivered.changes[1].error_code.as_deref(), Some("30003"));
        // Twilio's `failed` never reached a carrier: no `sent` before it.
        let failed = decide(&message, found(Status::Failed, Some("30008")), now, &config);
        assert_eq!(statuses(&failed), [Status::Failed]);
    }

    #[test]
    fn a_message_still_on_its_way_is_looked_up_again_later_and_later() {
        let config = ReconcileConfig::default();
        let (first, now) = waiting(TimeDelta::minutes(10), 0);
        let decision = decide(&first, found(Status::Sent, None), now, &config);
        assert_eq!(statuses(&decision), [Status::Sent]);
        let (at, why) = decision.again.unwrap();
        assert_eq!((at - now).num_seconds(), 300);
        assert_eq!(why, None);
        let (third, now) = waiting(TimeDelta::hours(1), 2);
        let (at, _) = decide(&third, found(Status::Sent, None), now, &config)
            .again
            .unwrap();
        assert_eq!((at - now).num_seconds(), 1200);
        let (late, now) = waiting(TimeDelta::hours(10), 30);
        let (at, _) = decide(&late, found(Status::Queued, None), now, &config)
            .again
            .unwrap();
        assert_eq!((at - now).num_seconds(), 3600, "capped at an hour");
    }

    #[test]
    fn the_last_lookup_is_made_at_the_deadline_not_after_it() {
        let config = ReconcileConfig::default();
        let (message, now) = waiting(TimeDelta::hours(47) + TimeDelta::minutes(50), 30);
        let (at, _) = decide(&message, Lookup::Unknown, now, &config)
            .again
            .unwrap();
        assert_eq!(at, message.created_at + TimeDelta::hours(48));
    }

    #[test]
    fn past_the_deadline_every_message_ends() {
        let config = ReconcileConfig::default();
        let (message, now) = waiting(TimeDelta::hours(49), 12);
        let unknown = decide(&message, Lookup::Unknown, now, &config);
        assert_eq!(statuses(&unknown), [Status::Failed]);
        assert_eq!(
            unknown.changes[0].error_code.as_deref(),
            Some(codes::RECEIPT_UNKNOWN)
        );
        assert!(unknown.ended && unknown.again.is_none());
        let expired = decide(&message, found(Status::Sent, None), now, &config);
        assert_eq!(statuses(&expired), [Status::Sent, Status::Undelivered]);
        assert_eq!(
            expired.changes[1].error_code.as_deref(),
            Some(codes::RECEIPT_EXPIRED)
        );
    }

    #[test]
    fn an_answer_never_usable_ends_the_message_at_twice_the_deadline() {
        let config = ReconcileConfig::default();
        let (message, now) = waiting(TimeDelta::hours(97), 60);
        let decision = decide(
            &message,
            Lookup::Failed("unknown twilio status".into()),
            now,
            &config,
        );
        assert_eq!(statuses(&decision), [Status::Undelivered]);
        assert_eq!(
            decision.changes[0].error_code.as_deref(),
            Some(codes::RECEIPT_EXPIRED)
        );
    }

    #[test]
    fn settings_past_the_last_deadline_are_refused() {
        let mut config = ReconcileConfig::default();
        assert!(config.validate().is_ok());
        config.after = config.give_up_after + Duration::from_secs(1);
        assert!(config.validate().is_err());
        config.after = Duration::from_secs(1);
        config.give_up_after = Duration::from_secs(u64::MAX / 4);
        assert!(config.validate().is_err());
        assert_eq!(delta(Duration::from_secs(u64::MAX)), TimeDelta::days(30));
    }

    #[test]
    fn without_an_answer_a_late_message_is_asked_again() {
        let config = ReconcileConfig::default();
        let (message, now) = waiting(TimeDelta::hours(60), 40);
        let decision = decide(
            &message,
            Lookup::Failed("twilio answered 503".into()),
            now,
            &config,
        );
        assert!(decision.changes.is_empty() && !decision.ended);
        let (at, why) = decision.again.unwrap();
        assert!(at > now);
        assert_eq!(why.as_deref(), Some("twilio answered 503"));
    }

    #[test]
    fn unknown_before_the_deadline_is_asked_again() {
        let config = ReconcileConfig::default();
        let (message, now) = waiting(TimeDelta::minutes(6), 0);
        let decision = decide(&message, Lookup::Unknown, now, &config);
        assert!(decision.changes.is_empty());
        assert!(decision.again.is_some());
    }
}
