//! What the function says about itself: `/health` (is it up, what is loaded, how much memory)
//! and `/info` (what it serves and every limit in force), both without loading a model.

use serde_json::{json, Value};

use crate::config::{MAX_BATCH, MAX_BODY_BYTES, MAX_TEXT_CHARS};
use crate::registry::{Entry, Registry};

/// `model`: the default model (what a request naming no task gets); `models`: every model served.
pub fn health(models: &Registry) -> Value {
    let model = models.default_entry().map_or(Value::Null, Entry::describe);
    let all: Vec<Value> = models.entries().iter().map(Entry::describe).collect();
    let mut memory = json!(crate::memory::rss());
    memory["budget_mb"] = json!(models.settings().memory_budget_mb);
    // What the budget counts: the process before any model, and every model in memory.
    memory["counted_mb"] = json!((models.in_memory_mb() * 10.0).round() / 10.0);
    json!({ "status": "ok", "model": model, "models": all, "memory": memory })
}

/// Version, models and limits. The plain server's own limits (connections, deadlines, in-flight
/// requests, API key) are listed only where they apply: on Lambda, the runtime hands the function
/// one request at a time and API Gateway keeps its own limits.
pub fn info(models: &Registry, on_lambda: bool) -> Value {
    let is_default = |entry| models.default_entry().is_some_and(|d| std::ptr::eq(d, entry));
    let served: Vec<Value> =
        models.entries().iter().map(|entry| model_info(entry, is_default(entry))).collect();
    let settings = models.settings();
    let mut limits = json!({
        "max_body_bytes": MAX_BODY_BYTES,
        "max_batch": MAX_BATCH,
        "max_text_chars": MAX_TEXT_CHARS,
        "max_map_batch_items": crate::lambda::MAX_ITEMS,
        "memory_budget_mb": settings.memory_budget_mb,
    });
    if !on_lambda {
        let server = json!({
            "max_in_flight": settings.max_in_flight,
            "max_connections": settings.max_connections,
            "header_timeout_s": settings.header_timeout.as_secs_f64(),
            "body_timeout_s": settings.body_timeout.as_secs_f64(),
            "queue_timeout_s": settings.queue_timeout.as_secs_f64(),
        });
        limits.as_object_mut().expect("an object").extend(server.as_object().expect("an object").clone());
    }
    json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "front_door": if on_lambda { "lambda" } else { "server" },
        "api_key_required": !on_lambda && settings.api_key.is_some(),
        "models": served,
        "limits": limits,
    })
}

/// A model's facts, from memory when loaded and from its directory's small JSON files otherwise
/// (no weights are read); a directory that cannot be read says why.
fn model_info(entry: &Entry, default: bool) -> Value {
    let mut about = json!({ "task": entry.task, "lang": entry.lang, "default": default });
    let loaded = entry.loaded();
    about["loaded"] = json!(loaded.is_some());
    let spec = match &loaded {
        Some(model) => Ok(model.spec.clone()),
        None => entry.read_spec(),
    };
    match spec {
        Ok(spec) => {
            about["name"] = json!(spec.name);
            about["labels"] = json!(spec.labels);
            about["multi_label"] = json!(spec.multi_label);
            about["max_tokens"] = json!(spec.max_tokens);
            // What a request sends and gets: a second text (`target`/`context`) or none; a label
            // per text or per word.
            about["pair"] = json!(spec.pair);
            about["labels_per"] = json!(match spec.head {
                crate::model_dir::Head::Text => "text",
                crate::model_dir::Head::Words { .. } => "word",
            });
        }
        Err(problem) => about["problem"] = json!(problem),
    }
    about
}
