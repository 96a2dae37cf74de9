//! Event metrics with their handles cached: the label set of a series is built once, so the
//! hot paths (publish, consume) only increment.

use std::sync::OnceLock;

use metrics::{Counter, Histogram};

use super::EventType;
use crate::telemetry::{Metrics, metric_names as names};

/// Outcome labels of `events_consumed_total`.
pub(crate) const OUTCOMES: [&str; 5] = ["ack", "dropped", "retry", "rejected", "dead_lettered"];

/// Index of an event type; the last slot is for messages that are not valid events.
const TYPES: usize = EventType::ALL.len() + 1;
const INVALID: usize = TYPES - 1;

fn slot(ty: Option<EventType>) -> usize {
    ty.map_or(INVALID, |t| t as usize)
}

fn type_label(i: usize) -> &'static str {
    EventType::ALL.get(i).map_or("invalid", |t| t.as_str())
}

/// `events_published_total` per type, for one service.
#[derive(Debug)]
pub(crate) struct PublishMetrics {
    metrics: Metrics,
    published: [OnceLock<Counter>; TYPES],
}

impl PublishMetrics {
    pub(crate) fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            published: [const { OnceLock::new() }; TYPES],
        }
    }

    pub(crate) fn published(&self, ty: EventType) {
        let i = slot(Some(ty));
        self.published[i]
            .get_or_init(|| {
                self.metrics
                    .counter(names::EVENTS_PUBLISHED_TOTAL, &[("type", type_label(i))])
            })
            .increment(1);
    }

    pub(crate) fn bus_connected(&self, connected: bool) {
        self.metrics.bus_connected(connected);
    }
}

/// The consumer-side series of one subscription.
#[derive(Debug)]
pub(crate) struct ConsumeMetrics {
    metrics: Metrics,
    queue: String,
    consumed: [[OnceLock<Counter>; OUTCOMES.len()]; TYPES],
    duration: [OnceLock<Histogram>; TYPES],
    retried: [OnceLock<Counter>; TYPES],
    dead_lettered: [OnceLock<Counter>; OUTCOMES.len() + 1],
}

impl ConsumeMetrics {
    pub(crate) fn new(metrics: Metrics, queue: &str) -> Self {
        Self {
            metrics,
            queue: queue.to_owned(),
            consumed: [const { [const { OnceLock::new() }; OUTCOMES.len()] }; TYPES],
            duration: [const { OnceLock::new() }; TYPES],
            retried: [const { OnceLock::new() }; TYPES],
            dead_lettered: [const { OnceLock::new() }; OUTCOMES.len() + 1],
        }
    }

    /// Records one handled delivery: `ty` is `None` for an invalid message; `outcome` indexes
    /// [`OUTCOMES`].
    pub(crate) fn record(&self, ty: Option<EventType>, outcome: usize, seconds: f64) {
        let (i, q) = (slot(ty), self.queue.as_str());
        let t = type_label(i);
        let o = OUTCOMES[outcome.min(OUTCOMES.len() - 1)];
        self.consumed[i][outcome.min(OUTCOMES.len() - 1)]
            .get_or_init(|| {
                self.metrics.counter(
                    names::EVENTS_CONSUMED_TOTAL,
                    &[("queue", q), ("type", t), ("outcome", o)],
                )
            })
            .increment(1);
        self.duration[i]
            .get_or_init(|| {
                self.metrics.histogram(
                    names::EVENT_HANDLER_DURATION_SECONDS,
                    &[("queue", q), ("type", t)],
                )
            })
            .record(seconds);
        match o {
            "retry" => self.retried[i]
                .get_or_init(|| {
                    self.metrics
                        .counter(names::EVENTS_RETRIED_TOTAL, &[("queue", q), ("type", t)])
                })
                .increment(1),
            "rejected" | "dead_lettered" => {
                // reason: invalid message, rejected by the handler, or failed (permanent / retries exhausted)
                let (r, reason) = if ty.is_none() {
                    (OUTCOMES.len(), "invalid")
                } else {
                    (outcome, o)
                };
                self.dead_lettered[r]
                    .get_or_init(|| {
                        self.metrics.counter(
                            names::EVENTS_DEAD_LETTERED_TOTAL,
                            &[("queue", q), ("reason", reason)],
                        )
                    })
                    .increment(1);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_series_render_like_the_uncached_ones() {
        let service = format!("events-metrics-{}", uuid::Uuid::new_v4().simple());
        let m = ConsumeMetrics::new(Metrics::new(&service), "q1");
        m.record(Some(EventType::UserCreated), 0, 0.002);
        m.record(Some(EventType::UserCreated), 0, 0.002);
        m.record(None, 4, 0.0);
        let p = PublishMetrics::new(Metrics::new(&service));
        p.published(EventType::DoorForced);
        let text = Metrics::new(&service).render();
        assert!(text.contains(&format!("events_consumed_total{{service=\"{service}\",queue=\"q1\",type=\"user.created\",outcome=\"ack\"}} 2")), "{text}");
        assert!(text.contains(&format!("events_dead_lettered_total{{service=\"{service}\",queue=\"q1\",reason=\"invalid\"}} 1")), "{text}");
        assert!(
            text.contains(&format!(
                "events_published_total{{service=\"{service}\",type=\"door.forced\"}} 1"
            )),
            "{text}"
        );
    }
}
