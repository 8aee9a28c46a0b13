//! What preprocessing's expansion may cost, and what one slow request may cost the others: the
//! limit on what the model path reads once emoji are spelled out, the queue deadline while a
//! request waits for a blocking thread, and a slow model that cannot hold up another.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Body;
use common::{add_model, call, cell, exchange, fixture, post, predict, serve_binary};
use lambda_http::http::Request;
use sentimiento::handler::handle_with;
use sentimiento::work::Ticket;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio::time::timeout;

/// Two emoji in turn dodge the 3-repeat rule: 10,000 characters, 564,998 once spelled out.
fn alternating_emoji() -> String {
    "↖😦".repeat(5000)
}

fn message(json: &Value) -> &str {
    json["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_text_whose_emoji_expand_past_the_limit_is_413_saying_so() {
    for model in ["tiny", "tiny-words"] {
        let body = json!({ "text": alternating_emoji() }).to_string();
        let r = call(cell(fixture(model)), "POST", "/predict", Some(&body)).await;
        assert_eq!((r.status, r.json["error"]["code"].as_str()), (413, Some("payload_too_large")), "{model}");
        let said = message(&r.json);
        assert!(said.contains("564998 characters after preprocessing"), "{model}: {said}");
        assert!(said.contains("over the limit of 40000") && said.contains("emoji"), "{model}: {said}");
    }
}

#[tokio::test]
async fn in_a_batch_the_expanded_text_gets_its_error_in_place_and_the_others_are_answered() {
    let body = json!({ "texts": ["hola", alternating_emoji(), "Juan vive en Madrid 😀"] }).to_string();
    let r = call(cell(fixture("tiny-words")), "POST", "/predict", Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.json);
    let results = r.json["results"].as_array().unwrap();
    assert_eq!(results[0]["tokens"], json!(["hola"]));
    assert_eq!(results[1]["error"]["code"], "payload_too_large");
    assert!(message(&results[1]).contains("after preprocessing"), "{}", results[1]);
    assert!(results[2]["tokens"].as_array().unwrap().len() > 4, "{}", results[2]);
}

#[tokio::test]
async fn a_word_task_refuses_a_text_that_splits_into_more_words_than_the_limit() {
    // 9,000 characters of one-letter words split at commas, then 250 emoji spelled out: about
    // 25,000 characters (under the character limit) but over 10,000 words.
    let text = format!("{}{}", "a,".repeat(4500), "😀😁".repeat(125));
    let body = json!({ "text": text }).to_string();
    let r = call(cell(fixture("tiny-words")), "POST", "/predict", Some(&body)).await;
    assert_eq!(r.status, 413, "{}", r.json);
    let said = message(&r.json);
    assert!(said.contains("words after preprocessing, over the limit of 10000 for the ner task"), "{said}");
    // A text classifier reads the same text: under its character limit, so it is answered.
    let r = call(cell(fixture("tiny")), "POST", "/predict", Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.json);
}

#[tokio::test]
async fn ordinary_emoji_dense_text_at_the_length_limit_is_answered() {
    let tweet = "Feliz cumpleaños amiga!!! 🎉🎂🥳❤️ ";
    let text: String = tweet.repeat(10_000 / tweet.chars().count());
    for model in ["tiny", "tiny-words"] {
        let answer = predict(cell(fixture(model)), &text).await;
        assert!(answer.get("error").is_none(), "{model}: {answer}");
    }
}

/// The runtime of the test has one blocking thread, and something else holds it for 2 s: the
/// request runs on its model's own thread, so it is answered at once, neither held up behind that
/// work nor shed for a deadline (300 ms) it would have passed waiting for the thread.
#[test]
fn a_busy_blocking_pool_neither_holds_up_nor_sheds_a_request() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let models = cell(fixture("tiny"));
        predict(models, "hola").await; // loads the model
        let busy = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_secs(2)));
        let slots = Arc::new(Semaphore::new(1));
        let permit = slots.try_acquire_owned().unwrap();
        let (ticket, _watch) = Ticket::new(permit, Instant::now(), Duration::from_millis(300));
        let req = Request::post("/predict")
            .header("content-type", "application/json")
            .body(Body::Text(json!({"text": "hola"}).to_string()))
            .unwrap();
        let response = timeout(Duration::from_secs(30), handle_with(models, req, Ok(ticket))).await.unwrap();
        let held_up = busy.is_finished();
        let json: Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(response.status(), 200, "{json}");
        assert!(!held_up, "the request waited for the blocking pool's thread");
        busy.await.unwrap();
    });
}

async fn ask(addr: std::net::SocketAddr, body: Value) -> (u16, Value) {
    let body = body.to_string();
    timeout(Duration::from_secs(60), exchange(addr, &post(body.len()), body.as_bytes()))
        .await
        .expect("answered")
}

/// Two slow models, each busy with a long batch, and a third model asked for one word: it is
/// answered while the slow batches still run, not after one of them gives its thread back.
#[tokio::test]
async fn a_slow_model_does_not_hold_up_another_models_request() {
    let root = tempfile::tempdir().unwrap();
    add_model(root.path(), "sentiment", "es", "tiny");
    add_model(root.path(), "emotion", "es", "tiny-slow");
    add_model(root.path(), "irony", "es", "tiny-slow");
    let dir = root.path().to_str().unwrap();
    let (mut server, addr) =
        serve_binary("tiny", &[("MODEL_DIR", dir), ("SENTIMIENTO_QUEUE_TIMEOUT_S", "60")]);
    for task in ["sentiment", "emotion", "irony"] {
        let (status, json) = ask(addr, json!({"text": "hola", "task": task, "lang": "es"})).await;
        assert_eq!(status, 200, "{task} loads: {json}");
    }
    let texts: Vec<String> = (0..64).map(|i| format!("texto lento {i}")).collect();
    let slow: Vec<_> = ["emotion", "irony"]
        .map(|task| tokio::spawn(ask(addr, json!({"texts": texts, "task": task, "lang": "es"}))))
        .into();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, json) = ask(addr, json!({"text": "hola", "task": "sentiment", "lang": "es"})).await;
    let still_running = slow.iter().filter(|s| !s.is_finished()).count();
    for batch in slow {
        assert_eq!(batch.await.unwrap().0, 200);
    }
    let _ = server.kill();
    assert_eq!(status, 200, "{json}");
    assert_eq!(still_running, 2, "the one-word request waited for a slow batch to finish");
}
