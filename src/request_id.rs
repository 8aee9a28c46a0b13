//! Every request gets an id, returned as `x-request-id` and carried by each of its log lines (the
//! `request` span), so that one request can be followed through CloudWatch or any log store.
//! On Lambda it is the invocation's own request id (the one in Lambda's REPORT line); elsewhere a
//! caller's id is kept when it is short and printable (a proxy's or a client's trace id), else a
//! new UUID.

use lambda_http::http::{HeaderMap, Request};
use lambda_http::RequestExt;

pub const HEADER: &str = "x-request-id";
const MAX_LEN: usize = 128;

pub fn of<B>(req: &Request<B>) -> String {
    if let Some(context) = req.lambda_context_ref() {
        return context.request_id.clone();
    }
    incoming(req.headers()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The caller's id if it can be echoed and logged as is: 1 to 128 visible ASCII characters.
fn incoming(headers: &HeaderMap) -> Option<String> {
    let id = headers.get(HEADER)?.to_str().ok()?;
    let printable = !id.is_empty() && id.len() <= MAX_LEN && id.bytes().all(|b| b.is_ascii_graphic());
    printable.then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_header(value: &[u8]) -> Request<()> {
        Request::builder().header(HEADER, value).body(()).unwrap()
    }

    #[test]
    fn a_short_printable_id_is_kept() {
        assert_eq!(of(&with_header(b"trace-42/abc")), "trace-42/abc");
    }

    #[test]
    fn long_blank_or_unprintable_ids_are_replaced() {
        for bad in [&b"a b"[..], b"", &[b'x'; 129], b"caf\xc3\xa9", b"tab\there"] {
            let id = of(&with_header(bad));
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} -> {id}");
        }
        assert_ne!(of(&Request::new(())), of(&Request::new(())), "each new id is new");
    }

    #[test]
    fn on_lambda_the_invocation_id_wins() {
        let mut context = lambda_http::Context::default();
        context.request_id = "lambda-req-1".into();
        let req = with_header(b"client-id").with_lambda_context(context);
        assert_eq!(of(&req), "lambda-req-1");
    }
}
