//! What every smsops service shares. Nothing here knows about a particular
//! service's domain; it is the common shape they all stand on.

pub mod account;
pub mod amqp;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod config;
pub mod consume;
pub mod error;
pub mod grpc;
pub mod latency;
pub mod mongo;
pub mod mysql;
pub mod phone;
pub mod prom;
pub mod retention;
pub mod service;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod trace;

pub use error::{ApiError, ErrorCode};

/// Seconds since 1970 (0 on a clock set before it).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}
