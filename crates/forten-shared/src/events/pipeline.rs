//! The transport-independent part of consuming: parse and validate a delivery, run the handler
//! in the event's context, and decide what the transport must do with the message.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use tracing::Instrument;

use super::metrics::ConsumeMetrics;
use super::{
    Event, EventType, FailureKind, Handler, HandlerError, Outcome, Subscribe, envelope::format_time,
};
use crate::RequestContext;
use crate::auth::EventAuthenticator;
use crate::telemetry::{Metrics, Tracer, current_traceparent};

/// Header: failed attempts so far (ours, not RabbitMQ's `x-death`).
pub(crate) const H_ATTEMPTS: &str = "x-forten-attempts";
/// Header: text of the last error.
pub(crate) const H_ERROR: &str = "x-forten-error";
/// Header: the routing key the event was first published with.
pub(crate) const H_ROUTING_KEY: &str = "x-forten-original-routing-key";
/// Header: time of the first failure (RFC 3339).
pub(crate) const H_FIRST_FAILURE: &str = "x-forten-first-failure";
/// Header: time of the last failure (RFC 3339).
pub(crate) const H_LAST_FAILURE: &str = "x-forten-last-failure";
/// Header: the queue the message was dead-lettered from (used by replay).
pub(crate) const H_QUEUE: &str = "x-forten-queue";

/// What the transport knows about a delivery before it is parsed.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeliveryMeta {
    /// Original routing key (event type as published).
    pub(crate) routing_key: String,
    /// Failed attempts before this one.
    pub(crate) attempts: u32,
    /// First failure, if the message failed before.
    pub(crate) first_failure: Option<String>,
}

/// Why and how a message failed, as written into the failure headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) error: String,
    pub(crate) attempts: u32,
    pub(crate) routing_key: String,
    pub(crate) first_failure: String,
    pub(crate) last_failure: String,
}

/// What the transport must do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Acknowledge.
    Ack,
    /// Publish again after `delay` with the failure headers, then acknowledge.
    Retry { delay: Duration, failure: Failure },
    /// Move to the DLQ with the failure headers, then acknowledge.
    DeadLetter(Failure),
}

/// Outcome of `events_consumed_total`, as an index into `metrics::OUTCOMES`.
fn outcome_index(d: &Decision, outcome: Option<&Outcome>) -> usize {
    match (d, outcome) {
        (Decision::Ack, Some(Outcome::Drop)) => 1,
        (Decision::Ack, _) => 0,
        (Decision::Retry { .. }, _) => 2,
        (Decision::DeadLetter(_), Some(Outcome::Reject(_))) => 3,
        (Decision::DeadLetter(_), _) => 4,
    }
}

/// One subscription's processing pipeline, shared by both transports.
pub(crate) struct Processor {
    pub(crate) sub: Subscribe,
    pub(crate) handler: Arc<dyn Handler>,
    tracer: Tracer,
    metrics: ConsumeMetrics,
    /// Verifies publishers when the subscription requires it.
    verifier: Option<Arc<EventAuthenticator>>,
}

impl std::fmt::Debug for Processor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("service", &self.tracer.service())
            .field("sub", &self.sub)
            .finish()
    }
}

impl Processor {
    pub(crate) fn new(
        service: &str,
        sub: Subscribe,
        handler: Arc<dyn Handler>,
        verifier: Option<Arc<EventAuthenticator>>,
    ) -> Self {
        Self {
            metrics: ConsumeMetrics::new(Metrics::new(service), &sub.queue),
            sub,
            handler,
            tracer: Tracer::new(service),
            verifier,
        }
    }

    /// Parses, runs the handler and decides. Never panics, whatever the body or the handler do.
    pub(crate) async fn process(&self, body: &[u8], meta: &DeliveryMeta) -> Decision {
        let started = tokio::time::Instant::now();
        let event = match Event::from_slice(body) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(queue = %self.sub.queue, error = %e, "invalid event dead-lettered");
                let d = Decision::DeadLetter(self.failure(
                    format!("invalid event: {e}"),
                    meta,
                    meta.attempts + 1,
                ));
                self.record(None, &d, None, started);
                return d;
            }
        };
        if let Some(verifier) = &self.verifier
            && let Err(e) = verifier.verify_refreshing(&event).await
        {
            tracing::warn!(queue = %self.sub.queue, event.id = %event.id, error = %e, "event refused: publisher not verified");
            let reason = format!("unauthenticated publisher ({}): {e}", e.reason());
            let d = Decision::DeadLetter(self.failure(reason, meta, meta.attempts + 1));
            self.record(Some(event.event_type()), &d, None, started);
            return d;
        }
        let event_type = event.event_type();
        let ty = event_type.as_str();
        let attempt = meta.attempts + 1;
        // the handler's span continues the publisher's trace, under this service's name
        let span = self
            .tracer
            .span_from_traceparent(&format!("{ty} process"), event.traceparent.as_deref());
        let ctx = RequestContext {
            correlation_id: event
                .correlation_id
                .clone()
                .unwrap_or_else(|| event.id.clone()),
            traceparent: span
                .in_scope(current_traceparent)
                .or_else(|| event.traceparent.clone()),
        };
        tracing::debug!(parent: &span, queue = %self.sub.queue, event.id = %event.id, correlation_id = %ctx.correlation_id, attempt, "handling event");
        // created inside the scope: a handler's synchronous part runs in the span and context too
        let handler = self.handler.clone();
        let fut = async move { handler.handle(event).await };
        let result = ctx
            .scope(AssertUnwindSafe(fut).catch_unwind())
            .instrument(span)
            .await
            .unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "handler panicked".to_owned());
                Err(HandlerError::transient(format!("handler panicked: {msg}")))
            });
        let decision = match &result {
            Ok(Outcome::Ack | Outcome::Drop) => Decision::Ack,
            Ok(Outcome::Reject(reason)) => {
                Decision::DeadLetter(self.failure(format!("rejected: {reason}"), meta, attempt))
            }
            Ok(Outcome::Retry { after }) => {
                self.retry_or_dead_letter("retry requested", *after, meta, attempt)
            }
            Err(e) if e.kind() == FailureKind::Permanent => {
                Decision::DeadLetter(self.failure(format!("permanent failure: {e}"), meta, attempt))
            }
            Err(e) => self.retry_or_dead_letter(e.message(), None, meta, attempt),
        };
        if let Decision::Retry { failure, .. } | Decision::DeadLetter(failure) = &decision {
            tracing::warn!(queue = %self.sub.queue, error = %failure.error, attempt, "event handling failed");
        }
        self.record(Some(event_type), &decision, result.as_ref().ok(), started);
        decision
    }

    fn retry_or_dead_letter(
        &self,
        error: &str,
        after: Option<Duration>,
        meta: &DeliveryMeta,
        attempt: u32,
    ) -> Decision {
        if attempt <= self.sub.retries {
            let delay = after.unwrap_or_else(|| self.sub.delay_for(attempt));
            Decision::Retry {
                delay,
                failure: self.failure(error.to_owned(), meta, attempt),
            }
        } else {
            let error = format!("retries exhausted after {attempt} attempts: {error}");
            Decision::DeadLetter(self.failure(error, meta, attempt))
        }
    }

    fn failure(&self, error: String, meta: &DeliveryMeta, attempts: u32) -> Failure {
        let now = format_time(&Utc::now());
        Failure {
            error,
            attempts,
            routing_key: meta.routing_key.clone(),
            first_failure: meta.first_failure.clone().unwrap_or_else(|| now.clone()),
            last_failure: now,
        }
    }

    fn record(
        &self,
        ty: Option<EventType>,
        decision: &Decision,
        outcome: Option<&Outcome>,
        started: tokio::time::Instant,
    ) {
        let seconds = started.elapsed().as_secs_f64();
        self.metrics
            .record(ty, outcome_index(decision, outcome), seconds);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventBuilder;
    use crate::events::UserDeleted;

    fn processor(h: impl Handler, retries: u32) -> Processor {
        Processor::new(
            "test",
            Subscribe::new("q")
                .pattern("#")
                .retries(retries)
                .retry_delay(Duration::from_millis(10)),
            Arc::new(h),
            None,
        )
    }

    fn body() -> Vec<u8> {
        EventBuilder::new(
            UserDeleted {
                user_id: "u".into(),
            },
            "s",
        )
        .build()
        .to_vec()
        .unwrap()
    }

    #[tokio::test]
    async fn ack_retry_then_dead_letter() {
        let p = processor(
            |_e: Event| async { Err::<(), _>(HandlerError::transient("boom")) },
            2,
        );
        let mut meta = DeliveryMeta {
            routing_key: "user.deleted".into(),
            ..Default::default()
        };
        for expected_attempt in 1..=2 {
            match p.process(&body(), &meta).await {
                Decision::Retry { delay, failure } => {
                    assert_eq!(failure.attempts, expected_attempt);
                    assert_eq!(delay, p.sub.delay_for(expected_attempt));
                    meta.attempts = failure.attempts;
                    meta.first_failure = Some(failure.first_failure);
                }
                other => panic!("expected retry, got {other:?}"),
            }
        }
        match p.process(&body(), &meta).await {
            Decision::DeadLetter(f) => {
                assert_eq!(f.attempts, 3);
                assert!(f.error.contains("boom"), "{}", f.error);
                assert_eq!(Some(f.first_failure), meta.first_failure);
            }
            other => panic!("expected DLQ, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn permanent_errors_and_panics() {
        let p = processor(
            |_e: Event| async { Err::<(), _>(HandlerError::permanent("bad")) },
            5,
        );
        assert!(matches!(
            p.process(&body(), &DeliveryMeta::default()).await,
            Decision::DeadLetter(_)
        ));
        let p = processor(|_e: Event| async { panic!("kaboom") as Outcome }, 1);
        match p.process(&body(), &DeliveryMeta::default()).await {
            Decision::Retry { failure, .. } => assert!(failure.error.contains("kaboom")),
            other => panic!("{other:?}"),
        }
        let p = processor(|_e: Event| async {}, 1);
        match p.process(b"{not json", &DeliveryMeta::default()).await {
            Decision::DeadLetter(f) => assert!(f.error.starts_with("invalid event"), "{}", f.error),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn handler_sees_event_context() {
        let p = processor(
            |e: Event| async move {
                let ctx = RequestContext::current().unwrap();
                assert_eq!(Some(ctx.correlation_id), e.correlation_id);
                Outcome::Drop
            },
            0,
        );
        let body = EventBuilder::new(
            UserDeleted {
                user_id: "u".into(),
            },
            "s",
        )
        .correlation_id("c-9")
        .build()
        .to_vec()
        .unwrap();
        assert_eq!(
            p.process(&body, &DeliveryMeta::default()).await,
            Decision::Ack
        );
    }
}
