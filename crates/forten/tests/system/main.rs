#![allow(
    missing_docs,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used
)]

//! The Forten system run as users run it: the real `forten` binary (`forten up`, several
//! `forten run` processes), the real RabbitMQ and PostgreSQL, HTTP through the gateway.

mod cluster;
mod flow;
mod quickstart;
mod simulate;
mod support;
mod up;
