//! Postprocessing for the word-labelling tasks (NER, POS): per-token logits to a label per word
//! and, for NER, entities, exactly as pysentimiento 0.7.3's `AnalyzerForTokenClassification`.

use serde::Serialize;

use crate::postprocess::{argmax, softmax};
use crate::words::{is_space, Word};

/// pysentimiento's `TokenClassificationOutput`, plus the preprocessed text its offsets point into.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordsPrediction {
    /// The text as sent (pysentimiento's `sentence`).
    pub sentence: String,
    /// The text the words were split from: `entities[].start`/`end` are code points into it.
    pub preprocessed: String,
    pub tokens: Vec<String>,
    /// Per word; `null` for a word the model never saw (cut off at max tokens, or a word the
    /// tokenizer makes no tokens of).
    pub labels: Vec<Option<String>>,
    /// NER only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<Entity>>,
    /// Per model token (`<s>` and `</s>` included), the probability of each label in config order.
    pub probas: Vec<Vec<f32>>,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Each word takes the label of its first token; a word starting with `@` is a user, whatever
/// the model says (`B-USER`).
pub fn word_labels(
    words: &[Word],
    word_ids: &[Option<u32>],
    token_logits: &[Vec<f32>],
    labels: &[String],
) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None; words.len()];
    for (word_id, logits) in word_ids.iter().zip(token_logits) {
        let Some(slot) = word_id.and_then(|id| out.get_mut(id as usize)) else {
            continue;
        };
        let word = &words[word_id.expect("checked above") as usize];
        if word.text.starts_with('@') {
            *slot = Some("B-USER".into());
        } else if slot.is_none() {
            *slot = Some(labels[argmax(logits)].clone());
        }
    }
    out
}

/// POS labels lose their `B-` (only the forced `B-USER` has one).
pub fn without_bio_prefix(labels: Vec<Option<String>>) -> Vec<Option<String>> {
    let strip = |l: String| l.strip_prefix("B-").map_or(l.clone(), str::to_string);
    labels.into_iter().map(|label| label.map(strip)).collect()
}

/// pysentimiento's `decode`: BIO labels to entities. An `I-` of another type starts a new entity;
/// a word without a label is skipped without closing the entity it sits in; labels that are not
/// BIO group runs of the same label.
pub fn entities(words: &[Word], labels: &[Option<String>]) -> Vec<Entity> {
    let mut found: Vec<(Vec<usize>, String)> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut kind: Option<String> = None;
    let mut close = |current: &mut Vec<usize>, kind: &Option<String>| {
        if !current.is_empty() {
            found.push((std::mem::take(current), kind.clone().unwrap_or_default()));
        }
    };
    for (i, label) in labels.iter().enumerate() {
        let Some(label) = label.as_deref() else { continue };
        if label == "O" {
            if kind.as_deref() != Some("O") {
                close(&mut current, &kind);
                current.clear();
                kind = Some("O".into());
            }
        } else if let Some(new) = label.strip_prefix("B-") {
            close(&mut current, &kind);
            current = vec![i];
            kind = Some(new.into());
        } else if let Some(inside) = label.strip_prefix("I-") {
            if kind.as_deref() == Some(inside) {
                current.push(i);
            } else {
                close(&mut current, &kind);
                current = vec![i];
                kind = Some(inside.into());
            }
        } else if kind.as_deref() != Some(label) {
            close(&mut current, &kind);
            current = vec![i];
            kind = Some(label.into());
        } else {
            current.push(i);
        }
    }
    close(&mut current, &kind);
    found.into_iter().map(|(members, kind)| entity(words, &members, kind)).collect()
}

fn entity(words: &[Word], members: &[usize], kind: String) -> Entity {
    let joined: String = members
        .iter()
        .map(|&i| if words[i].space { format!("{} ", words[i].text) } else { words[i].text.clone() })
        .collect();
    let (first, last) = (&words[members[0]], &words[members[members.len() - 1]]);
    Entity {
        kind,
        text: joined.trim_matches(is_space).to_string(),
        start: first.start,
        end: last.start + last.text.chars().count(),
    }
}

/// Per-row softmax.
pub fn probabilities(token_logits: &[Vec<f32>]) -> Vec<Vec<f32>> {
    token_logits.iter().map(|row| softmax(row)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(texts: &[&str]) -> Vec<Word> {
        let mut start = 0;
        texts
            .iter()
            .map(|t| {
                let word = Word { text: t.to_string(), start, space: true };
                start += t.chars().count() + 1;
                word
            })
            .collect()
    }

    fn labels(names: &[&str]) -> Vec<Option<String>> {
        names.iter().map(|n| (!n.is_empty()).then(|| n.to_string())).collect()
    }

    fn summary(found: &[Entity]) -> Vec<(String, String, usize, usize)> {
        found.iter().map(|e| (e.kind.clone(), e.text.clone(), e.start, e.end)).collect()
    }

    #[test]
    fn first_token_labels_the_word_and_handles_are_users() {
        let w = words(&["Juan", "@ana", "vive"]);
        let names = ["O", "B-PER", "I-PER"].map(String::from);
        // <s> Ju an @ana vive </s>: Juan's first token says B-PER, its second O.
        let ids = [None, Some(0), Some(0), Some(1), None];
        let logits =
            [[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0; 3]].map(Vec::from);
        assert_eq!(word_labels(&w, &ids, &logits, &names), labels(&["B-PER", "B-USER", ""]));
    }

    #[test]
    fn entities_follow_pysentimiento_decode() {
        let w = words(&["El", "Banco", "de", "España", "y", "Ana", "Gil"]);
        let found = entities(&w, &labels(&["O", "B-ORG", "", "I-ORG", "O", "B-PER", "I-LOC"]));
        // "de" has no label: skipped, but the ORG goes on; an I- of another type starts anew.
        assert_eq!(
            summary(&found),
            [
                ("ORG".into(), "Banco España".into(), 3, 18),
                ("PER".into(), "Ana".into(), 21, 24),
                ("LOC".into(), "Gil".into(), 25, 28)
            ]
        );
    }

    #[test]
    fn an_i_after_o_starts_an_entity_and_plain_labels_group_runs() {
        let w = words(&["a", "b", "c", "d"]);
        let found = entities(&w, &labels(&["O", "I-LOC", "USER", "USER"]));
        assert_eq!(summary(&found), [("LOC".into(), "b".into(), 2, 3), ("USER".into(), "c d".into(), 4, 7)]);
        assert!(entities(&w, &labels(&["O", "O", "", "O"])).is_empty());
    }

    #[test]
    fn pos_labels_drop_the_bio_prefix() {
        assert_eq!(without_bio_prefix(labels(&["NOUN", "B-USER", ""])), labels(&["NOUN", "USER", ""]));
    }
}
