//! Micro-benchmarks of the call hot paths: `cargo bench -p forten-shared --bench hot_paths` —
//! circuit-breaker bookkeeping per call, and the service-token caches (a caller's cached token,
//! a verifier's cached verification).

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use forten_shared::auth::{ServiceAuth, ServiceAuthConfig};
use forten_shared::client::CircuitBreaker;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

fn breaker(c: &mut Criterion) {
    let breaker = CircuitBreaker::new("access-service", Default::default(), None).unwrap();
    c.bench_function("breaker/acquire_record_success", |b| {
        b.iter(|| breaker.acquire().unwrap().record(black_box(true)));
    });
}

fn tokens(c: &mut Criterion) {
    forten_shared::auth::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let caller = ServiceAuth::new(
        ServiceAuthConfig::shared_secret("api-gateway", SECRET).scopes(["internal:read"]),
    )
    .unwrap();
    let target =
        ServiceAuth::new(ServiceAuthConfig::shared_secret("access-service", SECRET)).unwrap();
    let token = rt.block_on(caller.token("access-service")).unwrap();
    c.bench_function("token/caller_cache_hit", |b| {
        b.iter(|| {
            rt.block_on(caller.token(black_box("access-service")))
                .unwrap()
        });
    });
    target.verify(&token).unwrap();
    c.bench_function("token/verify_cache_hit", |b| {
        b.iter(|| target.verify(black_box(&token)).unwrap());
    });
}

criterion_group!(benches, breaker, tokens);
criterion_main!(benches);
