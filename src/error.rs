//! The one error type of the request path, and its one mapping to HTTP status codes.

use serde_json::json;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The body is not JSON (syntax error, not UTF-8).
    InvalidJson(String),
    /// JSON, but not the shape `/predict` takes; or a request HTTP itself refuses (no Host, two).
    InvalidRequest(String),
    /// No model is served for the `task` and `lang` the request named (the message lists them).
    UnknownModel(String),
    /// The plain server's API key is missing or wrong.
    Unauthorized(String),
    /// A CORS preflight from an origin not on the allow-list.
    OriginNotAllowed(String),
    NotFound(String),
    MethodNotAllowed {
        method: String,
        allowed: &'static str,
    },
    /// The client did not send its body in time (plain HTTP server).
    RequestTimeout(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    /// An `Expect` other than `100-continue` (plain HTTP server).
    ExpectationFailed(String),
    /// The model (or ONNX Runtime) cannot be loaded; the next request tries again.
    ModelUnavailable(String),
    /// Too many requests in flight (plain HTTP server): try again shortly.
    Overloaded(String),
    /// A bug or a broken model at inference time: never the client's fault.
    Internal(String),
    /// The client hung up before its answer: the work stopped (logged; nobody reads the response).
    ClientGone,
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidJson(_) | Self::InvalidRequest(_) | Self::UnknownModel(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::OriginNotAllowed(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::RequestTimeout(_) => 408,
            Self::PayloadTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::ExpectationFailed(_) => 417,
            Self::Internal(_) => 500,
            Self::ModelUnavailable(_) | Self::Overloaded(_) => 503,
            // nginx's "client closed request": only ever logged.
            Self::ClientGone => 499,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::UnknownModel(_) => "unknown_model",
            Self::Unauthorized(_) => "unauthorized",
            Self::OriginNotAllowed(_) => "origin_not_allowed",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::RequestTimeout(_) => "request_timeout",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::ExpectationFailed(_) => "expectation_failed",
            Self::ModelUnavailable(_) => "model_unavailable",
            Self::Overloaded(_) => "overloaded",
            Self::Internal(_) => "internal_error",
            Self::ClientGone => "client_closed_request",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::MethodNotAllowed { method, allowed } => {
                format!("method {method} is not allowed here; use {allowed}")
            }
            Self::ClientGone => "the client closed the connection before the answer".into(),
            Self::InvalidJson(m)
            | Self::InvalidRequest(m)
            | Self::UnknownModel(m)
            | Self::Unauthorized(m)
            | Self::OriginNotAllowed(m)
            | Self::NotFound(m)
            | Self::RequestTimeout(m)
            | Self::PayloadTooLarge(m)
            | Self::UnsupportedMediaType(m)
            | Self::ExpectationFailed(m)
            | Self::ModelUnavailable(m)
            | Self::Overloaded(m)
            | Self::Internal(m) => m.clone(),
        }
    }

    /// The `{"code", "message"}` object, as it stands in a response or in a batch item.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail { code: self.code(), message: self.message() }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "error": self.detail() })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_4xx_and_only_server_faults_are_5xx() {
        let client = [
            ApiError::InvalidJson("x".into()),
            ApiError::InvalidRequest("x".into()),
            ApiError::UnknownModel("x".into()),
            ApiError::Unauthorized("x".into()),
            ApiError::OriginNotAllowed("x".into()),
            ApiError::NotFound("x".into()),
            ApiError::MethodNotAllowed { method: "PUT".into(), allowed: "POST" },
            ApiError::RequestTimeout("x".into()),
            ApiError::PayloadTooLarge("x".into()),
            ApiError::UnsupportedMediaType("x".into()),
            ApiError::ExpectationFailed("x".into()),
        ];
        assert!(client.iter().all(|e| (400..500).contains(&e.status())));
        assert_eq!(ApiError::ModelUnavailable("x".into()).status(), 503);
        assert_eq!(ApiError::Internal("x".into()).status(), 500);
    }

    #[test]
    fn body_names_code_and_message() {
        let e = ApiError::MethodNotAllowed { method: "PUT".into(), allowed: "POST" };
        let body = e.body();
        assert_eq!(body["error"]["code"], "method_not_allowed");
        assert_eq!(body["error"]["message"], "method PUT is not allowed here; use POST");
    }
}
