//! What preprocessing's expansion may cost: the limit on what the model path reads once emoji are
//! spelled out.

mod common;

use common::{call, cell, fixture, predict};
use serde_json::{json, Value};

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
