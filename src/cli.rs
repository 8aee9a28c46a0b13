//! The command-line front door: `predict` for a quick local try or, with no TEXT, bulk scoring of
//! JSON Lines (`bulk`); `preprocess` for checking the preprocessing against pysentimiento.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::bulk;
use crate::config::Settings;
use crate::handler;
use crate::preprocess::{Lang, Options, Preprocessor};
use crate::registry::Registry;
use aws_lambda_events::encodings::Body;
use lambda_http::http::Request;
use serde_json::json;

/// `predict`'s command line: `[--task T] [--lang L] [--include-sentence] [--] TEXT...`, or with no
/// TEXT, bulk scoring: `[--input FILE] [--output FILE] [--workers N] [--resume]`.
#[derive(Debug, Default, PartialEq)]
pub struct PredictArgs {
    pub task: Option<String>,
    pub lang: Option<String>,
    pub texts: Vec<String>,
    pub bulk: bulk::Options,
}

impl PredictArgs {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut fields = Vec::new();
        let mut args = args.iter();
        let value = |flag: &str, next: Option<&String>| next.cloned().ok_or(format!("{flag} needs a value"));
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--task" => parsed.task = Some(value(arg, args.next())?),
                "--lang" => parsed.lang = Some(value(arg, args.next())?),
                "--include-sentence" => parsed.bulk.include_sentence = true,
                "--input" => {
                    parsed.bulk.input = Some(value(arg, args.next())?).filter(|i| i != "-").map(Into::into)
                }
                "--output" => parsed.bulk.output = Some(value(arg, args.next())?.into()),
                "--resume" => parsed.bulk.resume = true,
                "--cache-entries" => {
                    let n = value(arg, args.next())?;
                    parsed.bulk.cache_entries =
                        Some(n.parse().map_err(|_| format!("--cache-entries {n:?}"))?);
                }
                "--batch" => {
                    let n = value(arg, args.next())?;
                    let at_most = bulk::BATCH_LINES;
                    parsed.bulk.batch =
                        Some(n.parse().ok().filter(|&n| (1..=at_most).contains(&n)).ok_or(format!(
                            "--batch {n:?}: expected texts per session run, 1 to {at_most}"
                        ))?);
                }
                "--compression" => parsed.bulk.compression = Some(value(arg, args.next())?.parse()?),
                "--format" => {
                    parsed.bulk.format = match value(arg, args.next())?.as_str() {
                        "jsonl" => bulk::Format::Jsonl,
                        "csv" => bulk::Format::Csv,
                        other => return Err(format!("--format {other:?}: expected jsonl or csv")),
                    }
                }
                "--output-format" => parsed.bulk.output_format = value(arg, args.next())?.parse()?,
                "--text-field" | "--id-field" | "--text-column" | "--id-column" | "--second-column" => {
                    let name = value(arg, args.next())?;
                    fields.push((arg.as_str(), name));
                }
                "--workers" => {
                    let n = value(arg, args.next())?;
                    parsed.bulk.workers =
                        n.parse().ok().filter(|&n| n > 0).ok_or(format!("--workers {n:?}"))?;
                }
                "--" => parsed.texts.extend(args.by_ref().cloned()),
                // A mistyped option (`--worker 2`) would otherwise be scored as two texts.
                option if option.starts_with('-') => {
                    return Err(format!(
                        "unknown option {option:?} (a TEXT that starts with - goes after --)"
                    ))
                }
                _ => parsed.texts.push(arg.clone()),
            }
        }
        if parsed.bulk.resume && parsed.bulk.output.is_none() {
            return Err("--resume needs --output FILE".into());
        }
        if parsed.bulk.resume && parsed.bulk.output_format == bulk::OutputFormat::Csv {
            // A CSV row may span lines (a quoted id): the answers could not be checked line by line.
            return Err("--resume reads back JSON Lines answers only; it cannot check a CSV output".into());
        }
        parsed.bulk.fields = fields_of(&parsed.bulk.format, fields)?;
        Ok(parsed)
    }
}

/// `--text-field`/`--id-field` (JSON pointers) for JSON Lines, `--*-column` for CSV: the
/// other kind is refused rather than ignored.
fn fields_of(format: &bulk::Format, given: Vec<(&str, String)>) -> Result<bulk::Fields, String> {
    let mut fields = bulk::Fields::default();
    for (option, name) in given {
        let csv = option.ends_with("-column");
        match (format, csv) {
            (bulk::Format::Jsonl, true) => {
                return Err(format!("{option} is for --format csv (JSON Lines: --text-field, --id-field)"))
            }
            (bulk::Format::Csv, false) => {
                return Err(format!("{option} is for JSON Lines (CSV: --text-column, --id-column)"))
            }
            _ => {}
        }
        let slot = match option {
            "--text-field" | "--text-column" => &mut fields.text,
            "--id-field" | "--id-column" => &mut fields.id,
            _ => &mut fields.second,
        };
        *slot = Some(name);
    }
    Ok(fields)
}

/// TEXTs go through the same handler as HTTP, so the CLI shows exactly what the API answers.
pub async fn predict(models: &'static Registry, args: &PredictArgs) -> Result<String, String> {
    let mut body = match args.texts.as_slice() {
        [] => return Err("predict needs at least one TEXT".into()),
        [text] => json!({ "text": text }),
        texts => json!({ "texts": texts }),
    };
    for (name, value) in [("task", &args.task), ("lang", &args.lang)] {
        if let Some(value) = value {
            body[name] = json!(value);
        }
    }
    if args.bulk.include_sentence {
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

/// Bulk scoring runs one ONNX Runtime session per worker: `--workers` (default: the cores this
/// process may use, cgroup quota included) is capped by cores and by the memory limit at the
/// model's size (bulk/workers.rs), with a warning when that is fewer than asked.
pub fn bulk_settings(mut settings: Settings, args: &mut PredictArgs) -> Settings {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_mb = settings.memory_budget_mb.or_else(bulk::workers::memory_limit_mb);
    // Only the directory listing: nothing is loaded.
    let per_worker_mb = Registry::new(settings.clone())
        .resolve(args.task.as_deref(), args.lang.as_deref())
        .map_or(0.0, |entry| entry.footprint_mb());
    let count = bulk::workers::count(args.bulk.workers, cores, memory_mb, per_worker_mb);
    if let Some(warning) = &count.warning {
        eprintln!("warning: {warning}");
    }
    args.bulk.workers = count.workers;
    settings.sessions = count.workers;
    settings
}

/// How bulk scoring failed.
#[derive(Debug)]
pub enum BulkError {
    /// The output's reader went away (EPIPE, as in `predict < big.jsonl | head -2`): shells expect
    /// the quiet end SIGPIPE would have given, which Rust's ignored SIGPIPE turns into this error.
    OutputClosed,
    Failed(String),
}

/// `models` must come from `bulk_settings`, so that each worker has a session of its own. The
/// files are checked (same file, `--resume`'s lines) before the model loads, and the output is
/// opened for writing only after it has.
pub async fn bulk(models: &'static Registry, args: PredictArgs) -> Result<bulk::Summary, BulkError> {
    let options = args.bulk;
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(on_signals(stop.clone()));
    let entry = models
        .resolve(args.task.as_deref(), args.lang.as_deref())
        .map_err(|e| BulkError::Failed(e.message()))?;
    let files = bulk::Files::open(&options).map_err(|e| BulkError::Failed(e.to_string()))?;
    let model = models.get(entry).await.map_err(|e| BulkError::Failed(e.message()))?;
    let started = Instant::now();
    let summary = tokio::task::spawn_blocking(move || bulk::run(model, files, &options, stop))
        .await
        .map_err(|e| BulkError::Failed(format!("bulk scoring panicked: {e}")))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => BulkError::OutputClosed,
            _ => BulkError::Failed(e.to_string()),
        })?;
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        event = "bulk_done",
        lines = summary.written,
        bad = summary.bad,
        resumed = summary.resumed,
        interrupted = summary.interrupted,
        cache_hits = summary.cache_hits,
        runs = summary.runs,
        seconds,
        texts_per_s = summary.written as f64 / seconds.max(1e-9),
    );
    Ok(summary)
}

/// The first SIGTERM or SIGINT stops the run after the lines in hand (their answers written);
/// a second exits at once with status 130, for whoever will not wait for them. Whatever of a
/// line the output then ends with, `--resume` cuts and writes again.
async fn on_signals(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{signal, SignalKind};
    // Both listeners are made once, so a second signal that comes at once is not missed.
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!(event = "shutdown_signal");
    stop.store(true, Ordering::Relaxed);
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    std::process::exit(130);
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

    fn parse(args: &[&str]) -> Result<PredictArgs, String> {
        PredictArgs::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn an_unknown_option_is_refused_and_a_text_that_starts_with_a_dash_comes_after_dashes() {
        let error = parse(&["--worker", "2", "--input", "f"]).unwrap_err();
        assert!(error.contains("unknown option \"--worker\""), "{error}");
        assert!(parse(&["-x"]).unwrap_err().contains("\"-x\""));
        assert!(parse(&["hola", "-"]).is_err());
        let texts = parse(&["--lang", "es", "--", "--worker", "-1", "hola"]).unwrap();
        assert_eq!(
            (texts.texts, texts.lang.as_deref()),
            (vec!["--worker".into(), "-1".into(), "hola".into()], Some("es"))
        );
        let bulk = parse(&["--workers", "2", "--input", "f", "--resume", "--output", "o"]).unwrap();
        assert_eq!((bulk.bulk.workers, bulk.bulk.resume, bulk.texts.len()), (2, true, 0));
    }

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
