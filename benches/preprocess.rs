//! In-process preprocessing throughput on the golden corpus (default arguments), without the
//! CLI's JSON and process start: `cargo bench --bench preprocess`. Prints MB/s; asserts nothing.

use std::time::Instant;

use sentimiento::preprocess::{Lang, Options, Preprocessor};

const REPEAT: usize = 30;

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/preprocess.jsonl");
    let texts: Vec<String> = std::fs::read_to_string(path)
        .expect("golden corpus")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .filter(|row| row["args"].as_object().is_some_and(|a| a.is_empty()))
        .map(|row| row["text"].as_str().expect("text").to_string())
        .collect();
    let mb = REPEAT as f64 * texts.iter().map(|t| t.len()).sum::<usize>() as f64 / 1e6;
    let started = Instant::now();
    let preprocessor = Preprocessor::new();
    let init = started.elapsed();
    let options = Options::default();
    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..REPEAT {
                for text in &texts {
                    std::hint::black_box(preprocessor.preprocess(text, Lang::Es, &options));
                }
            }
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    println!("preprocessor init: {:.1} ms", init.as_secs_f64() * 1e3);
    println!(
        "rust in-process: {} texts, {mb:.2} MB in {best:.3} s = {:.2} MB/s (best of 3)",
        texts.len() * REPEAT,
        mb / best
    );
}
