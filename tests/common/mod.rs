//! Helpers shared by the integration tests: a model cell over a fixture and an in-process client.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use aws_lambda_events::encodings::Body;
use lambda_http::http::Request;
use sentimiento::config::Settings;
use sentimiento::handler::handle;
use sentimiento::registry::Registry;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Leaked on purpose: the handler takes the registry as `&'static`, as the binary's static does.
pub fn registry(settings: Settings) -> &'static Registry {
    Box::leak(Box::new(Registry::new(settings)))
}

/// The models of `model_dir` with every other setting at its default.
pub fn cell(model_dir: impl Into<PathBuf>) -> &'static Registry {
    registry(Settings::for_model(model_dir))
}

pub struct Reply {
    pub status: u16,
    pub headers: lambda_http::http::HeaderMap,
    pub json: Value,
}

pub async fn call(cell: &'static Registry, method: &str, path: &str, body: Option<&str>) -> Reply {
    call_with(cell, method, path, Some("application/json"), body.map(|b| b.as_bytes().to_vec())).await
}

pub async fn call_with(
    cell: &'static Registry,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req.body(body.map_or(Body::Empty, Body::Binary)).unwrap();
    let response = handle(cell, req).await;
    let json = serde_json::from_slice(response.body()).expect("every response is JSON");
    Reply { status: response.status().as_u16(), headers: response.headers().clone(), json }
}

pub async fn predict(cell: &'static Registry, text: &str) -> Value {
    let body = serde_json::json!({ "text": text }).to_string();
    let reply = call(cell, "POST", "/predict", Some(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json
}

/// Copies a fixture into a temporary directory so a test can break or edit its files.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// `root/<task>/<lang>/` holding a copy of a fixture, its pipeline.json naming that task and language.
pub fn add_model(root: &Path, task: &str, lang: &str, fixture_name: &str) {
    let dir = root.join(task).join(lang);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(fixture_name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    edit_json(&dir.join("pipeline.json"), |p| {
        p["task"] = serde_json::json!(task);
        p["lang"] = serde_json::json!(lang);
    });
}

pub fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, value.to_string()).unwrap();
}

/// One HTTP/1.1 exchange with `Connection: close`; returns (status, body).
pub async fn exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer 413 and close before reading everything: a failed write is fine.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status = text[9..12].parse().unwrap();
    let json = text.split_once("\r\n\r\n").map(|(_, b)| serde_json::from_str(b).unwrap()).unwrap();
    (status, json)
}

pub fn post(body_len: usize) -> String {
    format!(
        "POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {body_len}\r\nConnection: close\r\n\r\n"
    )
}

/// The binary itself, serving `model` (a fixture) on a free port with `env` added; stderr piped so
/// a test can read its log lines. Returns once it accepts connections.
pub fn serve_binary(model: &str, env: &[(&str, &str)]) -> (std::process::Child, std::net::SocketAddr) {
    use std::time::{Duration, Instant};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_sentimiento"))
        .arg("serve")
        .env("PORT", port.to_string())
        .env("MODEL_DIR", fixture(model))
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, addr)
}

/// Runs `command` with `input` on its stdin, written from a thread so that a large input cannot
/// block against a full stdout pipe; its whole output.
pub fn with_stdin(command: &mut Command, input: &[u8]) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

/// A count of the `bulk_done` log line a `predict` run (with `RUST_LOG=info`) wrote on stderr.
pub fn bulk_done(output: &Output, field: &str) -> u64 {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.lines().find(|l| l.contains("bulk_done")).unwrap_or_else(|| panic!("{stderr}"));
    let at = line.find(field).unwrap_or_else(|| panic!("no {field} in {line}")) + field.len();
    let digits = line[at..].trim_start_matches(['=', '"', ':']).split(|c: char| !c.is_ascii_digit()).next();
    digits.unwrap().parse().unwrap()
}
