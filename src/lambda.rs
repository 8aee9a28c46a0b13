//! The Lambda front door: it takes the raw event and recognises its kind itself, instead of
//! handing it to `lambda_http::run`, which fails the invocation for any event that is not HTTP
//! and panics inside its request conversion on a body that is not valid base64.
//!
//! - API Gateway (REST, HTTP), function URL and ALB events go to the shared handler through
//!   lambda_http's own conversions, and always get an HTTP response in their own shape;
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

use crate::error::ApiError;
use crate::handler::{error_response, handle};
use crate::registry::Registry;

pub async fn run(models: &'static Registry) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event| dispatch(models, event))).await
}

/// One invocation: the event as it arrived, answered as its kind expects.
pub async fn dispatch(
    models: &'static Registry,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<Value, Diagnostic> {
    let LambdaEvent { payload, context } = event;
    let raw = payload.get();
    match undecodable_body(raw) {
        None => http(models, raw, context, None).await,
        // The body is dropped before lambda_http converts the event, and the client gets a 400.
        Some(refusal) => http(models, &without_body(raw), context, Some(refusal)).await,
    }
}

async fn http(
    models: &'static Registry,
    raw: &str,
    context: Context,
    refusal: Option<ApiError>,
) -> Result<Value, Diagnostic> {
    let request: LambdaRequest = serde_json::from_str(raw).map_err(|_| unsupported(raw))?;
    // lambda_http's adapter (public, though undocumented) turns the handler's response into the
    // shape the event's origin expects: REST, HTTP API / function URL, or ALB.
    let mut adapter = Adapter::from(service_fn(move |req| {
        let refusal = refusal.clone();
        async move {
            Ok::<_, Infallible>(match refusal {
                Some(err) => error_response(&err),
                None => handle(models, req).await,
            })
        }
    }));
    let response = adapter.call(LambdaEvent::new(request, context)).await.unwrap_or_else(|e| match e {});
    serde_json::to_value(response).map_err(|e| Diagnostic {
        error_type: "ResponseEncoding".into(),
        error_message: format!("cannot encode the response: {e}"),
    })
}

/// The fields that say whether lambda_http would have to decode the body.
#[derive(Deserialize)]
struct BodyProbe<'a> {
    #[serde(default, rename = "isBase64Encoded")]
    base64: bool,
    #[serde(default, borrow)]
    body: Option<std::borrow::Cow<'a, str>>,
}

/// An HTTP event whose body claims base64 but does not decode: the 400 it gets.
fn undecodable_body(raw: &str) -> Option<ApiError> {
    let probe: BodyProbe = serde_json::from_str(raw).ok()?;
    let body = probe.body.filter(|_| probe.base64)?;
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
    tracing::warn!(event = "unsupported_event", got = %got);
    Diagnostic {
        error_type: "UnsupportedEvent".into(),
        error_message: format!(
            "this function answers API Gateway (REST or HTTP API), function URL and ALB events; it got {got}"
        ),
    }
}
