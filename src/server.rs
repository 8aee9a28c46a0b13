//! The plain HTTP front door (`sentimiento serve`, Render, local runs): hyper in, the shared handler out.
//!
//! It faces the open internet, so every resource a client can hold is bounded in time or count:
//! - connections: at most `max_connections` open (more are closed as they arrive); a client gets
//!   `header_timeout` to send a request's headers, and as long to start the next one on a kept-alive
//!   connection; a failed `accept` (e.g. out of file descriptors) is logged and retried;
//! - bodies: a declared `Content-Length` over the limit is a 413 before any byte is read (so no
//!   `100 Continue`), and a body gets `body_timeout` to arrive (else 408), read before the request
//!   takes one of the model's slots, so stalled uploads cannot starve it;
//! - work: at most `max_in_flight` requests hold a slot; more get a 503 `overloaded` at once. The
//!   slot goes with the work (`work::Ticket`) and the work stops at its next text when the client
//!   hangs up; a request that waited `queue_timeout` for the model is shed with a 503;
//! - only `POST /predict` reads a body and takes a slot: `/health` and the other GET routes answer
//!   from memory, so a busy instance is not taken for a dead one;
//! - with `SENTIMIENTO_API_KEY` set, `/predict` and `/metrics` without the key get a 401 before
//!   their body is read (access.rs).
//!
//! On shutdown (SIGTERM) it stops accepting, lets requests in flight finish (up to `DRAIN`), then returns.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::http::{header, request::Parts, Method, Request, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::access;
use crate::config::{Settings, MAX_BODY_BYTES};
use crate::error::ApiError;
use crate::handler::{endpoint, handle_with};
use crate::registry::Registry;
use crate::work::Ticket;

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(25);
/// After a failed `accept` (EMFILE, ENFILE, ENOMEM): long enough for connections to close, short
/// enough that a healthy server does not notice.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub async fn serve(
    models: &'static Registry,
    listener: TcpListener,
    in_flight: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tracing::info!(event = "listening", addr = %listener.local_addr()?);
    let settings = models.settings();
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let mut http = http1::Builder::new();
    // Without a timer hyper applies no header timeout at all.
    http.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(event = "accept_failed", error = %e);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = connections.clone().try_acquire_owned() else {
            tracing::warn!(event = "connection_refused", limit = settings.max_connections);
            continue; // dropping the stream closes it
        };
        let in_flight = in_flight.clone();
        let service = service_fn(move |req| {
            let in_flight = in_flight.clone();
            async move { Ok::<_, Infallible>(respond(models, req, in_flight).await) }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(event = "connection_error", error = %e);
            }
            drop(slot);
        });
    }
    tracing::info!(event = "draining", connections = graceful.count());
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!(event = "drain_timeout", seconds = DRAIN.as_secs());
    }
    Ok(())
}

async fn respond(
    models: &'static Registry,
    req: Request<Incoming>,
    in_flight: Arc<Semaphore>,
) -> Response<Full<Bytes>> {
    let arrived = Instant::now();
    let settings = models.settings();
    let (parts, body) = req.into_parts();
    let name = endpoint(parts.uri.path());
    // `_client` lives as long as this future: hyper drops it when the client hangs up.
    let mut _client = None;
    let admitted = match access::authorize(settings.api_key.as_ref(), &parts.method, name, &parts.headers) {
        Err(refusal) => Err(refusal),
        // Only predictions read a body and wait for the model; the rest answer from memory.
        Ok(()) if name != "predict" || parts.method != Method::POST => Ok((Body::Empty, Ticket::unlimited())),
        Ok(()) => admit(settings, &parts, body, &in_flight).await.map(|(body, permit)| {
            let (ticket, client) = Ticket::new(permit, arrived, settings.queue_timeout);
            _client = Some(client);
            (body, ticket)
        }),
    };
    let response = match admitted {
        Ok((body, ticket)) => handle_with(models, Request::from_parts(parts, body), Ok(ticket)).await,
        Err(refusal) => handle_with(models, Request::from_parts(parts, Body::Empty), Err(refusal)).await,
    };
    response.map(|body| Full::new(Bytes::copy_from_slice(&body)))
}

/// The body, read within its deadline, and then a slot for the work.
async fn admit(
    settings: &Settings,
    parts: &Parts,
    body: Incoming,
    in_flight: &Arc<Semaphore>,
) -> Result<(Body, tokio::sync::OwnedSemaphorePermit), ApiError> {
    check_declared_length(parts)?;
    let body = tokio::time::timeout(settings.body_timeout, read_body(body)).await.map_err(|_| {
        ApiError::RequestTimeout(format!(
            "the body did not arrive within {:.0} s",
            settings.body_timeout.as_secs_f64()
        ))
    })??;
    let permit = in_flight
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded("too many requests in flight; retry shortly".into()))?;
    Ok((body, permit))
}

/// A declared length over the limit is refused before the body is touched: hyper sends
/// `100 Continue` only once the body is read, so an `Expect: 100-continue` client gets the 413 at once.
fn check_declared_length(parts: &Parts) -> Result<(), ApiError> {
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(n) if n > MAX_BODY_BYTES as u64 => {
            Err(ApiError::PayloadTooLarge(format!("body is {n} bytes; the limit is {MAX_BODY_BYTES}")))
        }
        _ => Ok(()),
    }
}

/// Reads at most one byte past the limit, so an oversized chunked body is refused without buffering it all.
async fn read_body(body: Incoming) -> Result<Body, ApiError> {
    let bytes = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => ApiError::PayloadTooLarge(format!("body is larger than {MAX_BODY_BYTES} bytes")),
            Err(e) => ApiError::InvalidRequest(format!("cannot read body: {e}")),
        })?
        .to_bytes();
    Ok(if bytes.is_empty() { Body::Empty } else { Body::Binary(bytes.to_vec()) })
}

/// Resolves on SIGTERM (Render, Lambda-less containers) or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = terminate => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!(event = "shutdown_signal");
}
