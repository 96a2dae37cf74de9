//! The Forten services (SPEC §8), each a library-style module that `forten up` / `forten run`
//! mount: `router(state)` for the public API (with `/openapi.json`), `internal_router(state)`
//! where a service has internal routes (to be wrapped in `ServiceAuthLayer`), and
//! `subscribe(state, bus)` for its event handlers.
//!
//! | module | service |
//! | --- | --- |
//! | [`gateway`] | api-gateway: routing of `/api/**` by discovery, user-token check, dashboard (the registry it hosts is `forten_shared::discovery::Registry`) |
//! | [`auth`] | auth-service: users, roles, login, bootstrap admin, service-token issuer |
//! | [`access`] | access-service: buildings, doors, access profiles, access attempts |
//! | [`monitoring`] | monitoring-service: cameras and their watchdog, alerts |
//! | [`analytics`] | analytics-service: every event counted once; windows, time series, reports, derived figures |
//! | [`api`] | what their HTTP APIs share: problem+json errors, extractors, validation |
//! | [`periodic`] | the background rounds (watchdog, outbox relay, retention) |
//!
//! `crate::system` mounts them (`forten up`, `forten run`): observability, database health
//! check, registration, graceful stop.

// The binary mounts each service through a subset of its module (state, router, subscribe);
// the integration tests, which compile these sources on their own, use the rest (accessors,
// `openapi()`, counters, configuration builders).
#![allow(dead_code)]

pub(crate) mod access;
pub(crate) mod analytics;
pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod gateway;
pub(crate) mod monitoring;
pub(crate) mod periodic;

/// Subscribes `handle(state, event)` on `queue` to one event type: the shape every service's
/// subscriptions share.
pub(crate) async fn subscribe_to<S, F, Fut>(
    bus: &forten_shared::EventBus,
    queue: &str,
    event_type: forten_shared::EventType,
    state: &S,
    handle: F,
) -> Result<forten_shared::events::SubscriptionHandle, forten_shared::events::BusError>
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S, forten_shared::Event) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<
            Output = Result<forten_shared::events::Outcome, forten_shared::events::HandlerError>,
        > + Send
        + 'static,
{
    let state = state.clone();
    let sub = forten_shared::events::Subscribe::new(queue).pattern(event_type);
    bus.subscribe(sub, move |event: forten_shared::Event| {
        handle(state.clone(), event)
    })
    .await
}
