//! Shared helpers: broker URL, unique names, a TCP proxy that can cut connections, waiting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forten_shared::EventBus;
use forten_shared::events::RabbitConfig;
use lapin::options::ExchangeDeleteOptions;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The broker of this machine (`RABBITMQ_URL`, default guest@127.0.0.1:5672).
pub fn rabbit_url() -> String {
    std::env::var("RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The Redis of this machine (`REDIS_URL`, default 127.0.0.1:6379).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn trace_init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!("test.{prefix}.{}", uuid::Uuid::new_v4().simple())
}

/// A test's own exchange, so that parallel tests never see each other's events.
pub struct TestBroker {
    pub exchange: String,
}

impl TestBroker {
    pub fn new(name: &str) -> Self {
        trace_init();
        Self {
            exchange: unique(&format!("{name}.x")),
        }
    }

    pub fn config(&self) -> RabbitConfig {
        self.config_at(&rabbit_url())
    }

    pub fn config_at(&self, url: &str) -> RabbitConfig {
        RabbitConfig::new(url)
            .exchange(self.exchange.clone())
            .connect_timeout(Duration::from_secs(10))
    }

    /// A bus on this test's exchange; fails the test with a clear message without a broker.
    pub async fn bus(&self, service: &str) -> EventBus {
        self.bus_with(service, self.config()).await
    }

    pub async fn bus_with(&self, service: &str, config: RabbitConfig) -> EventBus {
        match EventBus::rabbitmq(service, config).await {
            Ok(bus) => bus,
            Err(e) => panic!(
                "RabbitMQ is required for this test and is not reachable ({e}); start it with `rabbitmq-server -detached` or set RABBITMQ_URL"
            ),
        }
    }

    pub async fn raw(&self) -> lapin::Connection {
        lapin::Connection::connect(&rabbit_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| {
                panic!("RabbitMQ is required for this test and is not reachable: {e}")
            })
    }

    /// Ends a test: shuts `buses` down, deletes `queues` (with their DLQs and retry queues)
    /// and the exchange.
    pub async fn finish(&self, buses: &[&EventBus], queues: &[&String]) {
        for bus in buses {
            bus.shutdown(Duration::from_secs(5)).await;
        }
        let admin = self.bus("cleanup").await;
        for q in queues {
            admin.delete_queues(q).await.unwrap();
        }
        admin.shutdown(Duration::from_secs(1)).await;
        self.cleanup().await;
    }

    /// Deletes the exchange (queues are deleted by each test with `delete_queues`).
    pub async fn cleanup(&self) {
        let conn = self.raw().await;
        let ch = conn.create_channel().await.unwrap();
        let _ = ch
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await;
        let _ = conn.close(200, "bye".into()).await;
    }
}

/// Polls `f` every 20 ms until it is true; panics with `what` after `limit` (a liveness
/// bound, not a performance assertion).
pub async fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

type Pipes = Arc<Mutex<HashMap<u64, (JoinHandle<()>, JoinHandle<()>)>>>;

/// A TCP proxy on loopback in front of RabbitMQ whose connections can be cut at will.
pub struct Proxy {
    pub port: u16,
    conns: Pipes,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Pipes = Arc::default();
        let upstream = upstream.to_owned();
        let c = conns.clone();
        let accept = tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    let _ = sw.shutdown().await;
                });
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
                n += 1;
                c.lock().unwrap().insert(n, (up, down));
            }
        });
        Self {
            port,
            conns,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Cuts every proxied connection (both directions dropped: the sockets close).
    pub fn cut_all(&self) -> usize {
        let mut conns = self.conns.lock().unwrap();
        let n = conns.len();
        for (_, (up, down)) in conns.drain() {
            up.abort();
            down.abort();
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_all();
    }
}
