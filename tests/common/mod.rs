//! Helpers shared by the integration tests: a model cell over a fixture and an in-process client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aws_lambda_events::encodings::Body;
use lambda_http::http::Request;
use sentimiento::config::Settings;
use sentimiento::handler::handle;
use sentimiento::registry::Registry;
use serde_json::Value;

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

pub fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, value.to_string()).unwrap();
}
