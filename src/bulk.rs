//! Bulk scoring (`sentimiento predict` with no TEXT): JSON Lines in, one JSON line out per input
//! line, in input order, over several workers, in memory that does not grow with the input.
//!
//! A bounded pipeline of small stages: read -> workers -> ordered write. At most `WINDOW_PER_WORKER`
//! lines per worker are between reading and writing at any time (the reader takes a token per line,
//! the writer gives it back), so a slow text cannot make the others pile up. A stop request
//! (SIGINT/SIGTERM) ends the reading; the lines being answered are finished and written, those
//! still queued are dropped, so the output holds whole lines only, in order, and `--resume`
//! carries on after the last one.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::config::MAX_BODY_BYTES;
use crate::error::{ApiError, ErrorDetail};
use crate::model::{self, Input, Model};
use crate::request::check_input;

/// Lines in flight per worker: enough to keep every worker busy while the writer waits for a slow one.
const WINDOW_PER_WORKER: usize = 64;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub workers: usize,
    pub resume: bool,
    pub include_sentence: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Lines written by this run.
    pub written: u64,
    /// Lines that got an `{"error": ...}` in place.
    pub bad: u64,
    /// Lines of an earlier, interrupted run that `--resume` kept.
    pub resumed: u64,
    /// Stopped by a signal before the end of the input.
    pub interrupted: bool,
}

/// One output line: the input's `id` (when it had one), then what `POST /predict` answers for its
/// text, or the error in its place.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    #[serde(flatten)]
    answer: Answer,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Prediction(model::Answer),
    Error { error: ErrorDetail },
}

pub fn run(model: Arc<Model>, options: &Options, stop: Arc<AtomicBool>) -> io::Result<Summary> {
    let workers = options.workers.max(1);
    let (mut output, resumed) = open_output(options)?;
    let mut input = open_input(options)?;
    for _ in 0..resumed {
        if read_line(&mut input)?.is_none() {
            break;
        }
    }
    let progress = Progress::new(options);
    let window = workers * WINDOW_PER_WORKER;
    let (tokens_tx, tokens_rx) = sync_channel::<()>(window);
    for _ in 0..window {
        tokens_tx.send(()).expect("the window has room for its tokens");
    }
    let (jobs_tx, jobs_rx) = sync_channel::<(u64, Vec<u8>)>(window);
    let (done_tx, done_rx) = sync_channel::<(u64, String, bool)>(window);
    let jobs_rx = Arc::new(Mutex::new(jobs_rx));
    let (stop, progress_ref) = (&*stop, &progress);
    std::thread::scope(|scope| {
        // The reader owns the sending end of the jobs: when it stops, the workers drain and stop.
        let reader = scope.spawn(move || read_all(input.as_mut(), &jobs_tx, &tokens_rx, stop, progress_ref));
        for _ in 0..workers {
            let (jobs, done, model) = (jobs_rx.clone(), done_tx.clone(), model.clone());
            scope.spawn(move || work(&model, &jobs, &done, options.include_sentence, stop));
        }
        drop(done_tx);
        let written = write_in_order(&mut output, &done_rx, &tokens_tx, &progress);
        let read = reader.join().expect("the reader does not panic")?;
        progress.finish();
        let (written, bad) = written?;
        Ok(Summary { written, bad, resumed, interrupted: read.interrupted })
    })
}

struct ReadEnd {
    interrupted: bool,
}

fn read_all(
    input: &mut dyn BufRead,
    jobs: &SyncSender<(u64, Vec<u8>)>,
    tokens: &Receiver<()>,
    stop: &AtomicBool,
    progress: &Progress,
) -> io::Result<ReadEnd> {
    let mut n = 0;
    loop {
        if tokens.recv().is_err() || stop.load(Ordering::Relaxed) {
            return Ok(ReadEnd { interrupted: stop.load(Ordering::Relaxed) });
        }
        let Some(line) = read_line(input)? else {
            return Ok(ReadEnd { interrupted: false });
        };
        progress.read(line.len() + 1);
        if jobs.send((n, line)).is_err() {
            return Ok(ReadEnd { interrupted: true });
        }
        n += 1;
    }
}

/// One line without its newline; a line longer than the API's body limit is cut there (its
/// remainder skipped), so that one huge line cannot take the process's memory.
fn read_line(input: &mut dyn BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = Read::take(&mut *input, MAX_BODY_BYTES as u64 + 1).read_until(b'\n', &mut line)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') && line.len() > MAX_BODY_BYTES {
        let mut rest = Vec::new();
        while Read::take(&mut *input, MAX_BODY_BYTES as u64).read_until(b'\n', &mut rest)? > 0 {
            if rest.last() == Some(&b'\n') {
                break;
            }
            rest.clear();
        }
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(Some(line))
}

/// Answers lines until the reader is done. After a stop request the lines still queued are
/// dropped: the writer then ends at the first gap, so the output stays whole lines in order.
fn work(
    model: &Model,
    jobs: &Mutex<Receiver<(u64, Vec<u8>)>>,
    done: &SyncSender<(u64, String, bool)>,
    sentence: bool,
    stop: &AtomicBool,
) {
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok((n, raw)) = job else { return };
        if stop.load(Ordering::Relaxed) {
            continue; // drained without answering, so that the reader is never blocked
        }
        let (line, bad) = match serde_json::from_slice::<Value>(&raw) {
            Ok(item) => answer(model, &item, sentence),
            Err(e) if raw.len() > MAX_BODY_BYTES => {
                refusal(ApiError::PayloadTooLarge(format!("line is over {MAX_BODY_BYTES} bytes ({e})")))
            }
            Err(e) => refusal(ApiError::InvalidJson(format!("line is not JSON: {e}"))),
        };
        if done.send((n, line, bad)).is_err() {
            return;
        }
    }
}

/// The output line for one item `{"text": "...", "id": ...}` (the id is any JSON value; a pair
/// task also reads `"target"` or `"context"`), and whether it is an error. The text is checked as
/// the API checks it; other fields are ignored: archives carry dates, authors and the like. Also
/// the answer to a Distributed Map item.
pub fn answer(model: &Model, item: &Value, sentence: bool) -> (String, bool) {
    let answer = match input(model, item).and_then(|i| model.predict_one(&i, sentence)) {
        Ok(prediction) => Answer::Prediction(prediction),
        Err(e) => Answer::Error { error: e.detail() },
    };
    let bad = matches!(answer, Answer::Error { .. });
    (serde_json::to_string(&Line { id: item.get("id"), answer }).expect("answers serialise"), bad)
}

fn input(model: &Model, item: &Value) -> Result<Input, ApiError> {
    let Some(Value::String(text)) = item.get("text") else {
        return Err(ApiError::InvalidRequest("expected a JSON object with a string \"text\"".into()));
    };
    let mut second = None;
    for field in ["target", "context"] {
        match item.get(field) {
            None => {}
            Some(Value::String(value)) if second.is_none() => second = Some((field, value.clone())),
            Some(Value::String(_)) => {
                return Err(ApiError::InvalidRequest("send either \"target\" or \"context\"".into()))
            }
            Some(_) => return Err(ApiError::InvalidRequest(format!("{field:?} must be a string"))),
        }
    }
    let (field, second) = second.unzip();
    model.check_pair(field)?;
    check_input(text.clone(), second, "text".into(), field.unwrap_or(""))
}

fn refusal(error: ApiError) -> (String, bool) {
    let line = Line { id: None, answer: Answer::Error { error: error.detail() } };
    (serde_json::to_string(&line).expect("errors serialise"), true)
}

fn write_in_order(
    output: &mut dyn Write,
    done: &Receiver<(u64, String, bool)>,
    tokens: &SyncSender<()>,
    progress: &Progress,
) -> io::Result<(u64, u64)> {
    let (mut next, mut bad) = (0u64, 0u64);
    let mut waiting = BTreeMap::new();
    for (n, line, is_bad) in done {
        waiting.insert(n, (line, is_bad));
        while let Some((line, is_bad)) = waiting.remove(&next) {
            output.write_all(line.as_bytes())?;
            output.write_all(b"\n")?;
            bad += u64::from(is_bad);
            next += 1;
            progress.wrote();
            let _ = tokens.send(());
        }
    }
    output.flush()?;
    Ok((next, bad))
}

fn open_input(options: &Options) -> io::Result<Box<dyn BufRead + Send>> {
    Ok(match &options.input {
        Some(path) => Box::new(BufReader::with_capacity(1 << 16, File::open(path)?)),
        None => Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
    })
}

/// The output, and how many whole lines an interrupted earlier run left in it (`--resume`: a
/// partial last line is cut off and written again).
fn open_output(options: &Options) -> io::Result<(Box<dyn Write + Send>, u64)> {
    let Some(path) = &options.output else {
        return Ok((Box::new(BufWriter::new(io::stdout())), 0));
    };
    if !options.resume || !path.exists() {
        return Ok((Box::new(BufWriter::new(File::create(path)?)), 0));
    }
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let (whole, end) = whole_lines(&mut file)?;
    file.set_len(end)?;
    file.seek(SeekFrom::End(0))?;
    Ok((Box::new(BufWriter::new(file)), whole))
}

/// (number of newline-terminated lines, byte offset just after the last of them).
fn whole_lines(file: &mut File) -> io::Result<(u64, u64)> {
    let (mut lines, mut end, mut offset) = (0, 0, 0u64);
    let mut buffer = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok((lines, end));
        }
        for (i, &byte) in buffer[..n].iter().enumerate() {
            if byte == b'\n' {
                lines += 1;
                end = offset + i as u64 + 1;
            }
        }
        offset += n as u64;
    }
}

/// A bar on stderr when it is a terminal: texts done, texts/s, and the ETA when the input is a file.
struct Progress {
    bar: indicatif::ProgressBar,
    started: Instant,
    texts: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new(options: &Options) -> Self {
        use std::io::IsTerminal;
        let size = options.input.as_ref().and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
        let bar = match (io::stderr().is_terminal(), size) {
            (false, _) => indicatif::ProgressBar::hidden(),
            (true, Some(bytes)) => {
                indicatif::ProgressBar::new(bytes).with_style(style("{bar:30} {percent:>3}% {msg} eta {eta}"))
            }
            (true, None) => indicatif::ProgressBar::new_spinner().with_style(style("{spinner} {msg}")),
        };
        Self { bar, started: Instant::now(), texts: Default::default() }
    }

    fn read(&self, bytes: usize) {
        self.bar.inc(bytes as u64);
    }

    fn wrote(&self) {
        let texts = self.texts.fetch_add(1, Ordering::Relaxed) + 1;
        if texts.is_multiple_of(64) {
            let rate = texts as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            self.bar.set_message(format!("{texts} texts, {rate:.0} texts/s"));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_over_long_line_is_cut_and_the_next_line_read_whole() {
        let mut input = format!("{}\n{{\"text\": \"ok\"}}\n", "x".repeat(MAX_BODY_BYTES * 3)).into_bytes();
        input.extend_from_slice(b"last");
        let mut reader = BufReader::new(&input[..]);
        assert_eq!(read_line(&mut reader).unwrap().unwrap().len(), MAX_BODY_BYTES + 1);
        assert_eq!(read_line(&mut reader).unwrap().unwrap(), br#"{"text": "ok"}"#);
        assert_eq!(read_line(&mut reader).unwrap().unwrap(), b"last");
        assert_eq!(read_line(&mut reader).unwrap(), None);
    }

    #[test]
    fn resume_counts_whole_lines_and_cuts_a_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":2}\n{\"c\"").unwrap();
        let options = Options { output: Some(path.clone()), resume: true, ..Default::default() };
        let (mut out, whole) = open_output(&options).unwrap();
        assert_eq!(whole, 2);
        out.write_all(b"{\"c\":3}\n").unwrap();
        drop(out);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }
}
