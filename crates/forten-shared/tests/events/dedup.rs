//! The Redis dedup store against the real Redis: several consumer instances handle each event
//! once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use forten_shared::events::{
    Claim, DedupStore, Deduplicate, Handler, Outcome, RedisDedupStore, UserDeleted,
};
use forten_shared::{Event, EventBuilder};

use crate::support::{redis_url, unique};

async fn store(prefix: &str) -> RedisDedupStore {
    RedisDedupStore::connect(&redis_url(), prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis is required for this test and is not reachable ({e}); start redis-server or set REDIS_URL"))
}

#[tokio::test]
async fn two_instances_sharing_redis_handle_each_event_once() {
    let prefix = format!("{}:", unique("dedup"));
    let runs = Arc::new(AtomicUsize::new(0));
    let mk = |store: RedisDedupStore| {
        let r = runs.clone();
        Deduplicate::new("q", Arc::new(store), move |_e: Event| {
            r.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let a = mk(store(&prefix).await);
    let b = mk(store(&prefix).await);
    let event = EventBuilder::new(
        UserDeleted {
            user_id: "u".into(),
        },
        "t",
    )
    .build();
    // the same event delivered to both instances at once, then again to each
    let (ra, rb) = tokio::join!(a.handle(event.clone()), b.handle(event.clone()));
    let outcomes = [ra.unwrap(), rb.unwrap()];
    assert!(
        outcomes.contains(&Outcome::Ack) && outcomes.contains(&Outcome::Drop),
        "{outcomes:?}"
    );
    assert_eq!(a.handle(event.clone()).await.unwrap(), Outcome::Drop);
    assert_eq!(b.handle(event).await.unwrap(), Outcome::Drop);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redis_claims_release_and_expire() {
    let prefix = format!("{}:", unique("dedup"));
    let s = store(&prefix).await.ttl(Duration::from_secs(60));
    assert_eq!(
        s.claim("k", Duration::from_millis(300)).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        s.claim("k", Duration::from_millis(300)).await.unwrap(),
        Claim::InProgress
    );
    s.release("k").await.unwrap();
    assert_eq!(
        s.claim("k", Duration::from_millis(300)).await.unwrap(),
        Claim::Acquired
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.claim("k", Duration::from_secs(5)).await.unwrap(),
        Claim::Acquired,
        "claim expired with its lease"
    );
    s.complete("k").await.unwrap();
    s.release("k").await.unwrap(); // never removes a completion
    assert_eq!(
        s.claim("k", Duration::from_secs(5)).await.unwrap(),
        Claim::Done
    );
    // clean up our key
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}k"))
        .query_async(&mut conn)
        .await
        .unwrap();
}
