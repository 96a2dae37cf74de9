//! Integration tests of `forten_shared::health` against real axum servers on loopback.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod drain;
mod probes;
mod status;

use std::net::SocketAddr;

use axum::Router;

/// Serves `app` on 127.0.0.1:0; returns its base URL.
pub async fn start_server(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// GET `url`, returning status and JSON body.
pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let res = reqwest::get(url).await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}
