//! The one handler every front door calls: an HTTP request in, a response out. Every response
//! leaves through `finish`, which gives it its request id, its log line and its metrics.

use std::time::Instant;

use aws_lambda_events::encodings::Body;
use lambda_http::http::{header, HeaderValue, Method, Request, Response};
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde::Serialize;
use tracing::Instrument;

use crate::access;
use crate::error::{ApiError, ErrorDetail};
use crate::model::Answer;
use crate::registry::Registry;
use crate::request::{check_content_encoding, check_content_type, parse_predict, PredictRequest};
use crate::work::Ticket;
use crate::{request_id, status};

/// The API's contract (OpenAPI 3.1), served at `/openapi.json` and checked against real answers
/// by `make test` (tests/surface.py).
const OPENAPI: &str = include_str!("web/openapi.json");
/// The playground at `/`: one page, no external resources.
const PLAYGROUND: &str = include_str!("web/playground.html");

/// The entry of the front doors whose requests nobody abandons or queues (Lambda, the CLI).
pub async fn handle(models: &'static Registry, req: Request<Body>) -> Response<Body> {
    handle_with(models, req, Ok(Ticket::unlimited())).await
}

/// Every front door's entry. `admission` is what the front door decided before the handler
/// (the plain server's key, body and capacity checks): a refusal is answered here like any error.
/// The request is handled on its own task, so that a panic anywhere on its path (there should be
/// none) is answered with a 500 JSON error, and a client that hangs up (which drops this future)
/// still leaves its log line and metrics. The ticket goes with the work (see `work`).
pub async fn handle_with(
    models: &'static Registry,
    req: Request<Body>,
    admission: Result<Ticket, ApiError>,
) -> Response<Body> {
    let seen = Seen::of(models, &req);
    let answering = async move {
        match admission {
            Ok(ticket) => route(models, req, ticket).await,
            Err(refusal) => Err(refusal),
        }
    };
    on_own_task(models, seen, answering).await
}

async fn on_own_task<F>(models: &'static Registry, seen: Seen, answering: F) -> Response<Body>
where
    F: std::future::Future<Output = Result<Response<Body>, ApiError>> + Send + 'static,
{
    let span = tracing::info_span!("request", request_id = %seen.id);
    let task = {
        let seen = seen.clone();
        async move {
            let _in_flight = models.metrics().enter();
            finish(models, &seen, answering.await)
        }
    };
    match tokio::spawn(task.instrument(span.clone())).await {
        Ok(response) => response,
        Err(e) => {
            let failed = ApiError::Internal(format!("the request handler failed: {e}"));
            span.in_scope(|| finish(models, &seen, Err(failed)))
        }
    }
}

/// What the answer needs to know of its request once the request itself is consumed.
#[derive(Clone)]
struct Seen {
    id: String,
    started: Instant,
    /// The method's name as logged: cut, since hyper lets a name fill its whole header buffer.
    method: String,
    path: String,
    /// The route the request named (`endpoint_of`), for the metrics.
    endpoint: String,
    body_bytes: usize,
    /// The request's `Origin`, when it is allowed to read the answer (CORS).
    origin: Option<HeaderValue>,
}

impl Seen {
    fn of(models: &Registry, req: &Request<Body>) -> Self {
        Self {
            id: request_id::of(req),
            started: Instant::now(),
            method: shortened(req.method().as_str(), METHOD_SHOWN),
            path: shortened(req.uri().path(), PATH_SHOWN),
            endpoint: endpoint_of(req).to_owned(),
            body_bytes: req.body().len(),
            origin: access::allowed_origin(&models.settings().cors_origins, req.headers()),
        }
    }
}

/// The one way out: the response (or the error's), its log line, its metrics and its headers.
fn finish(models: &Registry, seen: &Seen, result: Result<Response<Body>, ApiError>) -> Response<Body> {
    let code = result.as_ref().err().map(ApiError::code);
    let mut response = result.unwrap_or_else(|err| error_response(&err));
    let seconds = seen.started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    // Lengths and counts only: users' texts never reach the logs.
    let (method, path, body_bytes) = (&seen.method, seen.path.as_str(), seen.body_bytes);
    tracing::info!(event = "request", method = %method, path, status, body_bytes, ms = seconds * 1e3);
    let route = match seen.endpoint.as_str() {
        "" => "playground",
        name => name,
    };
    models.metrics().request(route, status, code, seconds, &seen.id);
    let headers = response.headers_mut();
    if let Ok(id) = HeaderValue::from_str(&seen.id) {
        headers.insert(request_id::HEADER, id);
    }
    access::answer_origin(headers, &models.settings().cors_origins, seen.origin.clone());
    response
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
    let headers = response.headers_mut();
    match err {
        ApiError::MethodNotAllowed { allowed, .. } => {
            headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        ApiError::Overloaded(_) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        ApiError::Unauthorized(_) => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

fn json_response(status: u16, body: String) -> Response<Body> {
    content(status, "application/json", body)
}

fn content(status: u16, content_type: &'static str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::Text(body))
        .expect("static status and header are valid")
}

/// The routes, by name: the last segment of their path.
const ROUTES: [&str; 5] = ["predict", "health", "info", "metrics", "openapi.json"];

/// The route a path names: its last segment, so that API Gateway stage names and custom-domain
/// base paths (`/prod/predict`, `/api/v1/predict`) reach the same endpoint. A path that ends in `/`
/// is a directory, the playground's place under any base path (`/`, `/prod/`, `//`): it names the
/// playground (`""`) unless its last segment is a route (`/health/` is `/health`).
pub fn endpoint(path: &str) -> &str {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    match path.ends_with('/') && !ROUTES.contains(&last) {
        true => "",
        false => last,
    }
}

/// The route a request names: its path's (`endpoint`), except that on Lambda the root of a named
/// stage without its slash (`https://.../prod`, which lambda_http makes `/prod/prod`) is the
/// playground too, as the stage's `/prod/` is.
fn endpoint_of<B>(req: &Request<B>) -> &str {
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.as_deref(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        _ => None,
    };
    let raw = req.raw_http_path().trim_matches('/');
    match stage {
        Some(stage) if stage != "$default" && (raw.is_empty() || raw == stage) => "",
        _ => endpoint(req.uri().path()),
    }
}

/// At most this many characters of a method name, or of a path, go into an error message or a
/// log line: hyper lets either fill its whole header buffer, and a 100 KB name logged on every
/// request stalled the server behind its own stderr.
const METHOD_SHOWN: usize = 16;
const PATH_SHOWN: usize = 256;

fn shortened(text: &str, shown: usize) -> String {
    match text.char_indices().nth(shown) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

const GET: &[Method] = &[Method::GET, Method::HEAD];

async fn route(
    models: &'static Registry,
    req: Request<Body>,
    ticket: Ticket,
) -> Result<Response<Body>, ApiError> {
    if let Some(answer) = access::preflight(&models.settings().cors_origins, req.method(), req.headers()) {
        return answer;
    }
    let path = req.uri().path();
    let on_lambda = req.lambda_context_ref().is_some();
    match endpoint_of(&req) {
        "predict" => {
            allow(req.method(), &[Method::POST], "POST")?;
            Ok(json_response(200, predict(models, &req, ticket).await?))
        }
        "health" => {
            allow(req.method(), GET, "GET").map(|()| json_response(200, status::health(models).to_string()))
        }
        "info" => allow(req.method(), GET, "GET")
            .map(|()| json_response(200, status::info(models, on_lambda).to_string())),
        "metrics" => allow(req.method(), GET, "GET")
            .map(|()| content(200, crate::metrics::CONTENT_TYPE, models.metrics().render())),
        "openapi.json" => allow(req.method(), GET, "GET").map(|()| json_response(200, OPENAPI.into())),
        "" => allow(req.method(), GET, "GET")
            .map(|()| content(200, "text/html; charset=utf-8", PLAYGROUND.into())),
        _ => Err(ApiError::NotFound(format!(
            "no route {:?}; use POST /predict, GET /health, /info, /metrics, /openapi.json or a path \
             ending in / (the playground)",
            shortened(path, PATH_SHOWN)
        ))),
    }
}

fn allow(method: &Method, allowed: &[Method], names: &'static str) -> Result<(), ApiError> {
    match allowed.contains(method) {
        true => Ok(()),
        false => Err(ApiError::MethodNotAllowed {
            method: shortened(method.as_str(), METHOD_SHOWN),
            allowed: names,
        }),
    }
}

async fn predict(models: &'static Registry, req: &Request<Body>, ticket: Ticket) -> Result<String, ApiError> {
    let value_of = |name| req.headers().get(name).map(|v: &HeaderValue| v.to_str().unwrap_or("?"));
    check_content_type(value_of(header::CONTENT_TYPE))?;
    check_content_encoding(value_of(header::CONTENT_ENCODING))?;
    let PredictRequest { items, batch, pair_field, include_sentence, task, lang } =
        parse_predict(req.body())?;
    let entry = models.resolve(task.as_deref(), lang.as_deref())?;
    let model = models.get(entry).await?;
    model.check_pair(pair_field)?;
    // Inputs move to the model; each item keeps only its error, if it has one.
    let mut texts = Vec::with_capacity(items.len());
    let errors: Vec<Option<ApiError>> =
        items.into_iter().map(|item| item.map(|t| texts.push(t)).err()).collect();
    let _turn = model.turn().await;
    ticket.waited_in_time()?;
    let (count, started) = (texts.len(), Instant::now());
    let span = tracing::Span::current();
    // The deadline holds until the work starts on the model's thread too: on a shared pool of
    // threads a request waited there unshed (13.1 s, behind two long NER requests on other models).
    let predictions = model
        .on_own_thread(move |model| {
            span.in_scope(|| {
                ticket.waited_in_time()?;
                model.predict(&texts, include_sentence, || ticket.still_wanted())
            })
        })
        .await??;
    models.metrics().inference(&entry.task, &entry.lang, count, started.elapsed().as_secs_f64());
    let mut predictions = predictions.into_iter();
    let mut results = errors.into_iter().map(|error| match error {
        None => predictions.next().expect("one answer per valid text"),
        Some(e) => Err(e),
    });
    let in_place = |result: Result<Answer, ApiError>| match result {
        Ok(answer) => Item::Answer(answer),
        Err(e) => Item::Error { error: e.detail() },
    };
    let response = match batch {
        true => PredictResponse::Batch { results: results.map(in_place).collect() },
        false => PredictResponse::One(Item::Answer(results.next().expect("one text, one result")?)),
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
    Answer(Answer),
    Error { error: ErrorDetail },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_with_a_500_json_error_and_its_id() {
        let models: &'static Registry =
            Box::leak(Box::new(Registry::new(crate::config::Settings::for_model("/nonexistent"))));
        let req = Request::builder().uri("/predict").header("x-request-id", "r-1").body(Body::Empty).unwrap();
        let response = on_own_task(models, Seen::of(models, &req), async { panic!("boom") }).await;
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-request-id"], "r-1");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["code"], "internal_error");
        assert!(models.metrics().render().contains("route=\"predict\",status=\"500\"} 1"));
    }
}
