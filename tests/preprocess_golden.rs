//! Every line of tests/golden/preprocess.jsonl, in every language, must equal pysentimiento 0.7.3's
//! own output byte for byte (regenerate with `make golden`).

use sentimiento::preprocess::{Lang, Options, Preprocessor};
use serde_json::Value;

#[test]
fn matches_pysentimiento_byte_for_byte() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/preprocess.jsonl");
    let golden = std::fs::read_to_string(path).unwrap();
    let preprocessor = Preprocessor::new();
    let (mut checked, mut failures) = (0, Vec::new());
    for line in golden.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        let text = row["text"].as_str().unwrap();
        let options: Options = serde_json::from_value(row["args"].clone()).unwrap();
        for lang in ["es", "en", "it", "pt"] {
            let expected = row[lang].as_str().unwrap();
            let actual = preprocessor.preprocess(text, lang.parse::<Lang>().unwrap(), &options);
            checked += 1;
            if actual != expected {
                failures.push(format!(
                    "[{lang}] {text:?} {}\n  expected {expected:?}\n  actual   {actual:?}",
                    row["args"]
                ));
            }
        }
    }
    let shown: Vec<&String> = failures.iter().take(25).collect();
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    assert!(checked >= 4000, "only {checked} golden cases");
}
