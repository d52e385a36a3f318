//! process-svc: SMS sending sessions per country-operator pair, kept in
//! MongoDB and run under leases so replicas share them without overlap.

pub mod config;
pub mod core;
pub mod grpc;
pub mod relay;
pub mod startup;
pub mod store;
