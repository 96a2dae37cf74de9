//! `forten bench http`: `ServiceClient` (discovery through a real in-process registry, round
//! robin, circuit breaker, retry with budget, service token, tracing) against a bare
//! `reqwest::Client`, both calling the same in-process axum server on loopback.

use std::sync::Arc;

use axum::routing::get;
use forten_shared::client::{RetryPolicy, ServiceClient};
use forten_shared::discovery::{
    DiscoveryClient, DiscoveryConfig, Registration, Registry, RegistryConfig,
};
use forten_shared::{ServiceAuth, ServiceAuthConfig};

use super::load::{Budget, LoadRun, LoopbackServer, closed_loop};
use super::{CliError, Report, Side, at_least_one, failed, load};
use crate::cli::BenchHttpArgs;

/// The benchmarked service's name in the registry.
const TARGET: &str = "bench-target";
/// The route both clients call.
const ROUTE: &str = "/bench";

/// A JSON document of about `size` bytes: `{"data":"xxx…"}`.
fn json_body(size: usize) -> bytes::Bytes {
    let pad = size.saturating_sub(r#"{"data":""}"#.len());
    bytes::Bytes::from(format!(r#"{{"data":"{}"}}"#, "x".repeat(pad)))
}

/// The server both sides call: one JSON route answering a prepared body (it checks nothing,
/// so that the clients' costs show).
fn app(body: bytes::Bytes) -> axum::Router {
    axum::Router::new().route(
        ROUTE,
        get(move || {
            let body = body.clone();
            async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    )
}

/// Everything the toolkit side needs, kept alive for the whole benchmark.
struct Stack {
    _registry: Registry,
    _registry_server: LoopbackServer,
    discovery: DiscoveryClient,
    client: ServiceClient,
}

/// A registry on loopback with the server registered as [`TARGET`] (through the discovery
/// client, which heartbeats), and a `ServiceClient` for it with a shared-secret service token.
async fn stack(server: &LoopbackServer) -> Result<Stack, CliError> {
    let registry = Registry::builder(RegistryConfig::default().health_checks(None))
        .start()
        .map_err(failed)?;
    let registry_server = LoopbackServer::start(registry.router()).await?;
    let discovery =
        DiscoveryClient::new(DiscoveryConfig::new(&registry_server.url)).map_err(failed)?;
    discovery
        .register(Registration::new(TARGET, "1", "127.0.0.1", server.port).health_check_url(None))
        .await
        .map_err(failed)?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let auth = ServiceAuth::new(
        ServiceAuthConfig::shared_secret("forten-bench", secret).scopes(["internal:read"]),
    )
    .map_err(failed)?;
    let client = ServiceClient::builder(TARGET, discovery.clone())
        .caller("forten-bench")
        .retry_policy(RetryPolicy::default())
        .auth(Arc::new(auth))
        .build()
        .map_err(failed)?;
    Ok(Stack {
        _registry: registry,
        _registry_server: registry_server,
        discovery,
        client,
    })
}

/// One run of `side` under `budget`.
async fn run_side(
    side: Side,
    stack: &Stack,
    bare: &reqwest::Client,
    url: &str,
    concurrency: usize,
    budget: Budget,
) -> Result<LoadRun, CliError> {
    match side {
        Side::Forten => {
            let client = stack.client.clone();
            closed_loop(concurrency, budget, move || {
                let client = client.clone();
                async move {
                    let res = client.get(ROUTE).send().await.map_err(failed)?;
                    if res.status().is_success() {
                        Ok(())
                    } else {
                        Err(CliError::Failed(format!("ServiceClient: {}", res.status())))
                    }
                }
            })
            .await
        }
        Side::Baseline => {
            let (bare, url) = (bare.clone(), url.to_owned());
            closed_loop(concurrency, budget, move || {
                let (bare, url) = (bare.clone(), url.clone());
                async move {
                    let res = bare.get(&url).send().await.map_err(failed)?;
                    let status = res.status();
                    res.bytes().await.map_err(failed)?;
                    if status.is_success() {
                        Ok(())
                    } else {
                        Err(CliError::Failed(format!("reqwest: {status}")))
                    }
                }
            })
            .await
        }
    }
}

pub(crate) async fn run(args: BenchHttpArgs) -> Result<(), CliError> {
    at_least_one(&[
        ("--concurrency", args.load.concurrency),
        ("--repeat", args.output.repeat),
    ])?;
    let budget = Budget::from_args(args.load.count, args.load.duration)?;
    let server = LoopbackServer::start(app(json_body(args.payload))).await?;
    let stack = stack(&server).await?;
    let bare = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(failed)?;
    let url = format!("{}{ROUTE}", server.url);
    let report = Report {
        json: args.output.json,
        baseline: "reqwest",
    };
    let repeat = args.output.repeat;
    let concurrency = args.load.concurrency;
    let progress = report.progress(2 + repeat * 2);
    let runs = load::alternate(
        &progress,
        repeat,
        concurrency,
        budget,
        name,
        |side, budget| run_side(side, &stack, &bare, &url, concurrency, budget),
    )
    .await?;
    progress.finish_and_clear();
    stack.discovery.shutdown().await;
    let figures = [
        runs.figure("http.throughput", "req/s", |r| r.throughput),
        runs.figure("http.p50_ms", "ms", |r| r.p50_ms),
        runs.figure("http.p99_ms", "ms", |r| r.p99_ms),
        runs.figure("http.cpu_per_req_us", "us", |r| r.cpu_us),
    ];
    report.print(
        &figures,
        &format!(
            "GET of a {}-byte JSON body on loopback, {concurrency} concurrent, {} per run; median of {repeat} runs each, alternating",
            args.payload,
            budget.describe()
        ),
    );
    Ok(())
}

fn name(side: Side) -> &'static str {
    match side {
        Side::Forten => "ServiceClient",
        Side::Baseline => "reqwest",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_json_of_about_the_size_asked() {
        let body = json_body(100);
        assert_eq!(body.len(), 100);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["data"].is_string());
        assert!(serde_json::from_slice::<serde_json::Value>(&json_body(0)).is_ok());
    }
}
