//! The one handler every front door calls: an HTTP request in, a JSON response out.

use std::time::Instant;

use aws_lambda_events::encodings::Body;
use lambda_http::http::{header, HeaderValue, Method, Request, Response};
use serde::Serialize;
use serde_json::json;

use crate::error::{ApiError, ErrorDetail};
use crate::postprocess::Prediction;
use crate::registry::{Entry, Registry};
use crate::request::{check_content_encoding, check_content_type, parse_predict, PredictRequest};
use crate::work::Ticket;

/// The entry of the front doors whose requests nobody abandons or queues (Lambda, the CLI).
pub async fn handle(models: &'static Registry, req: Request<Body>) -> Response<Body> {
    handle_with(models, req, Ticket::unlimited()).await
}

/// Every front door's entry: the request is handled on its own task, so that a panic anywhere on
/// the request path (there should be none) is answered with a 500 JSON error and logged, and
/// never takes down the connection or the Lambda invocation with it. The ticket goes with the
/// work (see `work`).
pub async fn handle_with(models: &'static Registry, req: Request<Body>, ticket: Ticket) -> Response<Body> {
    catch_panics(handle_request(models, req, ticket)).await
}

async fn catch_panics<F>(handling: F) -> Response<Body>
where
    F: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    match tokio::spawn(handling).await {
        Ok(response) => response,
        Err(e) => error_response(&ApiError::Internal(format!("the request handler failed: {e}"))),
    }
}

async fn handle_request(models: &'static Registry, req: Request<Body>, ticket: Ticket) -> Response<Body> {
    let started = Instant::now();
    let result = route(models, &req, ticket).await;
    let status = result.as_ref().map_or_else(ApiError::status, |_| 200);
    // Lengths and counts only: users' texts never reach the logs.
    tracing::info!(
        event = "request",
        method = %req.method(),
        path = req.uri().path(),
        status,
        body_bytes = req.body().len(),
        ms = started.elapsed().as_secs_f64() * 1e3,
    );
    match result {
        Ok(body) => json_response(200, body),
        Err(err) => error_response(&err),
    }
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    // Shedding load is the server working as designed: a warning, so that a burst does not
    // bury real faults in error lines.
    if matches!(err, ApiError::Overloaded(_)) {
        tracing::warn!(event = "error", code = err.code(), message = %err.message());
    } else if err.status() >= 500 {
        tracing::error!(event = "error", code = err.code(), message = %err.message());
    }
    let mut response = json_response(err.status(), err.body().to_string());
    match err {
        ApiError::MethodNotAllowed { allowed, .. } => {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        ApiError::Overloaded(_) => {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    response
}

fn json_response(status: u16, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(body))
        .expect("static status and header are valid")
}

/// The last path segment, on which requests are routed, so that API Gateway stage names and
/// custom-domain base paths (`/prod/predict`, `/api/v1/predict`) reach the same endpoint.
pub fn endpoint(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("")
}

async fn route(models: &'static Registry, req: &Request<Body>, ticket: Ticket) -> Result<String, ApiError> {
    let path = req.uri().path().trim_end_matches('/');
    match endpoint(path) {
        "predict" => {
            allow(req.method(), &[Method::POST], "POST")?;
            predict(models, req, ticket).await
        }
        "health" => {
            allow(req.method(), &[Method::GET, Method::HEAD], "GET")?;
            Ok(health(models).to_string())
        }
        _ => Err(ApiError::NotFound(format!("no route {path:?}; use POST /predict or GET /health"))),
    }
}

fn allow(method: &Method, allowed: &[Method], names: &'static str) -> Result<(), ApiError> {
    match allowed.contains(method) {
        true => Ok(()),
        false => Err(ApiError::MethodNotAllowed { method: method.to_string(), allowed: names }),
    }
}

async fn predict(models: &'static Registry, req: &Request<Body>, ticket: Ticket) -> Result<String, ApiError> {
    let value_of = |name| req.headers().get(name).map(|v: &HeaderValue| v.to_str().unwrap_or("?"));
    check_content_type(value_of(header::CONTENT_TYPE))?;
    check_content_encoding(value_of(header::CONTENT_ENCODING))?;
    let PredictRequest { items, batch, include_sentence, task, lang } = parse_predict(req.body())?;
    let entry = models.resolve(task.as_deref(), lang.as_deref())?;
    let model = models.get(entry).await?;
    // Texts move to the model; each item keeps only its error, if it has one.
    let mut texts = Vec::with_capacity(items.len());
    let errors: Vec<Option<ApiError>> =
        items.into_iter().map(|item| item.map(|t| texts.push(t)).err()).collect();
    let _turn = model.turn().await;
    ticket.waited_in_time()?;
    let worker = model.clone();
    let proceed = move || ticket.still_wanted();
    let predictions = tokio::task::spawn_blocking(move || worker.predict(&texts, include_sentence, proceed))
        .await
        .map_err(|e| ApiError::Internal(format!("inference panicked: {e}")))??;
    let mut predictions = predictions.into_iter();
    let mut results = errors.into_iter().map(|error| match error {
        None => Item::Prediction(predictions.next().expect("one prediction per valid text")),
        Some(e) => Item::Error { error: e.detail() },
    });
    let response = match batch {
        true => PredictResponse::Batch { results: results.collect() },
        false => PredictResponse::One(results.next().expect("one text, one result")),
    };
    // Straight to text, not through serde_json::Value, which would widen f32 probabilities to noisy f64.
    Ok(serde_json::to_string(&response).expect("predictions serialise"))
}

#[derive(Serialize)]
#[serde(untagged)]
enum PredictResponse {
    One(Item),
    Batch { results: Vec<Item> },
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item {
    Prediction(Prediction),
    Error { error: ErrorDetail },
}

/// `model`: the default model (what a request naming no task gets); `models`: every model served.
fn health(models: &Registry) -> serde_json::Value {
    let model = models.default_entry().map_or(serde_json::Value::Null, Entry::describe);
    let all: Vec<serde_json::Value> = models.entries().iter().map(Entry::describe).collect();
    let mut memory = json!(crate::memory::rss());
    memory["budget_mb"] = json!(models.settings().memory_budget_mb);
    json!({ "status": "ok", "model": model, "models": all, "memory": memory })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_with_a_500_json_error() {
        let response = catch_panics(async { panic!("boom") }).await;
        assert_eq!(response.status(), 500);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["code"], "internal_error");
    }
}
