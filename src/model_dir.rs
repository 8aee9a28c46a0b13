//! The model directory contract: everything model-specific lives in files, nothing in code.
//!
//! - `model.onnx`: `input_ids`, `attention_mask` (and `token_type_ids` if declared) -> `logits`
//! - `tokenizer.json`: a Hugging Face tokenizer
//! - `config.json`: Hugging Face config (`id2label`, `problem_type`, `max_position_embeddings`, `pad_token_id`)
//! - `pipeline.json` (optional): `name`, `task` (pysentimiento's task name), `lang` (pysentimiento
//!   preprocessing language, `null` for none), `preprocessing` (`preprocess_tweet`'s other keyword
//!   arguments), `prefix` (e.g. e5's "query: "), `max_tokens`, `pre_optimized` (the graph went
//!   through ONNX Runtime's optimiser offline, model/optimize.py: load it as is), `pair` (the task
//!   reads a second text: `"target"` or `"context"`, the name pysentimiento gives it)
//!
//! The task also says what the model's output is, as in pysentimiento: `ner` and `pos` label
//! every word (`model.onnx` gives logits per token), every other task classifies the text.
//! - `model.onnx.data` (optional): the weights, when model.onnx keeps them outside (ONNX external data)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::preprocess::{Lang, Options};

/// Tokens per text when neither pipeline.json nor the positions limit say otherwise (pysentimiento's).
const DEFAULT_MAX_TOKENS: usize = 128;
/// The task a model directory serves when its pipeline.json does not say.
pub const DEFAULT_TASK: &str = "sentiment";
/// RoBERTa-family models number positions from `pad_token_id + 1`, so `pad_token_id + 1` of their
/// `max_position_embeddings` can never be used (RoBERTuito: 130 -> 128 tokens).
const OFFSET_POSITIONS: [&str; 3] = ["roberta", "xlm-roberta", "camembert"];

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub dir: PathBuf,
    pub name: String,
    pub task: String,
    pub labels: Vec<String>,
    pub multi_label: bool,
    /// Preprocessing language; `None`: texts reach the tokenizer as sent.
    pub lang: Option<Lang>,
    /// `preprocess_tweet`'s keyword arguments besides `lang` (pysentimiento's defaults when absent).
    pub options: Options,
    pub prefix: String,
    pub max_tokens: usize,
    pub pre_optimized: bool,
    pub head: Head,
    /// The second text the task reads (`"target"`, `"context"`), if it reads one.
    pub pair: Option<String>,
    /// The token id that pads a batch, when the conversion measured that a text answers the same
    /// in a padded batch as alone (model/import_model.py); `None`: one text per run.
    pub batch_padding_id: Option<i64>,
}

/// What the model's logits label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// The text: pysentimiento's `AnalyzerOutput`.
    Text,
    /// Each word: pysentimiento's `TokenClassificationOutput`; `entities` groups BIO labels (NER).
    Words { entities: bool },
}

impl Head {
    /// pysentimiento's rule (`create_analyzer`): the task name decides.
    pub fn of(task: &str) -> Self {
        match task {
            "ner" => Self::Words { entities: true },
            "pos" => Self::Words { entities: false },
            _ => Self::Text,
        }
    }
}

#[derive(Deserialize)]
struct HfConfig {
    #[serde(default)]
    id2label: BTreeMap<String, String>,
    #[serde(default)]
    problem_type: Option<String>,
    #[serde(default)]
    max_position_embeddings: Option<usize>,
    #[serde(default)]
    pad_token_id: Option<i64>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default, rename = "_name_or_path")]
    name_or_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default)]
    name: Option<String>,
    #[serde(default = "sentiment")]
    pub task: String,
    /// Absent: Spanish, the project's purpose; `null`: no preprocessing.
    #[serde(default = "spanish")]
    pub lang: Option<String>,
    #[serde(default)]
    preprocessing: Options,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    pre_optimized: bool,
    #[serde(default)]
    pair: Option<String>,
    #[serde(default)]
    batch_padding_id: Option<i64>,
}

impl Default for Pipeline {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every pipeline.json field has a default")
    }
}

impl Pipeline {
    /// `dir/pipeline.json`, or every default when the file is absent.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("pipeline.json");
        if path.exists() {
            read_json(&path)
        } else {
            Ok(Self::default())
        }
    }
}

fn spanish() -> Option<String> {
    Some("es".into())
}

fn sentiment() -> String {
    DEFAULT_TASK.into()
}

impl ModelSpec {
    pub fn model_path(&self) -> PathBuf {
        self.dir.join("model.onnx")
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    pub fn read(dir: &Path) -> Result<Self, String> {
        if !dir.is_dir() {
            return Err(format!("model directory {} does not exist (set MODEL_DIR)", dir.display()));
        }
        let config: HfConfig = read_json(&dir.join("config.json"))?;
        let pipeline = Pipeline::read(dir)?;
        let labels =
            labels(&config.id2label).map_err(|e| format!("{}: {e}", dir.join("config.json").display()))?;
        let max_tokens =
            max_tokens(pipeline.max_tokens, &config).map_err(|e| format!("{}: {e}", dir.display()))?;
        let head = Head::of(&pipeline.task);
        check_pair(pipeline.pair.as_deref(), head)
            .map_err(|e| format!("{}: {e}", dir.join("pipeline.json").display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            // /health shows the name without the API key: a directory's own name, never its path.
            name: pipeline.name.or(config.name_or_path).unwrap_or_else(|| dir_name(dir)),
            task: pipeline.task,
            labels,
            multi_label: config.problem_type.as_deref() == Some("multi_label_classification"),
            lang: pipeline.lang.map(|l| l.parse()).transpose().map_err(|e| format!("pipeline.json: {e}"))?,
            options: pipeline.preprocessing,
            prefix: pipeline.prefix,
            max_tokens,
            pre_optimized: pipeline.pre_optimized,
            head,
            pair: pipeline.pair,
            batch_padding_id: pipeline.batch_padding_id,
        })
    }
}

fn dir_name(dir: &Path) -> String {
    dir.file_name().map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
}

fn check_pair(pair: Option<&str>, head: Head) -> Result<(), String> {
    match (pair, head) {
        (None, _) | (Some("target" | "context"), Head::Text) => Ok(()),
        (Some(name @ ("target" | "context")), Head::Words { .. }) => {
            Err(format!("pair {name:?}: word-labelling tasks (ner, pos) read one text"))
        }
        (Some(other), _) => Err(format!("pair {other:?} is not \"target\" or \"context\"")),
    }
}

/// Tokens the model may read: pipeline.json's `max_tokens` (default 128), refused when it asks
/// for more positions than the model has: a RoBERTa model fed 130 tokens fails inside the graph
/// (`Gather` index out of range) on every long text.
fn max_tokens(asked: Option<usize>, config: &HfConfig) -> Result<usize, String> {
    let Some(positions) = config.max_position_embeddings else {
        return Ok(asked.unwrap_or(DEFAULT_MAX_TOKENS));
    };
    let offset = match config.model_type.as_deref() {
        Some(kind) if OFFSET_POSITIONS.contains(&kind) => {
            config.pad_token_id.unwrap_or(1).max(0) as usize + 1
        }
        _ => 0,
    };
    let usable = positions.saturating_sub(offset);
    match asked {
        None => Ok(DEFAULT_MAX_TOKENS.min(usable)),
        Some(n) if n >= 2 && n <= usable => Ok(n),
        Some(n) => Err(format!(
            "pipeline.json max_tokens {n} is not within 2..={usable}, the positions this {} model can read \
             (max_position_embeddings {positions})",
            config.model_type.as_deref().unwrap_or("")
        )),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid: {e}", path.display()))
}

/// `id2label` keys are stringified indices 0..n; every index must be present exactly once.
fn labels(id2label: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    if id2label.is_empty() {
        return Err("id2label is missing or empty".into());
    }
    let mut labels = vec![None; id2label.len()];
    for (key, label) in id2label {
        let index: usize = key.parse().map_err(|_| format!("id2label key {key:?} is not an index"))?;
        let slot = labels.get_mut(index).ok_or(format!("id2label index {index} is out of range"))?;
        *slot = Some(label.clone());
    }
    labels.into_iter().collect::<Option<Vec<_>>>().ok_or("id2label indices are not 0..n".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn labels_are_ordered_by_index_not_by_key_text() {
        let pairs: Vec<(String, String)> = (0..12).map(|i| (i.to_string(), format!("L{i}"))).collect();
        let id2label: BTreeMap<_, _> = pairs.into_iter().collect();
        let labels = labels(&id2label).unwrap();
        assert_eq!(labels[2], "L2");
        assert_eq!(labels[10], "L10");
    }

    #[test]
    fn broken_id2label_is_rejected() {
        assert!(labels(&map(&[])).is_err());
        assert!(labels(&map(&[("0", "NEG"), ("2", "POS")])).is_err());
        assert!(labels(&map(&[("zero", "NEG")])).is_err());
    }

    #[test]
    fn reads_the_fixture() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
        let spec = ModelSpec::read(&dir).unwrap();
        assert_eq!(spec.labels, ["NEG", "NEU", "POS"]);
        assert!(!spec.multi_label);
        assert_eq!(spec.max_tokens, 16);
        assert_eq!(spec.lang, Some(Lang::Es));
        assert_eq!(spec.name, "fixture/tiny");
        assert!(!spec.pre_optimized, "absent means the optimiser runs at load");
        assert_eq!(spec.task, "sentiment");
        assert_eq!((spec.head, spec.pair), (Head::Text, None));
    }

    #[test]
    fn the_task_decides_the_head_and_pipeline_json_the_pair() {
        assert_eq!(Head::of("ner"), Head::Words { entities: true });
        assert_eq!(Head::of("pos"), Head::Words { entities: false });
        assert_eq!(Head::of("targeted_sentiment"), Head::Text);
        assert!(check_pair(Some("target"), Head::Text).is_ok());
        assert!(check_pair(Some("context"), Head::Words { entities: true })
            .unwrap_err()
            .contains("read one text"));
        assert!(check_pair(Some("objetivo"), Head::Text).unwrap_err().contains("not \"target\""));
    }

    #[test]
    fn pre_optimized_comes_from_pipeline_json() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-external");
        assert!(ModelSpec::read(&dir).unwrap().pre_optimized);
    }

    fn config(model_type: &str, positions: usize) -> HfConfig {
        let json = serde_json::json!({"model_type": model_type, "max_position_embeddings": positions, "pad_token_id": 1});
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn max_tokens_respects_the_positions_a_roberta_model_can_read() {
        let roberta = config("roberta", 130);
        assert_eq!(max_tokens(None, &roberta), Ok(128));
        assert_eq!(max_tokens(Some(128), &roberta), Ok(128));
        let err = max_tokens(Some(130), &roberta).unwrap_err();
        assert!(err.contains("2..=128") && err.contains("130"), "{err}");
        let bert = config("bert", 512);
        assert_eq!(max_tokens(None, &bert), Ok(128));
        assert_eq!(max_tokens(Some(512), &bert), Ok(512));
        assert!(max_tokens(Some(513), &bert).is_err());
    }

    #[test]
    fn pipeline_carries_task_and_preprocessing_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = r#"{"task": "hate_speech", "lang": "en",
            "preprocessing": {"user_token": "@USER", "url_token": "HTTPURL", "demoji": false}}"#;
        std::fs::write(dir.path().join("pipeline.json"), pipeline).unwrap();
        let read = Pipeline::read(dir.path()).unwrap();
        assert_eq!((read.task.as_str(), read.lang.as_deref()), ("hate_speech", Some("en")));
        assert_eq!(read.preprocessing.user_token.as_deref(), Some("@USER"));
        assert!(!read.preprocessing.demoji);
        assert_eq!(read.preprocessing.shorten, Some(3), "unnamed arguments keep pysentimiento's defaults");

        std::fs::write(dir.path().join("pipeline.json"), r#"{"preprocessing": {"user_tok": "x"}}"#).unwrap();
        let err = Pipeline::read(dir.path()).err().unwrap();
        assert!(err.contains("unknown field `user_tok`"), "{err}");
    }

    #[test]
    fn absent_pipeline_means_spanish_sentiment() {
        let read = Pipeline::read(Path::new("/nonexistent")).unwrap();
        assert_eq!((read.task.as_str(), read.lang.as_deref()), ("sentiment", Some("es")));
        assert_eq!(read.preprocessing, Options::default());
    }

    #[test]
    fn missing_directory_names_the_path() {
        let err = ModelSpec::read(Path::new("/nonexistent/model")).unwrap_err();
        assert!(err.contains("/nonexistent/model"), "{err}");
    }
}
