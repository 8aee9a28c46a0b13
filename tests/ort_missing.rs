//! A missing ONNX Runtime library is a 503 naming the path and the fix, not a panic.
//! Its own test binary: ONNX Runtime, once loaded, stays loaded for the process.

mod common;

use sentimiento::config::Settings;
use sentimiento::registry::Registry;

#[tokio::test]
async fn missing_library_is_503_with_the_fix() {
    let mut settings = Settings::for_model(common::fixture("tiny"));
    settings.ort_library = vec!["/nonexistent/libonnxruntime.so".into()];
    let cell: &'static Registry = Box::leak(Box::new(Registry::new(settings)));
    let reply = common::call(cell, "POST", "/predict", Some(r#"{"text": "hola"}"#)).await;
    assert_eq!(reply.status, 503);
    let message = reply.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("/nonexistent/libonnxruntime.so"), "{message}");
    assert!(message.contains("make ort"), "{message}");
}
