//! The Lambda front door: it takes the raw event and recognises its kind itself, instead of
//! handing it to `lambda_http::run`, which fails the invocation for any event that is not HTTP
//! and panics inside its request conversion on a body that is not valid base64.
//!
//! - API Gateway (REST, HTTP), function URL and ALB events go to the shared handler through
//!   lambda_http's own conversions, and always get an HTTP response in their own shape;
//! - a Step Functions Distributed Map batch, `{"Items": [{"text", "id"}, ...], "BatchInput":
//!   {"task", "lang"}}`, gets one answer per item, in order, each as `sentimiento predict` writes
//!   it for a JSON line (errors in place);
//! - anything else fails the invocation with an `UnsupportedEvent` error that says what it got
//!   (failing, not answering, so that an event source such as SQS retries or dead-letters it).

use std::convert::Infallible;

use base64::Engine;
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Context, LambdaEvent, Service};
use lambda_runtime::Diagnostic;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tracing::Instrument;

use crate::error::ApiError;
use crate::handler::{handle, handle_with};
use crate::registry::Registry;

/// Items of one Distributed Map batch: ItemBatcher's MaxItemsPerBatch should stay at or below it,
/// so that a batch fits the function's timeout at its CPU share (README, "Bulk scoring").
pub const MAX_ITEMS: usize = 256;

pub async fn run(models: &'static Registry) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event| dispatch(models, event))).await
}

/// One invocation: the event as it arrived, answered as its kind expects (as JSON text, so that
/// probabilities keep their f32 digits).
pub async fn dispatch(
    models: &'static Registry,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Box<RawValue>, Diagnostic> {
    let LambdaEvent { payload, context } = event;
    let raw = payload.get();
    let probe: Probe = serde_json::from_str(raw).unwrap_or_default();
    let answer = match (probe.items, undecodable_body(probe.base64, probe.body)) {
        (Some(items), _) => {
            let span = tracing::info_span!("request", request_id = %context.request_id);
            map_batch(models, items, probe.batch_input).instrument(span).await?
        }
        (None, None) => http(models, raw, context, None).await?,
        // The body is dropped before lambda_http converts the event, and the client gets a 400.
        (None, Some(refusal)) => http(models, &without_body(raw), context, Some(refusal)).await?,
    };
    RawValue::from_string(answer)
        .map_err(|e| failure("ResponseEncoding", format!("cannot encode the answer: {e}")))
}

/// The fields that tell the kinds of event apart, read in one pass: Step Functions' ItemBatcher
/// sends `Items` (objects read from JSON Lines) and the `BatchInput` the state machine sets; an
/// HTTP event may carry a body lambda_http would have to decode from base64.
#[derive(Deserialize, Default)]
struct Probe<'a> {
    #[serde(rename = "Items")]
    items: Option<Vec<Value>>,
    #[serde(rename = "BatchInput", default)]
    batch_input: BatchInput,
    #[serde(default, rename = "isBase64Encoded")]
    base64: bool,
    #[serde(default, borrow)]
    body: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
struct BatchInput {
    task: Option<String>,
    lang: Option<String>,
    #[serde(default)]
    include_sentence: bool,
}

/// A JSON array with one answer per item, in order. Whole-batch problems (an unknown model, a
/// model that cannot load, too many items) fail the invocation, so that Step Functions retries
/// or reports it; a bad item gets its error in place.
async fn map_batch(
    models: &'static Registry,
    items: Vec<Value>,
    input: BatchInput,
) -> Result<String, Diagnostic> {
    if items.len() > MAX_ITEMS {
        let message =
            format!("{} items; at most {MAX_ITEMS} per batch (ItemBatcher MaxItemsPerBatch)", items.len());
        return Err(failure("BatchTooLarge", message));
    }
    let BatchInput { task, lang, include_sentence } = input;
    let entry =
        models.resolve(task.as_deref(), lang.as_deref()).map_err(|e| failure(e.code(), e.message()))?;
    let model = models.get(entry).await.map_err(|e| failure(e.code(), e.message()))?;
    let (count, started) = (items.len(), std::time::Instant::now());
    let span = tracing::Span::current();
    let lines = tokio::task::spawn_blocking(move || {
        let _in_span = span.enter();
        items.iter().map(|item| crate::bulk::answer(&model, item, include_sentence).0).collect::<Vec<_>>()
    })
    .await
    .map_err(|e| failure("InferencePanicked", e.to_string()))?;
    models.metrics().inference(&entry.task, &entry.lang, count, started.elapsed().as_secs_f64());
    tracing::info!(event = "map_batch", items = lines.len(), task = %entry.task, lang = %entry.lang);
    Ok(format!("[{}]", lines.join(",")))
}

fn failure(kind: &str, message: String) -> Diagnostic {
    tracing::error!(event = "invocation_failed", kind, message = %message);
    Diagnostic { error_type: kind.into(), error_message: message }
}

async fn http(
    models: &'static Registry,
    raw: &str,
    context: Context,
    refusal: Option<ApiError>,
) -> Result<String, Diagnostic> {
    let request: LambdaRequest = serde_json::from_str(raw).map_err(|_| unsupported(raw))?;
    // lambda_http's adapter (public, though undocumented) turns the handler's response into the
    // shape the event's origin expects: REST, HTTP API / function URL, or ALB.
    let mut adapter = Adapter::from(service_fn(move |req| {
        let refusal = refusal.clone();
        async move {
            Ok::<_, Infallible>(match refusal {
                Some(err) => handle_with(models, req, Err(err)).await,
                None => handle(models, req).await,
            })
        }
    }));
    let response = adapter.call(LambdaEvent::new(request, context)).await.unwrap_or_else(|e| match e {});
    serde_json::to_string(&response)
        .map_err(|e| failure("ResponseEncoding", format!("cannot encode the response: {e}")))
}

/// An HTTP event whose body claims base64 but does not decode: the 400 it gets.
fn undecodable_body(is_base64: bool, body: Option<std::borrow::Cow<str>>) -> Option<ApiError> {
    let body = body.filter(|_| is_base64)?;
    let error = base64::engine::general_purpose::STANDARD.decode(body.as_bytes()).err()?;
    Some(ApiError::InvalidRequest(format!(
        "the event's body is marked base64 but is not valid base64: {error}"
    )))
}

fn without_body(raw: &str) -> String {
    let mut event: Value = serde_json::from_str(raw).unwrap_or_default();
    if let Some(fields) = event.as_object_mut() {
        fields.insert("body".into(), Value::Null);
        fields.insert("isBase64Encoded".into(), Value::Bool(false));
    }
    event.to_string()
}

fn unsupported(raw: &str) -> Diagnostic {
    let got = match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(fields)) if fields.is_empty() => "an empty JSON object".to_string(),
        Ok(Value::Object(fields)) => {
            let keys: Vec<&String> = fields.keys().take(8).collect();
            format!("a JSON object with keys {keys:?}")
        }
        Ok(Value::Array(items)) => format!("a JSON array of {} items", items.len()),
        Ok(Value::String(_)) => "a JSON string".into(),
        Ok(other) => format!("the JSON value {other}"),
        Err(_) => "something that is not JSON".into(),
    };
    failure(
        "UnsupportedEvent",
        format!(
            "this function answers API Gateway (REST or HTTP API), function URL and ALB events and \
             Distributed Map batches ({{\"Items\": [...]}}); it got {got}"
        ),
    )
}
