//! The `user.created` → access profile path over the real RabbitMQ, with a redelivered
//! duplicate, on PostgreSQL.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use forten_shared::EventBus;
use forten_shared::events::RabbitConfig;

use crate::services::access::{self, AccessConfig, AccessState};
use crate::support::{Backend, RABBITMQ_URL, TestDb, call, eventually, unique};

#[tokio::test]
async fn user_created_over_rabbitmq_creates_one_profile() {
    let exchange = unique("forten.test.services");
    let rabbit = || {
        RabbitConfig::new(RABBITMQ_URL)
            .exchange(exchange.clone())
            .connect_timeout(Duration::from_secs(10))
    };
    let bus = EventBus::rabbitmq(access::SERVICE, rabbit().connection_name("access-test"))
        .await
        .unwrap();
    let auth = EventBus::rabbitmq("auth-service", rabbit().connection_name("auth-test"))
        .await
        .unwrap();
    let db = TestDb::new(Backend::Postgres);
    let config = AccessConfig {
        user_created_queue: unique("access-service.user.created"),
        user_deleted_queue: unique("access-service.user.deleted"),
        ..AccessConfig::default()
    };
    let queues = [
        config.user_created_queue.clone(),
        config.user_deleted_queue.clone(),
    ];
    let state = AccessState::new(
        access::open_database(&db.config).await.unwrap(),
        bus.clone(),
        config,
    );
    access::subscribe(&state, &bus).await.unwrap();
    let router = access::router(state.clone());

    // The same event published twice: what a redelivery after a lost ack looks like.
    let event = crate::access::user_created("rabbit-user");
    auth.publish(&event).await.unwrap();
    auth.publish(&event).await.unwrap();
    let other = crate::access::user_created("second-user");
    auth.publish(&other).await.unwrap();
    // Once the later event is handled, both copies of the first one were too (one queue).
    eventually(|| async {
        let r = call(
            &router,
            Method::GET,
            "/api/access/profiles/second-user",
            None,
        )
        .await;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_profiles WHERE user_id = $1")
        .bind("rabbit-user")
        .fetch_one(state.database().pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
    let r = call(
        &router,
        Method::GET,
        "/api/access/profiles/rabbit-user",
        None,
    )
    .await;
    assert_eq!(r.body["allDoors"], true);
    assert!(bus.dead_letters(&queues[0], 10).await.unwrap().is_empty());

    bus.shutdown(Duration::from_secs(2)).await;
    for q in &queues {
        auth.delete_queues(q).await.unwrap();
    }
    auth.shutdown(Duration::from_secs(2)).await;
    let conn = lapin::Connection::connect(RABBITMQ_URL, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let _ = ch
        .exchange_delete(
            exchange.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        )
        .await;
    let _ = conn.close(200, "bye".into()).await;
}
