//! Every sample event in events/ is a valid event of its AWS type, and the handler answers it as
//! tests/events_expected.json says, through lambda_http's own event-to-request conversion.

mod common;

use std::path::{Path, PathBuf};

use aws_lambda_events::event::alb::AlbTargetGroupRequest;
use aws_lambda_events::event::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use lambda_http::request::LambdaRequest;
use serde_json::Value;

fn event_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    files
}

/// `rest-batch.json` -> ("rest", "batch")
fn door_and_case(path: &Path) -> (String, String) {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let (door, case) = stem.split_once('-').unwrap();
    (door.to_string(), case.to_string())
}

fn expected() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events_expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn events_cover_every_front_door_and_case() {
    let files = event_files();
    for door in ["rest", "http", "url", "alb"] {
        for case in ["predict", "batch", "health", "bad-request"] {
            let found = files.iter().any(|f| door_and_case(f) == (door.into(), case.into()));
            assert!(found, "events/{door}-{case}.json is missing");
        }
    }
}

#[test]
fn events_parse_as_their_aws_types() {
    for path in event_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = match door_and_case(&path).0.as_str() {
            "rest" => serde_json::from_str::<ApiGatewayProxyRequest>(&text).map(|_| ()),
            "http" => serde_json::from_str::<ApiGatewayV2httpRequest>(&text).map(|_| ()),
            "url" => serde_json::from_str::<LambdaFunctionUrlRequest>(&text).map(|_| ()),
            "alb" => serde_json::from_str::<AlbTargetGroupRequest>(&text).map(|_| ()),
            other => panic!("unknown front door {other:?} in {}", path.display()),
        };
        parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[tokio::test]
async fn handler_answers_every_event() {
    let cell = common::cell(common::fixture("tiny"));
    let expected = expected();
    for path in event_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let event: LambdaRequest = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let response = sentimiento::handler::handle(cell, event.into()).await;
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        let want = &expected[door_and_case(&path).1];
        assert_eq!(response.status().as_u16(), want["status"].as_u64().unwrap() as u16, "{name}: {body}");
        check_body(&name, want, &body);
    }
}

/// The checks tests/e2e_lambda.py makes of the same file, on the same events.
fn check_body(name: &str, want: &Value, body: &Value) {
    if let Some(outputs) = want["outputs"].as_array() {
        let got: Vec<&Value> = match body.get("results") {
            Some(results) => results.as_array().unwrap().iter().map(|r| &r["output"]).collect(),
            None => vec![&body["output"]],
        };
        assert_eq!(got, outputs.iter().collect::<Vec<_>>(), "{name}: {body}");
    }
    if let Some(code) = want.get("code") {
        assert_eq!(&body["error"]["code"], code, "{name}: {body}");
    }
}
