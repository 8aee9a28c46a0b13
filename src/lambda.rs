//! The Lambda front door: it takes the raw event and recognises its kind itself, instead of
//! handing it to `lambda_http::run`, which fails the invocation for any event that is not HTTP
//! and panics inside its request conversion on a body that is not valid base64.
//!
//! - API Gateway (REST, HTTP), function URL and ALB events go to the shared handler through
//!   lambda_http's own conversions, once [`http_event`] has checked the fields those would panic
//!   on, and always get an HTTP response in their own shape;
//! - a Step Functions Distributed Map batch, `{"Items": [...], "BatchInput": {...}}`, gets one
//!   answer per item ([`map_batch`]);
//! - anything else fails the invocation with an `UnsupportedEvent` error that says what it got
//!   (failing, not answering, so that an event source such as SQS retries or dead-letters it).

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;

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

pub mod http_event;
pub mod map_batch;

pub use map_batch::MAX_ITEMS;

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
    let answer = match probe.items.filter(|items| items.get().starts_with('[')) {
        Some(items) => {
            let span = tracing::info_span!("request", request_id = %context.request_id);
            map_batch::answer(models, items, probe.batch_input).instrument(span).await?
        }
        None => http(models, raw, context).await?,
    };
    RawValue::from_string(answer)
        .map_err(|e| failure("ResponseEncoding", format!("cannot encode the answer: {e}")))
}

/// What tells a Distributed Map batch from an HTTP event: Step Functions' ItemBatcher sends
/// `Items` (an array of the objects read from JSON Lines) and the `BatchInput` the state machine
/// sets. Each is kept as raw text, so that a field of the wrong type cannot make the whole
/// probe fail: read all-or-nothing, `"BatchInput": 5` hid an HTTP event's bad body.
#[derive(Deserialize, Default)]
struct Probe<'a> {
    #[serde(rename = "Items", borrow)]
    items: Option<&'a RawValue>,
    #[serde(rename = "BatchInput", borrow)]
    batch_input: Option<&'a RawValue>,
}

fn failure(kind: &str, message: String) -> Diagnostic {
    tracing::error!(event = "invocation_failed", kind, message = %message);
    Diagnostic { error_type: kind.into(), error_message: message }
}

/// An HTTP event, answered by the shared handler in the event's own shape. lambda_http's
/// conversion panics on what it cannot make into a request: `http_event` drops those fields
/// first (a 400 names them), and a panic it did not foresee is still a 400, not a failed
/// invocation (which API Gateway answers with a 502).
async fn http(models: &'static Registry, raw: &str, context: Context) -> Result<String, Diagnostic> {
    let mut request: LambdaRequest = serde_json::from_str(raw).map_err(|_| unsupported(raw))?;
    let refusal = http_event::refusal(&mut request);
    let bare = http_event::bare(&request);
    let response = match converted(models, request, context.clone(), refusal) {
        Ok(answering) => answering.await,
        Err(panic) => {
            let refusal =
                ApiError::InvalidRequest(format!("the event cannot be made into an HTTP request: {panic}"));
            let bare = bare.ok_or_else(|| failure("InvalidEvent", refusal.message()))?;
            let answering = converted(models, bare, context, Some(refusal))
                .map_err(|panic| failure("InvalidEvent", panic))?;
            answering.await
        }
    };
    serde_json::to_string(&response)
        .map_err(|e| failure("ResponseEncoding", format!("cannot encode the response: {e}")))
}

/// The event converted by lambda_http's adapter (public, though undocumented), which also turns
/// the handler's response into the shape the event's origin expects: REST, HTTP API / function
/// URL, or ALB. The conversion happens in the call, not in the future it returns: a panic in it
/// is caught here, and its message returned.
fn converted(
    models: &'static Registry,
    request: LambdaRequest,
    context: Context,
    refusal: Option<ApiError>,
) -> Result<impl Future<Output = impl serde::Serialize>, String> {
    let mut adapter = Adapter::from(service_fn(move |req| {
        let refusal = refusal.clone();
        async move {
            Ok::<_, Infallible>(match refusal {
                Some(err) => handle_with(models, req, Err(err)).await,
                None => handle(models, req).await,
            })
        }
    }));
    let call =
        std::panic::catch_unwind(AssertUnwindSafe(|| adapter.call(LambdaEvent::new(request, context))));
    match call {
        Ok(answering) => Ok(async move { answering.await.unwrap_or_else(|e| match e {}) }),
        Err(panic) => {
            let said =
                panic.downcast_ref::<String>().map(String::as_str).or(panic.downcast_ref::<&str>().copied());
            let said = said.unwrap_or("a panic").chars().take(200).collect::<String>();
            tracing::error!(event = "event_conversion_panicked", message = %said);
            Err(said)
        }
    }
}

/// What a serde_json error says of the text: nesting is told apart from a syntax error (the
/// parser stops at 128 levels, and a 10,000-level event was reported as "not JSON").
fn json_problem(error: &serde_json::Error) -> String {
    match error.to_string().starts_with("recursion limit exceeded") {
        true => "nested more than 128 levels deep".into(),
        false => format!("not JSON ({error})"),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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
        Err(e) => format!("something {}", json_problem(&e)).replace("something not", "something that is not"),
    };
    failure(
        "UnsupportedEvent",
        format!(
            "this function answers API Gateway (REST or HTTP API), function URL and ALB events and \
             Distributed Map batches ({{\"Items\": [...]}}); it got {got}"
        ),
    )
}
