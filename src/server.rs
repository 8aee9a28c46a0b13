//! The plain HTTP front door (`sentimiento serve`, Render, local runs): hyper in, the shared handler out.

use std::convert::Infallible;

use aws_lambda_events::encodings::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::http::{Request, Response};
use tokio::net::TcpListener;

use crate::config::MAX_BODY_BYTES;
use crate::error::ApiError;
use crate::handler::{error_response, handle};
use crate::model::ModelCell;

pub async fn serve(cell: &'static ModelCell, listener: TcpListener) -> std::io::Result<()> {
    tracing::info!(event = "listening", addr = %listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service =
            service_fn(move |req| async move { Ok::<_, Infallible>(respond(cell, req).await) });
        tokio::spawn(async move {
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(event = "connection_error", error = %e);
            }
        });
    }
}

async fn respond(cell: &'static ModelCell, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let response = match read_body(req).await {
        Ok(req) => handle(cell, req).await,
        Err(err) => error_response(&err),
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
            Ok(_) => {
                ApiError::PayloadTooLarge(format!("body is larger than {MAX_BODY_BYTES} bytes"))
            }
            Err(e) => ApiError::InvalidRequest(format!("cannot read body: {e}")),
        })?
        .to_bytes();
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        Body::Binary(bytes.to_vec())
    };
    Ok(Request::from_parts(parts, body))
}
