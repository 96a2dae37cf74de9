//! Measurement (ignored by default): throughput of a bare axum handler vs the same handler
//! behind the whole telemetry stack (span per request, correlation id, metrics), same run.
//!
//! `cargo test --release -p forten-shared --test telemetry -- --ignored --nocapture overhead`

use std::sync::Arc;

use axum::{Router, routing::get};
use forten_shared::{
    Observability,
    telemetry::{TelemetryConfig, build_subscriber},
};

use crate::support::unique;

const CONCURRENCY: usize = 32;
const REQUESTS: usize = 20_000;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn throughput(client: &reqwest::Client, url: &str) -> f64 {
    let start = tokio::time::Instant::now();
    let per_worker = REQUESTS / CONCURRENCY;
    let workers = (0..CONCURRENCY).map(|_| {
        let client = client.clone();
        let url = url.to_owned();
        tokio::spawn(async move {
            for _ in 0..per_worker {
                let res = client.get(&url).send().await.unwrap();
                assert!(res.status().is_success());
                res.bytes().await.unwrap();
            }
        })
    });
    for w in futures_util::future::join_all(workers).await {
        w.unwrap();
    }
    (per_worker * CONCURRENCY) as f64 / start.elapsed().as_secs_f64()
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn overhead_of_the_layer_stack() {
    let (subscriber, _guard) =
        build_subscriber(&TelemetryConfig::new("bench"), std::io::sink).unwrap();
    let dispatch = Arc::new(tracing::Dispatch::new(subscriber));
    // The servers' worker threads run with the telemetry subscriber as their default.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start({
            let dispatch = dispatch.clone();
            move || std::mem::forget(tracing::dispatcher::set_default(&dispatch))
        })
        .build()
        .unwrap();
    let obs = Observability::new(unique("bench"), "1.0.0");
    let (bare, stacked) = server_rt.block_on(async {
        let bare = serve(Router::new().route("/x", get(|| async { "ok" }))).await;
        let stacked = serve(obs.apply(Router::new().route("/x", get(|| async { "ok" })))).await;
        (bare, stacked)
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let client = reqwest::Client::new();
        throughput(&client, &bare).await; // warm-up
        throughput(&client, &stacked).await;
        let (mut best_bare, mut best_stacked) = (0.0_f64, 0.0_f64);
        for _ in 0..3 {
            best_bare = best_bare.max(throughput(&client, &bare).await);
            best_stacked = best_stacked.max(throughput(&client, &stacked).await);
        }
        println!(
            "bare: {best_bare:.0} req/s, telemetry stack: {best_stacked:.0} req/s, ratio {:.3} (cost {:.1} %)",
            best_stacked / best_bare,
            (1.0 - best_stacked / best_bare) * 100.0
        );
    });
}
