//! The Forten services (SPEC §8), each a library-style module that `forten up` / `forten run`
//! mount: `router(state)` for the public API (with `/openapi.json`), `internal_router(state)`
//! where a service has internal routes (to be wrapped in `ServiceAuthLayer`), and
//! `subscribe(state, bus)` for its event handlers.
//!
//! | module | service |
//! | --- | --- |
//! | [`access`] | access-service: buildings, doors, access profiles, access attempts |
//! | [`monitoring`] | monitoring-service: cameras and their watchdog, alerts |
//! | [`api`] | what their HTTP APIs share: problem+json errors, extractors, validation |

// The services are mounted by `forten up` / `forten run` in the next step of issue 6; until
// then only the tests use this module.
#![allow(dead_code)]

pub(crate) mod access;
pub(crate) mod api;
pub(crate) mod monitoring;
