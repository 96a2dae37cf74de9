//! `forten up`: the whole system in one process on the embedded defaults.

use std::time::Duration;

use crate::flow;
use crate::support::{ADMIN_PASSWORD, Forten};

#[tokio::test]
async fn forten_up_runs_the_whole_story_in_one_process() {
    let started = tokio::time::Instant::now();
    let (mut up, data, urls) = Forten::up(
        "forten-up",
        &[("FORTEN_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned())],
    )
    .await;
    eprintln!(
        "forten up ready after {:?} (spawn to banner)",
        started.elapsed()
    );
    for service in [
        "api-gateway",
        "auth-service",
        "access-service",
        "monitoring-service",
    ] {
        assert!(
            urls.contains_key(service),
            "{service} missing from the banner:\n{}",
            up.output()
        );
    }
    let gateway = &urls["api-gateway"];
    let story = flow::story(gateway).await;

    // in one process the bus is in-process: access.granted shows in the publisher's metrics
    let granted = story
        .admin
        .metric(
            &urls["access-service"],
            "events_published_total",
            &["type=\"access.granted\""],
        )
        .await;
    assert!(granted >= 1.0, "access.granted was not published");
    flow::camera_outage(&story.admin, &story.building_id).await;

    // each service keeps its own identity: its own health and metrics
    for (service, url) in &urls {
        let health: serde_json::Value = reqwest::get(format!("{url}/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(&health["service"], service.as_str(), "{health}");
        assert_eq!(health["status"], "healthy", "{health}");
    }
    assert_eq!(up.stop(), Some(0), "{}", up.output());
    assert!(
        data.join("auth.db").exists(),
        "SQLite files under the data dir"
    );
}

#[tokio::test]
async fn a_bad_setting_stops_forten_up_with_one_line() {
    let mut up = Forten::start(
        "forten up",
        &["up", "--port-base", "0"],
        &[("PORT", "http".into())],
    );
    let line = up.wait_for_line("PORT", Duration::from_secs(10)).await;
    assert!(line.starts_with("error: PORT: "), "{line}");
    assert_eq!(up.stop(), Some(64), "{}", up.output());
    assert_eq!(up.output().lines().count(), 1, "{}", up.output());
}
