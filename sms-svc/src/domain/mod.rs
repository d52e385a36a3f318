//! sms-svc's domain: messages, their statuses and events, quotas, and the
//! traits through which the logic keeps and finds them. Nothing here knows
//! MySQL, gRPC or a provider's wire format.

mod batch;
mod event;
mod message;
pub mod quota;
mod repository;
mod status;

pub use batch::{AppliedBatch, apply_all};
pub use event::OutboxEvent;
pub use message::{Applied, Change, Message, Origin, Pair, StatusChange, Target, Transition};
pub use repository::{ListFilter, MessageRepository, PairLookup, QuotaLedger, RepoError};
pub use status::Status;

#[cfg(test)]
pub(crate) mod memory;
