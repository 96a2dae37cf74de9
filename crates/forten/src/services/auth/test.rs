//! Unit tests of validation, password generation and the outbox relay.

use std::time::Duration;

use forten_shared::EventBus;
use forten_shared::auth::UserAuth;
use forten_shared::events::UserDeleted;

use super::model::{check_email, check_password, normalize_email};
use super::{AuthServiceConfig, AuthState, generate_password, open_database, relay_outbox, store};
use crate::storage::DatabaseConfig;

#[test]
fn generated_passwords_are_long_random_and_url_safe() {
    let a = generate_password().unwrap();
    let b = generate_password().unwrap();
    assert_eq!(a.len(), 24);
    assert_ne!(a, b);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    check_password("password", &a).unwrap();
}

#[test]
fn emails() {
    for ok in ["a@b", "a.b+c@example.com", " Ada@Example.COM "] {
        check_email("email", ok).unwrap();
    }
    for bad in [
        "", "a", "@b", "a@", "a b@c", "a@b..c", "a@.b", "a@b@c", "a\u{7}@b",
    ] {
        assert!(check_email("email", bad).is_err(), "{bad:?}");
    }
    assert_eq!(normalize_email(" Ada@Example.COM "), "ada@example.com");
}

#[test]
fn passwords() {
    assert!(check_password("password", "short").is_err());
    assert!(check_password("password", &"x".repeat(257)).is_err());
    assert!(check_password("password", "long enough\u{0}").is_err());
    check_password("password", "long enough").unwrap();
}

/// A change committed with its event, then the process dies before publishing: the relay
/// publishes the event later, with the same id, once.
#[tokio::test]
async fn the_relay_publishes_what_a_failed_publish_left() {
    forten_shared::auth::install_crypto_provider();
    let dir = std::env::temp_dir().join(format!("forten_auth_{}", uuid::Uuid::new_v4().simple()));
    let config = DatabaseConfig {
        data_dir: dir.clone(),
        ..DatabaseConfig::default()
    };
    let bus = EventBus::in_process("auth-service");
    let state = AuthState::new(
        open_database(&config).await.unwrap(),
        bus.clone(),
        UserAuth::new("0123456789abcdef0123456789abcdef", Duration::from_secs(60)).unwrap(),
        AuthServiceConfig::default(),
    );
    let mut tail = bus.tail("user.*").await.unwrap();

    // a bootstrap publishes at once and leaves nothing behind
    super::bootstrap_admin(&state, None, None)
        .await
        .unwrap()
        .unwrap();
    let pool = state.database().pool();
    assert_eq!(store::count_pending(pool).await.unwrap(), 0);
    let first = tail.next().await.unwrap().event.unwrap();
    assert_eq!(first.event_type().as_str(), "user.created");

    let event = state.event(
        UserDeleted {
            user_id: "u1".into(),
        },
        "u1",
    );
    let mut conn = pool.acquire().await.unwrap();
    store::enqueue(&mut conn, &event).await.unwrap();
    drop(conn);
    // too young: still the writer's to publish
    assert_eq!(
        relay_outbox(&state, Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(relay_outbox(&state, Duration::ZERO).await.unwrap(), 1);
    let relayed = tokio::time::timeout(Duration::from_secs(20), tail.next())
        .await
        .unwrap()
        .unwrap()
        .event
        .unwrap();
    assert_eq!(relayed.id, event.id);
    assert_eq!(relayed.data_as::<UserDeleted>().unwrap().user_id, "u1");
    assert_eq!(store::count_pending(pool).await.unwrap(), 0);
    assert_eq!(relay_outbox(&state, Duration::ZERO).await.unwrap(), 0);

    // the background relay starts and stops
    let relay = super::OutboxRelay::start(state.clone());
    relay.stop().await;
    state.database().close().await;
    let _ = std::fs::remove_dir_all(dir);
}
