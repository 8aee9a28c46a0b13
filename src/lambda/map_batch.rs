//! A Step Functions Distributed Map batch, `{"Items": [{"text", "id"}, ...], "BatchInput":
//! {"task", "lang", "include_sentence"}}`: one answer per item, in order, each as `sentimiento
//! predict` writes it for a JSON line (errors in place). Whole-batch problems (a mistyped
//! BatchInput, an unknown model, too many items) fail the invocation, so that Step Functions
//! reports them instead of scoring with a model nobody asked for.

use lambda_runtime::Diagnostic;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{failure, json_problem, kind};
use crate::error::ApiError;
use crate::registry::Registry;

/// Items of one batch: ItemBatcher's MaxItemsPerBatch should stay at or below it, so that a batch
/// fits the function's timeout at its CPU share (docs/bulk.md).
pub const MAX_ITEMS: usize = 256;

/// The JSON text of the answers a batch may return. Lambda refuses a synchronous response over
/// 6,291,556 bytes, and Step Functions then retries the same batch, which fails the same way
/// (NER on 8 emoji-heavy texts answered 15.4 MB: issue #20). The margin holds the errors that
/// stand in for the items past the cap (see `MAX_ID_BYTES`).
pub const MAX_ANSWER_BYTES: usize = 5_500_000;

/// The batch's settings, as the state machine's ItemBatcher `BatchInput` sets them.
#[derive(Debug, Default, PartialEq)]
pub struct BatchInput {
    pub task: Option<String>,
    pub lang: Option<String>,
    pub include_sentence: bool,
}

impl BatchInput {
    /// Absent or null (what `"BatchInput.$"` gives for a missing path) is `{}`, as a null field
    /// is that field's default; an unknown or mistyped field is an error that names it, since
    /// `{"Task": "emotion"}` was scored by the default sentiment model without a word.
    pub fn read(raw: Option<&RawValue>) -> Result<Self, String> {
        let Some(raw) = raw else { return Ok(Self::default()) };
        let fields = match serde_json::from_str(raw.get()) {
            Ok(Value::Null) => return Ok(Self::default()),
            Ok(Value::Object(fields)) => fields,
            Ok(other) => return Err(format!("BatchInput must be a JSON object; it is {}", kind(&other))),
            Err(e) => return Err(format!("BatchInput is {}", json_problem(&e))),
        };
        Self::from_fields(fields)
    }

    fn from_fields(fields: Map<String, Value>) -> Result<Self, String> {
        let (mut input, mut unknown, mut problems) = (Self::default(), Vec::new(), Vec::new());
        for (key, value) in fields {
            match key.as_str() {
                "task" => input.task = field(&key, value, &mut problems),
                "lang" => input.lang = field(&key, value, &mut problems),
                "include_sentence" => {
                    input.include_sentence =
                        field::<Option<bool>>(&key, value, &mut problems).unwrap_or(false)
                }
                _ => unknown.push(key.chars().take(40).collect::<String>()),
            }
        }
        if !unknown.is_empty() {
            let takes = "it takes \"task\", \"lang\" and \"include_sentence\"";
            problems.insert(0, format!("BatchInput has unknown fields {unknown:?}; {takes}"));
        }
        match problems.is_empty() {
            true => Ok(input),
            false => Err(problems.join("; ")),
        }
    }
}

/// One field's value as its type, or its default and a problem that names it.
fn field<T: DeserializeOwned + Default>(key: &str, value: Value, problems: &mut Vec<String>) -> T {
    serde_json::from_value(value).unwrap_or_else(|e| {
        problems.push(format!("BatchInput.{key}: {e}"));
        T::default()
    })
}

/// The answer to a batch: a JSON array with one line per item.
pub async fn answer(
    models: &'static Registry,
    items: &RawValue,
    input: Option<&RawValue>,
) -> Result<String, Diagnostic> {
    let input = BatchInput::read(input).map_err(|message| failure("InvalidBatchInput", message))?;
    let items: Vec<&RawValue> = serde_json::from_str(items.get())
        .map_err(|e| failure("InvalidBatchInput", format!("Items must be a JSON array: {e}")))?;
    if items.len() > MAX_ITEMS {
        let message =
            format!("{} items; at most {MAX_ITEMS} per batch (ItemBatcher MaxItemsPerBatch)", items.len());
        return Err(failure("BatchTooLarge", message));
    }
    // Each item on its own: one line nested too deep is that item's error, not the batch's.
    let items: Vec<Result<Value, String>> =
        items.iter().map(|item| serde_json::from_str(item.get()).map_err(|e| json_problem(&e))).collect();
    let BatchInput { task, lang, include_sentence } = input;
    let entry =
        models.resolve(task.as_deref(), lang.as_deref()).map_err(|e| failure(e.code(), e.message()))?;
    let model = models.get(entry).await.map_err(|e| failure(e.code(), e.message()))?;
    let (count, started) = (items.len(), std::time::Instant::now());
    let span = tracing::Span::current();
    let lines = tokio::task::spawn_blocking(move || {
        let _in_span = span.enter();
        within(&items, MAX_ANSWER_BYTES, |item| crate::bulk::answer(&model, item, include_sentence).0)
    })
    .await
    .map_err(|e| failure("InferencePanicked", e.to_string()))?;
    models.metrics().inference(&entry.task, &entry.lang, count, started.elapsed().as_secs_f64());
    tracing::info!(event = "map_batch", items = lines.len(), task = %entry.task, lang = %entry.lang);
    Ok(format!("[{}]", lines.join(",")))
}

/// One line per item: the answers in `cap` bytes of JSON text (brackets and commas counted), and
/// short errors for the items past it. From the first answer that does not fit on, items are not
/// scored: their error says why, in place, so that the answers that fit are kept (failing the
/// invocation would lose them, and every retry would fail again), and the ids that did not fit
/// form a tail to send again in smaller batches.
fn within(
    items: &[Result<Value, String>],
    cap: usize,
    mut score: impl FnMut(&Value) -> String,
) -> Vec<String> {
    let mut lines = Vec::with_capacity(items.len());
    let (mut used, mut fits) = (1, true);
    for item in items {
        let id = item.as_ref().ok().and_then(|value| value.get("id"));
        let line = match item {
            Ok(value) if fits => {
                let line = score(value);
                match used + line.len() < cap {
                    true => line,
                    false => {
                        fits = false;
                        too_large(id, cap)
                    }
                }
            }
            Ok(_) => too_large(id, cap),
            Err(problem) => in_place(None, &ApiError::InvalidRequest(format!("this item is {problem}"))),
        };
        used += line.len() + 1;
        lines.push(line);
    }
    if !fits {
        tracing::warn!(event = "map_batch_capped", items = items.len(), cap);
    }
    lines
}

/// An id echoed in an error; a longer one is left out, so that the errors of a whole batch stay
/// within 256 x ~560 bytes (143 KB): with the cap, under Lambda's limit.
const MAX_ID_BYTES: usize = 256;

fn too_large(id: Option<&Value>, cap: usize) -> String {
    let id = id.filter(|id| id.to_string().len() <= MAX_ID_BYTES);
    let error = ApiError::PayloadTooLarge(format!(
        "not scored: the answers to this batch pass {cap} bytes at this item or before it, and \
         Lambda answers at most 6 MB; send it again in a smaller batch (lower ItemBatcher \
         MaxItemsPerBatch, or drop include_sentence)"
    ));
    in_place(id, &error)
}

/// An error in an item's place, as `sentimiento predict` writes one: `{"id", "error"}`.
fn in_place(id: Option<&Value>, error: &ApiError) -> String {
    let error = serde_json::to_string(&error.detail()).expect("errors serialise");
    match id {
        Some(id) => format!("{{\"id\":{id},\"error\":{error}}}"),
        None => format!("{{\"error\":{error}}}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn batch_input_null_or_absent_is_the_default() {
        assert_eq!(BatchInput::read(None), Ok(BatchInput::default()));
        assert_eq!(BatchInput::read(Some(&raw("null"))), Ok(BatchInput::default()));
        let read =
            BatchInput::read(Some(&raw(r#"{"task": "emotion", "lang": null, "include_sentence": true}"#)));
        assert_eq!(read, Ok(BatchInput { task: Some("emotion".into()), lang: None, include_sentence: true }));
    }

    #[test]
    fn batch_input_mistakes_name_the_field() {
        let cases = [
            (r#"{"Task": "emotion", "lang": "es"}"#, "unknown fields [\"Task\"]"),
            (r#"{"include_sentence": "yes"}"#, "BatchInput.include_sentence: invalid type: string \"yes\""),
            (r#"{"lang": ["es"]}"#, "BatchInput.lang: invalid type: sequence"),
            ("[]", "BatchInput must be a JSON object; it is an array"),
        ];
        for (input, message) in cases {
            let error = BatchInput::read(Some(&raw(input))).unwrap_err();
            assert!(error.contains(message), "{input}: {error}");
        }
    }

    fn items(count: usize) -> Vec<Result<Value, String>> {
        (0..count).map(|i| Ok(json!({"id": i, "text": "x"}))).collect()
    }

    /// Answers of ~1,000 bytes in a cap of 10,000: ten fit; the eleventh is scored, does not fit,
    /// and is the first error; the nine after it are errors without being scored.
    #[test]
    fn answers_past_the_cap_are_errors_in_place_and_the_whole_stays_small() {
        let mut scored = 0;
        let lines = within(&items(20), 10_000, |item| {
            scored += 1;
            format!("{{\"id\":{},\"pad\":\"{}\"}}", item["id"], "x".repeat(980))
        });
        assert_eq!(lines.len(), 20, "one line per item");
        assert_eq!(scored, 11, "items past the cap are not scored");
        let all = format!("[{}]", lines.join(","));
        assert!(all.len() < 10_000 + 10 * 400, "{}", all.len());
        let answers: Vec<Value> = serde_json::from_str(&all).unwrap();
        assert!(answers[..10].iter().all(|a| a["pad"].is_string()), "{all}");
        for (i, answer) in answers.iter().enumerate().skip(10) {
            assert_eq!(answer["id"], i, "{answer}");
            assert_eq!(answer["error"]["code"], "payload_too_large", "{answer}");
            assert!(answer["error"]["message"].as_str().unwrap().contains("MaxItemsPerBatch"));
        }
    }

    #[test]
    fn the_cap_holds_even_with_huge_ids_and_a_single_huge_answer() {
        let huge_ids: Vec<Result<Value, String>> =
            (0..5).map(|_| Ok(json!({"id": "i".repeat(5000)}))).collect();
        let lines = within(&huge_ids, 3000, |item| json!({"id": item["id"]}).to_string());
        let all = format!("[{}]", lines.join(","));
        assert!(all.len() < 3000 + 5 * 400, "{}", all.len());
        let lines = within(&items(1), 3000, |_| format!("\"{}\"", "x".repeat(10_000)));
        let answer: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(answer, json!({"id": 0, "error": answer["error"]}));
        assert_eq!(answer["error"]["code"], "payload_too_large");
    }
}
