//! End-to-end tests through the gateway: actix → tonic → MongoDB wire protocol.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod alerts;
mod audit;
mod bad_input;
mod dashboard;
mod deploy;
mod flow;
mod grpc;
mod ingest;
mod limits;
mod live;
mod matrix;
mod metrics;
mod prometheus;
mod readiness;
mod roles;
mod sandbox;
mod sessions;
mod sms;
mod tokens;
