//! Request parsing: headers and body bytes in, a validated `/predict` request out.

use serde::Deserialize;

use crate::config::{MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS};
use crate::error::ApiError;

/// What `/predict` was asked: one text or a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    pub texts: Vec<String>,
    /// `{"texts": [...]}` answers `{"results": [...]}` even for one item.
    pub batch: bool,
    /// `"include_sentence": true` echoes the preprocessed text (pysentimiento's `sentence`).
    pub include_sentence: bool,
}

/// Unknown fields are rejected: a typo such as `"txt"` should fail loudly, not be ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    text: Option<String>,
    texts: Option<Vec<String>>,
    #[serde(default)]
    include_sentence: bool,
}

/// A missing content type is taken as JSON (some clients of function URLs send none); any other is refused.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = content_type else {
        return Ok(());
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "content-type {value:?} is not supported; send application/json"
    )))
}

pub fn parse_predict(body: &[u8]) -> Result<PredictRequest, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "body is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "body is empty; send {\"text\": \"...\"}".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::InvalidJson(format!("body is not valid UTF-8: {e}")))?;
    // Through Value first: serde would otherwise accept `["a", ["b"]]` as the struct's fields in order.
    let value: serde_json::Value = serde_json::from_str(text).map_err(json_error)?;
    if !value.is_object() {
        return Err(invalid(
            "body must be a JSON object such as {\"text\": \"...\"}",
        ));
    }
    let parsed: Body = serde_json::from_value(value).map_err(json_error)?;
    let include_sentence = parsed.include_sentence;
    let request = match (parsed.text, parsed.texts) {
        (Some(text), None) => PredictRequest {
            texts: vec![text],
            batch: false,
            include_sentence,
        },
        (None, Some(texts)) => PredictRequest {
            texts,
            batch: true,
            include_sentence,
        },
        (Some(_), Some(_)) => return Err(invalid("send either \"text\" or \"texts\", not both")),
        (None, None) => return Err(invalid("missing field \"text\" (or \"texts\" for a batch)")),
    };
    validate(&request)?;
    Ok(request)
}

fn validate(request: &PredictRequest) -> Result<(), ApiError> {
    let n = request.texts.len();
    if n == 0 {
        return Err(invalid("\"texts\" is empty; send 1 to 64 texts"));
    }
    if n > MAX_BATCH {
        return Err(ApiError::PayloadTooLarge(format!(
            "\"texts\" has {n} items; the limit is {MAX_BATCH}"
        )));
    }
    for (i, text) in request.texts.iter().enumerate() {
        let name = if request.batch {
            format!("texts[{i}]")
        } else {
            "text".to_string()
        };
        if text.trim().is_empty() {
            return Err(invalid(&format!("{name} is empty")));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(ApiError::PayloadTooLarge(format!(
                "{name} has {chars} characters; the limit is {MAX_TEXT_CHARS}"
            )));
        }
    }
    Ok(())
}

fn invalid(message: &str) -> ApiError {
    ApiError::InvalidRequest(message.to_string())
}

fn json_error(e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::InvalidRequest(e.to_string()),
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::InvalidJson(format!("body is not valid JSON: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<PredictRequest, ApiError> {
        parse_predict(body.as_bytes())
    }

    #[test]
    fn single_text() {
        let r = parse(r#"{"text": "qué buen día"}"#).unwrap();
        assert_eq!(
            r,
            PredictRequest {
                texts: vec!["qué buen día".into()],
                batch: false,
                include_sentence: false,
            }
        );
        assert!(
            parse(r#"{"text": "x", "include_sentence": true}"#)
                .unwrap()
                .include_sentence
        );
    }

    #[test]
    fn batch_keeps_order() {
        let r = parse(r#"{"texts": ["a", "b", "c"]}"#).unwrap();
        assert_eq!(r.texts, ["a", "b", "c"]);
        assert!(r.batch);
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        for body in ["{", "not json", "{\"text\": }", ""] {
            assert_eq!(parse(body).unwrap_err().code(), "invalid_json", "{body}");
        }
        assert_eq!(
            parse_predict(&[0xff, 0xfe]).unwrap_err().code(),
            "invalid_json"
        );
    }

    #[test]
    fn wrong_shapes_are_invalid_requests_naming_the_problem() {
        let cases = [
            (r#"{"text": 5}"#, "invalid type: integer"),
            (r#"{"text": null}"#, "missing field"),
            (r#"[1, 2]"#, "must be a JSON object"),
            (r#"["a", ["b"]]"#, "must be a JSON object"),
            (r#""hola""#, "must be a JSON object"),
            (r#"{"texts": [["a"]]}"#, "invalid type: sequence"),
            (r#"{"txt": "hola"}"#, "unknown field `txt`"),
            (
                r#"{"text": "a", "include_sentence": 1}"#,
                "expected a boolean",
            ),
            (
                r#"{"text": "a", "include_sentence": "yes"}"#,
                "expected a boolean",
            ),
            (r#"{}"#, "missing field"),
            (r#"{"text": "a", "texts": ["b"]}"#, "not both"),
            (r#"{"text": "   \n"}"#, "text is empty"),
            (r#"{"texts": ["ok", ""]}"#, "texts[1] is empty"),
            (r#"{"texts": []}"#, "\"texts\" is empty"),
        ];
        for (body, expected) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert!(
                err.message().contains(expected),
                "{body}: {}",
                err.message()
            );
        }
    }

    #[test]
    fn limits_are_413() {
        let batch = format!(
            r#"{{"texts": [{}]}}"#,
            vec!["\"a\""; MAX_BATCH + 1].join(",")
        );
        assert_eq!(parse(&batch).unwrap_err().status(), 413);
        let long = format!(r#"{{"text": "{}"}}"#, "a".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(parse(&long).unwrap_err().status(), 413);
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_predict(&huge).unwrap_err().status(), 413);
        let full = format!(r#"{{"texts": [{}]}}"#, vec!["\"a\""; MAX_BATCH].join(","));
        assert_eq!(parse(&full).unwrap().texts.len(), MAX_BATCH);
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(None).is_ok());
        assert!(check_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("Application/JSON")).is_ok());
        assert!(check_content_type(Some("application/vnd.api+json")).is_ok());
        let err = check_content_type(Some("application/x-www-form-urlencoded")).unwrap_err();
        assert_eq!(err.status(), 415);
        assert_eq!(
            check_content_type(Some("text/plain")).unwrap_err().status(),
            415
        );
    }
}
