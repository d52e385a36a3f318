//! sms-svc: sends SMS through providers, records every message and its status
//! history in MySQL, and publishes every change as an event on RabbitMQ
//! through a transactional outbox, so no event is ever lost.

pub mod config;
pub mod core;
pub mod domain;
pub mod grpc;
mod quota_store;
pub mod reconciler;
pub mod relay;
pub mod route_health;
pub mod startup;
pub mod store;
