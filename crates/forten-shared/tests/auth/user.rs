//! User auth: argon2, user tokens, roles.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use forten_shared::auth::{TokenError, UserAuth, UserIdentity, hash_password, verify_password};
use forten_shared::events::Role;

use crate::support::*;

fn users() -> UserAuth {
    UserAuth::new(SECRET, Duration::from_secs(3600)).expect("user auth")
}

fn user(role: Role) -> UserIdentity {
    UserIdentity {
        user_id: format!("u-{role:?}"),
        email: "a@example.com".into(),
        role,
    }
}

#[test]
fn passwords_hash_with_argon2_and_verify() {
    let a = hash_password("hunter2").expect("hash");
    let b = hash_password("hunter2").expect("hash");
    assert!(a.starts_with("$argon2id$"));
    assert_ne!(a, b, "salted");
    assert!(verify_password("hunter2", &a).expect("verify"));
    assert!(!verify_password("hunter3", &a).expect("verify"));
    assert!(verify_password("hunter2", "not a hash").is_err());
}

#[tokio::test]
async fn roles_are_enforced_by_the_layer() {
    init();
    let users = users();
    let app = Router::new()
        .route("/api/users", get(|| async { "admins only" }))
        .layer(users.layer([Role::Admin]));
    let app = Router::new().merge(app).merge(
        Router::new()
            .route("/api/alerts", get(|| async { "ops" }))
            .layer(users.layer([Role::Admin, Role::Operator])),
    );
    let addr = serve(app).await;
    let call = move |path: &'static str, token: Option<String>| async move {
        get_with(
            &format!("http://{addr}{path}"),
            token.map(|t| format!("Bearer {t}")).as_deref(),
        )
        .await
    };
    let admin = users.issue(&user(Role::Admin)).expect("admin token");
    assert_eq!(admin.expires_in, 3600);
    let operator = users
        .issue(&user(Role::Operator))
        .expect("operator token")
        .token;
    let plain = users.issue(&user(Role::User)).expect("user token").token;

    assert_eq!(
        call("/api/users", Some(admin.token.clone())).await.status(),
        200
    );
    assert_problem(
        call("/api/users", Some(operator.clone())).await,
        403,
        "missing_scope",
    )
    .await;
    assert_problem(
        call("/api/users", Some(plain.clone())).await,
        403,
        "missing_scope",
    )
    .await;
    assert_eq!(call("/api/alerts", Some(operator)).await.status(), 200);
    assert_problem(call("/api/alerts", Some(plain)).await, 403, "missing_scope").await;
    assert_problem(call("/api/users", None).await, 401, "missing_token").await;
}

#[tokio::test]
async fn service_and_user_tokens_are_not_interchangeable() {
    init();
    let users = users();
    let service_token = shared("api-gateway", &["internal:read"])
        .token("auth-service")
        .await
        .expect("token");
    assert!(
        users.verify(&service_token).is_err(),
        "service token is no user token"
    );
    let user_token = users.issue(&user(Role::Admin)).expect("token").token;
    let auth_service = shared("auth-service", &[]);
    assert!(
        auth_service.verify(&user_token).is_err(),
        "user token is no service token"
    );
}

#[test]
fn user_token_rejections() {
    init();
    let users = users();
    let now = now();
    let claims = serde_json::json!({"iss":"forten","sub":"u1","aud":"forten-api","email":"a@b.c","role":"admin",
        "iat": now - 7200, "exp": now - 3600, "jti":"j"});
    let expired = hs256(
        &serde_json::json!({"alg":"HS256"}),
        &claims,
        SECRET.as_bytes(),
    );
    assert_eq!(users.verify(&expired), Err(TokenError::Expired));
    let mut wrong_role = claims.clone();
    wrong_role["exp"] = serde_json::json!(now + 60);
    wrong_role["role"] = serde_json::json!("superuser");
    let t = hs256(
        &serde_json::json!({"alg":"HS256"}),
        &wrong_role,
        SECRET.as_bytes(),
    );
    assert!(matches!(
        users.verify(&t),
        Err(TokenError::InvalidClaims(_))
    ));
    assert_eq!(users.verify("garbage"), Err(TokenError::Malformed));
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims.to_string().as_bytes())
    );
    assert!(users.verify(&none).is_err());
}
