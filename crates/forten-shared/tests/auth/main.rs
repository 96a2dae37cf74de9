//! Integration tests of `forten_shared::auth` (issue 4), against real axum servers on loopback.

mod cache;
mod events;
mod issuer;
mod layer;
mod rejections;
mod shared_secret;
mod support;
mod user;
