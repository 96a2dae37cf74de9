//! Micro-benchmarks of the event hot paths: `cargo bench -p forten-shared --bench events`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use forten_shared::events::{AccessGranted, AccessMethod, TopicPattern};
use forten_shared::{Event, EventBuilder};

fn event() -> Event {
    EventBuilder::new(
        AccessGranted {
            user_id: "0193a3c1-7c2e-7b3a-9f51-2b7d4c1e8a90".into(),
            door_id: "door-17".into(),
            building_id: "building-3".into(),
            access_method: AccessMethod::Card,
            timestamp: chrono::Utc::now(),
        },
        "access-service",
    )
    .subject("door-17")
    .correlation_id("7f7c1f0e-2a8e-4d7e-9a55-1c2b3d4e5f60")
    .traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    .build()
}

fn envelope(c: &mut Criterion) {
    let e = event();
    let bytes = e.to_vec().unwrap();
    c.bench_function("envelope/serialize", |b| {
        b.iter(|| black_box(&e).to_vec().unwrap())
    });
    c.bench_function("envelope/parse_validate", |b| {
        b.iter(|| Event::from_slice(black_box(&bytes)).unwrap())
    });
    c.bench_function("envelope/build", |b| b.iter(event));
}

fn routing(c: &mut Criterion) {
    let patterns: Vec<TopicPattern> = [
        "#",
        "access.*",
        "door.forced",
        "*.forced",
        "camera.#",
        "user.created",
    ]
    .into_iter()
    .map(TopicPattern::new)
    .collect();
    let keys = [
        "access.granted",
        "door.forced",
        "camera.offline",
        "user.deleted",
        "alert.triggered",
    ];
    c.bench_function("pattern/match_6x5", |b| {
        b.iter(|| {
            let mut n = 0;
            for p in &patterns {
                for k in keys {
                    n += usize::from(p.matches(black_box(k)));
                }
            }
            n
        });
    });
}

criterion_group!(benches, envelope, routing);
criterion_main!(benches);
