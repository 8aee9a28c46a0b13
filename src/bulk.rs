//! Bulk scoring (`sentimiento predict` with no TEXT): JSON Lines in, one JSON line out per input
//! line, in input order, over several workers, in memory that does not grow with the input.
//!
//! A bounded pipeline of small stages: read -> workers -> ordered write. At most `WINDOW_PER_WORKER`
//! lines per worker are between reading and writing at any time (the reader takes a token per line,
//! the writer gives it back), so a slow text cannot make the others pile up. A stop request
//! (SIGINT/SIGTERM) ends the run: the workers finish the line in hand and take no other, the
//! writer writes what is in order and ends, and with it go the tokens the reader waits for. So
//! the output holds whole lines only, in order, and `--resume` carries on after the last one. A
//! write error (disk full, closed pipe) stops the run the same way, at once.

pub mod cache;
mod files;
mod output;
pub mod records;
mod resume;
pub mod workers;

pub use files::Files;
pub use output::OutputFormat;
pub use records::{Compression, Fields, Format};

use cache::{Cache, Stored};
use records::{field, Record, Records, Row};

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::config::MAX_BODY_BYTES;
use crate::error::{ApiError, ErrorDetail};
use crate::model::{self, Input, Model};
use crate::model_dir::Head;
use crate::postprocess;
use crate::request::check_input;

/// Lines in flight per worker: enough to keep every worker busy while the writer waits for a slow one.
const WINDOW_PER_WORKER: usize = 64;

/// Texts per session run when the model allows batches and `--batch` is not given. On the
/// RoBERTuito-sized model at the default precision it scored 9-11 % more texts/s than one text per
/// run (1 and 2 workers), on the trained MiniLM the same or 5 % fewer, for ~20 MB more per worker
/// (docs/bulk.md).
pub const DEFAULT_BATCH: usize = 16;

/// Lines a worker takes at once with batches: the window within which lines are sorted by
/// length for `Model::score_reads`, and the largest `--batch`. Half a worker's share of the
/// window, so that the reader stays ahead.
pub const BATCH_LINES: usize = WINDOW_PER_WORKER / 2;

const NO_BATCHES: &str = "--batch: this model gives a text other answers in a padded batch than alone \
    (by more than 1e-5: dynamic int8 quantizes each run's activations with one scale), or is a word \
    task; `make model` marks a model whose answers do not depend on the batch (pipeline.json's \
    batch_padding_id)";

/// How often an idle worker looks at the stop flag. Only a worker with nothing to do waits this
/// long, and only when the reader cannot end the run itself: blocked reading a stdin that sends
/// nothing, which no signal interrupts.
const STOP_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub workers: usize,
    pub resume: bool,
    pub include_sentence: bool,
    /// Answers kept for repeated texts: `None` is `cache::DEFAULT_ENTRIES`, 0 no cache.
    pub cache_entries: Option<usize>,
    /// `None`: known by the input's first bytes.
    pub compression: Option<Compression>,
    /// Texts per session run (`--batch`), for a model that `batches()`; `None`: `DEFAULT_BATCH`
    /// for such a model, else one.
    pub batch: Option<usize>,
    pub format: Format,
    pub fields: Fields,
    pub output_format: OutputFormat,
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
    /// Lines answered from the cache of repeated texts.
    pub cache_hits: u64,
    /// ONNX Runtime session runs: one per text scored, fewer when the model batches.
    pub runs: u64,
}

/// One output line: the input's `id` (when it had one), then what `POST /predict` answers for its
/// text, or the error in its place.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    #[serde(flatten)]
    answer: &'a Answer,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer {
    Prediction(model::Answer),
    Error { error: ErrorDetail },
}

type Job = (u64, Record);
type Done = (u64, String, bool);
/// A text classifier's answer, or why there is none.
type Scored = Result<postprocess::Prediction, ApiError>;
/// What the model reads for a text the cache does not hold (text, second text), and its cache key.
type Miss = ((String, Option<String>), Option<u128>);
/// A line's number and id, and its answer unless the model has yet to score it.
type LookedUp = (u64, Option<Value>, Option<Scored>);

/// Scores `files` (opened by `Files::open`) until the input ends, `stop` is set, or a write fails
/// (the error then names the output and keeps its kind: `BrokenPipe` when the reader went away).
pub fn run(
    model: Arc<Model>,
    mut files: Files,
    options: &Options,
    stop: Arc<AtomicBool>,
) -> io::Result<Summary> {
    if stop.load(Ordering::Relaxed) {
        // Stopped while the model loaded: the output is not even created (truncated).
        return Ok(Summary {
            written: 0,
            bad: 0,
            resumed: files.resumed,
            interrupted: true,
            cache_hits: 0,
            runs: 0,
        });
    }
    let batch = match options.batch {
        Some(n) if n > 1 && !model.batches() => {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, NO_BATCHES))
        }
        Some(n) => n,
        None if model.batches() => DEFAULT_BATCH,
        None => 1,
    };
    let workers = options.workers.max(1);
    let runs_before = model.runs();
    let name = files.output_name();
    let header = output::header(options.output_format, &model)?;
    let cache = cache_for(&model, options);
    let output = files.create()?;
    let progress = Arc::new(Progress::new(files.size));
    let window = workers * WINDOW_PER_WORKER;
    let (tokens_tx, tokens_rx) = sync_channel::<()>(window);
    for _ in 0..window {
        tokens_tx.send(()).expect("the window has room for its tokens");
    }
    let (jobs_tx, jobs_rx) = sync_channel::<Job>(window);
    let (done_tx, done_rx) = sync_channel::<Done>(window);
    // Not scoped: after a stop it may be blocked reading stdin, and the run does not wait for it.
    let reader = {
        let (stop, progress, input) = (stop.clone(), progress.clone(), files.input);
        std::thread::spawn(move || read_all(input, &jobs_tx, &tokens_rx, &stop, &progress))
    };
    let jobs_rx = Mutex::new(jobs_rx);
    let written = std::thread::scope(|scope| {
        for _ in 0..workers {
            let scorer = Scorer { model: &model, options, cache: cache.as_ref(), batch };
            let (jobs, done, stop) = (&jobs_rx, done_tx.clone(), &*stop);
            scope.spawn(move || work(&scorer, jobs, &done, stop));
        }
        drop(done_tx);
        write_in_order(output, header, done_rx, tokens_tx, &progress, &stop)
    });
    progress.finish();
    let (written, bad) =
        written.map_err(|e| io::Error::new(e.kind(), format!("cannot write {name}: {e}")))?;
    // Without a stop the workers ended because the reader did.
    let read = match !stop.load(Ordering::Relaxed) || reader.is_finished() {
        true => Some(reader.join().expect("the reader does not panic")?),
        false => None,
    };
    let complete = read.is_some_and(|r| r.at_end && r.lines == written);
    let cache_hits = cache.as_ref().map_or(0, Cache::hits);
    let runs = model.runs() - runs_before;
    Ok(Summary { written, bad, resumed: files.resumed, interrupted: !complete, cache_hits, runs })
}

struct ReadEnd {
    lines: u64,
    /// The input ended (rather than the run).
    at_end: bool,
}

/// The cache, for a text classifier (a word task's answers are a list per word: not kept).
fn cache_for(model: &Model, options: &Options) -> Option<Cache> {
    let entries = options.cache_entries.unwrap_or(cache::DEFAULT_ENTRIES);
    match model.spec.head {
        Head::Text => Cache::new(entries, model.spec.labels.len()),
        Head::Words { .. } => None,
    }
}

fn read_all(
    mut input: Records,
    jobs: &SyncSender<Job>,
    tokens: &Receiver<()>,
    stop: &AtomicBool,
    progress: &Progress,
) -> io::Result<ReadEnd> {
    let mut n = 0;
    loop {
        // The writer drops the tokens when it ends, so this wait ends with the run.
        if tokens.recv().is_err() || stop.load(Ordering::Relaxed) {
            return Ok(ReadEnd { lines: n, at_end: false });
        }
        let Some(record) =
            input.read().map_err(|e| io::Error::new(e.kind(), format!("cannot read the input: {e}")))?
        else {
            return Ok(ReadEnd { lines: n, at_end: true });
        };
        progress.read(input.consumed());
        if jobs.send((n, record)).is_err() {
            return Ok(ReadEnd { lines: n, at_end: false });
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

/// Answers lines until the reader is done or a stop request: then the lines in hand are finished
/// and the queued ones are left, so the writer ends at the first gap with whole lines in order.
fn work(scorer: &Scorer, jobs: &Mutex<Receiver<Job>>, done: &SyncSender<Done>, stop: &AtomicBool) {
    let take = if scorer.batch > 1 { BATCH_LINES } else { 1 };
    loop {
        let taken = {
            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
            if stop.load(Ordering::Relaxed) {
                return;
            }
            match jobs.recv_timeout(STOP_POLL) {
                // Only what is already queued: waiting to fill a batch would stall the writer.
                Ok(first) => std::iter::once(first).chain(jobs.try_iter().take(take - 1)).collect::<Vec<_>>(),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        for line in scorer.score_all(taken) {
            if done.send(line).is_err() {
                return;
            }
        }
    }
}

/// The output line for one item `{"text": "...", "id": ...}` (the id is any JSON value; a pair
/// task also reads `"target"` or `"context"`), and whether it is an error. The text is checked as
/// the API checks it; other fields are ignored: archives carry dates, authors and the like. Also
/// the answer to a Distributed Map item.
pub fn answer(model: &Model, item: &Value, sentence: bool) -> (String, bool) {
    let answer = to_answer(input(model, item, None).and_then(|i| model.predict_one(&i, sentence)));
    let bad = matches!(answer, Answer::Error { .. });
    (serde_json::to_string(&Line { id: item.get("id"), answer: &answer }).expect("answers serialise"), bad)
}

fn to_answer(prediction: Result<model::Answer, ApiError>) -> Answer {
    match prediction {
        Ok(prediction) => Answer::Prediction(prediction),
        Err(e) => Answer::Error { error: e.detail() },
    }
}

/// What each worker scores with: the model, the run's options, and the cache it shares.
struct Scorer<'a> {
    model: &'a Model,
    options: &'a Options,
    cache: Option<&'a Cache>,
    /// Texts per session run.
    batch: usize,
}

impl Scorer<'_> {
    /// The output lines for some input records, in their order. With batches they are all read
    /// first, repeats answered from the cache, and the rest scored in padded batches.
    fn score_all(&self, jobs: Vec<Job>) -> Vec<Done> {
        if self.batch <= 1 {
            return jobs.into_iter().map(|(n, record)| self.score(n, record)).collect();
        }
        let (looked_up, misses) = self.look_up(jobs);
        let mut scored = self.score_misses(misses).into_iter();
        let done = |(n, id, answer): LookedUp| {
            let answer = answer.or_else(|| scored.next()).expect("one score per miss");
            self.line(n, id, to_answer(answer.map(model::Answer::Text)))
        };
        looked_up.into_iter().map(done).collect()
    }

    /// Each record's id and its answer when it has one without the model (an error, or the
    /// cache's), and what the model must read for the others, in order.
    fn look_up(&self, jobs: Vec<Job>) -> (Vec<LookedUp>, Vec<Miss>) {
        let sentence = self.options.include_sentence;
        let (mut looked_up, mut misses) = (Vec::with_capacity(jobs.len()), Vec::new());
        for (n, record) in jobs {
            let (id, input) = self.parse(record);
            let answer = match input.and_then(|input| lookup(self.model, self.cache, &input, sentence)) {
                Ok(Lookup::Hit(prediction)) => Some(Ok(prediction)),
                Ok(Lookup::Miss { text, second, key }) => {
                    misses.push(((text, second), key));
                    None
                }
                Err(e) => Some(Err(e)),
            };
            looked_up.push((n, id, answer));
        }
        (looked_up, misses)
    }

    /// The misses scored in padded batches and kept in the cache; a fault fails them all.
    fn score_misses(&self, misses: Vec<Miss>) -> Vec<Scored> {
        let (reads, keys): (Vec<_>, Vec<_>) = misses.into_iter().unzip();
        match self.model.score_reads(reads, self.batch, self.options.include_sentence) {
            Ok(predictions) => {
                let kept = predictions.into_iter().zip(keys);
                kept.map(|(prediction, key)| Ok(keep(self.model, self.cache, key, prediction))).collect()
            }
            Err(fault) => keys.iter().map(|_| Err(fault.clone())).collect(),
        }
    }

    /// The output line for one input record, and whether it is an error.
    fn score(&self, n: u64, record: Record) -> Done {
        let (id, input) = self.parse(record);
        let answer = match input {
            Ok(input) => self.predict(input),
            Err(e) => error(e),
        };
        self.line(n, id, answer)
    }

    fn line(&self, n: u64, id: Option<Value>, answer: Answer) -> Done {
        let bad = matches!(answer, Answer::Error { .. });
        (n, output::line(self.options.output_format, id.as_ref(), &answer, &self.model.spec.labels), bad)
    }

    /// A record's id and what the model is asked to label, or why the record cannot be labelled.
    fn parse(&self, record: Record) -> (Option<Value>, Result<Input, ApiError>) {
        let fields = &self.options.fields;
        match record {
            Record::Line(raw) => match serde_json::from_slice::<Value>(&raw) {
                Ok(item) => {
                    let input = input(self.model, &item, fields.text.as_deref());
                    (field(&item, fields.id.as_deref(), "id").cloned(), input)
                }
                Err(e) if raw.len() > MAX_BODY_BYTES => (
                    None,
                    Err(ApiError::PayloadTooLarge(format!("line is over {MAX_BODY_BYTES} bytes ({e})"))),
                ),
                Err(e) => (None, Err(ApiError::InvalidJson(format!("line is not JSON: {e}")))),
            },
            Record::Row(Row { id, fields: Err(why) }) => {
                (id.map(Value::String), Err(ApiError::InvalidRequest(why)))
            }
            Record::Row(Row { id, fields: Ok((text, second)) }) => {
                (id.map(Value::String), row_input(self.model, text, second, fields.second.as_deref()))
            }
        }
    }

    fn predict(&self, input: Input) -> Answer {
        let sentence = self.options.include_sentence;
        to_answer(match self.cache {
            Some(cache) => cached(self.model, cache, &input, sentence).map(model::Answer::Text),
            None => self.model.predict_one(&input, sentence),
        })
    }
}

/// A text classifier's answer from the cache when the model has read this text before, else
/// scored and kept. Either way the same `Prediction`, so the same output line.
fn cached(
    model: &Model,
    cache: &Cache,
    input: &Input,
    sentence: bool,
) -> Result<postprocess::Prediction, ApiError> {
    match lookup(model, Some(cache), input, sentence)? {
        Lookup::Hit(prediction) => Ok(prediction),
        Lookup::Miss { text, second, key } => {
            Ok(keep(model, Some(cache), key, model.score_read(text, second, sentence)?))
        }
    }
}

enum Lookup {
    Hit(postprocess::Prediction),
    /// What the model reads for the input, and its cache key (`None`: no cache).
    Miss {
        text: String,
        second: Option<String>,
        key: Option<u128>,
    },
}

/// The input as the model reads it, answered from the cache when it holds it.
fn lookup(model: &Model, cache: Option<&Cache>, input: &Input, sentence: bool) -> Result<Lookup, ApiError> {
    let (text, second) = model.read_pair(input)?;
    let spec = &model.spec;
    let Some(cache) = cache else { return Ok(Lookup::Miss { text, second, key: None }) };
    let key = cache.key(&[Some(&spec.task), spec.lang.map(|l| l.as_str()), Some(&text), second.as_deref()]);
    match cache.get(key) {
        Some(stored) => {
            let read = sentence.then_some((text, second));
            Ok(Lookup::Hit(stored.prediction(&spec.labels, spec.multi_label, read)))
        }
        None => Ok(Lookup::Miss { text, second, key: Some(key) }),
    }
}

/// Keeps a scored answer in the cache (when there is one) and hands it on.
fn keep(
    model: &Model,
    cache: Option<&Cache>,
    key: Option<u128>,
    prediction: postprocess::Prediction,
) -> postprocess::Prediction {
    if let (Some(cache), Some(key)) = (cache, key) {
        if let Some(stored) = Stored::of(&prediction, &model.spec.labels) {
            cache.put(key, &stored);
        }
    }
    prediction
}

fn error(error: ApiError) -> Answer {
    Answer::Error { error: error.detail() }
}

/// A CSV row's input: its text, and the second-text column's value as the model's pair field.
fn row_input(
    model: &Model,
    text: String,
    second: Option<String>,
    column: Option<&str>,
) -> Result<Input, ApiError> {
    let field = second.is_some().then(|| model.spec.pair.as_deref().or(column).unwrap_or("second text"));
    model.check_pair(field)?;
    check_input(text, second, "text".into(), field.unwrap_or(""))
}

/// A JSON item's input: the text at `text_field` (default `"text"`), and its `"target"` or
/// `"context"`.
fn input(model: &Model, item: &Value, text_field: Option<&str>) -> Result<Input, ApiError> {
    let Some(Value::String(text)) = field(item, text_field, "text") else {
        return Err(ApiError::InvalidRequest(match text_field {
            None => "expected a JSON object with a string \"text\"".into(),
            Some(at) => format!("expected a string at {at:?} (--text-field)"),
        }));
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

/// Writes the answers in input order until the workers end. A write error stops the run at once:
/// the stop flag ends the workers after their line in hand, and the results and tokens dropped
/// here end the reader, so nobody waits on a writer that is gone.
fn write_in_order(
    mut output: Box<dyn Write + Send>,
    header: Option<String>,
    done: Receiver<Done>,
    tokens: SyncSender<()>,
    progress: &Progress,
    stop: &AtomicBool,
) -> io::Result<(u64, u64)> {
    let header = header.map_or(Ok(()), |h| writeln!(output, "{h}"));
    let written = header
        .and_then(|()| write_lines(output.as_mut(), &done, &tokens, progress))
        .and_then(|w| output.flush().map(|()| w));
    if written.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    written
}

fn write_lines(
    output: &mut dyn Write,
    done: &Receiver<Done>,
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
    Ok((next, bad))
}

/// A bar on stderr when it is a terminal: texts done, texts/s, and the ETA when the input is a file.
struct Progress {
    bar: indicatif::ProgressBar,
    started: Instant,
    texts: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// `size`: the input's bytes, when it is a plain file.
    fn new(size: Option<u64>) -> Self {
        use std::io::IsTerminal;
        let bar = match (io::stderr().is_terminal(), size) {
            (false, _) => indicatif::ProgressBar::hidden(),
            (true, Some(bytes)) => {
                indicatif::ProgressBar::new(bytes).with_style(style("{bar:30} {percent:>3}% {msg} eta {eta}"))
            }
            (true, None) => indicatif::ProgressBar::new_spinner().with_style(style("{spinner} {msg}")),
        };
        Self { bar, started: Instant::now(), texts: Default::default() }
    }

    fn read(&self, bytes: u64) {
        self.bar.set_position(bytes);
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
    use std::io::BufReader;

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
}
