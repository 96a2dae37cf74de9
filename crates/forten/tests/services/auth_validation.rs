//! The auth-service's routes in the table-driven bad-input test: every bad input answers 4xx
//! `application/problem+json`, naming the field of a 422. Requests carry an admin token (the
//! role checks have their own test in `auth.rs`).

use axum::http::Method;

use crate::auth::{as_user, create_user, start};
use crate::services::auth::AuthServiceConfig;
use crate::support::Backend;
use crate::validation::{Case, case, run};

#[tokio::test]
async fn auth_routes_reject_bad_input() {
    let app = start(Backend::Sqlite, AuthServiceConfig::default()).await;
    let user = create_user(&app, "ada@example.com", "user").await;
    let u = format!("/api/users/{}", user["id"].as_str().unwrap());
    let admin = as_user(&app.router, &app.admin_token);
    let long = "x".repeat(101);
    let new = |patch: &str| {
        format!(
            r#"{{"email":"new@example.com","password":"s3cret-pass","firstName":"A","lastName":"B","role":"user"{patch}}}"#
        )
    };
    let cases = vec![
        // create
        case(Method::POST, "/api/users", "{", 400, None),
        case(Method::POST, "/api/users", "[]", 422, None),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"a@b.c"}"#,
            422,
            None,
        ),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"not-an-email","password":"s3cret-pass","firstName":"A","lastName":"B","role":"user"}"#,
            422,
            Some("email"),
        ),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"a b@c.d","password":"s3cret-pass","firstName":"A","lastName":"B","role":"user"}"#,
            422,
            Some("email"),
        ),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"n@example.com","password":"short","firstName":"A","lastName":"B","role":"user"}"#,
            422,
            Some("password"),
        ),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"n@example.com","password":"s3cret-pass","firstName":"","lastName":"B","role":"user"}"#,
            422,
            Some("firstName"),
        ),
        case(
            Method::POST,
            "/api/users",
            &format!(
                r#"{{"email":"n@example.com","password":"s3cret-pass","firstName":"A","lastName":"{long}","role":"user"}}"#
            ),
            422,
            Some("lastName"),
        ),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"n@example.com","password":"s3cret-pass","firstName":"A","lastName":"B","role":"root"}"#,
            422,
            Some("role"),
        ),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"n@example.com","password":"s3cret-pass","firstName":"A","lastName":"B"}"#,
            422,
            Some("role"),
        ),
        case(Method::POST, "/api/users", &new(r#","extra":1"#), 422, None),
        case(
            Method::POST,
            "/api/users",
            r#"{"email":"ADA@example.com","password":"s3cret-pass","firstName":"A","lastName":"B","role":"user"}"#,
            409,
            None,
        ),
        Case {
            content_type: None,
            ..case(Method::POST, "/api/users", &new(""), 415, None)
        },
        // list
        case(Method::GET, "/api/users?limit=0", "", 422, Some("limit")),
        case(Method::GET, "/api/users?limit=x", "", 400, None),
        case(Method::GET, "/api/users?offset=-1", "", 422, Some("offset")),
        case(Method::GET, "/api/users?bogus=1", "", 400, None),
        case(Method::DELETE, "/api/users", "", 405, None),
        // one user
        case(Method::GET, "/api/users/ghost", "", 404, None),
        case(
            Method::PUT,
            "/api/users/ghost",
            r#"{"firstName":"A"}"#,
            404,
            None,
        ),
        case(Method::PATCH, "/api/users/ghost", "{}", 404, None),
        case(Method::DELETE, "/api/users/ghost", "", 404, None),
        case(Method::PATCH, &u, "nope", 400, None),
        case(Method::PATCH, &u, r#"{"email":"x"}"#, 422, Some("email")),
        case(
            Method::PUT,
            &u,
            r#"{"password":"1234567"}"#,
            422,
            Some("password"),
        ),
        case(
            Method::PUT,
            &u,
            r#"{"lastName":"  "}"#,
            422,
            Some("lastName"),
        ),
        case(Method::PUT, &u, r#"{"role":"god"}"#, 422, Some("role")),
        case(
            Method::PUT,
            &u,
            r#"{"firstName":7}"#,
            422,
            Some("firstName"),
        ),
        case(Method::PUT, &u, r#"{"id":"other"}"#, 422, None),
        case(Method::POST, &u, "{}", 405, None),
        // login
        case(Method::POST, "/api/auth/login", "{", 400, None),
        case(
            Method::POST,
            "/api/auth/login",
            r#"{"email":"a@b.c"}"#,
            422,
            Some("password"),
        ),
        case(
            Method::POST,
            "/api/auth/login",
            r#"{"email":"","password":"x"}"#,
            422,
            Some("email"),
        ),
        case(
            Method::POST,
            "/api/auth/login",
            r#"{"email":"a@b.c","password":""}"#,
            422,
            Some("password"),
        ),
        case(
            Method::POST,
            "/api/auth/login",
            r#"{"email":"a@b.c","password":"wrong-password"}"#,
            401,
            None,
        ),
        Case {
            content_type: Some("text/plain"),
            ..case(Method::POST, "/api/auth/login", "hi", 415, None)
        },
        case(Method::GET, "/api/auth/login", "", 405, None),
        // unknown route
        case(Method::GET, "/api/nothing-here", "", 404, None),
    ];
    run(&admin, cases).await;
}
