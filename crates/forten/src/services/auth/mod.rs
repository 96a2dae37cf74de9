//! auth-service (SPEC §7, §8): users and their roles, login, the bootstrap admin, and — in
//! issuer mode — the service-token issuer.
//!
//! - [`router`]: `POST /api/auth/login`, `/api/users` (create, list), `/api/users/{id}` (get,
//!   update with `PUT` or `PATCH`, delete), `/openapi.json`; in issuer mode also
//!   `POST /internal/auth/service-token` and `GET /.well-known/jwks.json`
//!   ([`issuer_router`](forten_shared::auth::issuer_router)).
//! - [`bootstrap_admin`]: at start, the admin from `FORTEN_ADMIN_EMAIL` /
//!   `FORTEN_ADMIN_PASSWORD`, or a generated one when there is no admin yet.
//!
//! Roles ([`UserAuthLayer`]): creating, updating and deleting users needs `admin`; listing
//! and reading them `admin` or `operator`; a `user` may read itself. Login needs no token.
//!
//! Passwords are stored as argon2id hashes ([`hash_password`]), computed off the async
//! workers. Login answers the same 401 for an unknown e-mail and a wrong password, after one
//! argon2 verification either way (against a dummy hash for an unknown e-mail), so that
//! neither the answer nor its time tells which addresses exist.
//!
//! Events: `user.created`, `user.updated` (with the changed fields; a password change
//! appears as `"passwordChanged": true`, never the password or its hash) and `user.deleted`.
//! Each is written to the `auth_outbox` table in the transaction of the change it announces,
//! published right after the commit, and removed from the outbox once the bus has accepted
//! it. When that publish fails (broker down, process killed), [`OutboxRelay`] publishes it
//! later with the same event id — at least once, never lost, never before the commit.
//!
//! ```ignore
//! let db = auth::open_database(&database_config).await?;
//! let state = AuthState::new(db, bus.for_service(auth::SERVICE), user_auth, AuthServiceConfig::default());
//! if let Some(admin) = auth::bootstrap_admin(&state, admin_email, admin_password).await? {
//!     println!("admin login: {} / {}", admin.email, admin.password); // printed once
//! }
//! let _relay = auth::OutboxRelay::start(state.clone()); // events a failed publish left behind
//! let app = obs.apply(auth::router(state));
//! ```

mod model;
mod routes;
mod store;

use crate::services::periodic::Periodic;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use forten_shared::auth::{AuthError, TokenIssuer, UserAuth, UserAuthLayer, hash_password};
use forten_shared::events::{BusError, EventData, UserCreated};
use forten_shared::{Event, EventBuilder, EventBus, EventPublisher};

pub(crate) use self::model::{User, UserRole};
pub(crate) use self::store::MIGRATIONS;
use crate::storage::{Database, DatabaseConfig, StorageError};

/// The service's name (events' `source`, traces, health).
pub(crate) const SERVICE: &str = "auth-service";
/// Its database name: the SQLite file, the PostgreSQL schema, the table prefix.
pub(crate) const DATABASE: &str = "auth";
/// The environment variable naming the bootstrap admin's e-mail (read by the CLI).
pub(crate) const ADMIN_EMAIL_ENV: &str = "FORTEN_ADMIN_EMAIL";
/// The environment variable holding the bootstrap admin's password (read by the CLI).
pub(crate) const ADMIN_PASSWORD_ENV: &str = "FORTEN_ADMIN_PASSWORD";
/// The generated admin's e-mail when none is configured.
pub(crate) const DEFAULT_ADMIN_EMAIL: &str = "admin@forten.local";

/// The auth-service's settings.
#[derive(Debug, Clone)]
pub(crate) struct AuthServiceConfig {
    /// Issuer mode (`SERVICE_AUTH_MODE=issuer`): when set, [`router`] also serves the
    /// service-token endpoint and the JWKS of this issuer. `None` (the default,
    /// `shared-secret` mode): no issuer routes.
    pub(crate) issuer: Option<Arc<TokenIssuer>>,
    /// How often [`OutboxRelay`] looks for events left unpublished.
    pub(crate) outbox_interval: Duration,
    /// How old a queued event must be before the relay publishes it: younger ones are still
    /// being published by the request that wrote them (publishing them too would only make
    /// a duplicate, which consumers drop by event id, but there is no need).
    pub(crate) outbox_grace: Duration,
}

impl Default for AuthServiceConfig {
    /// Shared-secret mode (no issuer routes); the relay looks every 5 s for events older than
    /// 10 s.
    fn default() -> Self {
        Self {
            issuer: None,
            outbox_interval: Duration::from_secs(5),
            outbox_grace: Duration::from_secs(10),
        }
    }
}

/// What the handlers share: the database, the event publisher, the user-token issuer. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub(crate) struct AuthState {
    db: Database,
    publisher: EventPublisher,
    user_auth: UserAuth,
    config: Arc<AuthServiceConfig>,
    /// A hash of a random password, verified against when a login names an unknown e-mail
    /// so that it costs as much as a wrong password. Computed once, on first need (an
    /// argon2 hash costs milliseconds; a `OnceCell` so that concurrent logins wait for the
    /// one computation instead of each starting their own).
    dummy_hash: Arc<tokio::sync::OnceCell<String>>,
}

impl AuthState {
    /// The state over an opened database ([`open_database`]), the service's bus, and the
    /// user-token issuer/verifier (`JWT_SECRET`) that the layers and login use.
    pub(crate) fn new(
        db: Database,
        bus: EventBus,
        user_auth: UserAuth,
        config: AuthServiceConfig,
    ) -> Self {
        Self {
            db,
            publisher: EventPublisher::new(bus),
            user_auth,
            config: Arc::new(config),
            dummy_hash: Arc::default(),
        }
    }

    /// The database (for the health check: `HealthCheck::database(name, move || db.ping())`).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// The settings.
    pub(crate) fn config(&self) -> &AuthServiceConfig {
        &self.config
    }

    /// The user-token issuer and verifier.
    pub(crate) fn user_auth(&self) -> &UserAuth {
        &self.user_auth
    }

    /// A layer admitting the given roles (every role when empty).
    fn layer(&self, roles: impl IntoIterator<Item = forten_shared::events::Role>) -> UserAuthLayer {
        UserAuthLayer::new(self.user_auth.clone(), roles)
    }

    /// The event announcing a change of user `subject`, from this service.
    fn event(&self, data: impl Into<EventData>, subject: &str) -> Event {
        EventBuilder::new(data, self.publisher.bus().service())
            .subject(subject.to_owned())
            .build()
    }

    /// Publishes an event already committed to the outbox, then removes it from there; when
    /// the bus refuses it, it stays for [`OutboxRelay`] (the change is stored either way, so
    /// the request still succeeds).
    async fn deliver(&self, event: &Event) {
        match self.publisher.bus().publish(event).await {
            Ok(()) => {
                if let Err(e) = store::dequeue(self.db.pool(), &event.id).await {
                    // published; the relay will publish it once more (same id)
                    tracing::warn!(error = %e, event_id = %event.id, "outbox entry not removed");
                }
            }
            Err(e) => tracing::warn!(
                error = %e,
                event_id = %event.id,
                event_type = %event.event_type().as_str(),
                "event not published; left in the outbox for the relay"
            ),
        }
    }

    /// The dummy hash of unknown-user logins.
    async fn dummy_hash(&self) -> Result<&str, PasswordError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                let random = generate_password()?;
                hash_blocking(random).await
            })
            .await
            .map(String::as_str)
    }
}

/// Opens (and migrates) the auth-service's database.
pub(crate) async fn open_database(config: &DatabaseConfig) -> Result<Database, StorageError> {
    Database::connect(config, DATABASE, MIGRATIONS).await
}

/// The public API with its role checks, `/openapi.json`, and in issuer mode the issuer's
/// routes.
pub(crate) fn router(state: AuthState) -> Router {
    let issuer = state.config.issuer.clone();
    let router = routes::public(state);
    match issuer {
        Some(issuer) => router.merge(forten_shared::auth::issuer_router(issuer)),
        None => router,
    }
}

/// The generated OpenAPI description.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi()
}

/// Hashing or verifying a password failed (no randomness, a malformed stored hash, a
/// panicked worker).
#[derive(Debug, thiserror::Error)]
pub(crate) enum PasswordError {
    /// The toolkit's argon2 helpers failed.
    #[error("password hashing failed: {0}")]
    Hash(#[from] AuthError),
    /// The blocking task running argon2 did not finish.
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Hashes `password` with argon2id on the blocking pool (it costs milliseconds of CPU, which
/// must not stall the async workers).
async fn hash_blocking(password: String) -> Result<String, PasswordError> {
    Ok(tokio::task::spawn_blocking(move || hash_password(&password)).await??)
}

/// Verifies `password` against `hash` on the blocking pool.
async fn verify_blocking(password: String, hash: String) -> Result<bool, PasswordError> {
    Ok(
        tokio::task::spawn_blocking(move || forten_shared::auth::verify_password(&password, &hash))
            .await??,
    )
}

/// Length of generated passwords: 24 characters of a 64-letter alphabet, 144 random bits.
const GENERATED_PASSWORD_LEN: usize = 24;

/// A random password from the operating system's CSPRNG (aws-lc-rs), URL-safe base64.
fn generate_password() -> Result<String, PasswordError> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; GENERATED_PASSWORD_LEN * 3 / 4];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| AuthError::Password("no randomness available".into()))?;
    let mut out = String::with_capacity(GENERATED_PASSWORD_LEN);
    for chunk in bytes.chunks_exact(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    Ok(out)
}

/// The admin [`bootstrap_admin`] generated: print it once, it is not stored in clear.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct GeneratedAdmin {
    /// Its id.
    pub(crate) user_id: String,
    /// Its login e-mail.
    pub(crate) email: String,
    /// Its generated password.
    pub(crate) password: String,
}

impl std::fmt::Debug for GeneratedAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedAdmin")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why the bootstrap admin could not be ensured.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BootstrapError {
    /// The configured e-mail or password is unusable.
    #[error("{0}")]
    Invalid(String),
    /// No admin exists and the default admin e-mail belongs to a non-admin user.
    #[error("no admin exists and {0} is taken by a non-admin user; set {ADMIN_EMAIL_ENV}")]
    EmailTaken(String),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
    /// Hashing the password failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// Makes sure an admin can log in; idempotent across restarts and instances.
///
/// - `email` given: that account is created as an admin when no user has that e-mail, with
///   `password` (or a generated one, then returned); an existing account is left exactly as
///   it is (never recreated, its password never overwritten).
/// - `email` not given: when no admin exists at all, [`DEFAULT_ADMIN_EMAIL`] is created with
///   `password` (or a generated one, then returned); otherwise nothing happens.
///
/// Returns the generated credentials, for `forten up` to print once; `None` when nothing was
/// generated. Several instances starting at once are safe: the unique e-mail index lets one
/// insert win, the others find the account there.
pub(crate) async fn bootstrap_admin(
    state: &AuthState,
    email: Option<String>,
    password: Option<String>,
) -> Result<Option<GeneratedAdmin>, BootstrapError> {
    let pool = state.db.pool();
    // computed now, so that the first login of an unknown e-mail costs no more than others
    state.dummy_hash().await?;
    let email = match email {
        Some(e) => {
            model::check_email(ADMIN_EMAIL_ENV, &e)
                .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
            let e = model::normalize_email(&e);
            if store::get_by_email(pool, &e).await?.is_some() {
                return Ok(None);
            }
            e
        }
        None => {
            if store::count_admins(pool).await? > 0 {
                return Ok(None);
            }
            if store::get_by_email(pool, DEFAULT_ADMIN_EMAIL)
                .await?
                .is_some()
            {
                return Err(BootstrapError::EmailTaken(DEFAULT_ADMIN_EMAIL.to_owned()));
            }
            DEFAULT_ADMIN_EMAIL.to_owned()
        }
    };
    let (password, generated) = match password {
        Some(p) => {
            model::check_password(ADMIN_PASSWORD_ENV, &p)
                .map_err(|e| BootstrapError::Invalid(e.to_string()))?;
            (p, false)
        }
        None => (generate_password()?, true),
    };
    let hash = hash_blocking(password.clone()).await?;
    let new = store::NewUser {
        email: &email,
        password_hash: &hash,
        first_name: "Forten",
        last_name: "Admin",
        role: UserRole::Admin,
    };
    let mut tx = pool.begin().await?;
    let Some(user) = store::insert_user(&mut tx, &new).await? else {
        // another instance created it meanwhile
        return Ok(None);
    };
    let event = state.event(user_created(&user), &user.id);
    store::enqueue(&mut tx, &event).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, email = %user.email, generated, "bootstrap admin created");
    state.deliver(&event).await;
    Ok(generated.then_some(GeneratedAdmin {
        user_id: user.id,
        email: user.email,
        password,
    }))
}

/// The `user.created` payload of `user`.
fn user_created(user: &User) -> UserCreated {
    UserCreated {
        user_id: user.id.clone(),
        email: user.email.clone(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        role: user.role.into(),
    }
}

/// Why a relay round stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    /// The outbox could not be read or updated.
    #[error("outbox: {0}")]
    Storage(#[from] sqlx::Error),
    /// The bus refused an event (it stays queued).
    #[error("publish: {0}")]
    Publish(#[from] BusError),
}

/// Largest number of events one relay round publishes.
const RELAY_BATCH: i64 = 100;

/// Publishes the events queued in the outbox for longer than `grace`, oldest first, each
/// removed once published; stops at the first refused publish (the rest wait for the next
/// round). The number published.
pub(crate) async fn relay_outbox(state: &AuthState, grace: Duration) -> Result<usize, RelayError> {
    let pool = state.db.pool();
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let before = crate::storage::now_millis().saturating_sub(grace_ms);
    let mut published = 0;
    for (id, json) in store::pending(pool, before, RELAY_BATCH).await? {
        match Event::from_slice(json.as_bytes()) {
            Ok(event) => {
                state.publisher.bus().publish(&event).await?;
                published += 1;
            }
            // cannot happen with rows this service wrote; never let one block the rest
            Err(e) => {
                tracing::error!(error = %e, event_id = %id, "unreadable outbox entry dropped")
            }
        }
        store::dequeue(pool, &id).await?;
    }
    if published > 0 {
        tracing::info!(published, "outbox events relayed");
    }
    Ok(published)
}

/// The outbox relay: runs every interval until stopped or dropped.
#[derive(Debug)]
pub(crate) struct OutboxRelay;

impl OutboxRelay {
    /// Starts it.
    pub(crate) fn start(state: AuthState) -> Periodic {
        Periodic::start(state.config.outbox_interval, "outbox relay", move || {
            let state = state.clone();
            async move { relay_outbox(&state, state.config.outbox_grace).await }
        })
    }
}

#[cfg(test)]
mod test;
