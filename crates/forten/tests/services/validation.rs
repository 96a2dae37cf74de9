//! Every route with bad input answers 4xx `application/problem+json` (table-driven).

use axum::http::{Method, StatusCode};

use crate::services::access::AccessConfig;
use crate::services::monitoring::MonitoringConfig;
use crate::support::{Backend, assert_problem, call_raw};

pub const JSON: Option<&str> = Some("application/json");

pub struct Case {
    pub method: Method,
    pub uri: String,
    pub content_type: Option<&'static str>,
    pub body: String,
    pub status: StatusCode,
    /// The field a 422 must name.
    pub field: Option<&'static str>,
}

pub fn case(
    method: Method,
    uri: &str,
    body: &str,
    status: u16,
    field: Option<&'static str>,
) -> Case {
    Case {
        method,
        uri: uri.to_owned(),
        content_type: JSON,
        body: body.to_owned(),
        status: StatusCode::from_u16(status).unwrap(),
        field,
    }
}

#[tokio::test]
async fn access_routes_reject_bad_input() {
    let app = crate::access::start(Backend::Sqlite, AccessConfig::default()).await;
    let (building, door) = crate::access::building_with_door(&app.router).await;
    let b = format!("/api/buildings/{building}");
    let d = format!("/api/doors/{door}");
    let long = "x".repeat(201);
    let cases = vec![
        // buildings
        case(Method::POST, "/api/buildings", "{", 400, None),
        case(Method::POST, "/api/buildings", "[]", 422, None),
        case(
            Method::POST,
            "/api/buildings",
            r#"{"name":"A"}"#,
            422,
            Some("address"),
        ),
        case(
            Method::POST,
            "/api/buildings",
            r#"{"name":"","address":"x"}"#,
            422,
            Some("name"),
        ),
        case(
            Method::POST,
            "/api/buildings",
            &format!(r#"{{"name":"{long}","address":"x"}}"#),
            422,
            Some("name"),
        ),
        case(
            Method::POST,
            "/api/buildings",
            r#"{"name":"A","address":"  "}"#,
            422,
            Some("address"),
        ),
        case(
            Method::POST,
            "/api/buildings",
            r#"{"name":1,"address":"x"}"#,
            422,
            Some("name"),
        ),
        case(
            Method::POST,
            "/api/buildings",
            r#"{"name":"A","address":"x","extra":1}"#,
            422,
            None,
        ),
        Case {
            content_type: None,
            ..case(
                Method::POST,
                "/api/buildings",
                r#"{"name":"A","address":"x"}"#,
                415,
                None,
            )
        },
        Case {
            content_type: Some("text/plain"),
            ..case(Method::POST, "/api/buildings", "hi", 415, None)
        },
        case(
            Method::GET,
            "/api/buildings?limit=0",
            "",
            422,
            Some("limit"),
        ),
        case(Method::GET, "/api/buildings?limit=abc", "", 400, None),
        case(
            Method::GET,
            "/api/buildings?offset=-1",
            "",
            422,
            Some("offset"),
        ),
        case(Method::GET, "/api/buildings?bogus=1", "", 400, None),
        case(Method::GET, "/api/buildings/ghost", "", 404, None),
        case(
            Method::PUT,
            "/api/buildings/ghost",
            r#"{"name":"A","address":"x"}"#,
            404,
            None,
        ),
        case(Method::PUT, &b, r#"{"name":"A"}"#, 422, None),
        case(Method::DELETE, "/api/buildings/ghost", "", 404, None),
        case(Method::DELETE, &b, "", 409, None),
        case(Method::PATCH, &b, "", 405, None),
        // doors
        case(
            Method::POST,
            "/api/doors",
            r#"{"name":"D"}"#,
            422,
            Some("buildingId"),
        ),
        case(
            Method::POST,
            "/api/doors",
            r#"{"name":"D","buildingId":"ghost"}"#,
            422,
            Some("buildingId"),
        ),
        case(
            Method::POST,
            "/api/doors",
            r#"{"name":"D","buildingId":"has space"}"#,
            422,
            Some("buildingId"),
        ),
        case(
            Method::POST,
            "/api/doors",
            &format!(r#"{{"name":"D","buildingId":"{building}","locked":"yes"}}"#),
            422,
            Some("locked"),
        ),
        case(Method::GET, "/api/doors?limit=5000", "", 422, Some("limit")),
        case(Method::GET, "/api/doors/ghost", "", 404, None),
        case(
            Method::PUT,
            &d,
            r#"{"name":"D","buildingId":"ghost"}"#,
            422,
            Some("buildingId"),
        ),
        case(
            Method::PUT,
            "/api/doors/ghost",
            &format!(r#"{{"name":"D","buildingId":"{building}"}}"#),
            404,
            None,
        ),
        case(Method::DELETE, "/api/doors/ghost", "", 404, None),
        case(Method::POST, "/api/doors/ghost/forced", "", 404, None),
        case(Method::GET, &format!("{d}/forced"), "", 405, None),
        // profiles
        case(Method::GET, "/api/access/profiles/ghost", "", 404, None),
        case(Method::PUT, "/api/access/profiles/u1", "nope", 400, None),
        case(
            Method::PUT,
            "/api/access/profiles/u1",
            r#"{"buildingIds":"b"}"#,
            422,
            Some("buildingIds"),
        ),
        case(
            Method::PUT,
            "/api/access/profiles/u1",
            r#"{"buildingIds":["ghost"]}"#,
            422,
            Some("buildingIds[0]"),
        ),
        case(
            Method::PUT,
            "/api/access/profiles/u1",
            r#"{"doorIds":[""]}"#,
            422,
            Some("doorIds[0]"),
        ),
        case(
            Method::PUT,
            "/api/access/profiles/u1",
            r#"{"schedule":[{"days":["mon"],"start":"9","end":"10:00"}]}"#,
            422,
            Some("schedule[0].start"),
        ),
        case(
            Method::PUT,
            "/api/access/profiles/u1",
            r#"{"schedule":[{"days":["mon"],"start":"10:00","end":"09:00"}]}"#,
            422,
            Some("schedule[0].end"),
        ),
        case(
            Method::PUT,
            "/api/access/profiles/u1",
            r#"{"schedule":[{"days":["someday"],"start":"09:00","end":"10:00"}]}"#,
            422,
            None,
        ),
        case(
            Method::PUT,
            "/api/access/profiles/u1",
            r#"{"schedule":[{"days":["mon"],"start":"24:30","end":"25:00"}]}"#,
            422,
            Some("schedule[0].start"),
        ),
        // attempts
        case(
            Method::POST,
            "/api/access/attempts",
            r#"{"userId":"u1","doorId":"ghost","accessMethod":"card"}"#,
            404,
            None,
        ),
        case(
            Method::POST,
            "/api/access/attempts",
            &format!(r#"{{"userId":"u1","doorId":"{door}","accessMethod":"telepathy"}}"#),
            422,
            Some("accessMethod"),
        ),
        case(
            Method::POST,
            "/api/access/attempts",
            &format!(r#"{{"userId":"","doorId":"{door}","accessMethod":"card"}}"#),
            422,
            Some("userId"),
        ),
        case(
            Method::POST,
            "/api/access/attempts",
            &format!(r#"{{"doorId":"{door}","accessMethod":"card"}}"#),
            422,
            None,
        ),
        case(Method::GET, "/api/access/attempts", "", 405, None),
        // unknown route
        case(Method::GET, "/api/nothing-here", "", 404, None),
    ];
    run(&app.router, cases).await;
    let internal = vec![case(
        Method::GET,
        "/internal/doors?limit=0",
        "",
        422,
        Some("limit"),
    )];
    run(&app.internal, internal).await;
}

#[tokio::test]
async fn monitoring_routes_reject_bad_input() {
    let app = crate::monitoring::start(Backend::Sqlite, MonitoringConfig::default()).await;
    let created = crate::support::call(
        &app.router,
        Method::POST,
        "/api/cameras",
        Some(serde_json::json!({"name": "C", "buildingId": "b1"})),
    )
    .await;
    let c = format!("/api/cameras/{}", created.body["id"].as_str().unwrap());
    let cases = vec![
        case(Method::POST, "/api/cameras", "{", 400, None),
        case(
            Method::POST,
            "/api/cameras",
            r#"{"name":"C"}"#,
            422,
            Some("buildingId"),
        ),
        case(
            Method::POST,
            "/api/cameras",
            r#"{"name":"C","buildingId":"b1","heartbeatTimeoutSeconds":0}"#,
            422,
            Some("heartbeatTimeoutSeconds"),
        ),
        case(
            Method::POST,
            "/api/cameras",
            r#"{"name":"C","buildingId":"b1","heartbeatTimeoutSeconds":"x"}"#,
            422,
            Some("heartbeatTimeoutSeconds"),
        ),
        case(
            Method::POST,
            "/api/cameras",
            r#"{"name":"C","buildingId":"b1","location":""}"#,
            422,
            Some("location"),
        ),
        case(
            Method::POST,
            "/api/cameras",
            r#"{"name":"\u0007","buildingId":"b1"}"#,
            422,
            Some("name"),
        ),
        Case {
            content_type: None,
            ..case(
                Method::POST,
                "/api/cameras",
                r#"{"name":"C","buildingId":"b1"}"#,
                415,
                None,
            )
        },
        case(Method::GET, "/api/cameras?status=broken", "", 400, None),
        case(Method::GET, "/api/cameras?limit=0", "", 422, Some("limit")),
        case(Method::GET, "/api/cameras/ghost", "", 404, None),
        case(
            Method::PUT,
            "/api/cameras/ghost",
            r#"{"name":"C","buildingId":"b1"}"#,
            404,
            None,
        ),
        case(
            Method::PUT,
            &c,
            r#"{"name":"","buildingId":"b1"}"#,
            422,
            Some("name"),
        ),
        case(Method::DELETE, "/api/cameras/ghost", "", 404, None),
        case(Method::POST, "/api/cameras/ghost/heartbeat", "", 404, None),
        case(Method::GET, &format!("{c}/heartbeat"), "", 405, None),
        case(Method::GET, "/api/alerts?status=closed", "", 400, None),
        case(
            Method::GET,
            "/api/alerts?limit=1001",
            "",
            422,
            Some("limit"),
        ),
        case(Method::GET, "/api/alerts/ghost", "", 404, None),
        case(Method::POST, "/api/alerts/ghost/acknowledge", "", 404, None),
        case(
            Method::POST,
            "/api/alerts/ghost/acknowledge",
            r#"{"acknowledgedBy":""}"#,
            422,
            Some("acknowledgedBy"),
        ),
        case(Method::POST, "/api/alerts/ghost/resolve", "{", 400, None),
        case(
            Method::POST,
            "/api/alerts/ghost/resolve",
            r#"{"unknown":1}"#,
            422,
            None,
        ),
        case(Method::POST, "/api/alerts/ghost/resolve", "", 404, None),
        case(Method::DELETE, "/api/alerts/ghost", "", 405, None),
        case(Method::GET, "/nothing", "", 404, None),
    ];
    run(&app.router, cases).await;
}

pub async fn run(router: &axum::Router, cases: Vec<Case>) {
    for c in cases {
        let ct = if c.body.is_empty() && c.content_type == JSON {
            None
        } else {
            c.content_type
        };
        let resp = call_raw(router, c.method.clone(), &c.uri, ct, c.body.clone()).await;
        let what = format!("{} {} {}", c.method, c.uri, c.body);
        assert_eq!(resp.status, c.status, "{what}: {resp:?}");
        assert_problem(&resp, c.status);
        if let Some(field) = c.field {
            assert_eq!(resp.body["field"], field, "{what}: {resp:?}");
        }
    }
}
