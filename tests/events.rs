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
    invoke_on(common::cell(common::fixture("tiny")), event).await
}

async fn invoke_on(
    models: &'static sentimiento::registry::Registry,
    event: &str,
) -> Result<Value, lambda_runtime::Diagnostic> {
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

/// The sample event `events/<name>.json`, to be bent into a hostile one.
fn sample(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("events").join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Sets one header in both of the event's header maps, whatever case the sample spelled it in.
fn set_header(event: &mut Value, name: &str, value: &str) {
    for (map, value) in [("headers", Value::from(value)), ("multiValueHeaders", Value::from(vec![value]))] {
        if let Some(headers) = event[map].as_object_mut() {
            headers.retain(|key, _| !key.eq_ignore_ascii_case(name));
            headers.insert(name.into(), value);
        }
    }
}

/// The HTTP answer to an event: its status and JSON body, after checking that the answer has
/// the shape the event's front door expects (so that API Gateway or the ALB relays it, not a 502).
async fn http_answer(door: &str, event: &Value) -> (u16, Value) {
    let response = invoke(&event.to_string()).await.unwrap_or_else(|e| panic!("{door}: failed: {e:?}"));
    match door {
        "alb" => assert!(response["statusDescription"].is_string(), "{door}: {response}"),
        "rest" => assert!(response.get("multiValueHeaders").is_some(), "{door}: {response}"),
        _ => assert!(response.get("cookies").is_some(), "{door}: {response}"),
    }
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let body = response["body"].as_str().unwrap_or_else(|| panic!("{door}: no body: {response}"));
    (status, serde_json::from_str(body).unwrap_or_else(|_| panic!("{door}: not JSON: {body}")))
}

/// A 400 invalid_request whose message names `field`.
async fn assert_refused(door: &str, event: &Value, field: &str) {
    let (status, body) = http_answer(door, event).await;
    assert_eq!(status, 400, "{door}: {body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{door}: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(field), "{door}: the message does not name {field}: {message}");
}

#[tokio::test]
async fn a_raw_query_string_that_cannot_be_a_uri_query_is_a_400_naming_it() {
    for door in ["http", "url"] {
        for query in ["q=\"x\"", "a=<b>", "a b", "x=>"] {
            let mut event = sample(&format!("{door}-predict"));
            event["rawQueryString"] = query.into();
            assert_refused(door, &event, "rawQueryString").await;
        }
    }
}

#[tokio::test]
async fn a_host_that_is_not_a_host_and_port_is_a_400_naming_it() {
    for door in ["alb", "rest", "http", "url"] {
        for host in ["example.com:99999", "example.com:abc", "exa mple.com", "[::1", "xn--zz", "a@b.com"] {
            let mut event = sample(&format!("{door}-predict"));
            set_header(&mut event, "Host", host);
            assert_refused(door, &event, "Host").await;
        }
    }
}

#[tokio::test]
async fn a_forwarded_proto_that_is_not_http_or_https_is_a_400_naming_it() {
    for door in ["alb", "rest", "http"] {
        for proto in ["ht tp", "https, http", "1x", ""] {
            let mut event = sample(&format!("{door}-predict"));
            set_header(&mut event, "X-Forwarded-Proto", proto);
            assert_refused(door, &event, "X-Forwarded-Proto").await;
        }
    }
}

#[tokio::test]
async fn bad_base64_is_a_400_even_when_batch_fields_are_broken() {
    let extras = [("BatchInput", serde_json::json!(5)), ("Items", serde_json::json!("x"))];
    for door in ["alb", "rest", "http", "url"] {
        for (field, value) in &extras {
            let mut event = sample(&format!("{door}-predict"));
            event["isBase64Encoded"] = true.into();
            event["body"] = "this is %% not base64!".into();
            event[*field] = value.clone();
            assert_refused(door, &event, "base64").await;
        }
    }
}

/// `Host: x?` made lambda_http's URI `https://x?/predict`: the path became the query, and the
/// request was routed to the playground. The route comes from the event's path alone.
#[tokio::test]
async fn the_host_never_moves_the_route_off_the_path() {
    for door in ["alb", "rest", "http", "url"] {
        for host in ["x?", "", "x#", "x/y", "?"] {
            for case in ["predict", "health"] {
                let mut event = sample(&format!("{door}-{case}"));
                set_header(&mut event, "Host", host);
                let (status, body) = http_answer(door, &event).await;
                let routed = match case {
                    "predict" => status == 200 && body["output"] == "POS",
                    _ => status == 200 && body.get("status").is_some(),
                };
                assert!(routed || status == 400, "{door}-{case} with Host {host:?}: {status} {body}");
            }
        }
    }
}

/// A Distributed Map batch of one item with this BatchInput.
fn batch_with(input: Value) -> String {
    serde_json::json!({"Items": [{"id": 1, "text": "hola"}], "BatchInput": input}).to_string()
}

#[tokio::test]
async fn unknown_or_mistyped_batch_input_fields_fail_the_batch_naming_them() {
    let cases = [
        (serde_json::json!({"Task": "emotion"}), "\"Task\""),
        (serde_json::json!({"tsk": "ner"}), "\"tsk\""),
        (serde_json::json!({"include_sentence": "yes"}), "include_sentence"),
        (serde_json::json!({"task": 5}), "task"),
        (serde_json::json!(5), "BatchInput"),
        (serde_json::json!("sentiment"), "BatchInput"),
    ];
    for (input, named) in cases {
        let error = invoke(&batch_with(input.clone())).await.unwrap_err();
        assert_eq!(error.error_type, "InvalidBatchInput", "{input}: {}", error.error_message);
        assert!(error.error_message.contains(named), "{input}: {}", error.error_message);
    }
}

/// null is what a state machine's `"BatchInput.$"` gives for a field it does not have: as absent.
#[tokio::test]
async fn a_null_batch_input_is_the_default_model() {
    for input in [Value::Null, serde_json::json!({"task": null, "include_sentence": null})] {
        let answer = invoke(&batch_with(input.clone())).await.unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert_eq!(answer[0]["id"], 1, "{input}: {answer}");
        assert!(answer[0]["output"].is_string(), "{input}: {answer}");
    }
}

fn nested(levels: usize) -> String {
    format!("{}{}", "[".repeat(levels), "]".repeat(levels))
}

#[tokio::test]
async fn a_deeply_nested_event_is_reported_as_too_deep_not_as_not_json() {
    for event in [nested(10_000), format!("{{\"a\": {}}}", nested(10_000))] {
        let error = invoke(&event).await.unwrap_err();
        assert_eq!(error.error_type, "UnsupportedEvent");
        assert!(error.error_message.contains("nested more than 128 levels"), "{}", error.error_message);
    }
    let input =
        format!("{{\"Items\": [{{\"text\": \"hola\"}}], \"BatchInput\": {{\"task\": {}}}}}", nested(10_000));
    let error = invoke(&input).await.unwrap_err();
    assert_eq!(error.error_type, "InvalidBatchInput");
    assert!(error.error_message.contains("nested more than 128 levels"), "{}", error.error_message);
}

/// One item nested too deep is that item's error, in place: the rest of the batch is answered.
#[tokio::test]
async fn a_deeply_nested_item_gets_its_error_in_place() {
    let event = format!("{{\"Items\": [{{\"id\": 1, \"text\": \"hola\"}}, {}]}}", nested(10_000));
    let answer = invoke(&event).await.unwrap();
    assert!(answer[0]["output"].is_string(), "{answer}");
    assert_eq!(answer[1]["error"]["code"], "invalid_request", "{answer}");
    assert!(answer[1]["error"]["message"].as_str().unwrap().contains("nested more than 128 levels"));
}

/// What no check foresaw (here a URI over the http crate's 65,534-byte limit, which only a direct
/// invocation can send) still gets a 400 in the event's shape, not a failed invocation.
#[tokio::test]
async fn an_event_lambda_http_cannot_convert_is_still_a_400_in_its_shape() {
    for door in ["alb", "rest"] {
        let mut event = sample(&format!("{door}-predict"));
        event["queryStringParameters"] = serde_json::json!({"q": "a".repeat(70_000)});
        assert_refused(door, &event, "cannot be made into an HTTP request").await;
    }
}

/// Hostile values in every field the URI is built from, on every front door: each event gets an
/// HTTP answer in its shape, never a 5xx, and (but for the path itself) the route stays the
/// event's own. None needs the last-resort catch: the checks foresee them all.
#[tokio::test]
async fn hostile_uri_fields_never_fail_the_invocation_or_move_the_route() {
    let values = [
        "\"", "<", ">", " ", "?", "#", "@", "\\", "%", "%zz", "//", "..", "", "é", ":", ":99999", "[",
        "xn--zz", "a?b#c", "/../..", "{}", "|", "^", "`", "\t",
    ];
    let models = common::cell(common::fixture("tiny"));
    for door in ["alb", "rest", "http", "url"] {
        for field in ["Host", "X-Forwarded-Proto", "path", "rawQueryString", "stage", "domainName"] {
            for value in values {
                let mut event = sample(&format!("{door}-predict"));
                match field {
                    "path" if door == "http" || door == "url" => {
                        event["rawPath"] = format!("/predict{value}").into()
                    }
                    "path" => event["path"] = format!("/predict{value}").into(),
                    "rawQueryString" => event["rawQueryString"] = value.into(),
                    "stage" | "domainName" if door != "alb" => event["requestContext"][field] = value.into(),
                    "stage" | "domainName" => continue,
                    header => set_header(&mut event, header, value),
                }
                let case = format!("{door} {field}={value:?}");
                let response =
                    invoke_on(models, &event.to_string()).await.unwrap_or_else(|e| panic!("{case}: {e:?}"));
                let status = response["statusCode"].as_u64().unwrap_or_else(|| panic!("{case}: {response}"));
                let body = response["body"].as_str().unwrap_or("");
                assert!(status < 500, "{case}: {response}");
                assert!(!body.contains("cannot be made into an HTTP request"), "{case}: {body}");
                if field != "path" {
                    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{case}: {body}"));
                    assert!(status == 400 || body["output"] == "POS", "{case}: {status} {body}");
                }
            }
        }
    }
}
