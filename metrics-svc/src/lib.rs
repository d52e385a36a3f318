//! metrics-svc: consumes SMS events and keeps exact per-pair metrics in MySQL.

pub mod config;
pub mod consumer;
pub mod core;
pub mod grpc;
pub mod live;
pub mod startup;
pub mod store;
