//! `forten simulate --seed 1 --duration 20s`: the simulator's tally and the analytics-service's
//! figures agree exactly — against `forten up`, and against the multi-process deployment on
//! RabbitMQ and PostgreSQL with the analytics process killed (`kill -9`) and replaced in the
//! middle of the run.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, Forten, JWT_SECRET, PgDatabase, Vhost};

/// `forten simulate … --json` against `gateway`.
fn simulate(gateway: &str) -> Forten {
    Forten::start(
        "forten simulate",
        &[
            "simulate",
            "--gateway",
            gateway,
            "--seed",
            "1",
            "--duration",
            "20s",
            "--settle-timeout",
            "120s",
            "--json",
        ],
        &[("FORTEN_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned())],
    )
}

/// Waits for the simulator to end; asserts exit 0 and that every figure agrees, and that the
/// run did each kind of thing (a run of nothing would agree trivially). Returns its JSON.
async fn assert_agrees(sim: &mut Forten) -> Value {
    let code = sim.exit_code(Duration::from_secs(240)).await;
    let output = sim.output();
    let doc: Value = output
        .lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON document in the output:\n{output}"));
    assert_eq!(code, Some(0), "forten simulate disagrees:\n{output}");
    assert_eq!(doc["agree"], true, "{doc:#}");
    let figures = doc["figures"].as_array().unwrap();
    for f in figures {
        assert_eq!(f["simulator"], f["analytics"], "{f}\n{doc:#}");
    }
    let figure = |group: &str, name: &str| {
        figures
            .iter()
            .find(|f| f["group"].as_str().unwrap().starts_with(group) && f["name"] == name)
            .and_then(|f| f["simulator"].as_i64())
            .unwrap_or(0)
    };
    for name in [
        "user.created",
        "access.granted",
        "access.denied",
        "door.forced",
        "camera.offline",
        "camera.online",
        "alert.triggered",
        "alert.acknowledged",
        "alert.resolved",
    ] {
        assert!(
            figure("events by type", name) > 0,
            "no {name} in the run:\n{doc:#}"
        );
    }
    assert_eq!(doc["ambiguous"], 0, "{doc:#}");
    eprintln!("{}", summary(&doc));
    doc
}

fn summary(doc: &Value) -> String {
    let figures = doc["figures"].as_array().unwrap();
    let by_type: Vec<String> = figures
        .iter()
        .filter(|f| f["group"].as_str().unwrap().starts_with("events by type"))
        .map(|f| format!("{} {}", f["name"].as_str().unwrap(), f["simulator"]))
        .collect();
    format!(
        "simulate seed {}: {} (settled in {:.1}s)",
        doc["seed"],
        by_type.join(", "),
        doc["settledSeconds"].as_f64().unwrap_or(0.0)
    )
}

#[tokio::test]
async fn simulate_against_forten_up_agrees_with_the_analytics() {
    let (mut up, _data, urls) = Forten::up(
        "forten-simulate",
        &[("FORTEN_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned())],
    )
    .await;
    let mut sim = simulate(&urls["api-gateway"]);
    assert_agrees(&mut sim).await;
    assert_eq!(up.stop(), Some(0), "{}", up.output());
}

#[tokio::test]
async fn simulate_against_separate_processes_agrees_after_killing_the_analytics_process() {
    let vhost = Vhost::create();
    let db = PgDatabase::create().await;
    let mut env = vec![
        ("RABBITMQ_URL", vhost.url()),
        ("DATABASE_URL", db.url()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("FORTEN_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
    ];
    let mut gateway = Forten::start("api-gateway", &["run", "api-gateway", "--port", "0"], &env);
    let gateway_url = gateway.listening_url().await;
    env.push(("REGISTRY_URL", gateway_url.clone()));
    let run = |service: &str| {
        Forten::start(
            service,
            &["run", service, "--port", "0", "--drain-grace", "500ms"],
            &env,
        )
    };
    let mut processes = vec![gateway];
    for service in [
        "auth-service",
        "access-service",
        "access-service",
        "monitoring-service",
        "analytics-service",
    ] {
        let mut p = run(service);
        p.listening_url().await;
        processes.push(p);
    }
    let admin = Api::new(&gateway_url)
        .login(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    for (service, n) in [
        ("auth-service", 1),
        ("access-service", 2),
        ("monitoring-service", 1),
        ("analytics-service", 1),
    ] {
        admin
            .eventually("GET", &format!("/registry/services/{service}"), |s, b| {
                s == StatusCode::OK && b["instances"].as_array().is_some_and(|i| i.len() == n)
            })
            .await;
    }
    // the gateway's discovery cache refreshes every second
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let mut sim = simulate(&gateway_url);
    sim.wait_for_line("simulate: running", Duration::from_secs(120))
        .await;
    // mid-run: kill -9 the analytics process (events pile up in its durable queue, some
    // delivered and not yet acked), then start a new one
    tokio::time::sleep(Duration::from_secs(7)).await;
    let analytics = processes.len() - 1;
    processes[analytics].kill();
    assert!(
        sim.running(),
        "the run ended before the kill:\n{}",
        sim.output()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut replacement = run("analytics-service");
    replacement.listening_url().await;
    assert!(
        sim.running(),
        "the run ended before the restart:\n{}",
        sim.output()
    );
    processes.push(replacement);

    assert_agrees(&mut sim).await;
    for p in processes.iter_mut().skip(1).rev() {
        p.stop();
    }
    processes[0].stop();
}

#[tokio::test]
async fn an_event_the_simulator_did_not_cause_makes_it_disagree_and_exit_1() {
    // forten up over RabbitMQ (a vhost of its own), so that an outside publisher can slip an
    // event in
    let vhost = Vhost::create();
    let (mut up, _data, urls) = Forten::up(
        "forten-simulate",
        &[
            ("FORTEN_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("RABBITMQ_URL", vhost.url()),
        ],
    )
    .await;
    let mut sim = Forten::start(
        "forten simulate",
        &[
            "simulate",
            "--gateway",
            &urls["api-gateway"],
            "--seed",
            "2",
            "--duration",
            "3s",
            "--rate",
            "5",
            "--buildings",
            "1",
            "--users",
            "2",
        ],
        &[("FORTEN_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned())],
    );
    sim.wait_for_line("simulate: running", Duration::from_secs(60))
        .await;
    let mut publish = Forten::start(
        "forten events publish",
        &[
            "events",
            "publish",
            "user.deleted",
            r#"{"userId":"not-the-simulators"}"#,
            "--rabbitmq-url",
            &vhost.url(),
        ],
        &[],
    );
    assert_eq!(
        publish.exit_code(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        publish.output()
    );
    let code = sim.exit_code(Duration::from_secs(120)).await;
    let output = sim.output();
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("user.deleted (simulator 0, analytics 1)"),
        "the differing figure is named:\n{output}"
    );
    assert!(output.contains("<- differs"), "{output}");
    assert_eq!(up.stop(), Some(0), "{}", up.output());
}
