//! End-to-end tests through the gateway: actix → tonic → MongoDB wire protocol.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod alerts;
mod audit;
mod auth_limits;
mod bad_input;
mod countries;
mod crashes;
mod dashboard;
mod deploy;
mod flow;
mod grpc;
mod ingest;
mod latency;
mod leaks;
mod limits;
mod live;
mod matrix;
mod metrics;
mod outages;
mod prometheus;
mod quotas;
mod readiness;
mod receipts;
mod retention;
mod roles;
mod sandbox;
mod segments;
mod sessions;
mod sessions_access;
mod smpp;
mod sms;
mod smsc;
mod tokens;
mod traces;
