//! What the function counts, in the two forms its platforms read:
//! - Prometheus / OpenMetrics text at `GET /metrics` (the plain server): requests by route and
//!   status, their durations, texts and inference time by model, model load time, requests in flight;
//! - on Lambda, CloudWatch Embedded Metric Format: one JSON line on stdout per request, per
//!   inference and per model load, which CloudWatch Logs turns into metrics without an API call.
//!   Written directly: the EMF crates sit on the `metrics` facade, whose recorder is a second
//!   process-wide global, and the format is one JSON object.
//!
//! The registry of models owns the one `Metrics` of the process (no other global state).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use serde_json::{json, Map, Value};

/// Routes are labelled by name; any other path is `other`, so that clients cannot grow the label set.
const ROUTES: [&str; 6] = ["predict", "health", "info", "metrics", "openapi.json", "playground"];
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where EMF records go: CloudWatch namespace and the function's name (its one fixed dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct Emf {
    pub namespace: String,
    pub function_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    task: String,
    lang: String,
}

pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    texts: Family<ModelLabels, Counter>,
    inference: Family<ModelLabels, Histogram>,
    model_load: Family<ModelLabels, Gauge<f64, AtomicU64>>,
    in_flight: Gauge,
    emf: Option<Emf>,
    /// Until the first request is recorded: that request is the cold start.
    first_request: AtomicBool,
}

/// 1 ms to ~16 s, doubling.
fn seconds_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    pub fn new(emf: Option<Emf>) -> Self {
        let mut registry = prometheus_client::registry::Registry::with_prefix("sentimiento");
        let requests = Family::default();
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(seconds_buckets as fn() -> _);
        let texts = Family::default();
        let inference = Family::<ModelLabels, Histogram>::new_with_constructor(seconds_buckets as fn() -> _);
        let model_load = Family::default();
        let in_flight = Gauge::default();
        registry.register("requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to response, by route",
            durations.clone(),
        );
        registry.register("texts", "Texts classified, by model", texts.clone());
        registry.register(
            "inference_duration_seconds",
            "Model time per request, by model",
            inference.clone(),
        );
        registry.register("model_load_seconds", "How long the model's last load took", model_load.clone());
        registry.register("in_flight_requests", "Requests being handled now", in_flight.clone());
        Self {
            registry,
            requests,
            durations,
            texts,
            inference,
            model_load,
            in_flight,
            emf,
            first_request: AtomicBool::new(true),
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }

    /// Counts the request as in flight until the guard drops.
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// One answered request; `code` is the error code of a non-200 answer.
    pub fn request(&self, endpoint: &str, status: u16, code: Option<&str>, seconds: f64, request_id: &str) {
        let route = ROUTES.into_iter().find(|r| *r == endpoint).unwrap_or("other");
        self.requests.get_or_create(&RequestLabels { route, status }).inc();
        self.durations.get_or_create(&RouteLabels { route }).observe(seconds);
        let cold = self.first_request.swap(false, Ordering::Relaxed);
        let mut metrics = vec![
            ("ColdStart", "Count", f64::from(u8::from(cold))),
            ("RequestMs", "Milliseconds", seconds * 1e3),
        ];
        let mut dimensions = vec![vec!["FunctionName"]];
        let mut fields = json!({ "route": route, "status": status, "request_id": request_id });
        if let Some(code) = code {
            metrics.push(("Errors", "Count", 1.0));
            dimensions.push(vec!["FunctionName", "ErrorCode"]);
            fields["ErrorCode"] = json!(code);
        }
        self.emit(&dimensions, &metrics, fields);
    }

    /// Texts one request had classified by a model, and the model's time for them.
    pub fn inference(&self, task: &str, lang: &str, texts: usize, seconds: f64) {
        let labels = ModelLabels { task: task.into(), lang: lang.into() };
        self.texts.get_or_create(&labels).inc_by(texts as u64);
        self.inference.get_or_create(&labels).observe(seconds);
        let metrics = [("Texts", "Count", texts as f64), ("InferenceMs", "Milliseconds", seconds * 1e3)];
        let dimensions = [vec!["FunctionName"], vec!["FunctionName", "Task", "Lang"]];
        self.emit(&dimensions, &metrics, json!({ "Task": task, "Lang": lang }));
    }

    pub fn model_loaded(&self, task: &str, lang: &str, seconds: f64) {
        self.model_load.get_or_create(&ModelLabels { task: task.into(), lang: lang.into() }).set(seconds);
        let metrics = [("ModelLoadMs", "Milliseconds", seconds * 1e3)];
        let dimensions = [vec!["FunctionName"], vec!["FunctionName", "Task", "Lang"]];
        self.emit(&dimensions, &metrics, json!({ "Task": task, "Lang": lang }));
    }

    /// One EMF line on stdout, written whole (Lambda sends stdout to CloudWatch Logs line by line).
    fn emit(&self, dimensions: &[Vec<&str>], metrics: &[(&str, &str, f64)], fields: Value) {
        if let Some(emf) = &self.emf {
            use std::io::Write;
            let line = emf_record(emf, now_ms(), dimensions, metrics, fields).to_string();
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// An EMF record: the `_aws` metadata that names the metrics and their dimension sets, and the
/// values themselves as top-level fields beside the dimensions and any other properties.
pub fn emf_record(
    emf: &Emf,
    timestamp_ms: u64,
    dimensions: &[Vec<&str>],
    metrics: &[(&str, &str, f64)],
    fields: Value,
) -> Value {
    let names: Vec<Value> =
        metrics.iter().map(|(name, unit, _)| json!({ "Name": name, "Unit": unit })).collect();
    let mut record = Map::new();
    record.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{ "Namespace": emf.namespace, "Dimensions": dimensions, "Metrics": names }],
        }),
    );
    record.insert("FunctionName".into(), json!(emf.function_name));
    if let Value::Object(fields) = fields {
        record.extend(fields);
    }
    for (name, _, value) in metrics {
        record.insert((*name).into(), json!(value));
    }
    Value::Object(record)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a record the way CloudWatch reads it: every metric named in `_aws` is a number at the
    /// top level, every dimension a string, and at most 30 dimensions per set.
    fn assert_valid_emf(record: &Value) {
        let directives = record["_aws"]["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics");
        assert!(record["_aws"]["Timestamp"].as_u64().is_some());
        for directive in directives {
            assert!(directive["Namespace"].as_str().is_some_and(|n| !n.is_empty()));
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(!set.is_empty() && set.len() <= 30);
                for dimension in set {
                    let name = dimension.as_str().unwrap();
                    assert!(record[name].is_string(), "dimension {name} is not a string field: {record}");
                }
            }
            for metric in directive["Metrics"].as_array().unwrap() {
                let name = metric["Name"].as_str().unwrap();
                assert!(record[name].is_number(), "metric {name} has no value: {record}");
                assert!(["Count", "Milliseconds"].contains(&metric["Unit"].as_str().unwrap()));
            }
        }
    }

    fn emf() -> Emf {
        Emf { namespace: "Sentimiento".into(), function_name: "fn".into() }
    }

    #[test]
    fn an_error_record_counts_the_error_under_its_code() {
        let dims = [vec!["FunctionName"], vec!["FunctionName", "ErrorCode"]];
        let metrics =
            [("ColdStart", "Count", 1.0), ("RequestMs", "Milliseconds", 2.5), ("Errors", "Count", 1.0)];
        let record =
            emf_record(&emf(), 1, &dims, &metrics, json!({ "ErrorCode": "invalid_json", "status": 400 }));
        assert_valid_emf(&record);
        assert_eq!(record["ErrorCode"], "invalid_json");
        assert_eq!(record["Errors"], 1.0);
        assert_eq!(record["FunctionName"], "fn");
    }

    #[test]
    fn a_record_missing_a_dimension_is_caught() {
        let record =
            emf_record(&emf(), 1, &[vec!["FunctionName", "Task"]], &[("Texts", "Count", 3.0)], json!({}));
        let caught = std::panic::catch_unwind(|| assert_valid_emf(&record));
        assert!(caught.is_err(), "the checker must reject a record without its Task field");
    }

    #[test]
    fn openmetrics_text_has_counts_histograms_and_bounded_routes() {
        let m = Metrics::new(None);
        m.request("predict", 200, None, 0.02, "a");
        m.request("predict", 400, Some("invalid_json"), 0.001, "b");
        m.request("../../etc/passwd", 404, Some("not_found"), 0.001, "c");
        m.inference("sentiment", "es", 3, 0.05);
        m.model_loaded("sentiment", "es", 0.2);
        let text = m.render();
        assert!(text.contains("sentimiento_requests_total{route=\"predict\",status=\"200\"} 1\n"), "{text}");
        assert!(text.contains("sentimiento_requests_total{route=\"other\",status=\"404\"} 1\n"), "{text}");
        assert!(text.contains("sentimiento_texts_total{task=\"sentiment\",lang=\"es\"} 3\n"), "{text}");
        assert!(text.contains("sentimiento_request_duration_seconds_count{route=\"predict\"} 2\n"), "{text}");
        assert!(
            text.contains("sentimiento_model_load_seconds{task=\"sentiment\",lang=\"es\"} 0.2\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn in_flight_counts_until_the_guard_drops() {
        let m = Metrics::new(None);
        let guard = m.enter();
        assert!(m.render().contains("sentimiento_in_flight_requests 1\n"));
        drop(guard);
        assert!(m.render().contains("sentimiento_in_flight_requests 0\n"));
    }
}
