//! The command-line front door: `predict` for a quick local try, `preprocess` for checking the
//! preprocessing against pysentimiento.

use std::io::{BufRead, Write};

use crate::handler;
use crate::preprocess::{Lang, Options, Preprocessor};
use crate::registry::Registry;
use aws_lambda_events::encodings::Body;
use lambda_http::http::Request;
use serde_json::json;

/// `predict [--task T] [--lang L] [--include-sentence] [--] TEXT...` goes through the same handler as
/// HTTP, so the CLI shows exactly what the API answers.
pub async fn predict(models: &'static Registry, args: &[String]) -> Result<String, String> {
    let (mut task, mut lang, mut include_sentence, mut texts) = (None, None, false, Vec::new());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--task" => task = Some(args.next().ok_or("--task needs a value")?),
            "--lang" => lang = Some(args.next().ok_or("--lang needs a value")?),
            "--include-sentence" => include_sentence = true,
            "--" => texts.extend(args.by_ref()),
            _ => texts.push(arg),
        }
    }
    let mut body = match texts.as_slice() {
        [] => return Err("predict needs at least one TEXT".into()),
        [text] => json!({ "text": text }),
        _ => json!({ "texts": texts }),
    };
    for (name, value) in [("task", task), ("lang", lang)] {
        if let Some(value) = value {
            body[name] = json!(value);
        }
    }
    if include_sentence {
        body["include_sentence"] = json!(true);
    }
    let req = Request::post("/predict")
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .expect("static request parts are valid");
    let response = handler::handle(models, req).await;
    let text = String::from_utf8_lossy(response.body()).into_owned();
    match response.status().is_success() {
        true => Ok(text),
        false => Err(text),
    }
}

/// Field order as documented: the input first.
#[derive(serde::Serialize)]
struct Row {
    text: String,
    preprocessed: String,
}

/// `sentimiento preprocess --lang es`: JSON Lines `{"text": ...}` in, `{"text", "preprocessed"}`
/// out, one output line per input line, in order. A bad line gets an `{"error", "line"}` line.
/// Returns how many lines were bad.
pub fn preprocess(lang: Lang, input: impl BufRead, mut output: impl Write) -> std::io::Result<usize> {
    let preprocessor = Preprocessor::new();
    let options = Options::default();
    let mut bad = 0;
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        let text = serde_json::from_str::<serde_json::Value>(&line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| match v.get("text") {
                Some(serde_json::Value::String(t)) => Ok(t.clone()),
                _ => Err("expected an object with a string \"text\"".to_string()),
            });
        let row = match text {
            Ok(text) => {
                let preprocessed = preprocessor.preprocess(&text, lang, &options);
                serde_json::to_string(&Row { text, preprocessed }).expect("strings serialise")
            }
            Err(error) => {
                bad += 1;
                json!({ "error": error, "line": n + 1 }).to_string()
            }
        };
        writeln!(output, "{row}")?;
    }
    output.flush()?;
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocess_writes_one_line_per_input_line_in_order() {
        let input = "{\"text\": \"@ana jajaja\"}\nnot json\n{\"text\": 3}\n{\"text\": \"#HolaMundo\"}\n";
        let mut out = Vec::new();
        let bad = preprocess(Lang::Es, input.as_bytes(), &mut out).unwrap();
        let lines: Vec<serde_json::Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(bad, 2);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], json!({"text": "@ana jajaja", "preprocessed": "@usuario jaja"}));
        assert_eq!(lines[1]["line"], 2);
        assert_eq!(lines[2]["line"], 3);
        assert_eq!(lines[3]["preprocessed"], "hashtag hola mundo");
    }
}
