//! Who may call: an API key for the plain server (`SENTIMIENTO_API_KEY`), and the browser origins
//! allowed to read the answers (`SENTIMIENTO_CORS_ORIGINS`).
//!
//! On Lambda the key is not checked: a function URL with IAM auth (the template's default) or an
//! API Gateway authorizer keeps strangers out before the function runs, and costs nothing per refusal.

use lambda_http::http::{header, HeaderMap, HeaderValue, Method, Response};
use subtle::ConstantTimeEq;

use aws_lambda_events::encodings::Body;

use crate::error::ApiError;

/// Routes behind the key: the work itself, and what the metrics reveal about the traffic.
const PROTECTED: [&str; 2] = ["predict", "metrics"];
const ALLOWED_METHODS: &str = "GET, HEAD, POST, OPTIONS";
const ALLOWED_HEADERS: &str = "authorization, content-type, x-request-id";
/// Browsers may reuse a preflight answer this long (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";

/// The key, kept out of `Debug` output (settings are logged when they fail to parse).
#[derive(Clone, PartialEq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// With a key set, a protected route needs `Authorization: Bearer <key>`. The comparison takes the
/// same time wherever the first wrong byte is, so the key cannot be guessed byte by byte.
pub fn authorize(
    key: Option<&ApiKey>,
    method: &Method,
    endpoint: &str,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(ApiKey(key)) = key else {
        return Ok(());
    };
    // Preflights carry no credentials by design; they are answered without doing any work.
    if method == Method::OPTIONS || !PROTECTED.contains(&endpoint) {
        return Ok(());
    }
    let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    match sent {
        Some(token) if bool::from(token.as_bytes().ct_eq(key.as_bytes())) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("the API key is not valid".into())),
        None => Err(ApiError::Unauthorized(
            "this server needs an API key: send the header Authorization: Bearer <key>".into(),
        )),
    }
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// The request's `Origin`, when it is on the allow-list (`*` allows any).
pub fn allowed_origin(origins: &[String], headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let listed = origins.iter().any(|o| o == "*" || o.as_bytes() == origin.as_bytes());
    listed.then(|| origin.clone())
}

/// A CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`), when an
/// allow-list is set: 204 with the permissions for a listed origin, a 403 naming the origin otherwise.
pub fn preflight(
    origins: &[String],
    method: &Method,
    headers: &HeaderMap,
) -> Option<Result<Response<Body>, ApiError>> {
    let is_preflight = method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if origins.is_empty() || !is_preflight {
        return None;
    }
    if allowed_origin(origins, headers).is_none() {
        let origin = headers.get(header::ORIGIN).map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned());
        return Some(Err(ApiError::OriginNotAllowed(format!(
            "origin {:?} is not in SENTIMIENTO_CORS_ORIGINS",
            origin.unwrap_or_default()
        ))));
    }
    // The handler adds Access-Control-Allow-Origin, as to every answer to a listed origin.
    let response = Response::builder()
        .status(204)
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS)
        .header(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS)
        .header(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE)
        .body(Body::Empty)
        .expect("static headers are valid");
    Some(Ok(response))
}

/// With an allow-list, every answer depends on the request's `Origin`: `Vary: Origin` on all of
/// them (those to other or no origins too), so that a shared cache never hands one origin's answer
/// to another; and the page at an allowed `origin` may read this one, and its request id.
pub fn answer_origin(headers: &mut HeaderMap, origins: &[String], origin: Option<HeaderValue>) {
    if origins.is_empty() {
        return;
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-request-id"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), HeaderValue::from_str(v).unwrap())).collect()
    }

    fn check(endpoint: &str, pairs: &[(&str, &str)]) -> Result<(), ApiError> {
        authorize(Some(&ApiKey("s3cret".into())), &Method::POST, endpoint, &headers(pairs))
    }

    #[test]
    fn protected_routes_need_the_exact_key() {
        assert!(check("predict", &[("authorization", "Bearer s3cret")]).is_ok());
        assert!(check("metrics", &[("authorization", "bearer  s3cret ")]).is_ok());
        for wrong in [&[][..], &[("authorization", "Bearer s3cre")], &[("authorization", "Basic s3cret")]] {
            assert_eq!(check("predict", wrong).unwrap_err().status(), 401);
        }
        assert!(check("health", &[]).is_ok(), "health stays open");
        assert!(authorize(None, &Method::POST, "predict", &HeaderMap::new()).is_ok(), "no key, no check");
    }

    #[test]
    fn the_key_never_reaches_debug_output() {
        assert!(!format!("{:?}", ApiKey("s3cret".into())).contains("s3cret"));
    }

    #[test]
    fn preflights_are_answered_for_listed_origins_only() {
        let origins = vec!["https://app.example".to_string()];
        let ask = |origin| headers(&[("origin", origin), ("access-control-request-method", "POST")]);
        let ok = preflight(&origins, &Method::OPTIONS, &ask("https://app.example")).unwrap().unwrap();
        assert_eq!(ok.status(), 204);
        assert_eq!(ok.headers()["access-control-allow-methods"], ALLOWED_METHODS);
        let refused = preflight(&origins, &Method::OPTIONS, &ask("https://evil.example")).unwrap();
        assert_eq!(refused.unwrap_err().status(), 403);
        assert!(preflight(&[], &Method::OPTIONS, &ask("https://app.example")).is_none(), "no list, no CORS");
        let any = vec!["*".to_string()];
        assert!(allowed_origin(&any, &ask("https://x.example")).is_some());
    }
}
