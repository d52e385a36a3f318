//! notify-svc: evaluates alert rules over SMS and session events, keeps the
//! alert history in MySQL and sends each alert to Telegram.

pub mod config;
pub mod consumer;
pub mod core;
pub mod grpc;
pub mod startup;
pub mod store;
pub mod telegram;
