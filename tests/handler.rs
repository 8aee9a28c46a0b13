//! The handler over the tiny fixture model, in process: every route and status code.

mod common;

use common::{call, call_with, cell, copy_fixture, edit_json, fixture, predict};
use serde_json::json;

fn probas_sum(prediction: &serde_json::Value) -> f64 {
    prediction["probas"].as_object().unwrap().values().map(|p| p.as_f64().unwrap()).sum()
}

#[tokio::test]
async fn predicts_positive_and_negative_spanish() {
    let cell = cell(fixture("tiny"));
    let pos = predict(cell, "me encanta este día").await;
    assert_eq!(pos["output"], "POS");
    let neg = predict(cell, "odio el servicio, horrible").await;
    assert_eq!(neg["output"], "NEG");
    for p in [&pos, &neg] {
        assert!((probas_sum(p) - 1.0).abs() < 1e-5, "{p}");
        let labels: Vec<&String> = p["probas"].as_object().unwrap().keys().collect();
        assert_eq!(labels, ["NEG", "NEU", "POS"]);
        assert_eq!(p["truncated"], false);
    }
}

#[tokio::test]
async fn batch_answers_in_input_order_and_padding_changes_nothing() {
    let cell = cell(fixture("tiny"));
    let texts = ["malo", "una película buena y genial", "el día"];
    let reply = call(cell, "POST", "/predict", Some(&json!({ "texts": texts }).to_string())).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let results = reply.json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for (text, result) in texts.iter().zip(results) {
        let single = predict(cell, text).await;
        assert_eq!(result["output"], single["output"], "{text}");
        for label in ["NEG", "NEU", "POS"] {
            let (a, b) =
                (result["probas"][label].as_f64().unwrap(), single["probas"][label].as_f64().unwrap());
            assert!((a - b).abs() < 1e-6, "{text} {label}: batch {a} vs single {b}");
        }
    }
    assert_eq!(results[0]["output"], "NEG");
    assert_eq!(results[1]["output"], "POS");
}

#[tokio::test]
async fn long_text_is_truncated_and_says_so() {
    let cell = cell(fixture("tiny"));
    // The fixture reads 16 tokens: the 14 words that fit are neutral, the positive tail is cut off.
    let text = format!("{} excelente excelente excelente", vec!["el"; 30].join(" "));
    let p = predict(cell, &text).await;
    assert_eq!(p["truncated"], true);
    assert_eq!(p["output"], "NEU");
}

#[tokio::test]
async fn feeds_token_type_ids_only_to_graphs_that_declare_them() {
    let plain = cell(fixture("tiny"));
    let typed = cell(fixture("tiny-token-types"));
    for text in ["me encanta", "odio esto"] {
        assert_eq!(predict(plain, text).await["probas"], predict(typed, text).await["probas"]);
    }
}

#[tokio::test]
async fn weights_in_model_onnx_data_answer_as_the_single_file_model() {
    let single = cell(fixture("tiny"));
    let external = cell(fixture("tiny-external"));
    for text in ["me encanta", "odio esto", "el servicio de hoy"] {
        assert_eq!(predict(single, text).await["probas"], predict(external, text).await["probas"]);
    }
}

#[tokio::test]
async fn missing_weights_file_is_503_naming_it() {
    let dir = copy_fixture("tiny-external");
    std::fs::remove_file(dir.path().join("model.onnx.data")).unwrap();
    let reply = call(cell(dir.path()), "POST", "/predict", Some(r#"{"text": "hola"}"#)).await;
    assert_eq!(reply.status, 503, "{}", reply.json);
    let message = reply.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("model.onnx.data"), "{message}");
}

#[tokio::test]
async fn multi_label_models_return_the_labels_above_one_half() {
    let dir = copy_fixture("tiny");
    edit_json(&dir.path().join("config.json"), |c| c["problem_type"] = json!("multi_label_classification"));
    let cell = cell(dir.path());
    let p = predict(cell, "excelente excelente").await;
    assert_eq!(p["output"], json!(["NEU", "POS"]));
    assert!(probas_sum(&p) > 1.0, "sigmoid, not softmax: {p}");
    let none = predict(cell, "<pad>").await;
    assert!(none["output"].is_array());
}

#[tokio::test]
async fn routes_ignore_stage_and_base_path() {
    let cell = cell(fixture("tiny"));
    let body = json!({ "text": "genial" }).to_string();
    for path in ["/predict", "/prod/predict", "/api/v1/predict/"] {
        let reply = call(cell, "POST", path, Some(&body)).await;
        assert_eq!((reply.status, &reply.json["output"]), (200, &json!("POS")), "{path}");
    }
}

#[tokio::test]
async fn health_reports_whether_the_model_is_loaded() {
    let cell = cell(fixture("tiny"));
    let before = call(cell, "GET", "/health", None).await;
    assert_eq!(before.status, 200);
    assert_eq!(before.json["model"]["loaded"], false);
    predict(cell, "hola").await;
    let after = call(cell, "GET", "/health", None).await;
    assert_eq!(after.json["model"]["loaded"], true);
    assert_eq!(after.json["model"]["name"], "fixture/tiny");
    assert_eq!(after.json["model"]["labels"], json!(["NEG", "NEU", "POS"]));
    assert!(after.json["memory"]["peak_rss_mb"].as_f64().unwrap() > 0.0);
}

/// Method, path, content type, body, expected status and error code.
type Mistake<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a [u8]>, u16, &'a str);
/// A file, how to break it, and what the 503's message must name.
type Breakage<'a> = (&'a str, fn(&std::path::Path), &'a str);

#[tokio::test]
async fn client_mistakes_get_4xx_with_a_json_error() {
    let cell = cell(fixture("tiny"));
    let cases: [Mistake; 9] = [
        ("POST", "/predict", Some("application/json"), Some(b"{not json"), 400, "invalid_json"),
        ("POST", "/predict", Some("application/json"), None, 400, "invalid_json"),
        ("POST", "/predict", Some("application/json"), Some(br#"{"text": 42}"#), 400, "invalid_request"),
        ("POST", "/predict", Some("application/json"), Some(br#"{"text": " "}"#), 400, "invalid_request"),
        ("POST", "/nope", Some("application/json"), Some(b"{}"), 404, "not_found"),
        ("GET", "/predict", None, None, 405, "method_not_allowed"),
        ("DELETE", "/health", None, None, 405, "method_not_allowed"),
        ("POST", "/predict", Some("text/plain"), Some(br#"{"text": "hola"}"#), 415, "unsupported_media_type"),
        ("POST", "/predict", Some("application/json"), Some(&[0xc3, 0x28]), 400, "invalid_json"),
    ];
    for (method, path, ct, body, status, code) in cases {
        let reply = call_with(cell, method, path, ct, body.map(<[u8]>::to_vec)).await;
        assert_eq!(reply.status, status, "{method} {path} {:?}: {}", body, reply.json);
        assert_eq!(reply.json["error"]["code"], code);
        assert!(!reply.json["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn method_not_allowed_names_the_allowed_method() {
    let reply = call(cell(fixture("tiny")), "PUT", "/predict", None).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "POST");
}

#[tokio::test]
async fn oversized_batches_are_413() {
    let cell = cell(fixture("tiny"));
    let texts = vec!["hola"; 65];
    let reply = call(cell, "POST", "/predict", Some(&json!({ "texts": texts }).to_string())).await;
    assert_eq!(reply.status, 413);
    assert!(reply.json["error"]["message"].as_str().unwrap().contains("64"));
}

#[tokio::test]
async fn missing_model_is_503_and_recovers_once_the_files_appear() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("model");
    let cell = cell(&dir);
    let body = json!({ "text": "excelente" }).to_string();
    let reply = call(cell, "POST", "/predict", Some(&body)).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json["error"]["code"], "model_unavailable");
    assert!(reply.json["error"]["message"].as_str().unwrap().contains("does not exist"));

    // The failure was not cached: fixing the directory is enough.
    std::fs::rename(copy_fixture("tiny").keep(), &dir).unwrap();
    let reply = call(cell, "POST", "/predict", Some(&body)).await;
    assert_eq!((reply.status, &reply.json["output"]), (200, &json!("POS")));
}

#[tokio::test]
async fn broken_model_files_are_503_naming_the_file() {
    let cases: [Breakage; 4] = [
        ("model.onnx", |d| std::fs::write(d.join("model.onnx"), b"garbage").unwrap(), "model.onnx"),
        ("tokenizer.json", |d| std::fs::write(d.join("tokenizer.json"), b"{}").unwrap(), "tokenizer"),
        ("config.json", |d| edit_json(&d.join("config.json"), |c| c["id2label"] = json!({})), "id2label"),
        (
            "label width",
            |d| edit_json(&d.join("config.json"), |c| c["id2label"] = json!({"0": "NEG", "1": "POS"})),
            "3 logits per row but config.json names 2 labels",
        ),
    ];
    for (what, break_it, expected) in cases {
        let dir = copy_fixture("tiny");
        break_it(dir.path());
        let reply = call(cell(dir.path()), "POST", "/predict", Some(r#"{"text": "hola"}"#)).await;
        assert_eq!(reply.status, 503, "{what}: {}", reply.json);
        let message = reply.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{what}: {message}");
    }
}

#[tokio::test]
async fn texts_are_preprocessed_as_pysentimiento_does_before_the_model_reads_them() {
    let cell_es = cell(fixture("tiny"));
    let body = json!({ "text": "@juan #OdioLosLunes!!!! https://t.co/x", "include_sentence": true });
    let reply = call(cell_es, "POST", "/predict", Some(&body.to_string())).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["sentence"], "@usuario hashtag odio los lunes!!! url");

    // "odio" is only visible to the model once the hashtag is split.
    let hashtag = json!({ "text": "#OdioElLunes", "include_sentence": true }).to_string();
    let split = call(cell_es, "POST", "/predict", Some(&hashtag)).await;
    assert_eq!(
        (&split.json["sentence"], &split.json["output"]),
        (&json!("hashtag odio el lunes"), &json!("NEG"))
    );

    let dir = copy_fixture("tiny");
    edit_json(&dir.path().join("pipeline.json"), |p| p["lang"] = json!(null));
    let raw = call(cell(dir.path()), "POST", "/predict", Some(&hashtag)).await;
    assert_eq!((&raw.json["sentence"], &raw.json["output"]), (&json!("#OdioElLunes"), &json!("NEU")));
}

#[tokio::test]
async fn sentence_is_left_out_unless_asked_for() {
    let p = predict(cell(fixture("tiny")), "hola").await;
    assert!(p.get("sentence").is_none(), "{p}");
}

#[tokio::test]
async fn unsupported_preprocessing_language_is_503_naming_it() {
    let dir = copy_fixture("tiny");
    edit_json(&dir.path().join("pipeline.json"), |p| p["lang"] = json!("fr"));
    let reply = call(cell(dir.path()), "POST", "/predict", Some(r#"{"text": "hola"}"#)).await;
    assert_eq!(reply.status, 503);
    assert!(reply.json["error"]["message"].as_str().unwrap().contains("\"fr\""));
}

#[tokio::test]
async fn a_bad_item_in_a_batch_is_answered_in_its_place_and_the_others_are_classified() {
    let body = json!({ "texts": ["excelente", "   ", "x".repeat(10_001), "horrible"] }).to_string();
    let reply = call(cell(fixture("tiny")), "POST", "/predict", Some(&body)).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let results = reply.json["results"].as_array().unwrap();
    assert_eq!(results[0]["output"], "POS");
    assert_eq!(results[1]["error"]["code"], "invalid_request");
    assert_eq!(results[1]["error"]["message"], "texts[1] is empty");
    assert_eq!(results[2]["error"]["code"], "payload_too_large");
    assert_eq!(results[3]["output"], "NEG");
}

#[tokio::test]
async fn base64_bodies_and_hostile_json_get_clear_answers() {
    let cell = cell(fixture("tiny"));
    // API Gateway hands binary bodies over as bytes; invalid UTF-8 inside is a 400, not a panic.
    let cases: [(&[u8], u16, &str); 5] = [
        (b"{\"text\": \"\\ud800\"}", 400, "invalid_json"),
        (b"{\"text\": \"a\", \"text\": \"b\"}", 400, "invalid_request"),
        (b"{\"texts\": [1e999]}", 400, "invalid_json"), // serde_json: number out of range
        (&[b'['; 10_000], 400, "invalid_json"),
        (b"{\"text\": \"\\u0000\"}", 200, ""),
    ];
    for (body, status, code) in cases {
        let reply = call_with(cell, "POST", "/predict", Some("application/json"), Some(body.to_vec())).await;
        assert_eq!(
            reply.status,
            status,
            "{:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(40)]),
            reply.json
        );
        if !code.is_empty() {
            assert_eq!(reply.json["error"]["code"], code);
        }
    }
}

fn post(
    cell: &'static sentimiento::registry::Registry,
    body: serde_json::Value,
) -> impl std::future::Future<Output = common::Reply> {
    let body = body.to_string();
    async move { call(cell, "POST", "/predict", Some(&body)).await }
}

/// The token-types fixture as a pair task: it pools the tokens of both texts.
fn pair_fixture() -> tempfile::TempDir {
    let dir = copy_fixture("tiny-token-types");
    edit_json(&dir.path().join("pipeline.json"), |p| {
        p["task"] = json!("targeted_sentiment");
        p["pair"] = json!("target");
    });
    dir
}

#[tokio::test]
async fn a_pair_task_reads_the_text_with_its_target_or_context() {
    let dir = pair_fixture();
    let (pair, single) = (cell(dir.path()), cell(fixture("tiny-token-types")));
    let r = post(pair, json!({"text": "el día", "target": "horrible", "include_sentence": true})).await;
    assert_eq!(
        (r.status, &r.json["output"], &r.json["context"]),
        (200, &json!("NEG"), &json!("horrible")),
        "{}",
        r.json
    );
    // An empty or blank target: the text is read alone, exactly as the one-text model reads it.
    for target in ["", "   "] {
        let r = post(pair, json!({"text": "me encanta", "target": target, "include_sentence": true})).await;
        assert_eq!(r.json["probas"], predict(single, "me encanta").await["probas"], "{target:?}");
        assert!(r.json.get("context").is_none(), "{}", r.json);
    }
    // `contexts` is the same field, parallel to `texts`.
    let r = post(pair, json!({"texts": ["el día", "el día"], "contexts": ["genial", "odio"]})).await;
    let outputs: Vec<&serde_json::Value> =
        r.json["results"].as_array().unwrap().iter().map(|r| &r["output"]).collect();
    assert_eq!(outputs, [&json!("POS"), &json!("NEG")], "{}", r.json);
    let r = post(pair, json!({"text": "hola"})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json["error"]["message"].as_str().unwrap().contains("send \"target\" with \"text\""),
        "{}",
        r.json
    );
}

#[tokio::test]
async fn a_one_text_task_refuses_a_second_text() {
    let r = post(cell(fixture("tiny")), json!({"texts": ["hola"], "targets": ["x"]})).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json["error"]["message"].as_str().unwrap().contains("reads one text; \"targets\""),
        "{}",
        r.json
    );
}

fn strings(value: &serde_json::Value) -> Vec<Option<&str>> {
    value.as_array().unwrap().iter().map(|v| v.as_str()).collect()
}

#[tokio::test]
async fn ner_labels_spacy_words_and_groups_entities() {
    let cell = cell(fixture("tiny-words"));
    let text = "@ana vive en Nueva York, y Juan Pérez en Madrid.";
    let r = post(cell, json!({ "text": text })).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let words = ["@ana", "vive", "en", "Nueva", "York", ",", "y", "Juan", "Pérez", "en", "Madrid", "."];
    assert_eq!(strings(&r.json["tokens"]), words.map(Some));
    // 12 tokens: <s>, the first ten pieces, </s>; the last three words were not read. @ana is a user.
    let labels = ["B-USER", "O", "O", "B-LOC", "I-LOC", "O", "O", "B-PER", "I-PER"].map(Some);
    assert_eq!(strings(&r.json["labels"]), [&labels[..], &[None, None, None]].concat());
    assert_eq!(
        r.json["entities"],
        json!([
            {"type": "USER", "text": "@ana", "start": 0, "end": 4},
            {"type": "LOC", "text": "Nueva York", "start": 13, "end": 23},
            {"type": "PER", "text": "Juan Pérez", "start": 27, "end": 37}
        ])
    );
    assert_eq!(
        (&r.json["sentence"], &r.json["preprocessed"], &r.json["truncated"]),
        (&json!(text), &json!(text), &json!(true))
    );
    let rows = r.json["probas"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    let sum: f64 = rows[1].as_array().unwrap().iter().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-5);
}

#[tokio::test]
async fn pos_drops_the_bio_prefix_and_a_word_without_tokens_has_no_label() {
    let dir = copy_fixture("tiny-words");
    edit_json(&dir.path().join("pipeline.json"), |p| p["task"] = json!("pos"));
    let r = post(cell(dir.path()), json!({"texts": ["@juan  vive en Roma"]})).await;
    let answer = &r.json["results"][0];
    assert_eq!(strings(&answer["tokens"]), ["@juan", " ", "vive", "en", "Roma"].map(Some));
    // The second space of the run is a word of its own, which the tokenizer makes nothing of.
    assert_eq!(strings(&answer["labels"]), [Some("USER"), None, Some("O"), Some("O"), Some("I-LOC")]);
    assert!(answer.get("entities").is_none(), "{answer}");
}

#[tokio::test]
async fn a_word_model_must_give_logits_per_token() {
    let dir = copy_fixture("tiny");
    edit_json(&dir.path().join("pipeline.json"), |p| p["task"] = json!("ner"));
    let r = post(cell(dir.path()), json!({"text": "hola"})).await;
    assert_eq!(r.status, 503);
    assert!(
        r.json["error"]["message"].as_str().unwrap().contains("one row of logits per token (rank 3)"),
        "{}",
        r.json
    );
}
