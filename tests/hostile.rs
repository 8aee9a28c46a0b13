//! The plain server against hostile clients, over loopback: abandoned batches, stalled bodies and
//! headers, idle and excess connections, bodies it should never read, and request storms. Every
//! wait is bounded, so a server that holds on forever fails instead of hanging the suite.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{exchange, fixture, post, registry, serve_binary};
use sentimiento::config::Settings;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

/// Limits short enough for a test; the fixture's model as `model`.
fn settings(model: &str) -> Settings {
    let mut s = Settings::for_model(fixture(model));
    s.header_timeout = Duration::from_secs(1);
    s.body_timeout = Duration::from_secs(1);
    s.queue_timeout = Duration::from_secs(30);
    s
}

async fn start(settings: Settings, in_flight: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let models = registry(settings);
    let slots = Arc::new(Semaphore::new(in_flight));
    tokio::spawn(sentimiento::server::serve(models, listener, slots, std::future::pending()));
    addr
}

fn batch(n: usize) -> String {
    json!({ "texts": (0..n).map(|i| format!("texto número {i}")).collect::<Vec<_>>() }).to_string()
}

/// Reads until the server closes; `None` if it has not within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut raw = Vec::new();
    timeout(limit, stream.read_to_end(&mut raw)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&raw).into_owned())
}

/// POSTs `body` until it is not shed with a 503, within `limit`; returns the final status.
async fn post_until_admitted(addr: SocketAddr, body: &str, limit: Duration) -> Option<u16> {
    let deadline = Instant::now() + limit;
    let head = post(body.len());
    while Instant::now() < deadline {
        match timeout(deadline - Instant::now(), exchange(addr, &head, body.as_bytes())).await {
            Ok((503, _)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok((status, _)) => return Some(status),
            Err(_) => return None,
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_hang_up_stop_their_work_and_free_its_slot() {
    // Each text of the slow fixture costs ~50 ms: four 64-text batches are ~13 s of work. The
    // binary's runtime has the two blocking threads inference runs on, so work left running by
    // clients that hung up queues in front of everyone else.
    let (mut server, addr) = serve_binary("tiny-slow", &[("SENTIMIENTO_MAX_IN_FLIGHT", "4")]);
    let body = batch(64);
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(format!("{}{body}", post(body.len())).as_bytes()).await.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(stream); // hang up mid-batch
        });
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let one = json!({ "text": "hola" }).to_string();
    let status = post_until_admitted(addr, &one, Duration::from_secs(4)).await;
    server.kill().unwrap();
    let logs = String::from_utf8_lossy(&server.wait_with_output().unwrap().stderr).into_owned();
    assert_eq!(status, Some(200), "abandoned batches went on holding the model");
    let stopped = logs.lines().filter(|l| l.contains("\"status\":499")).count();
    assert_eq!(stopped, 4, "each abandoned batch stops and is logged as 499: {logs}");
}

#[tokio::test]
async fn stalled_bodies_neither_take_the_models_slots_nor_stay_forever() {
    let addr = start(settings("tiny"), 4).await;
    let head =
        "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = json!({ "text": "excelente" }).to_string();
    let (status, answer) = exchange(addr, &post(body.len()), body.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    for stream in &mut stalled {
        let reply = closed_within(stream, Duration::from_secs(5)).await.expect("a stalled body is timed out");
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(reply.contains("request_timeout"), "{reply}");
    }
}

#[tokio::test]
async fn half_sent_headers_are_dropped_after_the_header_timeout() {
    let addr = start(settings("tiny"), 4).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty").await.unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await.is_some(), "still held open");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let addr = start(settings("tiny"), 4).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await.is_some(), "a silent connection stays");

    // Kept alive after an answer, then idle.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let reply =
        closed_within(&mut kept, Duration::from_secs(5)).await.expect("an idle kept-alive connection stays");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_and_the_server_carries_on() {
    let mut limits = settings("tiny");
    limits.max_connections = 4;
    limits.header_timeout = Duration::from_secs(30);
    let addr = start(limits, 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(2)).await.is_some(),
        "the fifth connection was kept"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = json!({ "text": "genial" }).to_string();
    assert_eq!(exchange(addr, &post(body.len()), body.as_bytes()).await.0, 200);
}

#[tokio::test]
async fn health_answers_without_reading_a_body() {
    let addr = start(settings("tiny"), 4).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\nConnection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let reply = closed_within(&mut stream, Duration::from_secs(3)).await.expect("health waited for the body");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn an_oversized_declared_length_is_413_before_any_body_even_with_expect() {
    let addr = start(settings("tiny"), 4).await;
    for expect in ["Expect: 100-continue\r\n", ""] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{expect}\
             Content-Length: 50000000\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let reply =
            closed_within(&mut stream, Duration::from_secs(3)).await.expect("no answer without the body");
        assert!(reply.starts_with("HTTP/1.1 413"), "{expect:?}: {reply}");
        assert!(!reply.contains("100 Continue"), "{reply}");
    }
}

#[tokio::test]
async fn a_compressed_body_is_415_not_read_as_json() {
    let addr = start(settings("tiny"), 4).await;
    let body = json!({ "text": "hola" }).to_string();
    let head = post(body.len()).replace("Connection: close", "Content-Encoding: gzip\r\nConnection: close");
    let (status, answer) = exchange(addr, &head, body.as_bytes()).await;
    assert_eq!((status, &answer["error"]["code"]), (415, &json!("unsupported_media_type")));
    assert!(answer["error"]["message"].as_str().unwrap().contains("gzip"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_waited_past_the_queue_deadline_are_shed_with_retry_after() {
    let mut limits = settings("tiny-slow");
    limits.queue_timeout = Duration::from_millis(500);
    let addr = start(limits, 16).await;
    // Six 20-text batches at once, ~1 s each: those still queued after 0.5 s are shed.
    let body = batch(20);
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let body = body.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.write_all(format!("{}{body}", post(body.len())).as_bytes()).await.unwrap();
                closed_within(&mut stream, Duration::from_secs(20)).await.expect("answered in time")
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for client in clients {
        let reply = client.await.unwrap();
        statuses.push(reply[9..12].to_string());
        if reply.starts_with("HTTP/1.1 503") {
            assert!(reply.to_ascii_lowercase().contains("retry-after: 1"), "{reply}");
            assert!(reply.contains("waited"), "{reply}");
        }
    }
    assert!(statuses.contains(&"200".into()) && statuses.contains(&"503".into()), "{statuses:?}");
}

/// RFC 9112 3.2: an HTTP/1.1 request has exactly one Host, else 400; HTTP/1.0 may omit it.
#[tokio::test]
async fn requests_without_exactly_one_valid_host_are_400() {
    let addr = start(settings("tiny"), 4).await;
    let body = json!({ "text": "hola" }).to_string();
    let predict = |hosts: &str, version: &str| {
        format!(
            "POST /predict {version}\r\n{hosts}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
    };
    for hosts in ["", "Host: a\r\nHost: b\r\n", "Host: a\r\nhost: a\r\n", "Host: x?\r\n", "Host: a b\r\n"] {
        let (status, answer) =
            timeout(Duration::from_secs(10), exchange(addr, &predict(hosts, "HTTP/1.1"), body.as_bytes()))
                .await
                .unwrap();
        assert_eq!(status, 400, "{hosts:?}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{hosts:?}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("Host"), "{answer}");
    }
    for (hosts, version) in
        [("Host: localhost:8080\r\n", "HTTP/1.1"), ("", "HTTP/1.0"), ("Host: \r\n", "HTTP/1.1")]
    {
        let (status, answer) = exchange(addr, &predict(hosts, version), body.as_bytes()).await;
        assert_eq!(status, 200, "{hosts:?} {version}: {answer}");
    }
}

/// RFC 9110 10.1.1: an expectation the server does not support is a 417, before any work.
#[tokio::test]
async fn an_expectation_other_than_100_continue_is_417() {
    let addr = start(settings("tiny"), 4).await;
    let body = json!({ "text": "hola" }).to_string();
    for expect in ["200-ok", "100-continue, 200-ok"] {
        let head =
            post(body.len()).replace("Connection: close", &format!("Expect: {expect}\r\nConnection: close"));
        let (status, answer) = exchange(addr, &head, body.as_bytes()).await;
        assert_eq!(
            (status, &answer["error"]["code"]),
            (417, &json!("expectation_failed")),
            "{expect}: {answer}"
        );
        assert!(answer["error"]["message"].as_str().unwrap().contains("200-ok"), "{answer}");
    }
    // The one expectation served: the answer follows hyper's `100 Continue`.
    let head = post(body.len()).replace("Connection: close", "Expect: 100-Continue\r\nConnection: close");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("{head}{body}").as_bytes()).await.unwrap();
    let reply = closed_within(&mut stream, Duration::from_secs(10)).await.expect("answered");
    assert!(reply.contains("HTTP/1.1 200 OK"), "{reply}");
}

/// One exchange with a fresh server on the tiny fixture: the answer within 10 s, and the server's
/// `request` log line (read after the server is stopped).
fn answer_and_request_log(head: &str) -> ((u16, serde_json::Value), String) {
    let (mut server, addr) = serve_binary("tiny", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reply = runtime.block_on(async { timeout(Duration::from_secs(10), exchange(addr, head, b"")).await });
    server.kill().unwrap();
    let logs = String::from_utf8_lossy(&server.wait_with_output().unwrap().stderr).into_owned();
    let line = logs.lines().find(|l| l.contains("\"event\":\"request\"")).unwrap_or_default().to_owned();
    (reply.expect("answered within 10 s"), line)
}

/// A method name can be as long as hyper's header buffer: the 405 and the log line keep a prefix.
#[test]
fn a_long_method_name_is_cut_in_the_405_and_the_log_line() {
    let method = "M".repeat(100_000);
    let head = format!("{method} /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // A whole name in every log line once filled the stderr pipe and stalled the server.
    let ((status, answer), line) = answer_and_request_log(&head);
    assert_eq!(status, 405, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.len() < 200 && message.contains("MMMM"), "{message}");
    assert!(
        line.len() < 1000 && line.contains("MMMM"),
        "{} bytes: {}",
        line.len(),
        &line[..200.min(line.len())]
    );
}

#[test]
fn a_long_path_is_cut_in_the_404_and_the_log_line() {
    // Under hyper's own URI limit (it answers a 100 KB one with a bare 414 before the handler).
    let path = format!("/{}", "p".repeat(20_000));
    let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let ((status, answer), line) = answer_and_request_log(&head);
    assert_eq!(status, 404, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.len() < 600 && message.contains("pppp"), "{} bytes", message.len());
    assert!(line.len() < 1000 && line.contains("pppp"), "{} bytes", line.len());
}
