//! Bulk scoring through the binary: `sentimiento predict` with no TEXT reads JSON Lines and writes
//! one answer per line, in order, ids kept, errors in place; SIGTERM leaves whole lines, and
//! `--resume` finishes the file as an uninterrupted run would have written it.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, with_stdin};
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
    let output = with_stdin(in_dir(model_dir).arg("predict").args(args), input.as_bytes());
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

/// `dir` as model/import_model.py leaves a graph it measured to answer alike in a padded batch.
fn batching(dir: &Path) {
    common::edit_json(&dir.join("pipeline.json"), |p| p["batch_padding_id"] = json!(0));
}

/// Same labels and truncation, probabilities within 1e-5: a padded batch sums in another order.
fn assert_same_answer(line: &Value, expected: &Value) {
    let (mut line, mut expected) = (line.clone(), expected.clone());
    let (got, want) = (line.as_object_mut().unwrap(), expected.as_object_mut().unwrap());
    got.remove("id");
    want.remove("id");
    let (p, q) = (got.remove("probas").unwrap(), want.remove("probas").unwrap());
    assert_eq!(got, want);
    for (label, q) in q.as_object().unwrap() {
        assert!((p[label].as_f64().unwrap() - q.as_f64().unwrap()).abs() <= 1e-5, "{label}: {p} vs {q}");
    }
}

#[test]
fn a_model_that_batches_answers_each_line_as_post_predict_does_in_fewer_runs() {
    // tiny-slow: each run costs tens of milliseconds, so the reader is always ahead of the workers.
    let dir = common::copy_fixture("tiny-slow");
    batching(dir.path());
    // Two lengths (one word; twenty, past max_tokens: truncated), so that batches fill up whatever
    // the lines each worker takes; and two bad lines among them.
    let texts: Vec<String> =
        (0..40).map(|i| vec![WORDS[i % 2]; if i % 3 == 0 { 20 } else { 1 }].join(" ")).collect();
    let mut input: Vec<String> = texts.iter().map(|t| format!("{}\n", json!({ "text": t }))).collect();
    input.splice(20..20, ["not json\n".to_string(), "{\"text\": 5}\n".to_string()]);
    let input = input.concat();
    // No --batch: a marked model batches by default.
    let args = ["predict", "--workers", "2", "--cache-entries", "0"];
    let output = with_stdin(in_dir(dir.path()).env("RUST_LOG", "info").args(args), input.as_bytes());
    assert_eq!(output.status.code(), Some(1), "two bad lines");
    let mut lines: Vec<Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let bad: Vec<Value> = lines.drain(20..22).collect();
    assert!(bad.iter().all(|l| l["error"]["code"].is_string()), "{bad:?}");
    let api = in_dir(dir.path()).arg("predict").arg("--").args(&texts).output().unwrap();
    let api: Value = serde_json::from_slice(&api.stdout).unwrap();
    let api = api["results"].as_array().unwrap();
    assert_eq!((lines.len(), api.len()), (40, 40));
    assert!(api.iter().any(|a| a["truncated"] == json!(true)), "some texts are past max_tokens");
    for (line, expected) in lines.iter().zip(api) {
        assert_same_answer(line, expected);
    }
    let runs = common::bulk_done(&output, "runs");
    assert!(runs <= 12, "40 texts in batches, not one run each: {runs} runs");
}

#[test]
fn a_pair_task_that_batches_reads_each_target_as_it_does_alone() {
    let dir = targeted_sentiment();
    let items: Vec<Value> = (0..30)
        .map(|i| json!({ "id": i, "text": WORDS[i % 6], "target": vec![WORDS[(i / 6) % 6]; 1 + i % 4].join(" ") }))
        .collect();
    let (_, alone) = bulk_in(dir.path(), &["--cache-entries", "0"], &jsonl(&items));
    batching(dir.path());
    let (output, batched) = bulk_in(dir.path(), &["--cache-entries", "0", "--batch", "8"], &jsonl(&items));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(batched.len(), alone.len());
    for (line, expected) in batched.iter().zip(&alone) {
        assert_eq!(line["id"], expected["id"]);
        assert_same_answer(line, expected);
    }
}

#[test]
fn batch_is_refused_for_a_model_whose_answers_depend_on_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let args = ["predict", "--batch", "16", "--output", out.to_str().unwrap()];
    let output = with_stdin(sentimiento("tiny").args(args), b"{\"text\": \"excelente\"}\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("batch_padding_id"), "{stderr}");
    assert!(!out.exists(), "refused before the output is created");
    let output = sentimiento("tiny").args(["predict", "--batch", "33"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "out of range: a usage error");
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
    // No cache: these runs must take ~50 ms per line, and the inputs repeat six texts.
    command
        .args(["predict", "--workers", "1", "--cache-entries", "0", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output);
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
    let dir = targeted_sentiment();
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

/// tiny-token-types as a pair task that reads each line's target.
fn targeted_sentiment() -> tempfile::TempDir {
    let dir = common::copy_fixture("tiny-token-types");
    common::edit_json(&dir.path().join("pipeline.json"), |p| {
        p["task"] = json!("targeted_sentiment");
        p["pair"] = json!("target");
    });
    dir
}

/// The child's exit status, or `None` (after killing it) if it is still running after `limit`:
/// a hang guard, not a speed test.
fn exit_within(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    None
}

fn items(n: usize) -> String {
    jsonl(&(0..n).map(|i| json!({ "id": i, "text": WORDS[i % 6] })).collect::<Vec<_>>())
}

#[test]
fn a_stop_signal_with_one_worker_ends_every_run() {
    // The reader used to wait for a token that the worker, dropping queued lines after the stop,
    // never gave back: on today's main 2 of 16 such runs at once never ended (0 in a second try:
    // a race, so this catches it about one time in two; the stdin test below is deterministic).
    // Sixteen runs at once, signalled 0.4-1.9 s in.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, items(400)).unwrap();
    let mut runs: Vec<_> = (0..16)
        .map(|i| (run_to_file(&input, &dir.path().join(format!("{i}.jsonl")), false), 400 + 100 * i))
        .collect();
    let started = Instant::now();
    for (run, at_ms) in &runs {
        std::thread::sleep(Duration::from_millis(*at_ms).saturating_sub(started.elapsed()));
        sigterm(run.id());
    }
    // Every run is waited for (a hung one killed) before any assertion, so none outlives the test.
    let ends: Vec<_> = runs
        .iter_mut()
        .map(|(run, at_ms)| (exit_within(run, Duration::from_secs(30)).and_then(|s| s.code()), *at_ms))
        .collect();
    assert!(ends.iter().all(|&(code, _)| code == Some(130)), "(exit code, signalled at ms): {ends:?}");
}

#[test]
fn a_stop_signal_ends_a_run_whose_stdin_sends_nothing_more() {
    let mut run = sentimiento("tiny")
        .args(["predict", "--workers", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = run.stdin.take().unwrap();
    stdin.write_all(items(3).as_bytes()).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    sigterm(run.id());
    let status = exit_within(&mut run, Duration::from_secs(30));
    drop(stdin);
    assert_eq!(status.and_then(|s| s.code()), Some(130), "the stop did not wait for stdin");
    let mut out = String::new();
    std::io::Read::read_to_string(run.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert_eq!(out.lines().count(), 3, "the lines read before the stop are answered: {out}");
}

#[test]
fn a_second_signal_exits_at_once_while_the_first_waits_for_a_stalled_output() {
    // stdout is a pipe nobody reads: once it is full the writer cannot finish the lines in hand,
    // so the first signal cannot end the run; the second must.
    let mut run = sentimiento("tiny")
        .args(["predict", "--workers", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = run.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(items(20_000).as_bytes());
    });
    std::thread::sleep(Duration::from_millis(2000));
    sigterm(run.id());
    assert_eq!(exit_within_or_none(&mut run, Duration::from_secs(1)), None, "the writer is stalled");
    sigterm(run.id());
    let status = exit_within(&mut run, Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(130), "a second signal ends the run at once");
    drop(run.stdout.take());
    feeder.join().unwrap();
}

/// Like `exit_within` but leaves the child running when it has not exited.
fn exit_within_or_none(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_full_disk_ends_the_run_with_an_error_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, items(5000)).unwrap();
    let mut run = sentimiento("tiny")
        .args(["predict", "--workers", "2", "--output", "/dev/full", "--input"])
        .arg(&input)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exit_within(&mut run, Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(1), "ENOSPC ends the run, with status 1");
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("cannot write /dev/full") && stderr.contains("No space left"), "{stderr}");
}

#[test]
fn a_reader_that_closes_the_pipe_ends_the_run_quietly() {
    // `predict < big.jsonl | head -2`.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, items(20_000)).unwrap();
    let mut run = sentimiento("tiny")
        .args(["predict", "--workers", "2"])
        .stdin(std::fs::File::open(&input).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = std::io::BufReader::new(run.stdout.take().unwrap());
    for _ in 0..2 {
        std::io::BufRead::read_line(&mut head, &mut String::new()).unwrap();
    }
    drop(head);
    let status = exit_within(&mut run, Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(141), "128 + SIGPIPE, as shells expect");
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("error") && !stderr.contains("Broken pipe"), "no message: {stderr}");
}

/// A run on `input` -> `output` with `extra` arguments: its exit status and stderr.
fn refused(input: &Path, output: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut run = sentimiento("tiny")
        .args(["predict", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = exit_within(&mut run, Duration::from_secs(30)).and_then(|s| s.code());
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

#[test]
fn an_output_that_is_the_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let content = items(10);
    std::fs::write(&input, &content).unwrap();
    std::os::unix::fs::symlink(&input, dir.path().join("link.jsonl")).unwrap();
    std::fs::hard_link(&input, dir.path().join("hard.jsonl")).unwrap();
    for name in ["in.jsonl", "link.jsonl", "hard.jsonl", "./in.jsonl"] {
        for extra in [&[][..], &["--resume"][..]] {
            let (status, stderr) = refused(&input, &dir.path().join(name), extra);
            assert_eq!(status, Some(1), "{name} {extra:?}: {stderr}");
            assert!(stderr.contains("is the input file"), "{name} {extra:?}: {stderr}");
            assert_eq!(std::fs::read_to_string(&input).unwrap(), content, "{name} {extra:?}");
        }
    }
}

#[test]
fn resume_refuses_a_file_that_is_not_this_inputs_answers_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, items(5)).unwrap();
    let answers = |input: &str| String::from_utf8(bulk("tiny", &[], input).0.stdout).unwrap();
    let shifted: Vec<Value> = (0..5).map(|i| json!({ "id": i + 100, "text": WORDS[i % 6] })).collect();
    let cases = [
        ("notes.txt", "first note\nsecond note\nthird note\n".to_string(), "line 1 is not a JSON object"),
        ("nonl.jsonl", "x".repeat(100 * 1024), "no newline"),
        ("longer.jsonl", answers(&items(6)), "more lines than the input"),
        ("other.jsonl", answers(&jsonl(&shifted)), "line 1 has id 100 but the input line has 0"),
        ("input.jsonl", items(5), "line 1 is neither an answer nor an error"),
    ];
    for (name, content, why) in cases {
        let output = dir.path().join(name);
        std::fs::write(&output, &content).unwrap();
        let (status, stderr) = refused(&input, &output, &["--resume"]);
        assert_eq!(status, Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains("is not the output of an interrupted run") && stderr.contains(why),
            "{name}: {stderr}"
        );
        assert_eq!(std::fs::read_to_string(&output).unwrap(), content, "{name} is left untouched");
    }
}

#[test]
fn resume_cuts_a_cut_off_last_answer_and_writes_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.jsonl"), dir.path().join("out.jsonl"));
    std::fs::write(&input, items(6)).unwrap();
    let whole = String::from_utf8(bulk("tiny", &[], &items(6)).0.stdout).unwrap();
    let cut = whole.match_indices('\n').nth(2).unwrap().0 + 10;
    std::fs::write(&output, &whole[..cut]).unwrap();
    let (status, stderr) = refused(&input, &output, &["--resume"]);
    assert_eq!(status, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&output).unwrap(), whole);
}

#[test]
fn too_many_workers_are_capped_with_a_warning_and_the_run_finishes() {
    let (output, lines) = bulk("tiny", &["--workers", "100000"], &items(50));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(lines.len(), 50);
    assert!(stderr.contains("warning: --workers 100000 is more than"), "{stderr}");
}

#[test]
fn an_unknown_option_is_refused_with_the_usage_and_status_2() {
    let run = sentimiento("tiny").args(["predict", "--worker", "2", "--input", "x.jsonl"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unknown option \"--worker\"") && stderr.contains("usage:"), "{stderr}");
    assert!(run.stdout.is_empty(), "nothing was scored");
}

#[test]
fn workers_are_capped_by_the_memory_limit_at_the_models_size() {
    // A 100 MB (sparse) weights file that the model does not read makes the model's size ~100 MB.
    let dir = common::copy_fixture("tiny");
    std::fs::File::create(dir.path().join("model.onnx.data")).unwrap().set_len(100 << 20).unwrap();
    let mut child = in_dir(dir.path())
        .env("SENTIMIENTO_MEMORY_MB", "250")
        .args(["predict", "--workers", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(items(20).as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 20);
    let warning =
        "--workers 4 is more than the memory limit (250 MB at ~100 MB per worker) allows; running 2";
    assert!(stderr.contains(warning), "{stderr}");
}
