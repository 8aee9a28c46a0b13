//! Postprocessing: logits to pysentimiento's `output` and `probas`.

use serde::ser::{Serialize, SerializeMap, Serializer};

/// pysentimiento's threshold for multi-label tasks (hate speech, emotion).
const MULTI_LABEL_THRESHOLD: f32 = 0.5;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Output {
    Label(String),
    Labels(Vec<String>),
}

/// Label -> probability, in the model's label order.
#[derive(Debug, Clone, PartialEq)]
pub struct Probas(pub Vec<(String, f32)>);

impl Serialize for Probas {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (label, p) in &self.0 {
            map.serialize_entry(label, p)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    pub output: Output,
    pub probas: Probas,
    /// True when the text was longer than the model's max tokens and only its start was read.
    pub truncated: bool,
    /// The preprocessed text the model read (pysentimiento's `sentence`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentence: Option<String>,
    /// The preprocessed target or context read with it (pysentimiento's `context`), when asked
    /// for and there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

pub fn predict(logits: &[f32], labels: &[String], multi_label: bool, truncated: bool) -> Prediction {
    let probs = if multi_label { logits.iter().map(|&x| sigmoid(x)).collect() } else { softmax(logits) };
    let output = if multi_label {
        let above = labels.iter().zip(&probs).filter(|(_, &p)| p > MULTI_LABEL_THRESHOLD);
        Output::Labels(above.map(|(l, _)| l.clone()).collect())
    } else {
        Output::Label(labels[argmax(&probs)].clone())
    };
    let probas = Probas(labels.iter().cloned().zip(probs).collect());
    Prediction { output, probas, truncated, sentence: None, context: None }
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    // Subtracting the max keeps exp() from overflowing on large logits.
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// First index of the maximum, as numpy's and torch's argmax (ties go to the earlier label).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["NEG", "NEU", "POS"].map(String::from).to_vec()
    }

    #[test]
    fn softmax_sums_to_one_and_picks_the_largest_logit() {
        let p = predict(&[0.1, 0.2, 2.5], &labels(), false, false);
        assert_eq!(p.output, Output::Label("POS".into()));
        let sum: f32 = p.probas.0.iter().map(|(_, p)| p).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        // exp(2.5) / (exp(0.1) + exp(0.2) + exp(2.5))
        assert!((p.probas.0[2].1 - 0.83965).abs() < 1e-4, "{:?}", p.probas);
    }

    #[test]
    fn softmax_survives_huge_logits() {
        let p = predict(&[1000.0, 0.0, -1000.0], &labels(), false, false);
        assert_eq!(p.output, Output::Label("NEG".into()));
        assert!(p.probas.0.iter().all(|(_, p)| p.is_finite()));
    }

    #[test]
    fn ties_go_to_the_first_label() {
        let p = predict(&[1.0, 1.0, 1.0], &labels(), false, false);
        assert_eq!(p.output, Output::Label("NEG".into()));
    }

    #[test]
    fn multi_label_uses_sigmoid_and_threshold() {
        let p = predict(&[2.0, -2.0, 0.1], &labels(), true, false);
        assert_eq!(p.output, Output::Labels(vec!["NEG".into(), "POS".into()]));
        assert!((p.probas.0[0].1 - 0.8808).abs() < 1e-3);
        let none = predict(&[-3.0, -3.0, -3.0], &labels(), true, false);
        assert_eq!(none.output, Output::Labels(vec![]));
    }

    #[test]
    fn serializes_like_pysentimiento_in_label_order() {
        let p = predict(&[0.0, 0.0, 0.0], &labels(), false, true);
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.starts_with(r#"{"output":"NEG","probas":{"NEG":0.33333334,"NEU":"#), "{json}");
        assert!(json.ends_with(r#""truncated":true}"#), "{json}");
    }
}
