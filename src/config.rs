//! Process settings, read once from the environment into a typed struct.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::access::ApiKey;
use crate::metrics::Emf;

/// Request limits, enforced before any model work.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const MAX_BATCH: usize = 64;
pub const MAX_TEXT_CHARS: usize = 10_000;
/// What the model path reads of one text once preprocessing has spelled its emoji out as words
/// (up to 57 characters for one: "↖😦" * 5000, 10,000 characters, became 564,998, and one NER
/// request on it took 3.1 s and answered 1.9 MB). Four times the text limit refuses no tweet (the
/// most expanding 280 characters become ~16,000) and no ordinary long text: 10,000 characters of
/// plain Spanish stay 1.0x, of tweets with two emoji each 2.3x, of birthday wishes with four
/// emoji each ("Feliz cumpleaños amiga!!! 🎉🎂🥳❤️") 3.7x.
pub const MAX_PREPROCESSED_CHARS: usize = 4 * MAX_TEXT_CHARS;
/// NER and POS label every word, so their work and answer grow with words: no more than a
/// 10,000-character text has before expansion (one per character at most; plain Spanish ~2,200).
pub const MAX_WORDS: usize = MAX_TEXT_CHARS;
/// Share of a Lambda function's memory setting kept out of the model budget: ONNX Runtime's
/// transient buffers while a model loads, and the runtime around the handler.
const LAMBDA_HEADROOM: f64 = 0.25;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Directory with model.onnx, tokenizer.json, config.json and pipeline.json.
    pub model_dir: PathBuf,
    /// Candidate paths of libonnxruntime.so, tried in order.
    pub ort_library: Vec<PathBuf>,
    /// ONNX Runtime intra-op threads (Lambda at 512 MB has ~0.3 vCPU: 1 is right there).
    pub intra_threads: usize,
    /// ONNX Runtime sessions per model: 1 for serving; bulk scoring opens one per worker.
    pub sessions: usize,
    /// ONNX Runtime weight pre-packing: faster inference for a slower cold start (the trade is
    /// measured by `make bench`: BENCHMARKS.md, the SENTIMIENTO_PREPACK=0 row).
    pub prepack: bool,
    /// Load the model during Lambda's init phase instead of on the first invocation.
    pub eager: bool,
    pub port: u16,
    /// Plain HTTP server: requests handled or waiting for the model at once; more get a 503.
    pub max_in_flight: usize,
    /// Resident memory (MiB) the loaded models may bring the process to; past it the least
    /// recently used model is unloaded first. `None`: no limit.
    pub memory_budget_mb: Option<f64>,
    /// Plain HTTP server deadlines and caps: a client gets this long to send a request's headers
    /// (and, between requests on a kept-alive connection, to start the next one), and its body.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// A request that waited this long for the model before its first text is shed with a 503:
    /// past it the client has usually given up (API Gateway's own limit is 29 s).
    pub queue_timeout: Duration,
    /// Open connections at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Plain HTTP server: `/predict` and `/metrics` need `Authorization: Bearer <key>` (access.rs).
    pub api_key: Option<ApiKey>,
    /// Browser origins allowed to call (CORS); `*` for any, empty for none.
    pub cors_origins: Vec<String>,
    /// On Lambda: where the CloudWatch EMF metrics go; `None` off (SENTIMIENTO_EMF=0, or not Lambda).
    pub emf: Option<Emf>,
}

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            model_dir: default_model_dir(var("MODEL_DIR"), var("LAMBDA_TASK_ROOT")),
            ort_library: ort_candidates(var("ORT_DYLIB_PATH")),
            intra_threads: parse("SENTIMIENTO_THREADS", 1)?,
            sessions: 1,
            prepack: flag("SENTIMIENTO_PREPACK", true)?,
            eager: flag("SENTIMIENTO_EAGER", false)?,
            port: parse("PORT", 8080)?,
            max_in_flight: parse("SENTIMIENTO_MAX_IN_FLIGHT", 32)?,
            memory_budget_mb: memory_budget(
                parse("SENTIMIENTO_MEMORY_MB", 0.0)?,
                parse("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0.0)?,
            ),
            header_timeout: seconds("SENTIMIENTO_HEADER_TIMEOUT_S", 10.0)?,
            body_timeout: seconds("SENTIMIENTO_BODY_TIMEOUT_S", 10.0)?,
            queue_timeout: seconds("SENTIMIENTO_QUEUE_TIMEOUT_S", 10.0)?,
            max_connections: parse("SENTIMIENTO_MAX_CONNECTIONS", 256)?,
            api_key: var("SENTIMIENTO_API_KEY").map(ApiKey),
            cors_origins: list(var("SENTIMIENTO_CORS_ORIGINS")),
            emf: match (var("AWS_LAMBDA_FUNCTION_NAME"), flag("SENTIMIENTO_EMF", true)?) {
                (Some(function_name), true) => Some(Emf {
                    namespace: var("SENTIMIENTO_METRICS_NAMESPACE").unwrap_or_else(|| "Sentimiento".into()),
                    function_name,
                }),
                _ => None,
            },
        })
    }

    /// Settings for a model directory with every other value at its default (tests, CLI).
    pub fn for_model(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
            ort_library: ort_candidates(var("ORT_DYLIB_PATH")),
            intra_threads: 1,
            sessions: 1,
            prepack: true,
            eager: false,
            port: 8080,
            max_in_flight: 32,
            memory_budget_mb: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            queue_timeout: Duration::from_secs(10),
            max_connections: 256,
            api_key: None,
            cors_origins: Vec::new(),
            emf: None,
        }
    }
}

/// A positive number of seconds (fractions allowed).
fn seconds(name: &str, default: f64) -> Result<Duration, String> {
    let value: f64 = parse(name, default)?;
    match value > 0.0 && value.is_finite() {
        true => Ok(Duration::from_secs_f64(value)),
        false => Err(format!("{name}={value} is not a positive number of seconds")),
    }
}

/// `SENTIMIENTO_MEMORY_MB` when set, else a Lambda function's memory setting less the headroom.
fn memory_budget(explicit_mb: f64, lambda_mb: f64) -> Option<f64> {
    match (explicit_mb > 0.0, lambda_mb > 0.0) {
        (true, _) => Some(explicit_mb),
        (false, true) => Some(lambda_mb * (1.0 - LAMBDA_HEADROOM)),
        (false, false) => None,
    }
}

/// A comma-separated list, blanks dropped.
fn list(value: Option<String>) -> Vec<String> {
    value.map_or_else(Vec::new, |v| {
        v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    })
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn parse<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{name}={v:?} is not a valid value")),
    }
}

/// `1`/`true` or `0`/`false`; anything else is an error rather than a silent default.
fn flag(name: &str, default: bool) -> Result<bool, String> {
    parse_flag(name, var(name).as_deref(), default)
}

fn parse_flag(name: &str, value: Option<&str>, default: bool) -> Result<bool, String> {
    match value {
        None => Ok(default),
        Some("1" | "true") => Ok(true),
        Some("0" | "false") => Ok(false),
        Some(v) => Err(format!("{name}={v:?} is not 0 or 1")),
    }
}

/// `model/` beside `bootstrap` on Lambda (the task root), `model/` in the working directory elsewhere.
fn default_model_dir(explicit: Option<String>, task_root: Option<String>) -> PathBuf {
    match (explicit, task_root) {
        (Some(dir), _) => PathBuf::from(dir),
        (None, Some(root)) => Path::new(&root).join("model"),
        (None, None) => PathBuf::from("model"),
    }
}

/// `ORT_DYLIB_PATH` wins; otherwise the library beside the executable (the Lambda zip), then `make ort`'s.
fn ort_candidates(explicit: Option<String>) -> Vec<PathBuf> {
    if let Some(path) = explicit {
        return vec![PathBuf::from(path)];
    }
    let beside_exe =
        std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join("libonnxruntime.so")));
    beside_exe.into_iter().chain([PathBuf::from("lib/libonnxruntime.so")]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_dir_prefers_explicit_then_lambda_task_root() {
        let dir = default_model_dir(Some("/m".into()), Some("/var/task".into()));
        assert_eq!(dir, PathBuf::from("/m"));
        let dir = default_model_dir(None, Some("/var/task".into()));
        assert_eq!(dir, PathBuf::from("/var/task/model"));
        assert_eq!(default_model_dir(None, None), PathBuf::from("model"));
    }

    #[test]
    fn flags_are_0_or_1_and_nothing_else() {
        assert_eq!(parse_flag("F", None, true), Ok(true));
        assert_eq!(parse_flag("F", Some("0"), true), Ok(false));
        assert_eq!(parse_flag("F", Some("true"), false), Ok(true));
        assert_eq!(parse_flag("F", Some("2"), true), Err("F=\"2\" is not 0 or 1".into()));
    }

    #[test]
    fn memory_budget_is_explicit_or_lambdas_setting_less_headroom() {
        assert_eq!(memory_budget(300.0, 512.0), Some(300.0));
        assert_eq!(memory_budget(0.0, 512.0), Some(384.0));
        assert_eq!(memory_budget(0.0, 0.0), None);
    }

    #[test]
    fn explicit_ort_path_is_the_only_candidate() {
        assert_eq!(ort_candidates(Some("/x/lib.so".into())), vec![PathBuf::from("/x/lib.so")]);
        let defaults = ort_candidates(None);
        assert_eq!(defaults.last(), Some(&PathBuf::from("lib/libonnxruntime.so")));
    }
}
