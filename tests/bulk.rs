//! Bulk scoring through the binary: `sentimiento predict` with no TEXT reads JSON Lines and writes
//! one answer per line, in order, ids kept, errors in place; SIGTERM leaves whole lines, and
//! `--resume` finishes the file as an uninterrupted run would have written it.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::fixture;
use serde_json::{json, Value};

fn sentimiento(model: &str) -> Command {
    in_dir(&fixture(model))
}

fn in_dir(model_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentimiento"));
    command.env("MODEL_DIR", model_dir);
    command
}

/// `predict` with `args`, `input` on stdin; the output lines parsed.
fn bulk(model: &str, args: &[&str], input: &str) -> (Output, Vec<Value>) {
    bulk_in(&fixture(model), args, input)
}

fn bulk_in(model_dir: &Path, args: &[&str], input: &str) -> (Output, Vec<Value>) {
    let mut child = in_dir(model_dir)
        .arg("predict")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let lines =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (output, lines)
}

fn jsonl(items: &[Value]) -> String {
    items.iter().map(|i| format!("{i}\n")).collect()
}

const WORDS: [&str; 6] = ["excelente", "horrible", "el día", "me encanta", "odio el lunes", "qué genial"];

#[test]
fn answers_keep_input_order_and_ids_with_several_workers() {
    let items: Vec<Value> = (0..300)
        .map(|i| match i % 3 {
            0 => json!({ "id": i, "text": WORDS[i % 6] }),
            1 => json!({ "id": format!("tweet-{i}"), "text": WORDS[i % 6], "user": "ana" }),
            _ => json!({ "id": { "n": i }, "text": WORDS[i % 6] }),
        })
        .collect();
    let (output, lines) = bulk("tiny", &["--workers", "4"], &jsonl(&items));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(lines.len(), items.len());
    for (item, line) in items.iter().zip(&lines) {
        assert_eq!(line["id"], item["id"]);
    }
}

#[test]
fn each_line_is_what_post_predict_answers_for_its_text() {
    let texts: Vec<String> = (0..40).map(|i| format!("{} {}", WORDS[i % 6], WORDS[(i / 6) % 6])).collect();
    let items: Vec<Value> = texts.iter().enumerate().map(|(i, t)| json!({ "id": i, "text": t })).collect();
    let (_, lines) = bulk("tiny", &["--workers", "2"], &jsonl(&items));
    // The text form of predict goes through the HTTP handler.
    let api = sentimiento("tiny").arg("predict").arg("--").args(&texts).output().unwrap();
    let api: Value = serde_json::from_slice(&api.stdout).unwrap();
    for (mut line, expected) in lines.into_iter().zip(api["results"].as_array().unwrap()) {
        line.as_object_mut().unwrap().remove("id");
        assert_eq!(&line, expected);
    }
}

#[test]
fn bad_lines_get_their_error_in_place_and_exit_status_1() {
    let long = "a".repeat(10_001);
    let input = format!(
        "{}\nnot json\n{}\n\n{}\n{}\n{}\n",
        json!({"id": 0, "text": "excelente"}),
        json!({"id": 2, "text": "   "}),
        json!({"id": 4, "txt": "hola"}),
        json!({"id": 5, "text": long}),
        json!({"id": 6, "text": "horrible"}),
    );
    let (output, lines) = bulk("tiny", &[], &input);
    assert_eq!(output.status.code(), Some(1));
    let codes: Vec<&str> = lines.iter().map(|l| l["error"]["code"].as_str().unwrap_or("ok")).collect();
    assert_eq!(
        codes,
        [
            "ok",
            "invalid_json",
            "invalid_request",
            "invalid_json",
            "invalid_request",
            "payload_too_large",
            "ok"
        ]
    );
    assert_eq!((&lines[0]["output"], &lines[6]["output"]), (&json!("POS"), &json!("NEG")));
    assert_eq!(lines[4]["id"], 4, "an id is kept on an error line too");
}

fn sigterm(pid: u32) {
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
}

fn run_to_file(input: &Path, output: &Path, resume: bool) -> std::process::Child {
    let mut command = sentimiento("tiny-slow");
    command.args(["predict", "--workers", "1", "--input"]).arg(input).arg("--output").arg(output);
    if resume {
        command.arg("--resume");
    }
    command.stderr(Stdio::null()).spawn().unwrap()
}

#[test]
fn sigterm_leaves_whole_lines_and_resume_finishes_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let (input, stopped, whole) =
        (dir.path().join("in.jsonl"), dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    // ~50 ms per text: 120 texts take ~6 s, and the signal comes after ~1.5 s.
    let items: Vec<Value> = (0..120).map(|i| json!({ "id": i, "text": WORDS[i % 6] })).collect();
    std::fs::write(&input, jsonl(&items)).unwrap();

    let mut first = run_to_file(&input, &stopped, false);
    std::thread::sleep(Duration::from_millis(1500));
    sigterm(first.id());
    let started = Instant::now();
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(130), "a stopped run says so");
    assert!(started.elapsed() < Duration::from_secs(5), "it stopped reading at once");
    let partial = std::fs::read_to_string(&stopped).unwrap();
    let done = partial.lines().count();
    assert!(partial.ends_with('\n') && done > 0 && done < items.len(), "{done} lines");

    assert!(run_to_file(&input, &stopped, true).wait().unwrap().success());
    assert!(run_to_file(&input, &whole, false).wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&stopped).unwrap(), std::fs::read_to_string(&whole).unwrap());
}

#[test]
fn a_pair_task_reads_each_lines_target_or_context_and_a_missing_one_is_an_error_in_place() {
    let dir = common::copy_fixture("tiny-token-types");
    common::edit_json(&dir.path().join("pipeline.json"), |p| {
        p["task"] = json!("targeted_sentiment");
        p["pair"] = json!("target");
    });
    let items = [
        json!({"id": 1, "text": "el día", "target": "horrible"}),
        json!({"id": 2, "text": "el día", "context": "genial"}),
        json!({"id": 3, "text": "el día"}),
        json!({"id": 4, "text": "el día", "target": 5}),
    ];
    let (output, lines) = bulk_in(dir.path(), &[], &jsonl(&items));
    assert_eq!(output.status.code(), Some(1), "bad lines make the exit status 1");
    assert_eq!((&lines[0]["output"], &lines[1]["output"]), (&json!("NEG"), &json!("POS")), "{lines:?}");
    let errors: Vec<&str> = lines[2..].iter().map(|l| l["error"]["message"].as_str().unwrap()).collect();
    assert!(errors[0].contains("reads a text and a target"), "{errors:?}");
    assert!(errors[1].contains("\"target\" must be a string"), "{errors:?}");
}
