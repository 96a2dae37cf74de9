//! The operator commands, run as the real binary against the real RabbitMQ.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use forten_shared::events::{HandlerError, RabbitConfig, Subscribe, UserDeleted};
use forten_shared::{Event, EventBuilder, EventBus};

fn rabbit_url() -> String {
    std::env::var("RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn forten(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_forten"))
        .args(args)
        .env("RABBITMQ_URL", rabbit_url())
        .output()
        .expect("run forten")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn bus(exchange: &str) -> EventBus {
    EventBus::rabbitmq(
        "cli-test",
        RabbitConfig::new(rabbit_url()).exchange(exchange),
    )
    .await
    .unwrap_or_else(|e| panic!("RabbitMQ is required for this test and is not reachable: {e}"))
}

#[test]
fn bad_arguments_give_one_line_and_exit_64() {
    let o = forten(&["events", "publish", "door.exploded", "{}"]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("error: unknown event type \"door.exploded\""),
        "{}",
        stderr(&o)
    );

    let o = forten(&["events", "publish", "user.deleted", "{not json"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        stderr(&o).contains("data does not match the schema of user.deleted"),
        "{}",
        stderr(&o)
    );

    let o = forten(&["events", "publish", "user.deleted", r#"{"id": 1}"#]);
    assert_eq!(
        o.status.code(),
        Some(64),
        "missing userId is refused before connecting"
    );

    let o = forten(&["dlq", "frobnicate", "q"]);
    assert_eq!(o.status.code(), Some(64), "clap usage error");
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    for args in [
        &["bench", "http", "--concurrency", "lots"][..],
        &["bench", "http", "--frobnicate"],
        &["bench", "auth", "--count", "-3"],
        &["bench", "http", "--concurrency", "0"],
        &["bench", "http", "--count", "0"],
        &["bench", "auth", "--repeat", "0"],
        &["bench", "gateway", "--duration", "soon"],
    ] {
        let o = forten(args);
        assert_eq!(o.status.code(), Some(64), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}

#[test]
fn unreachable_broker_gives_one_line_and_exit_69() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    for args in [
        vec!["events", "publish", "user.deleted", r#"{"userId":"1"}"#],
        vec!["events", "tail"],
        vec!["dlq", "list", "some.queue"],
        vec!["bench", "events", "--count", "10"],
        vec!["bench", "analytics", "--count", "10", "--stored", "10"],
    ] {
        let mut all = args.clone();
        all.extend(["--rabbitmq-url", &url, "--connect-timeout", "1s"]);
        let o = forten(&all);
        assert_eq!(o.status.code(), Some(69), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:"),
            "{err}"
        );
    }
}

#[test]
fn publish_prints_the_event_and_tail_sees_it() {
    let mut tail = Command::new(env!("CARGO_BIN_EXE_forten"))
        .args(["events", "tail", "door.held_open", "--count", "1"])
        .env("RABBITMQ_URL", rabbit_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the tail binds its queue once connected; publish until it has seen one
    let mut published = Vec::new();
    let mut tries = 0;
    let status = loop {
        let o = forten(&[
            "events",
            "publish",
            "door.held_open",
            r#"{"doorId":"d-cli","buildingId":"b-cli","durationSeconds":61,"timestamp":"2026-11-27T10:00:00Z"}"#,
            "--source",
            "cli-test",
            "--subject",
            "d-cli",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let event =
            Event::from_slice(stdout(&o).trim().as_bytes()).expect("publish prints the CloudEvent");
        assert_eq!(event.source, "cli-test");
        published.push(event.id);
        if let Some(status) = tail.try_wait().unwrap() {
            break status;
        }
        tries += 1;
        assert!(tries < 100, "tail never saw an event");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(status.success());
    let out = tail.wait_with_output().unwrap();
    let seen = Event::from_slice(stdout(&out).trim().as_bytes()).expect("tail prints CloudEvents");
    assert!(published.contains(&seen.id), "tail printed one of ours");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_show_replay_and_purge() {
    let exchange = format!("test.cli.x.{}", uuid::Uuid::new_v4().simple());
    let queue = format!("test.cli.{}", uuid::Uuid::new_v4().simple());
    let bus = bus(&exchange).await;
    let fixed = Arc::new(AtomicBool::new(false));
    let handled = Arc::new(AtomicUsize::new(0));
    let (f, h) = (fixed.clone(), handled.clone());
    bus.subscribe(
        Subscribe::new(&queue)
            .pattern("user.deleted")
            .retries(1)
            .retry_delay(Duration::from_millis(50)),
        move |_e: Event| {
            let ok = f.load(Ordering::SeqCst);
            if ok {
                h.fetch_add(1, Ordering::SeqCst);
            }
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(HandlerError::transient("downstream unavailable"))
                }
            }
        },
    )
    .await
    .unwrap();
    let events: Vec<Event> = (0..2)
        .map(|i| {
            EventBuilder::new(
                UserDeleted {
                    user_id: format!("u{i}"),
                },
                "t",
            )
            .build()
        })
        .collect();
    bus.publish_all(&events).await.unwrap();
    for _ in 0..500 {
        if bus.dead_letters(&queue, 10).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let q = queue.clone();
    let list = tokio::task::spawn_blocking(move || forten(&["dlq", "list", &q]))
        .await
        .unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(
        text.starts_with(&format!("2 dead letter(s) in {queue}.dlq")),
        "{text}"
    );
    assert!(
        text.contains("attempts=2") && text.contains("downstream unavailable"),
        "{text}"
    );

    let q = queue.clone();
    let show = tokio::task::spawn_blocking(move || forten(&["dlq", "show", &q, "--limit", "1"]))
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(stdout(&show).trim()).unwrap();
    assert_eq!(doc["originalRoutingKey"], "user.deleted");
    assert_eq!(doc["body"]["type"], "user.deleted");

    fixed.store(true, Ordering::SeqCst);
    let q = queue.clone();
    let replay =
        tokio::task::spawn_blocking(move || forten(&["dlq", "replay", &q, "--limit", "1"]))
            .await
            .unwrap();
    assert!(
        stdout(&replay).starts_with("replayed 1 message(s)"),
        "{}",
        stdout(&replay)
    );
    for _ in 0..500 {
        if handled.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "the fixed handler took the replayed event"
    );

    let q = queue.clone();
    let purge = tokio::task::spawn_blocking(move || forten(&["dlq", "purge", &q]))
        .await
        .unwrap();
    assert!(
        stdout(&purge).starts_with("purged 1 message(s)"),
        "{}",
        stdout(&purge)
    );
    assert!(bus.dead_letters(&queue, 10).await.unwrap().is_empty());

    bus.delete_queues(&queue).await.ok();
    bus.shutdown(Duration::from_secs(5)).await;
    let conn = lapin::Connection::connect(&rabbit_url(), lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .exchange_delete(
            exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await;
}

#[test]
fn bench_analytics_smoke() {
    let o = forten(&[
        "bench",
        "analytics",
        "--count",
        "300",
        "--stored",
        "1000",
        "--queries",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(v["value"].as_f64().is_some_and(|x| x > 0.0), "{l}");
            v["name"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "analytics.ingest",
            "analytics.store_batched",
            "analytics.metrics_p50_ms",
            "analytics.metrics_p99_ms",
            "analytics.timeseries_7d_ms",
            "analytics.timeseries_7d_p99_ms",
            "analytics.timeseries_7d_1m_door_ms",
            "analytics.report_7d_by_door_ms",
            "analytics.access_rates_7d_ms"
        ]
    );
}

#[test]
fn analytics_rebuild_opens_the_services_database() {
    let dir = std::env::temp_dir().join(format!(
        "forten-cli-rebuild-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let data_dir = dir.to_str().unwrap();
    // no database there: one line, exit 64, nothing created
    let o = forten(&["analytics", "rebuild", "--data-dir", data_dir]);
    assert_eq!(o.status.code(), Some(64), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no analytics database at"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.join("analytics.db").exists());
    // an (empty) analytics database: migrated and rebuilt
    std::fs::write(dir.join("analytics.db"), b"").unwrap();
    let o = forten(&["analytics", "rebuild", "--data-dir", data_dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("from 0 stored events"),
        "{}",
        stdout(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_events_smoke() {
    let o = forten(&[
        "bench",
        "events",
        "--count",
        "200",
        "--repeat",
        "1",
        "--rate",
        "200",
        "--duration",
        "500ms",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "events.publish_confirmed",
            "events.consume_ack",
            "events.publish_cpu_per_msg",
            "events.consume_cpu_per_msg",
            "events.e2e_p50_ms",
            "events.e2e_p99_ms",
            "events.e2e_p999_ms"
        ]
    );
}

/// The figures a `--json` bench printed, each checked for shape: (name, value, baseline).
/// The figures of a `--json` bench run, checked: exactly `names` in order, each with a unit
/// and, where it has a baseline, the ratio `value / baseline`.
fn bench_figures(o: &Output, names: &[&str]) -> Vec<(String, f64, Option<f64>)> {
    assert!(o.status.success(), "{}", stderr(o));
    let figures: Vec<(String, f64, Option<f64>)> = stdout(o)
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let value = v["value"].as_f64().unwrap_or_else(|| panic!("value: {l}"));
            assert!(v["unit"].is_string(), "{l}");
            let baseline = v["baseline"].as_f64();
            if let Some(b) = baseline.filter(|b| *b > 0.0) {
                let ratio = v["ratio"].as_f64().unwrap_or_else(|| panic!("ratio: {l}"));
                assert!((ratio - value / b).abs() < 1e-9, "{l}");
            }
            (v["name"].as_str().unwrap().to_owned(), value, baseline)
        })
        .collect();
    let got: Vec<&str> = figures.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(got, names);
    figures
}

/// Every figure positive and compared with a positive baseline.
fn assert_all_compared(figures: &[(String, f64, Option<f64>)]) {
    for (name, value, baseline) in figures {
        assert!(*value > 0.0, "{name}: {value}");
        assert!(baseline.is_some_and(|b| b > 0.0), "{name}: {baseline:?}");
    }
}

#[test]
fn bench_http_smoke() {
    let o = forten(&[
        "bench",
        "http",
        "--count",
        "200",
        "--concurrency",
        "4",
        "--repeat",
        "1",
        "--json",
    ]);
    let figures = bench_figures(
        &o,
        &[
            "http.throughput",
            "http.p50_ms",
            "http.p99_ms",
            "http.cpu_per_req_us",
        ],
    );
    assert_all_compared(&figures);
}

#[test]
fn bench_auth_smoke() {
    let o = forten(&["bench", "auth", "--count", "50", "--repeat", "1", "--json"]);
    let figures = bench_figures(
        &o,
        &[
            "auth.sign",
            "auth.verify",
            "auth.verify_cached",
            "auth.sign_eddsa",
            "auth.verify_eddsa",
            "auth.verify_eddsa_cached",
            "auth.layer_overhead_us",
            "auth.event_sign",
            "auth.event_verify",
        ],
    );
    assert_all_compared(&figures[..6]);
    assert!(
        figures[6].2.is_some_and(|b| b > 0.0),
        "the bare router's cost"
    );
    for (name, value, baseline) in &figures[7..] {
        assert!(
            *value > 0.0 && baseline.is_none(),
            "{name}: {value} {baseline:?}"
        );
    }
}

#[test]
fn bench_gateway_smoke() {
    let o = forten(&[
        "bench",
        "gateway",
        "--count",
        "100",
        "--concurrency",
        "4",
        "--buildings",
        "3",
        "--repeat",
        "1",
        "--json",
    ]);
    let figures = bench_figures(
        &o,
        &[
            "gateway.throughput",
            "gateway.p50_ms",
            "gateway.p99_ms",
            "gateway.cpu_per_req_us",
        ],
    );
    assert_all_compared(&figures);
}

#[tokio::test]
async fn token_mints_a_verifiable_service_token() {
    let secret = "cli-test-secret-of-at-least-32-bytes!!";
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_forten"))
            .args([
                "token",
                "--from",
                "access-service",
                "--to",
                "monitoring-service",
                "--scope",
                "internal:read",
            ])
            .env("JWT_SECRET", secret)
            .env_remove("SERVICE_AUTH_MODE")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);
    let token = token.trim();
    assert_eq!(token.split('.').count(), 3, "the bare JWT alone: {token}");
    forten_shared::auth::install_crypto_provider();
    let verifier = forten_shared::ServiceAuth::new(
        forten_shared::ServiceAuthConfig::shared_secret("monitoring-service", secret),
    )
    .unwrap();
    let identity = verifier.verify(token).unwrap();
    assert_eq!(identity.name, "access-service");
    assert!(identity.scopes.iter().any(|s| s == "internal:read"));

    let o = Command::new(env!("CARGO_BIN_EXE_forten"))
        .args(["token", "--from", "a", "--to", "b", "--scope", "s"])
        .env_remove("JWT_SECRET")
        .env_remove("SERVICE_AUTH_MODE")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(64));
    assert_eq!(stderr(&o).lines().count(), 1);
    assert!(stderr(&o).contains("JWT_SECRET"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_list_shows_services_and_instances() {
    use forten_shared::discovery::{Registration, Registry, RegistryConfig};
    let registry = Registry::builder(RegistryConfig::default().health_checks(None))
        .start()
        .unwrap();
    registry
        .register(Registration::new(
            "access-service",
            "1.2.3",
            "127.0.0.1",
            3002,
        ))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app: axum::Router = registry.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_forten"))
            .args(["registry", "list", "--registry-url", &url])
            .env_remove("FORTEN_TOKEN")
            .env_remove("JWT_SECRET")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.starts_with("SERVICE"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("access-service"))
        .expect("a row for the instance");
    assert!(
        row.contains("1.2.3") && row.contains("http://127.0.0.1:3002"),
        "{row}"
    );

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = forten(&[
        "registry",
        "list",
        "--registry-url",
        &format!("http://127.0.0.1:{port}"),
    ]);
    assert_eq!(o.status.code(), Some(69), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}
