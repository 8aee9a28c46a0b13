//! The plain HTTP front door over loopback: same handler, real sockets, body limit on the wire,
//! bounded concurrency, graceful shutdown.

mod common;

use std::sync::Arc;

use common::{exchange, post};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

async fn start_with(in_flight: Arc<Semaphore>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cell = common::cell(common::fixture("tiny"));
    tokio::spawn(sentimiento::server::serve(cell, listener, in_flight, std::future::pending()));
    addr
}

async fn start() -> std::net::SocketAddr {
    start_with(Arc::new(Semaphore::new(32))).await
}

#[tokio::test]
async fn serves_predictions_and_health() {
    let addr = start().await;
    let body = r#"{"text": "qué día tan genial, me encanta"}"#;
    let (status, json) = exchange(addr, &post(body.len()), body.as_bytes()).await;
    assert_eq!((status, &json["output"]), (200, &serde_json::json!("POS")), "{json}");
    let head = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let (status, json) = exchange(addr, head, b"").await;
    assert_eq!((status, &json["model"]["loaded"]), (200, &serde_json::json!(true)));
}

#[tokio::test]
async fn oversized_body_is_413_without_buffering_it() {
    let addr = start().await;
    let body = vec![b'a'; sentimiento::config::MAX_BODY_BYTES + 10];
    let (status, json) = exchange(addr, &post(body.len()), &body).await;
    assert_eq!(status, 413, "{json}");
    assert_eq!(json["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn thirty_two_concurrent_clients_all_get_answers() {
    let addr = start().await;
    let body = r#"{"texts": ["me encanta", "odio esto", "hoy es el día"]}"#;
    let clients = (0..32)
        .map(|_| tokio::spawn(async move { exchange(addr, &post(body.len()), body.as_bytes()).await }));
    for client in clients {
        let (status, json) = client.await.unwrap();
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["results"].as_array().unwrap().len(), 3);
    }
}

#[tokio::test]
async fn a_full_server_refuses_at_once_with_503_but_still_answers_health() {
    let in_flight = Arc::new(Semaphore::new(1));
    let addr = start_with(in_flight.clone()).await;
    let _busy = in_flight.acquire().await.unwrap(); // the one slot is taken
    let body = r#"{"text": "hola"}"#;
    let started = std::time::Instant::now();
    let (status, json) = exchange(addr, &post(body.len()), body.as_bytes()).await;
    assert_eq!((status, json["error"]["code"].as_str()), (503, Some("overloaded")));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "refused quickly, not queued");
    let head = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_eq!(exchange(addr, head, b"").await.0, 200);
}
