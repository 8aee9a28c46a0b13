//! The plain HTTP front door (`sentimiento serve`, Render, local runs): hyper in, the shared handler out.
//!
//! Bounded: at most `max_in_flight` requests are handled or queued for the model at once; the next
//! gets a 503 `overloaded` at once instead of growing a queue. On shutdown (SIGTERM) it stops
//! accepting, lets requests in flight finish (up to `DRAIN`), then returns.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::encodings::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::http::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::handler::{endpoint, error_response, handle};
use crate::registry::Registry;

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(25);

pub async fn serve(
    models: &'static Registry,
    listener: TcpListener,
    in_flight: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tracing::info!(event = "listening", addr = %listener.local_addr()?);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => accepted?.0,
            () = &mut shutdown => break,
        };
        let in_flight = in_flight.clone();
        let service = service_fn(move |req| {
            let in_flight = in_flight.clone();
            async move { Ok::<_, Infallible>(respond(models, req, in_flight).await) }
        });
        let connection =
            graceful.watch(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(event = "connection_error", error = %e);
            }
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
    // Health checks stay cheap and are never refused, so a busy instance is not taken for a dead one.
    let is_health = endpoint(req.uri().path()) == "health";
    let permit = if is_health { None } else { in_flight.try_acquire_owned().ok() };
    let response = match (is_health, permit) {
        (false, None) => {
            error_response(&ApiError::Overloaded("too many requests in flight; retry shortly".into()))
        }
        (_, _permit) => match read_body(req).await {
            Ok(req) => handle(models, req).await,
            Err(err) => error_response(&err),
        },
    };
    response.map(|body| Full::new(Bytes::copy_from_slice(&body)))
}

/// Reads at most one byte past the limit, so an oversized body is refused without buffering it all.
async fn read_body(req: Request<Incoming>) -> Result<Request<Body>, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| match e.downcast::<http_body_util::LengthLimitError>() {
            Ok(_) => ApiError::PayloadTooLarge(format!("body is larger than {MAX_BODY_BYTES} bytes")),
            Err(e) => ApiError::InvalidRequest(format!("cannot read body: {e}")),
        })?
        .to_bytes();
    let body = if bytes.is_empty() { Body::Empty } else { Body::Binary(bytes.to_vec()) };
    Ok(Request::from_parts(parts, body))
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
