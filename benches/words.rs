//! spaCy-style word splitting (NER and POS) in process: rules compile time, throughput on the
//! golden corpus, and the slowest inputs a client can send (10,000 characters with no space, which
//! the affix loop peels one piece at a time). `cargo bench --bench words`; asserts nothing.

use std::time::Instant;

use sentimiento::preprocess::Lang;
use sentimiento::words::WordSplitter;

fn main() {
    let started = Instant::now();
    let splitter = WordSplitter::new(Lang::Es).expect("rules compile");
    println!("rules compile: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/preprocess.jsonl");
    let texts: Vec<String> = std::fs::read_to_string(path)
        .expect("golden corpus")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .map(|row| row["es"].as_str().expect("text").to_string())
        .collect();
    let started = Instant::now();
    let words: usize = texts.iter().map(|t| splitter.split(t).len()).sum();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "golden corpus: {} texts, {words} words in {:.3} s = {:.0} texts/s",
        texts.len(),
        seconds,
        texts.len() as f64 / seconds
    );
    for unit in ["()", "(a)", "'.", "a-", "x.", "¿!"] {
        let text = unit.repeat(10_000 / unit.chars().count());
        let started = Instant::now();
        let n = splitter.split(&text).len();
        println!("10,000 chars of {unit:?}: {n} words in {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    }
}
