//! sms-svc's domain: messages, their statuses and events, quotas, and the
//! traits through which the logic keeps and finds them. Nothing here knows
//! MySQL, gRPC or a provider's wire format.

mod batch;
mod event;
mod message;
mod part;
pub mod quota;
mod repository;
pub mod route;
mod status;

pub use batch::{AppliedBatch, Working, apply_all};
pub use event::OutboxEvent;
pub use message::{Applied, Change, Message, Origin, Pair, StatusChange, Target, Transition};
pub use part::{Part, combined};
pub use repository::{
    ListFilter, MessageRepository, PaceLedger, PairLookup, QuotaLedger, RepoError,
};
pub use route::{RouteReason, RouteStep};
pub use status::Status;

#[cfg(test)]
pub(crate) mod memory;
