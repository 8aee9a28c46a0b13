//! `sentimiento`: Spanish sentiment analysis, pysentimiento-compatible, on ONNX Runtime.
//! `main` only chooses the front door; every door calls `handler::handle`.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use sentimiento::config::Settings;
use sentimiento::registry::Registry;
use sentimiento::{cli, lambda, logging, server};

/// The one process-wide place that holds the models.
static MODELS: OnceLock<Registry> = OnceLock::new();

const USAGE: &str =
    "usage: sentimiento [serve | predict [OPTIONS] [--] [TEXT...] | preprocess [--lang es] | help]
  (no command)    the Lambda runtime under AWS Lambda, else `serve`
  serve           HTTP server on $PORT (default 8080): POST /predict, GET /health, /info, /metrics,
                  /openapi.json and the playground at /
  predict TEXT    print the prediction for TEXT (several TEXTs: a batch) as JSON; --task and
                  --lang choose the model when MODEL_DIR holds several (MODEL_DIR/<task>/<lang>/);
                  --include-sentence adds the preprocessed text; a TEXT that starts with - goes
                  after --, and any other argument that does is refused as an unknown option
  predict         with no TEXT: JSON Lines {\"text\", \"id\"} from stdin (--input FILE) to one answer
                  line each, in order, on stdout (--output FILE, never the input itself);
                  --workers N (default: the cores available; at most 4 per core and what the
                  memory limit holds at the model's size, with a warning), --resume continues an
                  interrupted --output (refused if its lines are not answers to the input's first
                  lines; JSON Lines output only); exit 1 if a line was bad (its error is in place)
                  or the output cannot be written, 130 if a signal stopped it (a second signal: at
                  once), 141 quietly if the reader of stdout went away. Archives: gzip and zstd
                  input are known by their first bytes (--compression gzip|zstd|none to say);
                  --format csv reads CSV rows (--text-column, default text; --id-column, default
                  id if there is one; --second-column for a pair task); --text-field and
                  --id-field take a JSON pointer (/data/text) or a name for JSON Lines;
                  --output-format csv writes id,output,<a column per label>,error under a header;
                  --cache-entries N (default 400000, ~38 MiB at 3 labels, 0: off) scores a text
                  the model reads again once (not for ner and pos, whose answers are per word);
                  --batch N (1 to 32; default 16 where the model allows it, else 1) runs up to
                  N texts of near-equal length per session run, for a model whose answers do not
                  depend on the batch (make model's default precision: docs/bulk.md)
  preprocess      JSON Lines {\"text\": ...} on stdin -> {\"text\", \"preprocessed\"} on stdout
                  (pysentimiento's preprocess_tweet; --lang es|en|it|pt, default es)
environment: MODEL_DIR, ORT_DYLIB_PATH, PORT, SENTIMIENTO_THREADS, SENTIMIENTO_PREPACK, SENTIMIENTO_EAGER,
  SENTIMIENTO_MAX_IN_FLIGHT, SENTIMIENTO_MEMORY_MB, SENTIMIENTO_HEADER_TIMEOUT_S, SENTIMIENTO_BODY_TIMEOUT_S,
  SENTIMIENTO_QUEUE_TIMEOUT_S, SENTIMIENTO_MAX_CONNECTIONS, SENTIMIENTO_API_KEY, SENTIMIENTO_CORS_ORIGINS,
  SENTIMIENTO_EMF, SENTIMIENTO_METRICS_NAMESPACE, RUST_LOG";

fn main() -> ExitCode {
    fixed_mmap_threshold(serving());
    no_ort_telemetry();
    // The blocking pool only loads models (one at a time) and runs a Lambda batch or bulk
    // scoring; each model infers on its own thread (Model::on_own_thread). More threads would
    // only add glibc malloc arenas: with tokio's default (512) the soak test saw RSS step up by
    // 2+ MiB as new threads came and went; with 2 it stays flat.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(2).build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(e) => fail(&format!("cannot start the async runtime: {e}")),
    }
}

/// Whether this process answers requests (the server, Lambda) rather than running a command.
fn serving() -> bool {
    matches!(std::env::args().nth(1).as_deref(), None | Some("serve"))
}

/// glibc raises its mmap threshold as large blocks are freed, so after loading the model later
/// large buffers land on the heap and stay resident: measured peak RSS varied between 132 and
/// 154 MiB from run to run on the default model. A fixed threshold gives the same every time.
///
/// Serving, 64 KiB: a run's buffers (a text's activations, tens to hundreds of KiB) are then
/// mapped and unmapped with the run instead of fragmenting the heap, which otherwise grew the
/// RoBERTuito-shaped model's peak RSS over 1,000 requests from 125 to 138-141 MiB; with 64 KiB,
/// 130-132 MiB, at +0.3 ms p50 (128 KiB: 132-136; 32 KiB: 129, +1 ms). Bulk scoring keeps 1 MiB:
/// there the extra mappings cost 3.6 % of its texts/s, and memory is not what limits it.
/// glibc's own `MALLOC_MMAP_THRESHOLD_`, when set, is left to decide.
fn fixed_mmap_threshold(serving: bool) {
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    let kib = if serving { 64 } else { 1024 };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, kib * 1024);
    }
}

/// ONNX Runtime 1.31's Linux build keeps a telemetry store under ~/.cache/Microsoft and may
/// upload from it; a function should not write outside /tmp or talk to hosts it was not asked to.
/// Read by the library when it loads, so set here, before any thread exists. An explicit
/// ORT_DISABLE_TELEMETRY=0 from the user is kept (the library then sets up its store), but the
/// environment is still built with telemetry events off (session.rs).
fn no_ort_telemetry() {
    if std::env::var_os("ORT_DISABLE_TELEMETRY").is_none() {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
}

async fn run() -> ExitCode {
    let on_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    logging::init(on_lambda);
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let port = settings.port;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] if on_lambda => {
            run_lambda(registry(settings)).await.map_or_else(|e| fail(&e.to_string()), |_| ExitCode::SUCCESS)
        }
        [] | ["serve"] => serve(registry(settings), port).await,
        ["predict", ..] => match cli::PredictArgs::parse(&args[1..]) {
            Ok(mut parsed) if parsed.texts.is_empty() => {
                let settings = cli::bulk_settings(settings, &mut parsed);
                bulk(registry(settings), parsed).await
            }
            Ok(parsed) => match cli::predict(registry(settings), &parsed).await {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(json) => fail(&json),
            },
            Err(e) => {
                eprintln!("error: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        ["preprocess"] => preprocess("es"),
        ["preprocess", "--lang", lang] => preprocess(lang),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The process's models, created once with the settings of the command that runs.
fn registry(settings: Settings) -> &'static Registry {
    MODELS.get_or_init(|| Registry::new(settings))
}

async fn run_lambda(models: &'static Registry) -> Result<(), lambda_runtime::Error> {
    load_eagerly(models).await;
    lambda::run(models).await
}

/// SENTIMIENTO_EAGER=1 loads the default model at start-up (inside Lambda's init phase); a
/// failure is logged and retried on the first request.
async fn load_eagerly(models: &'static Registry) {
    if let (true, Some(entry)) = (models.settings().eager, models.default_entry()) {
        let _ = models.get(entry).await;
    }
}

async fn serve(models: &'static Registry, port: u16) -> ExitCode {
    load_eagerly(models).await;
    let in_flight = Arc::new(Semaphore::new(models.settings().max_in_flight));
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
        Ok(listener) => listener,
        Err(e) => return fail(&format!("cannot listen on port {port}: {e}")),
    };
    match server::serve(models, listener, in_flight, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e.to_string()),
    }
}

/// Exit status 1 when a line was bad (its error is in place in the output) or the run failed,
/// 130 when a signal stopped it (the output holds whole lines; `--resume` carries on), and 141
/// (128 + SIGPIPE), without a word, when the reader of the output went away: what a shell sees
/// of a tool that SIGPIPE ended, as in `... | head -2`.
async fn bulk(models: &'static Registry, args: cli::PredictArgs) -> ExitCode {
    match cli::bulk(models, args).await {
        Ok(summary) if summary.interrupted => ExitCode::from(130),
        Ok(summary) if summary.bad > 0 => fail(&format!("{} input lines got an error in place", summary.bad)),
        Ok(_) => ExitCode::SUCCESS,
        Err(cli::BulkError::OutputClosed) => ExitCode::from(141),
        Err(cli::BulkError::Failed(e)) => fail(&e),
    }
}

fn preprocess(lang: &str) -> ExitCode {
    let lang: sentimiento::preprocess::Lang = match lang.parse() {
        Ok(lang) => lang,
        Err(e) => return fail(&e),
    };
    let output = std::io::BufWriter::new(std::io::stdout().lock());
    match cli::preprocess(lang, std::io::stdin().lock(), output) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(bad) => fail(&format!("{bad} input lines were not {{\"text\": string}} objects")),
        Err(e) => fail(&e.to_string()),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
