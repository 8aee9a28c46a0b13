//! Tokenization: a text (or a text and its target or context, or words) in, model inputs out.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

/// The model inputs of one input, each a `[1, tokens]` tensor, unpadded: `Classifier::run_padded`
/// pads a batch of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    pub token_type_ids: Vec<i64>,
    /// Whether truncation to the model's max tokens dropped part of the input.
    pub truncated: bool,
}

impl Inputs {
    pub fn tokens(&self) -> usize {
        self.input_ids.len()
    }
}

pub struct TextEncoder {
    tokenizer: Tokenizer,
    prefix: String,
}

impl TextEncoder {
    /// Loads tokenizer.json; truncation by the tokenizer (longest first for pairs), no padding.
    pub fn load(path: &Path, prefix: &str, max_tokens: usize) -> Result<Self, String> {
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| format!("cannot load tokenizer {}: {e}", path.display()))?;
        let truncation = TruncationParams { max_length: max_tokens, ..Default::default() };
        tokenizer.with_truncation(Some(truncation)).map_err(|e| e.to_string())?;
        tokenizer.with_padding(None);
        Ok(Self { tokenizer, prefix: prefix.to_string() })
    }

    /// One input's model inputs. The prefix goes before the (first) text only.
    pub fn encode(&self, input: Segments) -> Result<Encoded, String> {
        let prefixed = |text: &str| format!("{}{text}", self.prefix);
        let encoding = match input {
            Segments::One(text) => self.tokenizer.encode_fast(prefixed(text), true),
            Segments::Pair(text, second) => {
                self.tokenizer.encode_fast((prefixed(text), second.to_string()), true)
            }
            // encode_fast leaves out the word ids, which words need.
            Segments::Words(words) => self.tokenizer.encode(words, true),
        }
        .map_err(|e| format!("tokenizer failed: {e}"))?;
        let widen = |values: &[u32]| values.iter().map(|&v| i64::from(v)).collect::<Vec<_>>();
        let inputs = Inputs {
            input_ids: widen(encoding.get_ids()),
            attention_mask: widen(encoding.get_attention_mask()),
            token_type_ids: widen(encoding.get_type_ids()),
            truncated: !encoding.get_overflowing().is_empty(),
        };
        Ok(Encoded { inputs, word_ids: encoding.get_word_ids().to_vec() })
    }
}

/// What is encoded: one text, a text and its second text (a target or context; the tokenizer's
/// template marks the second, e.g. BERT's token type 1), or words already split.
#[derive(Debug, Clone, Copy)]
pub enum Segments<'a> {
    One(&'a str),
    Pair(&'a str, &'a str),
    Words(&'a [String]),
}

pub struct Encoded {
    pub inputs: Inputs,
    /// Per token, the index of the word it comes from (`None`: a special token); words input only.
    pub word_ids: Vec<Option<u32>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(max_tokens: usize) -> TextEncoder {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/tokenizer.json");
        TextEncoder::load(&path, "", max_tokens).unwrap()
    }

    #[test]
    fn one_text_is_one_unpadded_row() {
        let inputs = fixture(16).encode(Segments::One("muy muy bueno")).unwrap().inputs;
        assert_eq!(inputs.tokens(), 5);
        // <s> muy muy bueno </s>
        assert_eq!(inputs.attention_mask, [1; 5]);
        assert!(!inputs.truncated);
    }

    #[test]
    fn truncates_to_max_tokens_and_says_so() {
        let long = vec!["bueno"; 40].join(" ");
        let inputs = fixture(8).encode(Segments::One(&long)).unwrap().inputs;
        assert_eq!(inputs.tokens(), 8);
        assert!(inputs.truncated);
        // The special tokens survive truncation.
        assert_eq!(inputs.input_ids[0], 1);
        assert_eq!(inputs.input_ids[7], 2);
    }

    #[test]
    fn a_pair_is_truncated_longest_first_and_says_so() {
        let encoder = fixture(12);
        let short = encoder.encode(Segments::Pair("malo", "bueno")).unwrap().inputs;
        let long = vec!["bueno"; 40].join(" ");
        let cut = encoder.encode(Segments::Pair("malo", &long)).unwrap().inputs;
        assert!(short.tokens() > 4 && !short.truncated);
        assert_eq!((cut.tokens(), cut.truncated), (12, true));
        // The short first text is kept whole: only the longer second one was cut.
        assert_eq!(cut.input_ids[..3], short.input_ids[..3]);
    }

    #[test]
    fn words_keep_their_index() {
        let words = ["muy".to_string(), "bueno".to_string()];
        let encoded = fixture(16).encode(Segments::Words(&words)).unwrap();
        // <s> muy bueno </s>
        assert_eq!(encoded.word_ids, [None, Some(0), Some(1), None]);
    }

    #[test]
    fn prefix_is_prepended() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/tokenizer.json");
        let encoder = TextEncoder::load(&path, "muy ", 16).unwrap();
        let with = encoder.encode(Segments::One("bueno")).unwrap().inputs;
        let without = fixture(16).encode(Segments::One("muy bueno")).unwrap().inputs;
        assert_eq!(with.input_ids, without.input_ids);
    }
}
