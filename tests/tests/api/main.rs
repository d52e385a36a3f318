//! End-to-end tests through the gateway: actix → tonic → MongoDB wire protocol.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod flow;
mod grpc;
mod metrics;
mod readiness;
mod roles;
mod sandbox;
mod sessions;
mod sms;
mod tokens;
