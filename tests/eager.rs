//! SENTIMIENTO_EAGER=1, the template's default on Lambda: the default model loads before the
//! process listens (Lambda's init phase), and a failed eager load leaves the process up for the
//! first request to load it again. Through the real binary, since the load happens in main.

mod common;

use common::{copy_fixture, exchange, fixture, post, serve_binary};

const HEALTH: &str = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
const TEXT: &[u8] = br#"{"text": "muy bueno"}"#;

/// `/health`'s `loaded` flag for the default model, asked before any prediction.
async fn loaded_at_start(env: &[(&str, &str)]) -> bool {
    let (mut server, addr) = serve_binary("tiny", env);
    let (status, health) = exchange(addr, HEALTH, b"").await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(status, 200, "{health}");
    health["model"]["loaded"].as_bool().expect("a loaded flag")
}

#[tokio::test]
async fn an_eager_model_is_loaded_before_the_server_listens_and_a_lazy_one_is_not() {
    assert!(loaded_at_start(&[("SENTIMIENTO_EAGER", "1")]).await);
    assert!(!loaded_at_start(&[]).await);
}

#[tokio::test]
async fn a_failed_eager_load_is_logged_and_the_first_request_loads_again() {
    let dir = copy_fixture("tiny");
    std::fs::write(dir.path().join("model.onnx"), b"not an ONNX graph").unwrap();
    let model_dir = dir.path().to_str().unwrap();
    let (server, addr) = serve_binary("tiny", &[("SENTIMIENTO_EAGER", "1"), ("MODEL_DIR", model_dir)]);

    let (status, error) = exchange(addr, &post(TEXT.len()), TEXT).await;
    assert_eq!((status, &error["error"]["code"]), (503, &serde_json::json!("model_unavailable")), "{error}");
    // The model is mended while the process runs: the next request loads it.
    std::fs::copy(fixture("tiny").join("model.onnx"), dir.path().join("model.onnx")).unwrap();
    let (status, answer) = exchange(addr, &post(TEXT.len()), TEXT).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["output"].is_string(), "{answer}");

    let mut server = server;
    server.kill().unwrap();
    let log = String::from_utf8(server.wait_with_output().unwrap().stderr).unwrap();
    let failures = log.lines().filter(|l| l.contains(r#""event":"model_load_failed""#)).count();
    // One from the eager load at start, one from the first request's retry.
    assert_eq!(failures, 2, "{log}");
}
