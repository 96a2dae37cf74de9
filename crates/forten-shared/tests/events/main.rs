#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

//! Integration tests of the event bus against the real RabbitMQ (127.0.0.1:5672) and Redis
//! (127.0.0.1:6379) of this machine, and of the in-process transport.

mod auth_events;
mod dedup;
mod health_pause;
mod rabbitmq;
mod suite;
mod support;
