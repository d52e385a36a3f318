//! operator-svc: country-operator pairs (MongoDB).

pub mod config;
pub mod core;
pub mod grpc;
pub mod startup;
pub mod store;
