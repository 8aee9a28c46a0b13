//! Tokenization: texts in, one padded batch of model inputs out.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

/// Row-major `[rows, cols]` model inputs, padded to the longest text of the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub rows: usize,
    pub cols: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    pub token_type_ids: Vec<i64>,
    /// Per text: whether truncation to the model's max tokens dropped part of it.
    pub truncated: Vec<bool>,
}

pub struct TextEncoder {
    tokenizer: Tokenizer,
    prefix: String,
    pad_id: i64,
}

impl TextEncoder {
    /// Loads tokenizer.json; padding is done here (per batch), truncation by the tokenizer.
    pub fn load(path: &Path, prefix: &str, max_tokens: usize, pad_id: i64) -> Result<Self, String> {
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| format!("cannot load tokenizer {}: {e}", path.display()))?;
        let truncation = TruncationParams { max_length: max_tokens, ..Default::default() };
        tokenizer.with_truncation(Some(truncation)).map_err(|e| e.to_string())?;
        tokenizer.with_padding(None);
        Ok(Self { tokenizer, prefix: prefix.to_string(), pad_id })
    }

    pub fn encode(&self, texts: &[String]) -> Result<Batch, String> {
        let encodings = texts
            .iter()
            .map(|text| {
                let input = format!("{}{text}", self.prefix);
                self.tokenizer.encode_fast(input, true).map_err(|e| format!("tokenizer failed: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rows = encodings.len();
        let cols = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut batch = Batch {
            rows,
            cols,
            input_ids: vec![self.pad_id; rows * cols],
            attention_mask: vec![0; rows * cols],
            token_type_ids: vec![0; rows * cols],
            truncated: Vec::with_capacity(rows),
        };
        for (row, encoding) in encodings.iter().enumerate() {
            let start = row * cols;
            for (i, (&id, &type_id)) in encoding.get_ids().iter().zip(encoding.get_type_ids()).enumerate() {
                batch.input_ids[start + i] = i64::from(id);
                batch.token_type_ids[start + i] = i64::from(type_id);
                batch.attention_mask[start + i] = 1;
            }
            batch.truncated.push(!encoding.get_overflowing().is_empty());
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(max_tokens: usize) -> TextEncoder {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/tokenizer.json");
        TextEncoder::load(&path, "", max_tokens, 0).unwrap()
    }

    #[test]
    fn pads_to_the_longest_text_with_a_zero_mask() {
        let batch = fixture(16).encode(&["bueno".into(), "muy muy bueno".into()]).unwrap();
        assert_eq!((batch.rows, batch.cols), (2, 5));
        // <s> bueno </s> <pad> <pad>
        assert_eq!(&batch.attention_mask[..5], &[1, 1, 1, 0, 0]);
        assert_eq!(&batch.input_ids[3..5], &[0, 0]);
        assert_eq!(&batch.attention_mask[5..], &[1; 5]);
        assert_eq!(batch.truncated, [false, false]);
    }

    #[test]
    fn truncates_to_max_tokens_and_says_so() {
        let long = vec!["bueno"; 40].join(" ");
        let batch = fixture(8).encode(&[long, "malo".into()]).unwrap();
        assert_eq!(batch.cols, 8);
        assert_eq!(batch.truncated, [true, false]);
        // The special tokens survive truncation.
        assert_eq!(batch.input_ids[0], 1);
        assert_eq!(batch.input_ids[7], 2);
    }

    #[test]
    fn prefix_is_prepended() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny/tokenizer.json");
        let encoder = TextEncoder::load(&path, "muy ", 16, 0).unwrap();
        let with = encoder.encode(&["bueno".into()]).unwrap();
        let without = fixture(16).encode(&["muy bueno".into()]).unwrap();
        assert_eq!(with.input_ids, without.input_ids);
    }
}
