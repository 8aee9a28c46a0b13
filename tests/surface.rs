//! The production surface: request ids, /info, the OpenAPI document, metrics, the API key, CORS
//! and the playground page, through the plain server over loopback and the Lambda front door.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fixture, registry};
use sentimiento::access::ApiKey;
use sentimiento::config::Settings;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

async fn start(settings: Settings) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let slots = Arc::new(Semaphore::new(8));
    tokio::spawn(sentimiento::server::serve(registry(settings), listener, slots, std::future::pending()));
    addr
}

fn tiny() -> Settings {
    Settings::for_model(fixture("tiny"))
}

struct Answer {
    status: u16,
    headers: BTreeMap<String, Vec<String>>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request with `Connection: close`: `headers` as "name: value" lines.
async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        head += &format!("{h}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.entry(name.to_ascii_lowercase()).or_default().push(value.trim().to_string());
    }
    Answer { status, headers, body: body.to_string() }
}

const JSON: &str = "Content-Type: application/json";

#[tokio::test]
async fn every_answer_has_a_request_id_and_a_callers_good_id_is_kept() {
    let addr = start(tiny()).await;
    let body = r#"{"text": "me encanta"}"#;
    let mut seen = Vec::new();
    for (method, path, body) in
        [("POST", "/predict", body), ("GET", "/health", ""), ("GET", "/nope", ""), ("PUT", "/info", "")]
    {
        let answer = send(addr, method, path, &[JSON], body).await;
        let id = answer.header("x-request-id").unwrap_or_else(|| panic!("{method} {path}: no id"));
        seen.push(id.to_string());
    }
    seen.dedup();
    assert_eq!(seen.len(), 4, "ids are new per request: {seen:?}");
    let answer = send(addr, "POST", "/predict", &[JSON, "X-Request-Id: trace-7f3a"], body).await;
    assert_eq!(answer.header("x-request-id"), Some("trace-7f3a"));
    let spaced = send(addr, "POST", "/predict", &[JSON, "X-Request-Id: has space"], body).await;
    assert_ne!(spaced.header("x-request-id"), Some("has space"));
}

#[tokio::test]
async fn info_describes_models_and_limits_without_loading_a_model() {
    let mut settings = tiny();
    settings.max_in_flight = 7;
    let addr = start(settings).await;
    let info = send(addr, "GET", "/info", &[], "").await.json();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let model = &info["models"][0];
    assert_eq!(model["labels"], json!(["NEG", "NEU", "POS"]), "{info}");
    assert_eq!(
        (model["task"].as_str(), model["loaded"].as_bool(), model["default"].as_bool()),
        (Some("sentiment"), Some(false), Some(true))
    );
    assert!(model["max_tokens"].as_u64().is_some(), "{info}");
    assert_eq!((&model["pair"], &model["labels_per"]), (&json!(null), &json!("text")), "{info}");
    let limits = &info["limits"];
    assert_eq!(limits["max_in_flight"], 7);
    assert_eq!(limits["max_batch"], sentimiento::config::MAX_BATCH);
    assert_eq!(limits["body_timeout_s"], 10.0);
    assert_eq!(info["api_key_required"], false);
    send(addr, "POST", "/predict", &[JSON], r#"{"text": "hola"}"#).await;
    assert_eq!(send(addr, "GET", "/info", &[], "").await.json()["models"][0]["loaded"], true);
}

#[tokio::test]
async fn the_openapi_document_is_served_and_names_every_route() {
    let addr = start(tiny()).await;
    let doc = send(addr, "GET", "/openapi.json", &[], "").await.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"), "bump the document with the crate");
    for (path, method) in [
        ("/predict", "post"),
        ("/health", "get"),
        ("/info", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} is not in the document");
        let answer = send(
            addr,
            &method.to_uppercase(),
            path,
            &[JSON],
            if method == "post" { r#"{"text": "hola"}"# } else { "" },
        )
        .await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
    }
    let codes = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"].clone();
    for code in ["invalid_json", "unauthorized", "payload_too_large", "overloaded", "internal_error"] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{code} missing from {codes}");
    }
}

/// Checks OpenMetrics text as a scraper reads it: TYPE before samples, sample lines of the form
/// `name{label="value",...} number`, histogram buckets cumulative with `+Inf` equal to `_count`,
/// and `# EOF` last. Returns every sample by its name and labels.
fn parse_openmetrics(text: &str) -> BTreeMap<String, f64> {
    let sample = regex::Regex::new(
        r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$"#,
    )
    .unwrap();
    let mut types = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{text}");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let captures = sample.captures(line).unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let name = &captures[1];
        assert!(types.keys().any(|family| name.starts_with(family.as_str())), "{name} has no TYPE before it");
        let value: f64 = captures[3].parse().unwrap_or_else(|_| panic!("{line}: not a number"));
        samples.insert(format!("{name}{}", captures.get(2).map_or("", |m| m.as_str())), value);
    }
    for (name, _) in types.iter().filter(|(_, kind)| *kind == "histogram") {
        let counts: Vec<(&String, &f64)> =
            samples.iter().filter(|(k, _)| k.starts_with(&format!("{name}_count"))).collect();
        for (count_key, count) in counts {
            let labels = &count_key[format!("{name}_count").len()..];
            let inner = labels.trim_start_matches('{').trim_end_matches('}');
            let buckets: Vec<f64> = samples
                .iter()
                .filter(|(k, _)| k.starts_with(&format!("{name}_bucket")) && k.contains(inner))
                .map(|(_, v)| *v)
                .collect();
            let inf = samples.iter().find(|(k, _)| {
                k.starts_with(&format!("{name}_bucket")) && k.contains(inner) && k.contains("+Inf")
            });
            assert_eq!(inf.map(|(_, v)| v), Some(count), "{name}{labels}: +Inf bucket is not the count");
            assert!(buckets.iter().all(|b| b <= count), "{name}{labels}: a bucket over the count");
        }
    }
    samples
}

#[tokio::test]
async fn metrics_count_requests_texts_and_model_loads() {
    let addr = start(tiny()).await;
    send(addr, "POST", "/predict", &[JSON], r#"{"texts": ["me encanta", "odio esto", "hola"]}"#).await;
    send(addr, "POST", "/predict", &[JSON], "{not json").await;
    let answer = send(addr, "GET", "/metrics", &[], "").await;
    assert!(answer.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let samples = parse_openmetrics(&answer.body);
    let value =
        |key: &str| samples.get(key).copied().unwrap_or_else(|| panic!("no {key} in {}", answer.body));
    assert_eq!(value(r#"sentimiento_requests_total{route="predict",status="200"}"#), 1.0);
    assert_eq!(value(r#"sentimiento_requests_total{route="predict",status="400"}"#), 1.0);
    assert_eq!(value(r#"sentimiento_texts_total{task="sentiment",lang="es"}"#), 3.0);
    assert!(value(r#"sentimiento_model_load_seconds{task="sentiment",lang="es"}"#) > 0.0);
    assert_eq!(value(r#"sentimiento_request_duration_seconds_count{route="predict"}"#), 2.0);
    assert_eq!(value("sentimiento_in_flight_requests"), 1.0, "the /metrics request itself");
}

fn with_key() -> Settings {
    let mut settings = tiny();
    settings.api_key = Some(ApiKey("k-123".into()));
    settings
}

#[tokio::test]
async fn with_an_api_key_predict_and_metrics_need_it_and_health_stays_open() {
    let addr = start(with_key()).await;
    let body = r#"{"text": "me encanta"}"#;
    for (headers, status) in [
        (vec![JSON], 401),
        (vec![JSON, "Authorization: Bearer nope"], 401),
        (vec![JSON, "Authorization: Bearer k-123"], 200),
    ] {
        let answer = send(addr, "POST", "/predict", &headers, body).await;
        assert_eq!(answer.status, status, "{headers:?}: {}", answer.body);
        if status == 401 {
            assert_eq!(answer.json()["error"]["code"], "unauthorized");
            assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        }
    }
    assert_eq!(send(addr, "GET", "/metrics", &[], "").await.status, 401);
    assert_eq!(send(addr, "GET", "/metrics", &["Authorization: Bearer k-123"], "").await.status, 200);
    assert_eq!(send(addr, "GET", "/health", &[], "").await.status, 200);
    assert_eq!(send(addr, "GET", "/info", &[], "").await.json()["api_key_required"], true);
}

#[tokio::test]
async fn a_request_without_the_key_is_refused_before_its_body_is_read() {
    let addr = start(with_key()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Announces 500 KB and sends none of it: the 401 must not wait for the body.
    let head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut reply = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut reply)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 401"));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn cors_answers_preflights_and_lets_listed_origins_read_answers() {
    let mut settings = tiny();
    settings.cors_origins = vec!["https://app.example".into()];
    let addr = start(settings).await;
    let ask = |origin: &'static str| {
        vec![
            Box::leak(format!("Origin: {origin}").into_boxed_str()) as &str,
            "Access-Control-Request-Method: POST",
        ]
    };
    let ok = send(addr, "OPTIONS", "/predict", &ask("https://app.example"), "").await;
    assert_eq!(ok.status, 204, "{}", ok.body);
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://app.example"));
    assert!(ok.header("access-control-allow-headers").unwrap().contains("authorization"));
    let refused = send(addr, "OPTIONS", "/predict", &ask("https://evil.example"), "").await;
    assert_eq!((refused.status, refused.json()["error"]["code"].as_str()), (403, Some("origin_not_allowed")));
    let answer =
        send(addr, "POST", "/predict", &[JSON, "Origin: https://app.example"], r#"{"text": "hola"}"#).await;
    assert_eq!(answer.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(answer.header("access-control-expose-headers"), Some("x-request-id"));
    let other =
        send(addr, "POST", "/predict", &[JSON, "Origin: https://evil.example"], r#"{"text": "hola"}"#).await;
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn the_playground_is_one_page_with_nothing_fetched_from_elsewhere() {
    let addr = start(tiny()).await;
    let page = send(addr, "GET", "/", &[], "").await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.contains("<textarea") && page.body.contains("predict"));
    let external = regex::Regex::new(r#"(src|href)\s*=\s*["']?(https?:)?//"#).unwrap();
    assert!(!external.is_match(&page.body), "the page loads something from another host");
}

/// The binary's own log lines: every line of a request carries its id, the model load it
/// triggered included, so `{ $.span.request_id = "..." }` finds all of them.
#[test]
fn every_log_line_of_a_request_carries_its_id() {
    let (mut server, addr) = common::serve_binary("tiny", &[]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(send(
        addr,
        "POST",
        "/predict",
        &[JSON, "X-Request-Id: follow-me-1"],
        r#"{"text": "hola"}"#,
    ));
    assert_eq!(answer.status, 200);
    server.kill().unwrap();
    let logs = String::from_utf8(server.wait_with_output().unwrap().stderr).unwrap();
    let mine: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["span"]["request_id"] == "follow-me-1")
        .collect();
    let events: Vec<&str> = mine.iter().filter_map(|l| l["fields"]["event"].as_str()).collect();
    assert_eq!(events, ["model_loaded", "first_run", "request"], "{logs}");
}

#[tokio::test]
async fn on_lambda_the_answer_carries_the_invocations_request_id() {
    let event = std::fs::read_to_string(fixture("../../events/http-predict.json")).unwrap();
    let models = common::cell(fixture("tiny"));
    let mut context = lambda_http::Context::default();
    context.request_id = "8f5e-lambda".into();
    let raw = serde_json::value::RawValue::from_string(event).unwrap();
    let answer =
        sentimiento::lambda::dispatch(models, lambda_http::LambdaEvent::new(raw, context)).await.unwrap();
    let answer: Value = serde_json::from_str(answer.get()).unwrap();
    assert_eq!(answer["headers"]["x-request-id"], "8f5e-lambda", "{answer}");
    let info = sentimiento::status::info(models, true);
    assert_eq!(info["front_door"], "lambda");
    assert!(info["limits"].get("max_in_flight").is_none(), "the server's limits do not apply on Lambda");
}

/// The page under a stage or base path: any GET of a path ending in `/` is the playground, on the
/// plain server as on Lambda, while the routes keep their answers whatever precedes them.
#[tokio::test]
async fn the_playground_answers_under_any_base_path_and_the_routes_keep_theirs() {
    let models = common::cell(fixture("tiny"));
    let page = |path: &'static str| async move {
        let req = lambda_http::http::Request::builder().uri(path).body(lambda_http::Body::Empty).unwrap();
        let response = sentimiento::handler::handle(models, req).await;
        (response.status().as_u16(), response.headers().get("content-type").cloned())
    };
    for path in ["/", "//", "/prod/", "/prod//", "/api/v1/"] {
        let (status, content_type) = page(path).await;
        assert_eq!(status, 200, "GET {path}");
        assert!(content_type.unwrap().to_str().unwrap().starts_with("text/html"), "GET {path}");
    }
    for (method, path, status) in [
        ("GET", "/predict", 405),
        ("GET", "/prod/predict", 405),
        ("POST", "/prod/", 405),
        ("GET", "/prod/health/", 200),
        ("GET", "/nope", 404),
        ("GET", "/prod/nope", 404),
    ] {
        let reply = common::call(models, method, path, None).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.json);
    }
}

/// API Gateway puts the stage in the path (lambda_http adds it to REST paths): the stage's root,
/// with or without its slash, is the playground.
#[tokio::test]
async fn on_lambda_the_playground_answers_at_a_stages_root() {
    let models = common::cell(fixture("tiny"));
    let rest = |path: &str| {
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("../../events/rest-health.json")).unwrap())
                .unwrap();
        (event["path"], event["resource"]) = (json!(path), json!(path));
        event
    };
    let http = |raw_path: &str, stage: &str| {
        let mut event: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("../../events/http-health.json")).unwrap())
                .unwrap();
        event["rawPath"] = json!(raw_path);
        event["requestContext"]["http"]["path"] = json!(raw_path);
        event["requestContext"]["stage"] = json!(stage);
        event
    };
    for (event, what) in [
        (rest("/"), "REST, stage prod, /"),
        (http("/prod", "prod"), "HTTP API, /prod"),
        (http("/prod/", "prod"), "HTTP API, /prod/"),
        (http("/", "$default"), "HTTP API, $default stage"),
    ] {
        let raw = serde_json::value::RawValue::from_string(event.to_string()).unwrap();
        let event = lambda_http::LambdaEvent::new(raw, lambda_http::Context::default());
        let answer = sentimiento::lambda::dispatch(models, event).await.unwrap();
        let answer: Value = serde_json::from_str(answer.get()).unwrap();
        assert_eq!(answer["statusCode"], 200, "{what}: {answer}");
        assert!(answer["body"].as_str().unwrap().contains("<textarea"), "{what}: {answer}");
    }
    let raw = serde_json::value::RawValue::from_string(http("/prod/nope", "prod").to_string()).unwrap();
    let answer =
        sentimiento::lambda::dispatch(models, lambda_http::LambdaEvent::new(raw, Default::default()))
            .await
            .unwrap();
    assert_eq!(serde_json::from_str::<Value>(answer.get()).unwrap()["statusCode"], 404);
}

/// The page's API calls resolve against its own URL: its `apiUrl`, run under node, keeps every
/// call on the page's origin and in the page's directory wherever the page is served (at
/// `http://h//` a plain `"//" + "predict"` was `http://predict/`, with the key), and refuses a
/// URL that would leave the origin.
#[test]
fn the_playgrounds_api_calls_never_leave_its_origin() {
    let page = include_str!("../src/web/playground.html");
    let (_, script) =
        page.split_once(r#"<script id="api-url">"#).expect("the page's URL logic in its own script");
    let (script, _) = script.split_once("</script>").unwrap();
    let checks = r#"
        const cases = [
          ["http://h/", "http://h/predict"], ["http://h//", "http://h/predict"],
          ["http://h/prod/", "http://h/prod/predict"], ["http://h/prod//", "http://h/prod/predict"],
          ["http://h/prod", "http://h/prod/predict"], ["http://h//evil.example/", "http://h/evil.example/predict"],
          ["http://h///evil.example//x", "http://h/evil.example/x/predict"],
          ["https://h:8443/a//b/?q=//x#//y", "https://h:8443/a/b/predict"],
        ];
        for (const [href, want] of cases) {
          const got = apiUrl("predict", href).href;
          if (got !== want) throw new Error(`at ${href}: ${got}, expected ${want}`);
        }
        for (const name of ["//evil.example/predict", "http://evil.example/", "https:evil.example"]) {
          let refused = false;
          try { apiUrl(name, "http://h/"); } catch (e) { refused = true; }
          if (!refused) throw new Error(`${name} was not refused`);
        }
    "#;
    let run = std::process::Command::new("node")
        .arg("-e")
        .arg(format!("{script}\n{checks}"))
        .output()
        .expect("node (v18+) runs the page's script");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
}

#[tokio::test]
async fn with_cors_every_answer_varies_on_origin() {
    let mut settings = tiny();
    settings.cors_origins = vec!["https://app.example".into()];
    let addr = start(settings).await;
    let predict = r#"{"text": "hola"}"#;
    for (method, path, headers, body) in [
        ("GET", "/health", vec![], ""),
        ("GET", "/nope", vec![], ""),
        ("POST", "/predict", vec![JSON], predict),
        ("POST", "/predict", vec![JSON, "Origin: https://evil.example"], predict),
        ("POST", "/predict", vec![JSON, "Origin: https://app.example"], predict),
        (
            "OPTIONS",
            "/predict",
            vec!["Origin: https://evil.example", "Access-Control-Request-Method: POST"],
            "",
        ),
        (
            "OPTIONS",
            "/predict",
            vec!["Origin: https://app.example", "Access-Control-Request-Method: POST"],
            "",
        ),
    ] {
        let answer = send(addr, method, path, &headers, body).await;
        assert_eq!(
            answer.headers.get("vary"),
            Some(&vec!["Origin".to_string()]),
            "{method} {path} {headers:?}"
        );
    }
    let plain = start(tiny()).await;
    assert_eq!(
        send(plain, "GET", "/health", &["Origin: https://app.example"], "").await.header("vary"),
        None
    );
}
