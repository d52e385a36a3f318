//! The smsops gateway: REST and JSON in front, gRPC behind. It checks tokens,
//! roles and rate limits and holds no business logic and no database.

pub mod access_log;
pub mod callbacks;
pub mod client_ip;
pub mod config;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod limiter;
pub mod openapi;
pub mod routes;
pub mod sends;
pub mod startup;
pub mod traces;
