//! `forten bench gateway`: `GET /api/buildings` through the api-gateway (user token checked,
//! route resolved, `ServiceClient` through discovery, body streamed back) against the same
//! request sent straight to the access-service. The access-service is the real one, over
//! SQLite in a temporary directory, registered in an in-process registry on loopback.

use forten_shared::EventBus;
use forten_shared::auth::{UserAuth, UserIdentity};
use forten_shared::discovery::{
    DiscoveryClient, DiscoveryConfig, Registration, Registry, RegistryConfig,
};
use forten_shared::events::Role;

use super::load::{Budget, LoadRun, LoopbackServer, closed_loop};
use super::{CliError, Report, Side, at_least_one, failed, load};
use crate::cli::BenchGatewayArgs;
use crate::services::{access, gateway};
use crate::storage::DatabaseConfig;

/// The route both sides call.
const ROUTE: &str = "/api/buildings";

/// A temporary directory, removed when dropped.
#[derive(Debug)]
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything kept alive while the benchmark runs.
struct Setup {
    _dir: TempDir,
    _registry: Registry,
    _registry_server: LoopbackServer,
    _backend: LoopbackServer,
    _gateway: LoopbackServer,
    discovery: DiscoveryClient,
    db: crate::storage::Database,
    direct_url: String,
    gateway_url: String,
    authorization: String,
}

async fn setup(buildings: usize) -> Result<Setup, CliError> {
    let dir = TempDir(
        std::env::temp_dir().join(format!("forten-bench-{}", uuid::Uuid::new_v4().simple())),
    );
    let db = access::open_database(&DatabaseConfig {
        data_dir: dir.0.clone(),
        ..DatabaseConfig::default()
    })
    .await
    .map_err(failed)?;
    let state = access::AccessState::new(
        db.clone(),
        EventBus::in_process(access::SERVICE),
        access::AccessConfig::default(),
    );
    let backend = LoopbackServer::start(access::router(state)).await?;
    let seed = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(failed)?;
    for i in 0..buildings {
        let res = seed
            .post(format!("{}{ROUTE}", backend.url))
            .json(&serde_json::json!({"name": format!("Building {i}"), "address": format!("{i} Bench Street")}))
            .send()
            .await
            .map_err(failed)?;
        if !res.status().is_success() {
            return Err(CliError::Failed(format!(
                "seeding the access-service: {}",
                res.status()
            )));
        }
    }

    let registry = Registry::builder(RegistryConfig::default().health_checks(None))
        .start()
        .map_err(failed)?;
    let registry_server = LoopbackServer::start(registry.router()).await?;
    let discovery =
        DiscoveryClient::new(DiscoveryConfig::new(&registry_server.url)).map_err(failed)?;
    discovery
        .register(
            Registration::new(access::SERVICE, "1", "127.0.0.1", backend.port)
                .health_check_url(None),
        )
        .await
        .map_err(failed)?;

    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let users = UserAuth::new(&secret, std::time::Duration::from_secs(3600)).map_err(failed)?;
    let token = users
        .issue(&UserIdentity {
            user_id: "bench-admin".into(),
            email: "bench@forten.local".into(),
            role: Role::Admin,
        })
        .map_err(failed)?;
    let state =
        gateway::GatewayState::new(discovery.clone(), users, gateway::GatewayConfig::default())
            .map_err(failed)?;
    let gateway_server = LoopbackServer::start(gateway::router(state)).await?;
    Ok(Setup {
        direct_url: format!("{}{ROUTE}", backend.url),
        gateway_url: format!("{}{ROUTE}", gateway_server.url),
        authorization: format!("Bearer {}", token.token),
        _dir: dir,
        _registry: registry,
        _registry_server: registry_server,
        _backend: backend,
        _gateway: gateway_server,
        discovery,
        db,
    })
}

/// One run of `side`: the same bare client, through the gateway or straight to the service.
async fn run_side(
    side: Side,
    setup: &Setup,
    client: &reqwest::Client,
    concurrency: usize,
    budget: Budget,
) -> Result<LoadRun, CliError> {
    let (url, auth) = match side {
        Side::Forten => (setup.gateway_url.clone(), Some(setup.authorization.clone())),
        Side::Baseline => (setup.direct_url.clone(), None),
    };
    let client = client.clone();
    closed_loop(concurrency, budget, move || {
        let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
        async move {
            let mut req = client.get(&url);
            if let Some(auth) = auth {
                req = req.header(http::header::AUTHORIZATION, auth);
            }
            let res = req.send().await.map_err(failed)?;
            let status = res.status();
            res.bytes().await.map_err(failed)?;
            if status.is_success() {
                Ok(())
            } else {
                Err(CliError::Failed(format!("GET {url}: {status}")))
            }
        }
    })
    .await
}

fn name(side: Side) -> &'static str {
    match side {
        Side::Forten => "through the gateway",
        Side::Baseline => "direct",
    }
}

pub(crate) async fn run(args: BenchGatewayArgs) -> Result<(), CliError> {
    at_least_one(&[
        ("--concurrency", args.load.concurrency),
        ("--repeat", args.output.repeat),
    ])?;
    let budget = Budget::from_args(args.load.count, args.load.duration)?;
    let (repeat, concurrency) = (args.output.repeat, args.load.concurrency);
    let report = Report {
        json: args.output.json,
        baseline: "direct",
    };
    let setup = setup(args.buildings).await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(failed)?;
    let progress = report.progress(2 + repeat * 2);
    let result = load::alternate(
        &progress,
        repeat,
        concurrency,
        budget,
        name,
        |side, budget| run_side(side, &setup, &client, concurrency, budget),
    )
    .await;
    progress.finish_and_clear();
    setup.discovery.shutdown().await;
    setup.db.close().await;
    let runs = result?;
    let figures = [
        runs.figure("gateway.throughput", "req/s", |r| r.throughput),
        runs.figure("gateway.p50_ms", "ms", |r| r.p50_ms),
        runs.figure("gateway.p99_ms", "ms", |r| r.p99_ms),
        runs.figure("gateway.cpu_per_req_us", "us", |r| r.cpu_us),
    ];
    report.print(
        &figures,
        &format!(
            "GET {ROUTE} ({} buildings, access-service over SQLite) on loopback, {concurrency} concurrent, {} per run; median of {repeat} runs each, alternating",
            args.buildings,
            budget.describe()
        ),
    );
    Ok(())
}
