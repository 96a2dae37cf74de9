//! `ServiceClient` against a bare `reqwest` client on the same loopback server:
//! `cargo test --release -p forten-shared --test client bench -- --ignored --nocapture`.

use std::sync::Arc;
use std::time::Duration;

use forten_shared::client::{RetryPolicy, ServiceClient};
use forten_shared::discovery::BalanceStrategy;
use tokio::time::Instant;

use crate::{Cluster, lenient_breaker};

const CONCURRENCY: usize = 32;
const PER_TASK: usize = 1_000;

struct Run {
    throughput: f64,
    p50: Duration,
    p99: Duration,
}

async fn run<F, Fut>(call: F) -> Run
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(PER_TASK);
                for _ in 0..PER_TASK {
                    let t = Instant::now();
                    call().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    Run {
        throughput: all.len() as f64 / elapsed.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement; run with --ignored --nocapture (release)"]
async fn bench_service_client_vs_bare_reqwest() {
    let cluster = Cluster::start(0, BalanceStrategy::RoundRobin).await;
    // A lean server (no hit counting or header capture), the same for both clients.
    let server = crate::support::TestServer::start(
        axum::Router::new().route("/bench", axum::routing::get(|| async { "ok" })),
    )
    .await;
    cluster
        .registry
        .register(
            forten_shared::discovery::Registration::new(
                &cluster.service,
                "1",
                "127.0.0.1",
                server.addr.port(),
            )
            .health_check_url(None),
        )
        .await
        .unwrap();
    let url = format!("{}/bench", server.url);
    let bare = reqwest::Client::builder().no_proxy().build().unwrap();
    forten_shared::auth::install_crypto_provider();
    let auth = forten_shared::ServiceAuth::new(forten_shared::ServiceAuthConfig::shared_secret(
        "bench-caller",
        "0123456789abcdef0123456789abcdef-bench",
    ))
    .unwrap();
    let token = auth.create_auth_header(&cluster.service).await.unwrap();
    let client: ServiceClient = ServiceClient::builder(&cluster.service, cluster.discovery.clone())
        .circuit_breaker(lenient_breaker())
        .retry_policy(RetryPolicy::default())
        .auth(Arc::new(auth.clone()))
        .build()
        .unwrap();
    // warm up both
    for _ in 0..200 {
        bare.get(&url).send().await.unwrap().bytes().await.unwrap();
        client.get("/bench").send().await.unwrap();
    }
    // Interleaved rounds, order alternating, medians reported: the machine is small and
    // noisy, and server and clients share it.
    let mut rounds = Vec::new();
    for i in 0..6 {
        let b = bare.clone();
        let u = url.clone();
        let bare_run = move || {
            let b = b.clone();
            let u = u.clone();
            async move {
                b.get(&u).send().await.unwrap().bytes().await.unwrap();
            }
        };
        let c = client.clone();
        let ours_run = move || {
            let c = c.clone();
            async move {
                c.get("/bench").send().await.unwrap();
            }
        };
        let b = bare.clone();
        let u = url.clone();
        let t = token.clone();
        // The bare client sending what a ServiceClient call sends (token, trace context,
        // deadline) through `send_traced`: separates the cost of the headers from the stack's.
        let headers_run = move || {
            let b = b.clone();
            let u = u.clone();
            let t = t.clone();
            async move {
                let req = b
                    .get(&u)
                    .header(http::header::AUTHORIZATION, t)
                    .header(forten_shared::client::DEADLINE_HEADER, "9999999999999");
                forten_shared::telemetry::send_traced(req)
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            }
        };
        let (base, ours, headers) = if i % 2 == 0 {
            let base = run(bare_run).await;
            let headers = run(headers_run).await;
            (base, run(ours_run).await, headers)
        } else {
            let ours = run(ours_run).await;
            let headers = run(headers_run).await;
            (run(bare_run).await, ours, headers)
        };
        println!(
            "round {i}: bare {:.0} req/s p50 {:?} p99 {:?} | bare+headers {:.0} req/s p50 {:?} p99 {:?} | ServiceClient {:.0} req/s p50 {:?} p99 {:?}",
            base.throughput,
            base.p50,
            base.p99,
            headers.throughput,
            headers.p50,
            headers.p99,
            ours.throughput,
            ours.p50,
            ours.p99,
        );
        rounds.push((base, ours));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    let bt = median(rounds.iter().map(|r| r.0.throughput).collect());
    let ot = median(rounds.iter().map(|r| r.1.throughput).collect());
    let b50 = median(rounds.iter().map(|r| r.0.p50.as_secs_f64() * 1e3).collect());
    let o50 = median(rounds.iter().map(|r| r.1.p50.as_secs_f64() * 1e3).collect());
    let b99 = median(rounds.iter().map(|r| r.0.p99.as_secs_f64() * 1e3).collect());
    let o99 = median(rounds.iter().map(|r| r.1.p99.as_secs_f64() * 1e3).collect());
    println!(
        "median: bare {bt:.0} req/s p50 {b50:.3} ms p99 {b99:.3} ms | ServiceClient {ot:.0} req/s p50 {o50:.3} ms p99 {o99:.3} ms | throughput ratio {:.2}, p99 ratio {:.2}",
        ot / bt,
        o99 / b99
    );
}
