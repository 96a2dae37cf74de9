//! auth-service: users CRUD and their events, login, roles, the bootstrap admin, issuer mode,
//! OpenAPI, and `user.created` → access profile with the access-service on one bus — on
//! SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use forten_shared::EventBus;
use forten_shared::auth::{
    IssuerConfig, IssuerPolicy, TokenIssuer, UserAuth, hash_service_secret, install_crypto_provider,
};
use forten_shared::events::{Role, UserCreated, UserDeleted, UserUpdated};
use serde_json::{Value, json};

use crate::services::access::{self, AccessConfig, AccessState};
use crate::services::auth::{self, AuthServiceConfig, AuthState, DEFAULT_ADMIN_EMAIL};
use crate::support::{
    Backend, Resp, TestDb, assert_problem, call, eventually, next_event, no_event,
};

/// The `JWT_SECRET` of the tests.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
/// The bootstrap admin of the tests.
pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery";

pub struct AuthApp {
    pub router: Router,
    pub bus: EventBus,
    pub user_auth: UserAuth,
    /// A token of the bootstrap admin.
    pub admin_token: String,
    pub _db: TestDb,
}

pub fn user_auth() -> UserAuth {
    install_crypto_provider();
    UserAuth::new(SECRET, Duration::from_secs(3600)).unwrap()
}

/// An auth-service on `backend` with `bus`, its admin bootstrapped and logged in.
pub async fn start_on(backend: Backend, bus: EventBus, config: AuthServiceConfig) -> AuthApp {
    let db = TestDb::new(backend);
    let database = auth::open_database(&db.config).await.unwrap();
    let user_auth = user_auth();
    let state = AuthState::new(database, bus.clone(), user_auth.clone(), config);
    let generated = auth::bootstrap_admin(
        &state,
        Some(ADMIN_EMAIL.to_owned()),
        Some(ADMIN_PASSWORD.to_owned()),
    )
    .await
    .unwrap();
    assert!(generated.is_none(), "given credentials are not generated");
    let router = auth::router(state.clone());
    let admin_token = login(&router, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    AuthApp {
        router,
        bus,
        user_auth,
        admin_token,
        _db: db,
    }
}

pub async fn start(backend: Backend, config: AuthServiceConfig) -> AuthApp {
    start_on(backend, EventBus::in_process(auth::SERVICE), config).await
}

/// `router` with `Authorization: Bearer <token>` added to every request.
pub fn as_user(router: &Router, token: &str) -> Router {
    let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    router
        .clone()
        .layer(axum::middleware::map_request(move |mut req: Request| {
            let value = value.clone();
            async move {
                req.headers_mut().insert(header::AUTHORIZATION, value);
                req
            }
        }))
}

/// Logs in; the token.
pub async fn login(router: &Router, email: &str, password: &str) -> String {
    let r = try_login(router, email, password).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.body["expiresIn"].as_u64().unwrap() > 0);
    r.body["token"].as_str().unwrap().to_owned()
}

async fn try_login(router: &Router, email: &str, password: &str) -> Resp {
    call(
        router,
        Method::POST,
        "/api/auth/login",
        Some(json!({"email": email, "password": password})),
    )
    .await
}

/// Creates a user as admin; its JSON.
pub async fn create_user(app: &AuthApp, email: &str, role: &str) -> Value {
    let r = call(
        &as_user(&app.router, &app.admin_token),
        Method::POST,
        "/api/users",
        Some(
            json!({"email": email, "password": "s3cret-pass", "firstName": "Ada",
            "lastName": "Lovelace", "role": role}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
    r.body
}

async fn crud(backend: Backend) {
    let app = start(backend, AuthServiceConfig::default()).await;
    let admin = as_user(&app.router, &app.admin_token);
    let mut tail = app.bus.tail("user.*").await.unwrap();

    let created = call(
        &admin,
        Method::POST,
        "/api/users",
        Some(
            json!({"email": " Ada@Example.COM ", "password": "s3cret-pass",
            "firstName": " Ada ", "lastName": "Lovelace", "role": "operator"}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["email"], "ada@example.com");
    assert_eq!(created.body["firstName"], "Ada");
    assert_eq!(created.body["role"], "operator");
    assert!(created.body["createdAt"].is_string());
    let text = created.body.to_string();
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "{text}"
    );

    let event = next_event(&mut tail, "user.created").await;
    assert_eq!(event.source, "auth-service");
    assert_eq!(event.subject.as_deref(), Some(id.as_str()));
    let data = event.data_as::<UserCreated>().unwrap();
    assert_eq!(data.user_id, id);
    assert_eq!(data.email, "ada@example.com");
    assert_eq!(data.role, Role::Operator);
    assert!(
        !String::from_utf8(event.to_vec().unwrap())
            .unwrap()
            .contains("s3cret")
    );

    // duplicate e-mail, whatever its case
    let dup = call(
        &admin,
        Method::POST,
        "/api/users",
        Some(
            json!({"email": "ADA@example.com", "password": "another-pass",
            "firstName": "A", "lastName": "B", "role": "user"}),
        ),
    )
    .await;
    assert_problem(&dup, StatusCode::CONFLICT);

    let got = call(&admin, Method::GET, &format!("/api/users/{id}"), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, created.body);

    // paging: the admin and Ada
    let all = call(&admin, Method::GET, "/api/users", None).await;
    assert_eq!(all.body["users"].as_array().unwrap().len(), 2);
    let page = call(&admin, Method::GET, "/api/users?limit=1&offset=1", None).await;
    let page = page.body["users"].as_array().unwrap().clone();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["id"], id.as_str());

    // update: only what changed is in the event; the password never is
    let updated = call(
        &admin,
        Method::PATCH,
        &format!("/api/users/{id}"),
        Some(
            json!({"firstName": "Ada", "lastName": "King", "role": "user",
            "password": "new-password"}),
        ),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{updated:?}");
    assert_eq!(updated.body["lastName"], "King");
    assert_eq!(updated.body["role"], "user");
    let event = next_event(&mut tail, "user.updated").await;
    let data = event.data_as::<UserUpdated>().unwrap();
    assert_eq!(data.user_id, id);
    assert_eq!(
        data.changes,
        json!({"lastName": "King", "role": "user", "passwordChanged": true})
    );
    login(&app.router, "ada@example.com", "new-password").await;
    assert_problem(
        &try_login(&app.router, "ada@example.com", "s3cret-pass").await,
        StatusCode::UNAUTHORIZED,
    );
    // PUT works the same; nothing changed, no event
    let same = call(
        &admin,
        Method::PUT,
        &format!("/api/users/{id}"),
        Some(json!({"lastName": "King"})),
    )
    .await;
    assert_eq!(same.status, StatusCode::OK);
    // e-mail taken by the admin
    let taken = call(
        &admin,
        Method::PUT,
        &format!("/api/users/{id}"),
        Some(json!({"email": ADMIN_EMAIL})),
    )
    .await;
    assert_problem(&taken, StatusCode::CONFLICT);

    let gone = call(&admin, Method::DELETE, &format!("/api/users/{id}"), None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let event = next_event(&mut tail, "user.deleted").await;
    assert_eq!(event.data_as::<UserDeleted>().unwrap().user_id, id);
    let missing = call(&admin, Method::GET, &format!("/api/users/{id}"), None).await;
    assert_problem(&missing, StatusCode::NOT_FOUND);
    let again = call(&admin, Method::DELETE, &format!("/api/users/{id}"), None).await;
    assert_problem(&again, StatusCode::NOT_FOUND);
    assert_problem(
        &try_login(&app.router, "ada@example.com", "new-password").await,
        StatusCode::UNAUTHORIZED,
    );
    // no user.updated was published for the no-op PUT
    assert!(no_event(&mut tail, "user.updated", Duration::from_millis(200)).await);
}

#[tokio::test]
async fn crud_sqlite() {
    crud(Backend::Sqlite).await;
}

#[tokio::test]
async fn crud_postgres() {
    crud(Backend::Postgres).await;
}

async fn login_answers(backend: Backend) {
    let app = start(backend, AuthServiceConfig::default()).await;
    let token = login(&app.router, "ROOT@example.com", ADMIN_PASSWORD).await;
    let me = app.user_auth.verify(&token).unwrap();
    assert_eq!(me.email, ADMIN_EMAIL);
    assert_eq!(me.role, Role::Admin);

    let wrong = try_login(&app.router, ADMIN_EMAIL, "not the password").await;
    let unknown = try_login(&app.router, "nobody@example.com", ADMIN_PASSWORD).await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED);
    assert_problem(&unknown, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body, "one answer for both");
    assert_eq!(wrong.body["reason"], "invalid_credentials");
}

#[tokio::test]
async fn login_sqlite() {
    login_answers(Backend::Sqlite).await;
}

#[tokio::test]
async fn login_postgres() {
    login_answers(Backend::Postgres).await;
}

#[tokio::test]
async fn roles_are_enforced() {
    let app = start(Backend::Sqlite, AuthServiceConfig::default()).await;
    let operator = create_user(&app, "op@example.com", "operator").await;
    let user = create_user(&app, "user@example.com", "user").await;
    let other = create_user(&app, "other@example.com", "user").await;
    let op = as_user(
        &app.router,
        &login(&app.router, "op@example.com", "s3cret-pass").await,
    );
    let me = as_user(
        &app.router,
        &login(&app.router, "user@example.com", "s3cret-pass").await,
    );
    let uid = user["id"].as_str().unwrap();
    let oid = other["id"].as_str().unwrap();
    let new = json!({"email": "x@example.com", "password": "s3cret-pass", "firstName": "X",
        "lastName": "Y", "role": "user"});

    // no token, a forged one
    let anon = call(&app.router, Method::GET, "/api/users", None).await;
    assert_problem(&anon, StatusCode::UNAUTHORIZED);
    let forged = as_user(&app.router, "not.a.jwt");
    assert_problem(
        &call(&forged, Method::GET, &format!("/api/users/{uid}"), None).await,
        StatusCode::UNAUTHORIZED,
    );
    // a token of another secret
    let foreign = UserAuth::new(&"z".repeat(40), Duration::from_secs(60))
        .unwrap()
        .issue(&forten_shared::auth::UserIdentity {
            user_id: "x".into(),
            email: "x@example.com".into(),
            role: Role::Admin,
        })
        .unwrap();
    assert_problem(
        &call(
            &as_user(&app.router, &foreign.token),
            Method::GET,
            "/api/users",
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
    );

    // operator: reads, never writes
    assert_eq!(
        call(&op, Method::GET, "/api/users", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&op, Method::GET, &format!("/api/users/{uid}"), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_problem(
        &call(&op, Method::POST, "/api/users", Some(new.clone())).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &call(
            &op,
            Method::PATCH,
            &format!("/api/users/{uid}"),
            Some(json!({"role": "admin"})),
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &call(&op, Method::DELETE, &format!("/api/users/{uid}"), None).await,
        StatusCode::FORBIDDEN,
    );

    // user: itself only
    let itself = call(&me, Method::GET, &format!("/api/users/{uid}"), None).await;
    assert_eq!(itself.status, StatusCode::OK);
    assert_eq!(itself.body["email"], "user@example.com");
    assert_problem(
        &call(&me, Method::GET, &format!("/api/users/{oid}"), None).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &call(&me, Method::GET, "/api/users", None).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &call(&me, Method::POST, "/api/users", Some(new)).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &call(
            &me,
            Method::PUT,
            &format!("/api/users/{uid}"),
            Some(json!({"role": "admin"})),
        )
        .await,
        StatusCode::FORBIDDEN,
    );

    // the last admin stays
    let admin = as_user(&app.router, &app.admin_token);
    let root = app.user_auth.verify(&app.admin_token).unwrap().user_id;
    assert_problem(
        &call(&admin, Method::DELETE, &format!("/api/users/{root}"), None).await,
        StatusCode::CONFLICT,
    );
    assert_problem(
        &call(
            &admin,
            Method::PATCH,
            &format!("/api/users/{root}"),
            Some(json!({"role": "operator"})),
        )
        .await,
        StatusCode::CONFLICT,
    );
    // … unless there is another
    let oid_op = operator["id"].as_str().unwrap();
    let promoted = call(
        &admin,
        Method::PATCH,
        &format!("/api/users/{oid_op}"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(promoted.body["role"], "admin");
    assert_eq!(
        call(&admin, Method::DELETE, &format!("/api/users/{root}"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

async fn bootstrap(backend: Backend) {
    let db = TestDb::new(backend);
    let bus = EventBus::in_process(auth::SERVICE);
    let mut tail = bus.tail("user.created").await.unwrap();
    let state = AuthState::new(
        auth::open_database(&db.config).await.unwrap(),
        bus.clone(),
        user_auth(),
        AuthServiceConfig::default(),
    );
    let router = auth::router(state.clone());

    // nothing configured, no admin: one is generated, once
    let generated = auth::bootstrap_admin(&state, None, None)
        .await
        .unwrap()
        .expect("an admin is generated");
    assert_eq!(generated.email, DEFAULT_ADMIN_EMAIL);
    assert!(generated.password.len() >= 20);
    assert!(!format!("{generated:?}").contains(&generated.password));
    let event = next_event(&mut tail, "user.created").await;
    assert_eq!(event.data_as::<UserCreated>().unwrap().role, Role::Admin);
    let token = login(&router, &generated.email, &generated.password).await;
    assert_eq!(state.user_auth().verify(&token).unwrap().role, Role::Admin);

    // a restart: not recreated, not overwritten
    assert!(
        auth::bootstrap_admin(&state, None, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        auth::bootstrap_admin(&state, None, Some("another-password".into()))
            .await
            .unwrap()
            .is_none()
    );
    login(&router, &generated.email, &generated.password).await;

    // configured credentials: created once, their later change does not overwrite
    assert!(
        auth::bootstrap_admin(
            &state,
            Some("Ops@Example.com".into()),
            Some("configured-pass".into())
        )
        .await
        .unwrap()
        .is_none()
    );
    login(&router, "ops@example.com", "configured-pass").await;
    assert!(
        auth::bootstrap_admin(
            &state,
            Some("ops@example.com".into()),
            Some("changed-later".into())
        )
        .await
        .unwrap()
        .is_none()
    );
    login(&router, "ops@example.com", "configured-pass").await;
    // configured e-mail without a password: generated
    let second = auth::bootstrap_admin(&state, Some("second@example.com".into()), None)
        .await
        .unwrap()
        .expect("a password is generated");
    login(&router, "second@example.com", &second.password).await;
    // a reopened database (a real restart) finds them all
    drop(router);
    let reopened = AuthState::new(
        auth::open_database(&db.config).await.unwrap(),
        bus,
        user_auth(),
        AuthServiceConfig::default(),
    );
    assert!(
        auth::bootstrap_admin(&reopened, None, None)
            .await
            .unwrap()
            .is_none()
    );
    login(
        &auth::router(reopened),
        &generated.email,
        &generated.password,
    )
    .await;

    // unusable configuration: a clear error
    let err = auth::bootstrap_admin(&state, Some("not-an-email".into()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FORTEN_ADMIN_EMAIL"), "{err}");
    let err = auth::bootstrap_admin(&state, Some("x@example.com".into()), Some("short".into()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FORTEN_ADMIN_PASSWORD"), "{err}");
}

#[tokio::test]
async fn bootstrap_sqlite() {
    bootstrap(Backend::Sqlite).await;
}

#[tokio::test]
async fn bootstrap_postgres() {
    bootstrap(Backend::Postgres).await;
}

#[tokio::test]
async fn issuer_routes_only_in_issuer_mode() {
    let plain = start(Backend::Sqlite, AuthServiceConfig::default()).await;
    assert_problem(
        &call(&plain.router, Method::GET, "/.well-known/jwks.json", None).await,
        StatusCode::NOT_FOUND,
    );

    install_crypto_provider();
    let secret = "access-service-secret-0123456789";
    let policy = IssuerPolicy::from_json(
        &json!({"services": {"access-service": {"secretHash": hash_service_secret(secret),
            "allow": {"monitoring-service": ["internal:read"]}}}})
        .to_string(),
    )
    .unwrap();
    let issuer = Arc::new(TokenIssuer::new(IssuerConfig::new(policy)).unwrap());
    let app = start(
        Backend::Sqlite,
        AuthServiceConfig {
            issuer: Some(issuer.clone()),
            ..AuthServiceConfig::default()
        },
    )
    .await;
    let jwks = call(&app.router, Method::GET, "/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.body["keys"][0]["kid"], issuer.active_kid().as_str());
    let token = call(
        &app.router,
        Method::POST,
        "/internal/auth/service-token",
        Some(
            json!({"serviceName": "access-service", "serviceSecret": secret,
            "audience": "monitoring-service", "scopes": ["internal:read"]}),
        ),
    )
    .await;
    assert_eq!(token.status, StatusCode::OK, "{token:?}");
    assert!(token.body["token"].is_string(), "{token:?}");
    let refused = call(
        &app.router,
        Method::POST,
        "/internal/auth/service-token",
        Some(
            json!({"serviceName": "access-service", "serviceSecret": "wrong",
            "audience": "monitoring-service", "scopes": ["internal:read"]}),
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{refused:?}");
    // the user API is there too
    login(&app.router, ADMIN_EMAIL, ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn openapi_documents_the_routes() {
    let app = start(Backend::Sqlite, AuthServiceConfig::default()).await;
    let doc = call(&app.router, Method::GET, "/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = &doc.body["paths"];
    for (path, method) in [
        ("/api/auth/login", "post"),
        ("/api/users", "get"),
        ("/api/users", "post"),
        ("/api/users/{id}", "get"),
        ("/api/users/{id}", "put"),
        ("/api/users/{id}", "patch"),
        ("/api/users/{id}", "delete"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert!(doc.body["components"]["schemas"]["User"].is_object());
    assert!(
        doc.body["components"]["schemas"]["User"]["properties"]
            .get("passwordHash")
            .is_none()
    );
    assert_eq!(doc.body, serde_json::to_value(auth::openapi()).unwrap());
}

/// `forten up`'s wiring: auth-service and access-service on one in-process bus, each with its
/// own identity; a user created in one gets an access profile in the other.
async fn new_user_gets_access_profile(backend: Backend) {
    let bus = EventBus::in_process("forten");
    let auth_app = start_on(
        backend,
        bus.for_service(auth::SERVICE),
        AuthServiceConfig::default(),
    )
    .await;
    let access_db = TestDb::new(backend);
    let access_bus = bus.for_service(access::SERVICE);
    let access_state = AccessState::new(
        access::open_database(&access_db.config).await.unwrap(),
        access_bus.clone(),
        AccessConfig::default(),
    );
    let _subs = access::subscribe(&access_state, &access_bus).await.unwrap();
    let access_router = access::router(access_state);

    let user = create_user(&auth_app, "badge@example.com", "user").await;
    let id = user["id"].as_str().unwrap().to_owned();
    let profile = eventually(|| async {
        let r = call(
            &access_router,
            Method::GET,
            &format!("/api/access/profiles/{id}"),
            None,
        )
        .await;
        (r.status == StatusCode::OK).then_some(r.body)
    })
    .await;
    assert_eq!(profile["userId"], id.as_str());
    assert_eq!(profile["allDoors"], true);
}

#[tokio::test]
async fn new_user_gets_access_profile_sqlite() {
    new_user_gets_access_profile(Backend::Sqlite).await;
}

#[tokio::test]
async fn new_user_gets_access_profile_postgres() {
    new_user_gets_access_profile(Backend::Postgres).await;
}
