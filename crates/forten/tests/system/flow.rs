//! The end-to-end story both deployments must tell (issue 6): a new user gets an access
//! profile through `user.created`, is granted at a door, an unknown user is denied, a forced
//! door raises an alert, a silent camera goes offline and comes back.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Api, unique};

/// What the story created, for the callers' own checks.
pub struct Story {
    pub admin: Api,
    pub user_id: String,
    pub building_id: String,
}

fn id(body: &Value) -> String {
    body["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {body}"))
        .to_owned()
}

pub async fn created(api: &Api, path: &str, body: Value) -> String {
    let (status, answer) = api.call("POST", path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "POST {path}: {answer}");
    id(&answer)
}

pub async fn story(gateway: &str) -> Story {
    let anonymous = Api::new(gateway);
    let (status, body) = anonymous.call("GET", "/api/buildings", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the gateway checks user tokens: {body}"
    );

    let admin = Api::new(gateway).login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let email = format!("{}@example.com", unique("user"));
    let user_id = created(
        &admin,
        "/api/users",
        json!({"email": email, "password": "a-long-password", "firstName": "Ada",
               "lastName": "Lovelace", "role": "user"}),
    )
    .await;
    let building_id = created(
        &admin,
        "/api/buildings",
        json!({"name": "HQ", "address": "1 Main St"}),
    )
    .await;
    let door_id = created(
        &admin,
        "/api/doors",
        json!({"name": "Front", "buildingId": building_id}),
    )
    .await;

    // user.created → access-service creates the profile (ACCESS_DEFAULT_POLICY=all)
    admin
        .eventually("GET", &format!("/api/access/profiles/{user_id}"), |s, _| {
            s == StatusCode::OK
        })
        .await;
    let attempt = |user: &str| json!({"userId": user, "doorId": door_id, "accessMethod": "card"});
    let (status, decision) = admin
        .call("POST", "/api/access/attempts", Some(attempt(&user_id)))
        .await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["decision"], "granted", "{decision}");

    let (status, decision) = admin
        .call(
            "POST",
            "/api/access/attempts",
            Some(attempt("no-such-user")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{decision}");
    assert_eq!(decision["decision"], "denied", "{decision}");
    assert_eq!(decision["reason"], "unknown_user", "{decision}");

    let (status, body) = admin
        .call("POST", &format!("/api/doors/{door_id}/forced"), None)
        .await;
    assert!(status.is_success(), "forced: {status} {body}");
    let door = door_id.clone();
    admin
        .eventually("GET", "/api/alerts", move |s, body| {
            s == StatusCode::OK
                && body["alerts"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|al| al.to_string().contains(&door)))
        })
        .await;

    Story {
        admin,
        user_id,
        building_id,
    }
}

/// A camera with a 1 s heartbeat timeout goes offline when silent and online on its next
/// heartbeat.
pub async fn camera_outage(admin: &Api, building_id: &str) {
    let camera = created(
        admin,
        "/api/cameras",
        json!({"name": "Lobby", "buildingId": building_id, "heartbeatTimeoutSeconds": 1}),
    )
    .await;
    let beat = format!("/api/cameras/{camera}/heartbeat");
    let (status, body) = admin.call("POST", &beat, None).await;
    assert!(status.is_success(), "{status} {body}");
    let path = format!("/api/cameras/{camera}");
    admin
        .eventually("GET", &path, |s, b| {
            s == StatusCode::OK && b["status"] == "offline"
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = admin.call("POST", &beat, None).await;
    assert!(status.is_success(), "{status} {body}");
    admin
        .eventually("GET", &path, |s, b| {
            s == StatusCode::OK && b["status"] == "online"
        })
        .await;
}
