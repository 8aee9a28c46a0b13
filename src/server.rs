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
//! - what HTTP asks of every request and hyper does not check (one valid Host, no expectation but
//!   `100-continue`) is checked first, before the key, the body or any work;
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
use lambda_http::http::uri::Authority;
use lambda_http::http::{header, request::Parts, HeaderValue, Method, Request, Response, Version};
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
    let checked = check_head(&parts)
        .and_then(|()| access::authorize(settings.api_key.as_ref(), &parts.method, name, &parts.headers));
    let admitted = match checked {
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

/// What HTTP itself asks of every request, and hyper lets through: exactly one Host with a valid
/// value (RFC 9112 3.2: else 400; an HTTP/1.0 request may have none, and an empty one is allowed),
/// and no expectation but `100-continue` (RFC 9110 10.1.1: else 417).
fn check_head(parts: &Parts) -> Result<(), ApiError> {
    let hosts: Vec<&HeaderValue> = parts.headers.get_all(header::HOST).iter().collect();
    match hosts[..] {
        [] if parts.version < Version::HTTP_11 => {}
        [] => return Err(ApiError::InvalidRequest("an HTTP/1.1 request needs a Host header".into())),
        [host] if valid_host(host) => {}
        [host] => {
            return Err(ApiError::InvalidRequest(format!(
                "the Host header {} is not a host[:port]",
                shown(&String::from_utf8_lossy(host.as_bytes()))
            )))
        }
        _ => {
            let n = hosts.len();
            return Err(ApiError::InvalidRequest(format!(
                "a request needs one Host header; this one has {n}"
            )));
        }
    }
    for value in parts.headers.get_all(header::EXPECT) {
        let members = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let unmet = members
            .split(',')
            .map(str::trim)
            .find(|m| !m.is_empty() && !m.eq_ignore_ascii_case("100-continue"));
        if let Some(member) = unmet {
            return Err(ApiError::ExpectationFailed(format!(
                "the only expectation met here is 100-continue; this request expects {}",
                shown(member)
            )));
        }
    }
    Ok(())
}

/// `uri-host [":" port]`, or empty (RFC 9112 3.2, for a target with no authority).
fn valid_host(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else { return false };
    let Ok(authority) = text.parse::<Authority>() else { return text.is_empty() };
    // What follows the host: nothing, or a port that fits 16 bits (`Authority` takes `:99999`).
    let port = |rest: &str| {
        rest.bytes().all(|b| b.is_ascii_digit()) && (rest.is_empty() || rest.parse::<u16>().is_ok())
    };
    !text.contains('@')
        && match text[authority.host().len()..].strip_prefix(':') {
            None => text.len() == authority.host().len(),
            Some(rest) => port(rest),
        }
}

/// A header value as an error message quotes it: its first 64 characters.
fn shown(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_a_host_and_an_optional_port() {
        let valid = |text: &str| valid_host(&HeaderValue::from_str(text).unwrap());
        for good in ["localhost", "localhost:8080", "127.0.0.1:80", "[::1]:80", "xn--bcher-kva.example", ""] {
            assert!(valid(good), "{good:?}");
        }
        for bad in ["x?", "a b", "example.com:99999", "example.com:abc", "[::1", "user@host", "h/p", "h#"] {
            assert!(!valid(bad), "{bad:?}");
        }
    }
}
