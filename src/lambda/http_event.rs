//! The fields of an HTTP event that lambda_http 1.3 cannot make into a request, found and dropped
//! before it converts the event. Its conversion (request.rs) unwraps
//! `Url::parse("{x-forwarded-proto}://{Host}{path}")`, expects the request builder to take that
//! URI with a v2 event's `rawQueryString` appended as it came, and expects a base64 body to
//! decode: each of those panicked, so the invocation failed and API Gateway answered 502. Each
//! field is checked here with the parser the conversion uses, so that what it would refuse is a
//! 400 naming the field. The same checks keep the route on the path: `Host: x?` parsed, but made
//! the path the URI's query (`https://x?/predict`), and `POST /predict` reached the playground.

use aws_lambda_events::event::alb::AlbTargetGroupRequest;
use aws_lambda_events::event::apigw::{
    ApiGatewayProxyRequest, ApiGatewayV2httpRequest, ApiGatewayWebsocketProxyRequest,
};
use base64::Engine;
use lambda_http::http::uri::PathAndQuery;
use lambda_http::http::{header, HeaderMap, HeaderName, Uri};
use lambda_http::request::LambdaRequest;
use url::Url;

use crate::error::ApiError;

const FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What the conversion builds the URI and the body from, whichever kind of event it is.
struct Fields<'a> {
    /// The field's name in the event (for the 400), and its value.
    path: (&'static str, &'a mut Option<String>),
    headers: &'a mut HeaderMap,
    /// API Gateway's own name for the host, taken when the event has no usable Host header.
    domain_name: Option<&'a mut Option<String>>,
    /// API Gateway's stage, which the conversion puts in front of the path.
    stage: Option<&'a mut Option<String>>,
    /// A v2 event's query string, appended to the URI as it came.
    raw_query: Option<&'a mut Option<String>>,
    body: &'a mut Option<String>,
    base64: &'a mut bool,
}

/// Checks the event, and drops each field the conversion would choke on, so that it cannot
/// panic on them; the refusal names every field dropped.
pub fn refusal(request: &mut LambdaRequest) -> Option<ApiError> {
    let mut fields = fields(request)?;
    let checks: [fn(&mut Fields) -> Option<String>; 5] = [body, path, forwarded_proto, host, raw_query];
    let problems: Vec<String> = checks.iter().filter_map(|check| check(&mut fields)).collect();
    (!problems.is_empty()).then(|| ApiError::InvalidRequest(problems.join("; ")))
}

/// An event of the same kind and method with nothing else in it, for a refusal in the event's
/// own shape when the conversion of the event itself failed.
pub fn bare(request: &LambdaRequest) -> Option<LambdaRequest> {
    Some(match request {
        LambdaRequest::ApiGatewayV1(event) => {
            let mut bare = ApiGatewayProxyRequest::default();
            bare.http_method = event.http_method.clone();
            LambdaRequest::ApiGatewayV1(bare)
        }
        LambdaRequest::ApiGatewayV2(event) => {
            let mut bare = ApiGatewayV2httpRequest::default();
            bare.request_context.http.method = event.request_context.http.method.clone();
            LambdaRequest::ApiGatewayV2(bare)
        }
        LambdaRequest::Alb(event) => {
            let mut bare = AlbTargetGroupRequest::default();
            bare.http_method = event.http_method.clone();
            LambdaRequest::Alb(bare)
        }
        LambdaRequest::WebSocket(event) => {
            let mut bare = ApiGatewayWebsocketProxyRequest::default();
            bare.http_method = event.http_method.clone();
            LambdaRequest::WebSocket(bare)
        }
        _ => return None,
    })
}

fn fields(request: &mut LambdaRequest) -> Option<Fields<'_>> {
    Some(match request {
        LambdaRequest::ApiGatewayV1(e) => Fields {
            path: ("path", &mut e.path),
            headers: &mut e.headers,
            domain_name: Some(&mut e.request_context.domain_name),
            stage: Some(&mut e.request_context.stage),
            raw_query: None,
            body: &mut e.body,
            base64: &mut e.is_base64_encoded,
        },
        LambdaRequest::ApiGatewayV2(e) => Fields {
            path: ("rawPath", &mut e.raw_path),
            headers: &mut e.headers,
            domain_name: Some(&mut e.request_context.domain_name),
            stage: Some(&mut e.request_context.stage),
            raw_query: Some(&mut e.raw_query_string),
            body: &mut e.body,
            base64: &mut e.is_base64_encoded,
        },
        LambdaRequest::Alb(e) => Fields {
            path: ("path", &mut e.path),
            headers: &mut e.headers,
            domain_name: None,
            stage: None,
            raw_query: None,
            body: &mut e.body,
            base64: &mut e.is_base64_encoded,
        },
        LambdaRequest::WebSocket(e) => Fields {
            path: ("path", &mut e.path),
            headers: &mut e.headers,
            domain_name: Some(&mut e.request_context.domain_name),
            stage: Some(&mut e.request_context.stage),
            raw_query: None,
            body: &mut e.body,
            base64: &mut e.is_base64_encoded,
        },
        LambdaRequest::VpcLatticeV2(e) => Fields {
            path: ("path", &mut e.path),
            headers: &mut e.headers,
            domain_name: None,
            stage: None,
            raw_query: None,
            body: &mut e.body,
            base64: &mut e.is_base64_encoded,
        },
        _ => return None,
    })
}

/// The conversion decodes a base64 body with this same engine, and panics where it fails.
fn body(fields: &mut Fields) -> Option<String> {
    let body = fields.body.as_deref().filter(|_| *fields.base64)?;
    let error = base64::engine::general_purpose::STANDARD.decode(body).err()?;
    (*fields.body, *fields.base64) = (None, false);
    Some(format!("the event's body is marked base64 (isBase64Encoded) but is not valid base64: {error}"))
}

/// The path (after the stage) is what the request is routed on: it must be a URI path and
/// nothing more (a `?` or `#` in it would make the rest of it a query or a fragment).
fn path(fields: &mut Fields) -> Option<String> {
    let mut problems = Vec::new();
    let (name, path) = (fields.path.0, &mut *fields.path.1);
    if !path.as_deref().is_none_or(|p| p.is_empty() || p.starts_with('/') && !p.contains(['?', '#'])) {
        *path = None;
        problems.push(format!("the event's {name} must start with / and hold no ? or #"));
    }
    if let Some(stage) =
        fields.stage.as_mut().filter(|s| s.as_deref().is_some_and(|s| s.contains(['?', '#', '/'])))
    {
        **stage = None;
        problems.push("the event's requestContext.stage must be one path segment".to_string());
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// The conversion puts this header's value in front of `://` as the URI's scheme.
fn forwarded_proto(fields: &mut Fields) -> Option<String> {
    let proto = fields.headers.get(FORWARDED_PROTO)?.to_str().ok()?;
    if proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("http") {
        return None;
    }
    fields.headers.remove(FORWARDED_PROTO);
    Some("the X-Forwarded-Proto header must be http or https".into())
}

/// The conversion takes the Host header (if it is text), else API Gateway's domain name, as the
/// URI's authority. An empty Host is what HTTP/1.1 sends for a URI without one: as no Host.
fn host(fields: &mut Fields) -> Option<String> {
    let scheme = scheme(fields.headers);
    if let Some(host) = fields.headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        if only_an_authority(&scheme, host) {
            return None;
        }
        let empty = host.is_empty();
        fields.headers.remove(header::HOST);
        if !empty {
            return Some("the Host header must be a host name or address with an optional port".into());
        }
    }
    let domain = fields.domain_name.as_mut()?;
    if domain.as_deref().is_none_or(|d| only_an_authority(&scheme, d)) {
        return None;
    }
    **domain = None;
    Some("the event's requestContext.domainName must be a host name".into())
}

fn scheme(headers: &HeaderMap) -> String {
    headers.get(FORWARDED_PROTO).and_then(|v| v.to_str().ok()).unwrap_or("https").to_owned()
}

/// Whether `host` parses as the conversion parses it, and as a host and port only: a path put
/// after it stays the URI's path, whole.
fn only_an_authority(scheme: &str, host: &str) -> bool {
    if host.is_empty() || host.contains(['/', '\\', '?', '#', '@']) {
        return false;
    }
    let Ok(url) = Url::parse(&format!("{scheme}://{host}/probe")) else { return false };
    let whole = url.path() == "/probe" && url.query().is_none() && url.fragment().is_none();
    whole && url.username().is_empty() && url.as_str().parse::<Uri>().is_ok()
}

/// A v2 event's query string goes into the URI untouched: it must be a URI query already.
fn raw_query(fields: &mut Fields) -> Option<String> {
    let raw = fields.raw_query.as_mut()?;
    let query = raw.as_deref().filter(|q| !q.is_empty())?;
    let error = format!("/?{query}").parse::<PathAndQuery>().err()?;
    **raw = None;
    Some(format!(
        "the event's rawQueryString is not a URI query ({error}): characters such as a space, \", < \
         or > must be percent-encoded"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_host_and_port_is_an_authority() {
        for good in ["example.com", "example.com:8080", "127.0.0.1", "[::1]:443", "a-b.c_d.com"] {
            assert!(only_an_authority("https", good), "{good}");
        }
        for bad in ["", "x?", "x#", "x/y", "a@b", "example.com:99999", ":abc", "a b", "[::1", "xn--zz"] {
            assert!(!only_an_authority("https", bad), "{bad}");
        }
    }
}
