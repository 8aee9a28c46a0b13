//! Several models in one function: `MODEL_DIR/<task>/<lang>/`, chosen per request, loaded on first
//! use, unloaded least-recently-used first when the memory budget says so.

mod common;

use std::path::Path;

use common::{add_model, call, edit_json, registry};
use sentimiento::config::Settings;
use serde_json::json;

fn three_models() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    add_model(root.path(), "sentiment", "es", "tiny");
    add_model(root.path(), "emotion", "es", "tiny-token-types");
    add_model(root.path(), "sentiment", "it", "tiny-external");
    root
}

/// The three models with a memory budget of `budget_mb`.
fn budgeted(root: &Path, budget_mb: f64) -> &'static sentimiento::registry::Registry {
    let mut settings = Settings::for_model(root);
    settings.memory_budget_mb = Some(budget_mb);
    registry(settings)
}

fn body(text: &str, task: Option<&str>, lang: Option<&str>) -> String {
    let mut body = json!({ "text": text, "include_sentence": true });
    if let Some(task) = task {
        body["task"] = json!(task);
    }
    if let Some(lang) = lang {
        body["lang"] = json!(lang);
    }
    body.to_string()
}

fn loaded(health: &serde_json::Value) -> Vec<String> {
    let models = health["models"].as_array().unwrap();
    let on = models.iter().filter(|m| m["loaded"] == true);
    on.map(|m| format!("{}/{}", m["task"].as_str().unwrap(), m["lang"].as_str().unwrap())).collect()
}

#[tokio::test]
async fn each_request_is_answered_by_the_model_it_names() {
    let root = three_models();
    let models = registry(Settings::for_model(root.path()));
    let default = call(models, "POST", "/predict", Some(&body("excelente", None, None))).await;
    assert_eq!((default.status, &default.json["output"]), (200, &json!("POS")), "{}", default.json);
    // The Italian model preprocesses as pysentimiento does in Italian.
    let it = call(models, "POST", "/predict", Some(&body("@ana excelente", None, Some("it")))).await;
    assert_eq!((it.status, &it.json["sentence"]), (200, &json!("##user excelente")), "{}", it.json);
    let emotion =
        call(models, "POST", "/predict", Some(&body("@ana excelente", Some("emotion"), None))).await;
    assert_eq!((emotion.status, &emotion.json["sentence"]), (200, &json!("@usuario excelente")));
    let health = call(models, "GET", "/health", None).await;
    assert_eq!(loaded(&health.json), ["emotion/es", "sentiment/es", "sentiment/it"]);
}

#[tokio::test]
async fn an_unknown_task_or_language_is_a_400_listing_what_is_served() {
    let root = three_models();
    let models = registry(Settings::for_model(root.path()));
    for (task, lang) in [(Some("irony"), None), (Some("emotion"), Some("it")), (None, Some("pt"))] {
        let reply = call(models, "POST", "/predict", Some(&body("hola", task, lang))).await;
        assert_eq!((reply.status, &reply.json["error"]["code"]), (400, &json!("unknown_model")));
        let message = reply.json["error"]["message"].as_str().unwrap();
        assert!(message.contains("emotion/es, sentiment/es, sentiment/it"), "{message}");
    }
}

#[tokio::test]
async fn health_lists_every_model_and_which_are_loaded() {
    let root = three_models();
    let models = registry(Settings::for_model(root.path()));
    let before = call(models, "GET", "/health", None).await.json;
    assert_eq!(before["models"].as_array().unwrap().len(), 3);
    assert!(loaded(&before).is_empty());
    assert_eq!((&before["model"]["task"], &before["model"]["loaded"]), (&json!("sentiment"), &json!(false)));
    call(models, "POST", "/predict", Some(&body("hola", Some("emotion"), None))).await;
    let after = call(models, "GET", "/health", None).await.json;
    assert_eq!(loaded(&after), ["emotion/es"]);
    let emotion = after["models"].as_array().unwrap().iter().find(|m| m["task"] == "emotion").unwrap();
    assert_eq!(emotion["labels"], json!(["NEG", "NEU", "POS"]));
    assert!(emotion["memory_mb"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn over_the_memory_budget_the_least_recently_used_model_is_unloaded_first() {
    let root = three_models();
    // Any process is over 1 MB: every load must make room by unloading the others.
    let models = budgeted(root.path(), 1.0);
    let ask = |task, lang| body("excelente", Some(task), Some(lang));
    for (task, lang) in [("sentiment", "es"), ("emotion", "es")] {
        let reply = call(models, "POST", "/predict", Some(&ask(task, lang))).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
    }
    assert_eq!(loaded(&call(models, "GET", "/health", None).await.json), ["emotion/es"]);
    // The unloaded model comes back on its next request, and answers as before.
    let again = call(models, "POST", "/predict", Some(&ask("sentiment", "es"))).await;
    assert_eq!((again.status, &again.json["output"]), (200, &json!("POS")));
    let health = call(models, "GET", "/health", None).await.json;
    assert_eq!(loaded(&health), ["sentiment/es"]);
    assert_eq!(health["memory"]["budget_mb"], 1.0);
}

#[tokio::test]
async fn within_the_budget_every_model_stays_loaded() {
    let root = three_models();
    let models = budgeted(root.path(), 1_000_000.0);
    for (task, lang) in [("sentiment", "es"), ("emotion", "es"), ("sentiment", "it")] {
        call(models, "POST", "/predict", Some(&body("hola", Some(task), Some(lang)))).await;
    }
    assert_eq!(loaded(&call(models, "GET", "/health", None).await.json).len(), 3);
}

#[tokio::test]
async fn a_directory_whose_pipeline_names_another_task_is_503_naming_both() {
    let root = three_models();
    edit_json(&root.path().join("emotion/es/pipeline.json"), |p| p["task"] = json!("irony"));
    let models = registry(Settings::for_model(root.path()));
    let reply = call(models, "POST", "/predict", Some(&body("hola", Some("emotion"), None))).await;
    assert_eq!(reply.status, 503);
    let message = reply.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"irony\"") && message.contains("emotion/es"), "{message}");
}

#[tokio::test]
async fn max_tokens_past_a_roberta_models_positions_is_refused_not_a_500() {
    let dir = common::copy_fixture("tiny");
    // 16 positions, numbered from pad_token_id + 1 = 1: 15 usable, and pipeline.json asks for 16.
    edit_json(&dir.path().join("config.json"), |c| c["model_type"] = json!("roberta"));
    let models = registry(Settings::for_model(dir.path()));
    let long = "excelente ".repeat(40);
    let reply = call(models, "POST", "/predict", Some(&body(&long, None, None))).await;
    assert_eq!(reply.status, 503, "{}", reply.json);
    let message = reply.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_tokens 16 is not within 2..=15"), "{message}");
}

fn model_health<'a>(health: &'a serde_json::Value, pair: &str) -> &'a serde_json::Value {
    let models = health["models"].as_array().unwrap();
    models
        .iter()
        .find(|m| format!("{}/{}", m["task"].as_str().unwrap(), m["lang"].as_str().unwrap()) == pair)
        .unwrap()
}

/// Waits (a hang guard, not a timing) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_waits_until_an_unloaded_model_still_in_use_is_freed() {
    let root = three_models();
    // Any process is over 1 MB: emotion needs all the memory sentiment holds.
    let models = budgeted(root.path(), 1.0);
    let sentiment = models.resolve(Some("sentiment"), Some("es")).unwrap();
    let in_use = models.get(sentiment).await.unwrap();
    let ask = body("excelente", Some("emotion"), None);
    let emotion = tokio::spawn(async move { call(models, "POST", "/predict", Some(&ask)).await });
    until("sentiment unloaded", || sentiment.loaded().is_none()).await;
    // Loading now would hold both copies at once; a second of not loading is the evidence.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!emotion.is_finished(), "emotion loaded while sentiment was still in memory");
    drop(in_use);
    let reply = emotion.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(loaded(&call(models, "GET", "/health", None).await.json), ["emotion/es"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unloaded_model_still_in_use_is_handed_out_again_not_loaded_twice() {
    let root = three_models();
    let mut settings = Settings::for_model(root.path());
    settings.memory_budget_mb = Some(1.0);
    settings.queue_timeout = std::time::Duration::from_millis(300);
    let models = registry(settings);
    let sentiment = models.resolve(Some("sentiment"), Some("es")).unwrap();
    let in_use = models.get(sentiment).await.unwrap();
    // emotion cannot have sentiment's memory while a request holds it: told to retry, not loaded.
    let emotion = call(models, "POST", "/predict", Some(&body("hola", Some("emotion"), None))).await;
    assert_eq!(
        (emotion.status, &emotion.json["error"]["code"]),
        (503, &json!("overloaded")),
        "{}",
        emotion.json
    );
    assert!(emotion.json["error"]["message"].as_str().unwrap().contains("sentiment/es"), "{}", emotion.json);
    // Unloaded, yet still in memory: the next sentiment request gets that copy back.
    let again = call(models, "POST", "/predict", Some(&body("excelente", Some("sentiment"), None))).await;
    assert_eq!((again.status, &again.json["output"]), (200, &json!("POS")));
    let health = call(models, "GET", "/health", None).await.json;
    assert_eq!(loaded(&health), ["sentiment/es"]);
    assert_eq!(model_health(&health, "sentiment/es")["loads"], 1, "{health}");
    assert_eq!(model_health(&health, "emotion/es")["loads"], 0, "{health}");
    drop(in_use);
}

#[tokio::test]
async fn health_names_no_filesystem_path() {
    let root = three_models();
    let models = registry(Settings::for_model(root.path()));
    call(models, "POST", "/predict", Some(&body("hola", None, None))).await;
    let health = call(models, "GET", "/health", None).await.json.to_string();
    let root_path = root.path().to_str().unwrap();
    assert!(!health.contains(root_path), "{health}");
}

#[tokio::test]
async fn a_nested_model_without_pipeline_json_is_refused_saying_the_file_is_missing() {
    let root = three_models();
    std::fs::remove_file(root.path().join("emotion/es/pipeline.json")).unwrap();
    let models = registry(Settings::for_model(root.path()));
    let reply = call(models, "POST", "/predict", Some(&body("hola", Some("emotion"), None))).await;
    assert_eq!(reply.status, 503, "{}", reply.json);
    let message = reply.json["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("pipeline.json is missing") && message.contains(r#""task": "emotion""#),
        "{message}"
    );
    let info = call(models, "GET", "/info", None).await.json;
    let emotion = info["models"].as_array().unwrap().iter().find(|m| m["task"] == "emotion").unwrap();
    assert!(emotion["problem"].as_str().unwrap().contains("pipeline.json is missing"), "{info}");
}
