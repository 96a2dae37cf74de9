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

fn server_runtime(dispatch: Option<Arc<tracing::Dispatch>>) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(1).enable_all();
    if let Some(dispatch) = dispatch {
        // The server's worker thread runs with the telemetry subscriber as its default.
        builder
            .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&dispatch)));
    }
    builder.build().unwrap()
}

#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn overhead_of_the_layer_stack() {
    let (subscriber, _guard) =
        build_subscriber(&TelemetryConfig::new("bench"), std::io::sink).unwrap();
    let dispatch = Arc::new(tracing::Dispatch::new(subscriber));
    let traced_rt = server_runtime(Some(dispatch));
    let plain_rt = server_runtime(None);
    let obs = Observability::new(unique("bench"), "1.0.0");
    let handler = || Router::new().route("/x", get(|| async { "ok" }));
    let bare = traced_rt.block_on(serve(handler()));
    let control = traced_rt.block_on(serve(handler()));
    let stacked = traced_rt.block_on(serve(obs.apply(handler())));
    let untraced = plain_rt.block_on(serve(obs.apply(handler())));
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    client_rt.block_on(async {
        let client = reqwest::Client::new();
        let urls = [&bare, &stacked, &untraced, &control];
        for url in urls {
            throughput(&client, url).await; // warm-up
        }
        // Interleaved rounds, best of each: background load on a shared machine only ever
        // lowers a figure.
        let mut best = [0.0_f64; 4];
        for round in 0..5 {
            for i in 0..urls.len() {
                let i = (i + round) % urls.len();
                best[i] = best[i].max(throughput(&client, urls[i]).await);
            }
        }
        let [bare, stacked, untraced, control] = best;
        println!(
            "bare: {bare:.0} req/s (control, same bare handler: {control:.0}); full stack: {stacked:.0} req/s (ratio {:.3}); \
             stack without a subscriber (metrics + correlation only): {untraced:.0} req/s (ratio {:.3})",
            stacked / bare,
            untraced / bare,
        );
    });
}

/// Per-request CPU cost of the stack without sockets: `Router::call` in a loop on one thread.
#[test]
#[ignore = "measurement; run in release with --ignored --nocapture"]
fn overhead_per_request_in_process() {
    use tower::{Service as _, ServiceExt as _};

    const N: u32 = 200_000;
    async fn cost(app: Router) -> f64 {
        let mut app = app.into_service::<axum::body::Body>();
        let mut best = f64::MAX;
        for _ in 0..3 {
            let start = tokio::time::Instant::now();
            for _ in 0..N {
                let req = http::Request::get("/x")
                    .body(axum::body::Body::empty())
                    .unwrap();
                let res = app.ready().await.unwrap().call(req).await.unwrap();
                assert!(res.status().is_success());
            }
            best = best.min(start.elapsed().as_secs_f64() * 1e9 / f64::from(N));
        }
        best
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let obs = Observability::new(unique("bench"), "1.0.0");
    let handler = || Router::new().route("/x", get(|| async { "ok" }));
    let untraced = rt.block_on(cost(obs.apply(handler())));
    let (subscriber, _guard) =
        build_subscriber(&TelemetryConfig::new("bench"), std::io::sink).unwrap();
    let _default = tracing::subscriber::set_default(subscriber);
    let bare = rt.block_on(cost(handler()));
    let stack = rt.block_on(cost(obs.apply(handler())));
    println!(
        "in-process: bare {bare:.0} ns/request; stack {stack:.0} ns/request (adds {:.0} ns); \
         stack without a subscriber adds {:.0} ns",
        stack - bare,
        untraced - bare
    );
}
