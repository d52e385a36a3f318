//! auth-svc: users, sign-up/sign-in, access and refresh tokens (MongoDB).

pub mod audit_store;
pub mod config;
pub mod core;
pub mod grpc;
pub mod limits;
pub mod startup;
pub mod store;
