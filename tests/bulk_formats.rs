//! Bulk scoring of real archives through the binary: gzip and zstd input, CSV rows, JSON
//! pointer fields, CSV output, `--resume` on them, and the cache of repeated texts, whose output
//! must be the cache-less run's, byte for byte.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use common::{fixture, with_stdin};
use serde_json::{json, Value};

/// `sentimiento predict ARGS` on the tiny model, `input` on stdin: its output.
fn run(args: &[&str], input: &[u8]) -> Output {
    run_on("tiny", args, input)
}

fn run_on(model: &str, args: &[&str], input: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentimiento"));
    command.env("MODEL_DIR", fixture(model)).env("RUST_LOG", "info").arg("predict").args(args);
    with_stdin(&mut command, input)
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn lines(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

const WORDS: [&str; 6] = ["excelente", "horrible", "el día", "me encanta", "odio el lunes", "qué genial"];

fn items(n: usize) -> String {
    (0..n).map(|i| format!("{}\n", json!({ "id": i, "text": WORDS[i % 6] }))).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

#[test]
fn gzip_and_zstd_input_are_read_by_their_magic_bytes_or_as_told() {
    let plain = items(30);
    let want = stdout(&run(&[], plain.as_bytes()));
    assert_eq!(lines(&want).len(), 30);
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("in.jsonl.gz", gzip(plain.as_bytes())), ("in.jsonl.zst", zstd(plain.as_bytes()))] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(stdout(&run(&["--input", path.to_str().unwrap()], b"")), want, "{name}");
        assert_eq!(stdout(&run(&["--input", "-"], &bytes)), want, "{name} on stdin");
    }
    let told = run(&["--compression", "gzip"], &gzip(plain.as_bytes()));
    assert_eq!(stdout(&told), want);
    // Told "none", gzip's bytes are lines that are not JSON: errors in place, exit status 1.
    let not_told = run(&["--compression", "none"], &gzip(plain.as_bytes()));
    assert_eq!(not_told.status.code(), Some(1));
    let bad = run(&["--compression", "lz4"], b"");
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[test]
fn a_corrupt_gzip_stream_ends_the_run_with_an_error_after_the_lines_before_it() {
    let mut bytes = gzip(items(2000).as_bytes());
    let at = bytes.len() / 2;
    bytes[at..].iter_mut().for_each(|b| *b ^= 0x5a);
    let output = run(&[], &bytes);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot read the input"), "{stderr}");
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(out.is_empty() || out.ends_with('\n'), "whole lines only");
}

#[test]
fn text_and_id_are_read_at_json_pointers() {
    let input = [
        json!({"data": {"text": "excelente", "id": "a"}, "id": 1}),
        json!({"data": {"text": "horrible"}}),
        json!({"data": {"texto": "x"}, "full": 3}),
    ]
    .iter()
    .map(|v| format!("{v}\n"))
    .collect::<String>();
    let output = run(&["--text-field", "/data/text", "--id-field", "/data/id"], input.as_bytes());
    assert_eq!(output.status.code(), Some(1), "the third line is bad");
    let got = lines(&String::from_utf8(output.stdout).unwrap());
    assert_eq!((&got[0]["id"], &got[0]["output"]), (&json!("a"), &json!("POS")));
    assert_eq!((got[1].get("id"), &got[1]["output"]), (None, &json!("NEG")));
    assert!(got[2]["error"]["message"].as_str().unwrap().contains("\"/data/text\""), "{}", got[2]);
    // A plain name is a top-level field.
    let full = run(&["--text-field", "full_text"], b"{\"full_text\": \"excelente\", \"id\": 9}\n");
    assert_eq!(lines(&stdout(&full))[0]["output"], "POS");
}

#[test]
fn csv_rows_are_scored_with_rfc_4180_quoting_and_a_bad_row_gets_its_error_in_place() {
    let csv = "tweet_id,user,full_text\n\
               1,ana,\"excelente, \"\"de verdad\"\"\nme encanta\"\n\
               2,bad row\n\
               3,luis,horrible\n";
    let output =
        run(&["--format", "csv", "--text-column", "full_text", "--id-column", "tweet_id"], csv.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    let got = lines(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(got.len(), 3);
    assert_eq!((&got[0]["id"], &got[0]["output"]), (&json!("1"), &json!("POS")));
    assert_eq!(got[1]["id"], "2", "the bad row keeps its id");
    assert!(got[1]["error"]["message"].as_str().unwrap().contains("2 fields, the header 3"), "{}", got[1]);
    assert_eq!(got[2]["output"], "NEG");
    // The same text as JSON gets the same answer.
    let json_line = json!({"id": "1", "text": "excelente, \"de verdad\"\nme encanta"});
    assert_eq!(lines(&stdout(&run(&[], format!("{json_line}\n").as_bytes())))[0], got[0]);

    let missing = run(&["--format", "csv"], csv.as_bytes());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr.contains("no column \"text\"") && missing.stdout.is_empty(), "{stderr}");
    let wrong_kind = run(&["--text-column", "text"], b"");
    assert_eq!(wrong_kind.status.code(), Some(2), "a CSV option on JSON Lines is refused");
}

#[test]
fn csv_output_has_a_header_a_column_per_label_and_quotes_where_needed() {
    let input = format!(
        "{}\n{}\nnot json\n",
        json!({"id": "a,\"b\"", "text": "excelente"}),
        json!({"id": 2, "text": "horrible"})
    );
    let output = run(&["--output-format", "csv"], input.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    let out = String::from_utf8(output.stdout).unwrap();
    let json = lines(&String::from_utf8(run(&[], input.as_bytes()).stdout).unwrap());
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["id", "output", "NEG", "NEU", "POS", "error"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!((&rows[0][0], &rows[0][1]), ("a,\"b\"", "POS"));
    for (row, answer) in rows.iter().zip(&json).take(2) {
        for (i, label) in ["NEG", "NEU", "POS"].iter().enumerate() {
            let p: f64 = row[2 + i].parse().unwrap();
            assert_eq!(p, answer["probas"][label].as_f64().unwrap(), "the JSON answer's probability");
        }
    }
    assert_eq!(&rows[1][0], "2");
    assert!(rows[2][5].starts_with("invalid_json: "), "{:?}", rows[2]);
    let refused = run(&["--output-format", "csv", "--resume", "--output", "x.csv"], b"");
    assert_eq!(refused.status.code(), Some(2), "--resume cannot check CSV rows");
}

/// Input `input_bytes` at `name`; the whole run's output, then an interrupted one (3 whole lines
/// and a piece of the 4th) resumed: both files must be the same.
fn resume_matches_a_whole_run(name: &str, input_bytes: &[u8], args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(name);
    std::fs::write(&input, input_bytes).unwrap();
    let input = input.to_str().unwrap();
    let whole = stdout(&run(&[&["--input", input], args].concat(), b""));
    let cut = whole.match_indices('\n').nth(2).unwrap().0 + 8;
    let output = dir.path().join("out.jsonl");
    std::fs::write(&output, &whole[..cut]).unwrap();
    let resumed =
        run(&[&["--input", input, "--output", output.to_str().unwrap(), "--resume"], args].concat(), b"");
    assert!(resumed.status.success(), "{name}: {}", String::from_utf8_lossy(&resumed.stderr));
    assert_eq!(std::fs::read_to_string(&output).unwrap(), whole, "{name}");
}

#[test]
fn resume_continues_on_compressed_and_csv_input_by_counting_records() {
    let plain = items(12);
    resume_matches_a_whole_run("in.jsonl.gz", &gzip(plain.as_bytes()), &[]);
    resume_matches_a_whole_run("in.jsonl.zst", &zstd(plain.as_bytes()), &[]);
    let csv: String = std::iter::once("id,text\n".to_string())
        .chain((0..12).map(|i| format!("{i},\"{}\nsegunda línea\"\n", WORDS[i % 6])))
        .collect();
    resume_matches_a_whole_run("in.csv.gz", &gzip(csv.as_bytes()), &["--format", "csv"]);
}

/// Repeats (the same text, a retweet whose handle preprocessing maps to @usuario) and
/// near-duplicates (another emoji: another text for the model; another URL: the same).
fn archive_like() -> String {
    let texts = [
        "excelente el día",
        "RT @ana: excelente el día",
        "RT @luis: excelente el día",
        "excelente el día 😡",
        "excelente el día 😍",
        "horrible https://t.co/a",
        "horrible https://t.co/b",
        "odio el lunes",
        "excelente el día",
    ];
    (0..90).map(|i| format!("{}\n", json!({"id": i, "text": texts[(i * 7) % texts.len()]}))).collect()
}

#[test]
fn the_cache_changes_no_output_byte_at_any_capacity_or_worker_count() {
    let input = archive_like();
    let plain = stdout(&run(&["--cache-entries", "0", "--workers", "1"], input.as_bytes()));
    for args in [&["--workers", "1"][..], &["--workers", "3"], &["--cache-entries", "2", "--workers", "2"]] {
        assert_eq!(stdout(&run(args, input.as_bytes())), plain, "{args:?}");
    }
    let sentence = ["--include-sentence", "--workers", "2"];
    let with = stdout(&run(&sentence, input.as_bytes()));
    let without = stdout(&run(&[&sentence[..], &["--cache-entries", "0"]].concat(), input.as_bytes()));
    assert_eq!(with, without, "--include-sentence");
}

fn cache_hits(output: &Output) -> u64 {
    common::bulk_done(output, "cache_hits")
}

#[test]
fn repeats_are_served_from_the_cache_and_near_duplicates_only_when_preprocessing_makes_them_equal() {
    // 9 distinct texts, 6 distinct to the model: the original twice, the two retweets as one
    // ("RT @usuario: excelente el día"), the two URLs as one ("horrible url"), the two emoji as two.
    let input = archive_like();
    let output = run(&["--workers", "1"], input.as_bytes());
    let out = lines(&stdout(&output));
    assert_eq!(cache_hits(&output), 90 - 6, "each text the model reads is scored once");
    let sentences = run(&["--workers", "1", "--include-sentence"], input.as_bytes());
    let read: std::collections::HashSet<String> =
        lines(&stdout(&sentences)).iter().map(|l| l["sentence"].as_str().unwrap().to_string()).collect();
    assert_eq!(read.len(), 6, "{read:?}");
    let by_text =
        |text: &str| out.iter().zip(input.lines()).find(|(_, l)| l.contains(text)).unwrap().0.clone();
    assert_ne!(by_text("😡")["probas"], by_text("😍")["probas"], "another emoji is another text");
    assert_eq!(cache_hits(&run(&["--workers", "1", "--cache-entries", "0"], input.as_bytes())), 0);
}

#[test]
fn a_word_task_is_left_uncached_and_refuses_csv_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let Some(ner) = ["tiny-ner", "tiny-words"].iter().find(|n| dir.join(n).exists()) else {
        return;
    };
    let input = items(12);
    let output = run_on(ner, &["--workers", "1"], input.as_bytes());
    assert_eq!(lines(&stdout(&output)).len(), 12);
    assert_eq!(cache_hits(&output), 0);
    let csv = run_on(ner, &["--output-format", "csv"], input.as_bytes());
    let stderr = String::from_utf8_lossy(&csv.stderr);
    assert_eq!(csv.status.code(), Some(1));
    assert!(stderr.contains("labels every word") && csv.stdout.is_empty(), "{stderr}");
}
