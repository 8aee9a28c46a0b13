//! Every sample event in events/ is a valid event of its AWS type, and the handler answers it as
//! tests/events_expected.json says, through the Lambda front door (src/lambda.rs) as the runtime calls it.

mod common;

use std::path::{Path, PathBuf};

use aws_lambda_events::event::alb::AlbTargetGroupRequest;
use aws_lambda_events::event::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use lambda_http::{Context, LambdaEvent};
use serde_json::value::RawValue;
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
            // Step Functions' ItemBatcher input has no type in aws_lambda_events: its two fields.
            "map" => serde_json::from_str::<Value>(&text).map(|v| {
                assert!(v["Items"].is_array() && v["BatchInput"].is_object(), "{}", path.display());
            }),
            other => panic!("unknown front door {other:?} in {}", path.display()),
        };
        parsed.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// One invocation of the Lambda front door, as the runtime makes it.
async fn invoke(event: &str) -> Result<Value, lambda_runtime::Diagnostic> {
    let models = common::cell(common::fixture("tiny"));
    let raw = RawValue::from_string(event.to_string()).unwrap();
    let answer = sentimiento::lambda::dispatch(models, LambdaEvent::new(raw, Context::default())).await?;
    Ok(serde_json::from_str(answer.get()).unwrap())
}

#[tokio::test]
async fn the_lambda_front_door_answers_every_event_in_its_own_shape() {
    let expected = expected();
    for path in event_files() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let response = invoke(&std::fs::read_to_string(&path).unwrap()).await.unwrap();
        if door_and_case(&path).0 == "map" {
            check_items(&name, &expected[door_and_case(&path).1], &response);
            continue;
        }
        let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        let want = &expected[door_and_case(&path).1];
        assert_eq!(response["statusCode"], want["status"], "{name}: {body}");
        check_body(&name, want, &body);
    }
}

#[tokio::test]
async fn events_that_are_not_http_fail_the_invocation_saying_what_came() {
    let sqs = r#"{"Records": [{"messageId": "1", "body": "hola", "eventSource": "aws:sqs"}]}"#;
    let cases = [
        ("{}", "an empty JSON object"),
        (sqs, "a JSON object with keys [\"Records\"]"),
        (r#""hola""#, "a JSON string"),
        ("[1, 2]", "a JSON array of 2 items"),
    ];
    for (event, got) in cases {
        let error = invoke(event).await.unwrap_err();
        assert_eq!(error.error_type, "UnsupportedEvent", "{event}");
        assert!(error.error_message.contains(got), "{event}: {}", error.error_message);
    }
}

/// A Distributed Map batch: one answer per item, in order, ids echoed, errors in place.
fn check_items(name: &str, want: &Value, answer: &Value) {
    let items = answer.as_array().unwrap_or_else(|| panic!("{name}: not an array: {answer}"));
    let field = |key: &str| -> Vec<Value> { items.iter().map(|i| i[key].clone()).collect() };
    let codes: Vec<Value> = items.iter().map(|i| i["error"]["code"].clone()).collect();
    assert_eq!(Value::from(field("output")), want["outputs"], "{name}: {answer}");
    assert_eq!(Value::from(field("id")), want["ids"], "{name}: {answer}");
    assert_eq!(Value::from(codes), want["codes"], "{name}: {answer}");
}

#[tokio::test]
async fn a_distributed_map_batch_over_the_limit_or_for_no_model_fails_as_a_whole() {
    let items: Vec<Value> =
        (0..=sentimiento::lambda::MAX_ITEMS).map(|i| serde_json::json!({"text": format!("t{i}")})).collect();
    let error = invoke(&serde_json::json!({ "Items": items }).to_string()).await.unwrap_err();
    assert_eq!(error.error_type, "BatchTooLarge");
    let unknown = r#"{"Items": [{"text": "hola"}], "BatchInput": {"task": "irony"}}"#;
    let error = invoke(unknown).await.unwrap_err();
    assert_eq!(error.error_type, "unknown_model", "{}", error.error_message);
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
