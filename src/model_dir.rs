//! The model directory contract: everything model-specific lives in files, nothing in code.
//!
//! - `model.onnx`: `input_ids`, `attention_mask` (and `token_type_ids` if declared) -> `logits`
//! - `tokenizer.json`: a Hugging Face tokenizer
//! - `config.json`: Hugging Face config (`id2label`, `problem_type`, `max_position_embeddings`, `pad_token_id`)
//! - `pipeline.json` (optional): `name`, `lang` (pysentimiento preprocessing language, `null` for none),
//!   `prefix` (e.g. e5's "query: "), `max_tokens`, `pre_optimized` (the graph went through ONNX
//!   Runtime's optimiser offline, model/optimize.py: load it as is)
//! - `model.onnx.data` (optional): the weights, when model.onnx keeps them outside (ONNX external data)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::preprocess::Lang;

/// Tokens per text when neither pipeline.json nor the positions limit say otherwise (pysentimiento's).
const DEFAULT_MAX_TOKENS: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    pub dir: PathBuf,
    pub name: String,
    pub labels: Vec<String>,
    pub multi_label: bool,
    /// Preprocessing language; `None`: texts reach the tokenizer as sent.
    pub lang: Option<Lang>,
    pub prefix: String,
    pub max_tokens: usize,
    pub pad_id: i64,
    pub pre_optimized: bool,
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
    #[serde(default, rename = "_name_or_path")]
    name_or_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pipeline {
    #[serde(default)]
    name: Option<String>,
    /// Absent: Spanish, the project's purpose; `null`: no preprocessing.
    #[serde(default = "spanish")]
    lang: Option<String>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    pre_optimized: bool,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self { name: None, lang: spanish(), prefix: String::new(), max_tokens: None, pre_optimized: false }
    }
}

fn spanish() -> Option<String> {
    Some("es".into())
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
        let pipeline_path = dir.join("pipeline.json");
        let pipeline: Pipeline =
            if pipeline_path.exists() { read_json(&pipeline_path)? } else { Pipeline::default() };
        let labels =
            labels(&config.id2label).map_err(|e| format!("{}: {e}", dir.join("config.json").display()))?;
        // RoBERTa reserves 2 positions (max_position_embeddings 130 -> 128 tokens); never exceed either.
        let positions = config.max_position_embeddings.unwrap_or(DEFAULT_MAX_TOKENS);
        let max_tokens = pipeline.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).min(positions);
        Ok(Self {
            dir: dir.to_path_buf(),
            name: pipeline.name.or(config.name_or_path).unwrap_or_else(|| dir.display().to_string()),
            labels,
            multi_label: config.problem_type.as_deref() == Some("multi_label_classification"),
            lang: pipeline.lang.map(|l| l.parse()).transpose().map_err(|e| format!("pipeline.json: {e}"))?,
            prefix: pipeline.prefix,
            max_tokens,
            pad_id: config.pad_token_id.unwrap_or(0),
            pre_optimized: pipeline.pre_optimized,
        })
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
    }

    #[test]
    fn pre_optimized_comes_from_pipeline_json() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-external");
        assert!(ModelSpec::read(&dir).unwrap().pre_optimized);
    }

    #[test]
    fn missing_directory_names_the_path() {
        let err = ModelSpec::read(Path::new("/nonexistent/model")).unwrap_err();
        assert!(err.contains("/nonexistent/model"), "{err}");
    }
}
