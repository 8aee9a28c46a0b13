//! The command-line front door: `sentimiento predict "texto"` for a quick local try.

use crate::handler;
use crate::model::ModelCell;
use aws_lambda_events::encodings::Body;
use lambda_http::http::Request;
use serde_json::json;

/// Goes through the same handler as HTTP, so the CLI shows exactly what the API answers.
pub async fn predict(cell: &'static ModelCell, texts: &[String]) -> Result<String, String> {
    let body = match texts {
        [text] => json!({ "text": text }),
        _ => json!({ "texts": texts }),
    };
    let req = Request::post("/predict")
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static request parts are valid");
    let response = handler::handle(cell, req).await;
    let text = String::from_utf8_lossy(response.body()).into_owned();
    match response.status().is_success() {
        true => Ok(text),
        false => Err(text),
    }
}
