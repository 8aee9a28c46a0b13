//! Request parsing: headers and body bytes in, a validated `/predict` request out.

use serde::Deserialize;

use crate::config::{MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS};
use crate::error::ApiError;
use crate::model::Input;

/// What `/predict` was asked: one text or a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    /// Per text: the text (and its target or context), or why it cannot be classified. In a
    /// batch a bad item is answered in its place and the others are still classified; a single
    /// bad text fails the request.
    pub items: Vec<Result<Input, ApiError>>,
    /// The field that carried the second texts (`"target"`, `"contexts"`...), if one did.
    pub pair_field: Option<&'static str>,
    /// `{"texts": [...]}` answers `{"results": [...]}` even for one item.
    pub batch: bool,
    /// `"include_sentence": true` echoes the preprocessed text (pysentimiento's `sentence`).
    pub include_sentence: bool,
    /// Which model: pysentimiento's task name and language; `None` takes the function's default.
    pub task: Option<String>,
    pub lang: Option<String>,
}

/// Unknown fields are rejected: a typo such as `"txt"` should fail loudly, not be ignored; so is a
/// `null` text (`task` and `lang` may be `null`: the default). `target` and `context` are one
/// field by two names, as in pysentimiento; a batch gives them as a list parallel to `texts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default, deserialize_with = "not_null")]
    text: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    texts: Option<Vec<String>>,
    #[serde(default, deserialize_with = "not_null")]
    target: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    context: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    targets: Option<Vec<String>>,
    #[serde(default, deserialize_with = "not_null")]
    contexts: Option<Vec<String>>,
    #[serde(default)]
    include_sentence: bool,
    task: Option<String>,
    lang: Option<String>,
}

/// A field that may be absent but, when present, must hold a value of its type.
fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(field: D) -> Result<Option<T>, D::Error> {
    T::deserialize(field).map(Some)
}

/// A missing content type is taken as JSON (some clients of function URLs send none); any other is refused.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = content_type else {
        return Ok(());
    };
    let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        return Ok(());
    }
    Err(ApiError::UnsupportedMediaType(format!(
        "content-type {value:?} is not supported; send application/json"
    )))
}

/// Bodies are read as sent: a compressed one would be taken for bytes of JSON (and could expand
/// past every size limit), so anything but `identity` is refused.
pub fn check_content_encoding(encoding: Option<&str>) -> Result<(), ApiError> {
    match encoding.map(str::trim) {
        None | Some("") => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("identity") => Ok(()),
        Some(e) => Err(ApiError::UnsupportedMediaType(format!(
            "content-encoding {e:?} is not supported; send the JSON uncompressed"
        ))),
    }
}

pub fn parse_predict(body: &[u8]) -> Result<PredictRequest, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(format!(
            "body is {} bytes; the limit is {MAX_BODY_BYTES}",
            body.len()
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson("body is empty; send {\"text\": \"...\"}".into()));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::InvalidJson(format!("body is not valid UTF-8: {e}")))?;
    // Straight into the struct, so serde rejects duplicate keys; but first make sure it is an
    // object, since serde would also take `["a", ["b"]]` as the struct's fields in order.
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => invalid("body must be a JSON object such as {\"text\": \"...\"}"),
            Err(e) => json_error(e),
        });
    }
    let Body { text, texts, target, context, targets, contexts, include_sentence, task, lang } =
        serde_json::from_str(text).map_err(json_error)?;
    let one = second("target", target, "context", context)?;
    let many = second("targets", targets, "contexts", contexts)?;
    let (items, batch, pair_field) = match (text, texts) {
        (Some(text), None) => {
            let (input, field) = single(text, one, many)?;
            (vec![Ok(input)], false, field)
        }
        (None, Some(texts)) => {
            let (items, field) = batch(texts, one, many)?;
            (items, true, field)
        }
        (Some(_), Some(_)) => return Err(invalid("send either \"text\" or \"texts\", not both")),
        (None, None) => return Err(invalid("missing field \"text\" (or \"texts\" for a batch)")),
    };
    Ok(PredictRequest { items, batch, pair_field, include_sentence, task, lang })
}

/// A second text and the name it came under.
type Second<T> = Option<(&'static str, T)>;
/// A batch's items and the name its second texts came under.
type Items = (Vec<Result<Input, ApiError>>, Option<&'static str>);

/// `{"text", "target"}`: one input.
fn single(
    text: String,
    one: Second<String>,
    many: Second<Vec<String>>,
) -> Result<(Input, Option<&'static str>), ApiError> {
    if let Some((field, _)) = many {
        return Err(invalid(&format!("{field:?} goes with \"texts\"; with \"text\" send its singular")));
    }
    let (field, second) = one.unzip();
    Ok((check_input(text, second, "text".into(), field.unwrap_or(""))?, field))
}

/// `{"texts", "targets"}`: parallel lists; a bad item gets its error in its place.
fn batch(texts: Vec<String>, one: Second<String>, many: Second<Vec<String>>) -> Result<Items, ApiError> {
    check_batch_size(texts.len())?;
    if let Some((field, _)) = one {
        return Err(invalid(&format!(
            "{field:?} goes with \"text\"; with \"texts\" send a list, \"{field}s\""
        )));
    }
    let (field, seconds) = many.unzip();
    let name = field.unwrap_or("");
    let seconds: Vec<Option<String>> = match seconds {
        Some(list) if list.len() != texts.len() => {
            let (n, m) = (texts.len(), list.len());
            return Err(invalid(&format!("\"texts\" has {n} items but {name:?} has {m}: send one per text")));
        }
        Some(list) => list.into_iter().map(Some).collect(),
        None => vec![None; texts.len()],
    };
    let items = texts.into_iter().zip(seconds).enumerate();
    let items =
        items.map(|(i, (t, second))| check_input(t, second, format!("texts[{i}]"), &format!("{name}[{i}]")));
    Ok((items.collect(), field))
}

/// The second text under whichever of its two names was used (not both).
fn second<T>(
    name: &'static str,
    a: Option<T>,
    alias: &'static str,
    b: Option<T>,
) -> Result<Second<T>, ApiError> {
    match (a, b) {
        (Some(_), Some(_)) => {
            Err(invalid(&format!("send either {name:?} or {alias:?}: they are one field by two names")))
        }
        (a, b) => Ok(a.map(|v| (name, v)).or(b.map(|v| (alias, v)))),
    }
}

/// A text must have content; its second text may be empty (then the text is read alone) but
/// not over the length limit.
pub fn check_input(
    text: String,
    second: Option<String>,
    name: String,
    second_name: &str,
) -> Result<Input, ApiError> {
    let text = check_text(text, name)?;
    if let Some(second) = &second {
        check_length(second, second_name)?;
    }
    Ok(Input { text, second })
}

fn check_batch_size(n: usize) -> Result<(), ApiError> {
    match n {
        0 => Err(invalid("\"texts\" is empty; send 1 to 64 texts")),
        n if n > MAX_BATCH => {
            Err(ApiError::PayloadTooLarge(format!("\"texts\" has {n} items; the limit is {MAX_BATCH}")))
        }
        _ => Ok(()),
    }
}

pub fn check_text(text: String, name: String) -> Result<String, ApiError> {
    if text.trim().is_empty() {
        return Err(invalid(&format!("{name} is empty")));
    }
    check_length(&text, &name)?;
    Ok(text)
}

fn check_length(text: &str, name: &str) -> Result<(), ApiError> {
    let chars = text.chars().count();
    match chars > MAX_TEXT_CHARS {
        true => Err(ApiError::PayloadTooLarge(format!(
            "{name} has {chars} characters; the limit is {MAX_TEXT_CHARS}"
        ))),
        false => Ok(()),
    }
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

    fn texts(r: &PredictRequest) -> Vec<&str> {
        r.items.iter().map(|i| i.as_ref().unwrap().text.as_str()).collect()
    }

    fn seconds(r: &PredictRequest) -> Vec<Option<&str>> {
        r.items.iter().map(|i| i.as_ref().unwrap().second.as_deref()).collect()
    }

    #[test]
    fn a_target_or_context_goes_with_its_text() {
        let r = parse(r#"{"text": "odio el lunes", "target": "lunes"}"#).unwrap();
        assert_eq!((seconds(&r), r.pair_field), (vec![Some("lunes")], Some("target")));
        let r = parse(r#"{"texts": ["a", "b"], "contexts": ["", "x"]}"#).unwrap();
        assert_eq!((seconds(&r), r.pair_field), (vec![Some(""), Some("x")], Some("contexts")));
        assert_eq!(parse(r#"{"texts": ["a"]}"#).unwrap().pair_field, None);
    }

    #[test]
    fn misplaced_or_mismatched_second_texts_are_400_naming_the_problem() {
        let cases = [
            (r#"{"text": "a", "targets": ["b"]}"#, "with \"text\" send its singular"),
            (r#"{"texts": ["a"], "context": "b"}"#, "send a list, \"contexts\""),
            (r#"{"texts": ["a", "b"], "targets": ["c"]}"#, "\"texts\" has 2 items but \"targets\" has 1"),
            (r#"{"text": "a", "target": "b", "context": "c"}"#, "one field by two names"),
            (r#"{"text": "a", "target": null}"#, "invalid type: null"),
        ];
        for (body, expected) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert!(err.message().contains(expected), "{body}: {}", err.message());
        }
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        let r = parse(&format!(r#"{{"texts": ["a", "b"], "targets": ["x", "{long}"]}}"#)).unwrap();
        let err = r.items[1].as_ref().unwrap_err();
        assert_eq!(
            (err.status(), err.message().contains("targets[1] has")),
            (413, true),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_null_text_is_refused_and_a_null_model_is_the_default() {
        for body in [r#"{"text": null}"#, r#"{"text": "a", "texts": null}"#, r#"{"texts": null}"#] {
            assert_eq!(parse(body).unwrap_err().code(), "invalid_request", "{body}");
        }
        let r = parse(r#"{"text": "a", "task": null, "lang": null}"#).unwrap();
        assert_eq!((r.task, r.lang), (None, None));
    }

    #[test]
    fn single_text() {
        let r = parse(r#"{"text": "qué buen día"}"#).unwrap();
        assert_eq!((texts(&r), r.batch, r.include_sentence), (vec!["qué buen día"], false, false));
        assert!(parse(r#"{"text": "x", "include_sentence": true}"#).unwrap().include_sentence);
    }

    #[test]
    fn task_and_lang_choose_the_model() {
        let r = parse(r#"{"text": "x", "task": "emotion", "lang": "en"}"#).unwrap();
        assert_eq!((r.task.as_deref(), r.lang.as_deref()), (Some("emotion"), Some("en")));
        let r = parse(r#"{"texts": ["x"]}"#).unwrap();
        assert_eq!((r.task, r.lang), (None, None));
        assert!(parse(r#"{"text": "x", "task": 3}"#).unwrap_err().message().contains("invalid type"));
    }

    #[test]
    fn batch_keeps_order() {
        let r = parse(r#"{"texts": ["a", "b", "c"]}"#).unwrap();
        assert_eq!(texts(&r), ["a", "b", "c"]);
        assert!(r.batch);
    }

    #[test]
    fn bad_batch_items_are_reported_in_place() {
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        let r = parse(&format!(r#"{{"texts": ["ok", " ", "{long}", "fine"]}}"#)).unwrap();
        let codes: Vec<&str> =
            r.items.iter().map(|i| i.as_ref().map_or_else(|e| e.code(), |_| "ok")).collect();
        assert_eq!(codes, ["ok", "invalid_request", "payload_too_large", "ok"]);
        assert!(r.items[1].as_ref().unwrap_err().message().contains("texts[1] is empty"));
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        for body in ["{", "not json", "{\"text\": }", "", "[1,", "{\"text\": \"a\"} trailing"] {
            assert_eq!(parse(body).unwrap_err().code(), "invalid_json", "{body}");
        }
        assert_eq!(parse_predict(&[0xff, 0xfe]).unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn wrong_shapes_are_invalid_requests_naming_the_problem() {
        let cases = [
            (r#"{"text": 5}"#, "invalid type: integer"),
            (r#"{"text": 1e999}"#, "number out of range"),
            (r#"{"text": 123456789012345678901234567890}"#, "invalid type"),
            (r#"{"text": null}"#, "invalid type: null"),
            (r#"[1, 2]"#, "must be a JSON object"),
            (r#"["a", ["b"]]"#, "must be a JSON object"),
            (r#""hola""#, "must be a JSON object"),
            (r#"null"#, "must be a JSON object"),
            (r#"{"texts": [["a"]]}"#, "invalid type: sequence"),
            (r#"{"texts": ["a", null]}"#, "invalid type: null"),
            (r#"{"texts": "a"}"#, "invalid type: string"),
            (r#"{"text": {"nested": "x"}}"#, "invalid type: map"),
            (r#"{"txt": "hola"}"#, "unknown field `txt`"),
            (r#"{"text": "a", "text": "b"}"#, "duplicate field `text`"),
            (r#"{"text": "a", "include_sentence": 1}"#, "expected a boolean"),
            (r#"{}"#, "missing field"),
            (r#"{"text": "a", "texts": ["b"]}"#, "not both"),
            (r#"{"text": "   \n"}"#, "text is empty"),
            (r#"{"texts": []}"#, "\"texts\" is empty"),
        ];
        for (body, expected) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), 400, "{body}");
            assert!(err.message().contains(expected), "{body}: {}", err.message());
        }
    }

    #[test]
    fn limits_are_413() {
        let batch = format!(r#"{{"texts": [{}]}}"#, vec!["\"a\""; MAX_BATCH + 1].join(","));
        assert_eq!(parse(&batch).unwrap_err().status(), 413);
        let long = format!(r#"{{"text": "{}"}}"#, "a".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(parse(&long).unwrap_err().status(), 413);
        let huge = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse_predict(&huge).unwrap_err().status(), 413);
        let full = format!(r#"{{"texts": [{}]}}"#, vec!["\"a\""; MAX_BATCH].join(","));
        assert_eq!(parse(&full).unwrap().items.len(), MAX_BATCH);
    }

    #[test]
    fn compressed_bodies_are_415() {
        assert!(check_content_encoding(None).is_ok());
        assert!(check_content_encoding(Some("identity")).is_ok());
        for encoding in ["gzip", "deflate", "br", "gzip, identity"] {
            assert_eq!(check_content_encoding(Some(encoding)).unwrap_err().status(), 415, "{encoding}");
        }
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(None).is_ok());
        assert!(check_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_content_type(Some("Application/JSON")).is_ok());
        assert!(check_content_type(Some("application/vnd.api+json")).is_ok());
        let err = check_content_type(Some("application/x-www-form-urlencoded")).unwrap_err();
        assert_eq!(err.status(), 415);
        assert_eq!(check_content_type(Some("text/plain")).unwrap_err().status(), 415);
    }
}
