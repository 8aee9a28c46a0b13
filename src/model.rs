//! One model: spec + tokenizer + ONNX session, loaded from its directory.

use std::path::Path;
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde::Serialize;

use crate::config::{Settings, MAX_PREPROCESSED_CHARS, MAX_WORDS};
use crate::error::ApiError;
use crate::model_dir::{Head, ModelSpec};
use crate::postprocess::{self, Prediction};
use crate::preprocess::Preprocessor;
use crate::session::{Classifier, Logits};
use crate::tokenize::{Inputs, Segments, TextEncoder};
use crate::word_labels::{self, WordsPrediction};
use crate::words::{is_space, Word, WordSplitter};

/// One thing to label: a text and, for a pair task, its target or context.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Input {
    pub text: String,
    pub second: Option<String>,
}

/// A model's answer for one input, in pysentimiento's shape for the task.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Text(Prediction),
    Words(WordsPrediction),
}

pub struct Model {
    pub spec: ModelSpec,
    /// Shared by every model of the process: compiled rules and the emoji table.
    preprocessor: Arc<Preprocessor>,
    encoder: TextEncoder,
    classifier: Classifier,
    /// spaCy's word splitting, for the word-labelling tasks.
    words: Option<WordSplitter>,
    /// Requests take turns on the session here, waiting asynchronously rather than parked on a
    /// blocking thread, so that a request can see how long it waited before it starts.
    turn: tokio::sync::Semaphore,
    /// Where the cold start went, for the `model_loaded` log line.
    pub load_ms: LoadTimes,
    /// The first run also pays for buffers ONNX Runtime allocates lazily: logged once, as the
    /// cold start's last stage.
    first_run: std::sync::Once,
    /// This model's own inference thread, started on first use (see `on_own_thread`).
    runner: OnceLock<Sender<Job>>,
    /// Declared last, so dropped last: its count reaches 0 only once the session and everything
    /// else above is freed (an `Arc<Model>`'s count reaches 0 before its drop runs).
    alive: Arc<()>,
}

/// How much longer than the shortest input of a padded batch its longest may be. A batch saves
/// little compute on a CPU, where one tweet's ~40 tokens already keep ONNX Runtime's kernels busy,
/// so padding must not eat it: on the trained MiniLM at the default precision, batches of 16 texts
/// of equal length ran 10 % faster than one text per run, while batches of 16 from 32 lines sorted
/// by length, padded to 1.6x their tokens, ran 40 % slower (docs/bulk.md).
const MAX_PADDING_PERCENT: usize = 10;

/// Work for a model's inference thread.
type Job = Box<dyn FnOnce() + Send>;

#[derive(Debug, Clone, Copy)]
pub struct LoadTimes {
    /// Loading libonnxruntime.so and creating its environment (0 after the process's first model).
    pub library: u64,
    /// The tokenizer, and for NER and POS the word rules.
    pub tokenizer: u64,
    pub session: u64,
}

impl Model {
    pub fn load(dir: &Path, settings: &Settings, preprocessor: Arc<Preprocessor>) -> Result<Self, String> {
        let spec = ModelSpec::read(dir)?;
        // The tokenizer (~50 ms) and the word rules load on a second thread while ONNX Runtime
        // builds the session.
        let (encoder, classifier, library_ms) = std::thread::scope(|scope| {
            let encoder = scope.spawn(|| {
                timed(|| {
                    let encoder = TextEncoder::load(&spec.tokenizer_path(), &spec.prefix, spec.max_tokens)?;
                    Ok::<_, String>((encoder, word_splitter(&spec)?))
                })
            });
            // Timed apart from the session: with the first model it is a stage of its own.
            let (library, library_ms) = timed(|| crate::session::runtime(&settings.ort_library).map(drop));
            let classifier = timed(|| {
                library.and_then(|()| Classifier::load(&spec.model_path(), spec.pre_optimized, settings))
            });
            let encoder = encoder.join().unwrap_or_else(|_| (Err("tokenizer loading panicked".into()), 0));
            (encoder, classifier, library_ms)
        });
        let load_ms = LoadTimes { library: library_ms, tokenizer: encoder.1, session: classifier.1 };
        let ((encoder, words), classifier) = (encoder.0?, classifier.0?);
        check_output(classifier.declared_shape(), &spec)?;
        Ok(Self {
            spec,
            preprocessor,
            encoder,
            classifier,
            words,
            turn: tokio::sync::Semaphore::new(1),
            load_ms,
            first_run: std::sync::Once::new(),
            runner: OnceLock::new(),
            alive: Arc::new(()),
        })
    }

    /// Waits for this model's turn; hold the permit while running `predict`.
    pub async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.turn.acquire().await.expect("the turn semaphore is never closed")
    }

    /// Alive until this model's memory is freed, not merely until its last user let go of it.
    pub fn memory_token(&self) -> std::sync::Weak<()> {
        Arc::downgrade(&self.alive)
    }

    /// Runs `work` on this model's own thread and waits for it without holding an async worker.
    /// A thread per model, not tokio's shared blocking pool: with the pool's 2 threads, two long
    /// NER requests (ner/es, ner/en) kept a one-word sentiment request on an idle model waiting
    /// 13.1 s. A pool with room for every model (24) grew to 14 threads under 8 clients over 4
    /// models (it starts a thread whenever none is idle at that instant) and RSS to 54.2 MiB,
    /// against 48.7 with 2 threads; a thread per model: 4 threads, 49.6 MiB, flat over 8,000
    /// requests (debug build, fixtures). A model runs one request at a time (its turn) anyway.
    /// The thread ends when the model is dropped.
    pub async fn on_own_thread<R: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Model) -> R + Send + 'static,
    ) -> Result<R, ApiError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let model = self.clone();
        let job: Job = Box::new(move || {
            let _ = answer.send(work(&model));
        });
        let runner = self.runner.get_or_init(|| inference_thread(&self.spec.name));
        runner
            .send(job)
            .map_err(|_| ApiError::Internal("the model's inference thread did not start".into()))?;
        // A job that panicked dropped its answer: that request fails, the thread goes on.
        answered.await.map_err(|_| ApiError::Internal("inference panicked".into()))
    }

    /// The text the model reads: pysentimiento's preprocessing with the model's language and arguments.
    pub fn preprocess(&self, text: &str) -> String {
        match self.spec.lang {
            Some(lang) => self.preprocessor.preprocess(text, lang, &self.spec.options),
            None => text.to_string(),
        }
    }

    /// A pair task needs its second text and any other task refuses one; `sent` names the field
    /// the request used for it.
    pub fn check_pair(&self, sent: Option<&str>) -> Result<(), ApiError> {
        let task = &self.spec.task;
        match (self.spec.pair.as_deref(), sent) {
            (Some(pair), None) => Err(ApiError::InvalidRequest(format!(
                "the {task} model reads a text and a {pair}: send \"{pair}\" with \"text\", or \"{pair}s\" with \"texts\""
            ))),
            (None, Some(field)) => Err(ApiError::InvalidRequest(format!(
                "the {task} model reads one text; {field:?} is only for models that read a target or context"
            ))),
            _ => Ok(()),
        }
    }

    /// Answers in input order; `with_sentence` adds the preprocessed text to each. `proceed`
    /// runs before each input and may stop the run there. An input the model path refuses (a
    /// client's mistake: 4xx) gets its error in its place; a fault fails the whole run.
    ///
    /// One input per session run, never a padded batch: dynamic int8 models quantize activations
    /// per tensor, so in a batch a text's probabilities would depend on its neighbours (measured on
    /// the earlier int8 default model: up to 0.19, with 2.9 % of labels flipping). Same text, same
    /// answer; `score_reads` batches only the models marked batch_padding_id.
    pub fn predict(
        &self,
        inputs: &[Input],
        with_sentence: bool,
        proceed: impl Fn() -> Result<(), ApiError>,
    ) -> Result<Vec<Result<Answer, ApiError>>, ApiError> {
        let run = |input: &Input| {
            proceed()?;
            match self.predict_one(input, with_sentence) {
                Err(fault) if fault.status() >= 500 => Err(fault),
                answer => Ok(answer),
            }
        };
        inputs.iter().map(run).collect()
    }

    pub fn predict_one(&self, input: &Input, with_sentence: bool) -> Result<Answer, ApiError> {
        let started = Instant::now();
        let answer = match self.spec.head {
            Head::Text => Answer::Text(self.classify(input, with_sentence)?),
            Head::Words { entities } => Answer::Words(self.label_words(&input.text, entities)?),
        };
        self.first_run.call_once(|| {
            tracing::info!(event = "first_run", model = %self.spec.name, ms = started.elapsed().as_secs_f64() * 1e3);
        });
        Ok(answer)
    }

    /// The text as the model reads it, refused when preprocessing made it longer than the model
    /// path reads (`config::MAX_PREPROCESSED_CHARS`): before tokenizing or word splitting it,
    /// which is where the cost of a long text lies. `name` is what the message calls the text.
    fn read(&self, text: &str, name: &str) -> Result<String, ApiError> {
        let preprocessed = self.preprocess(text);
        let chars = preprocessed.chars().count();
        match chars > MAX_PREPROCESSED_CHARS {
            true => Err(ApiError::PayloadTooLarge(format!(
                "{name} is {chars} characters after preprocessing, over the limit of {MAX_PREPROCESSED_CHARS}: \
                 preprocessing spells out each emoji as words; send fewer emoji or a shorter text"
            ))),
            false => Ok(preprocessed),
        }
    }

    /// pysentimiento's `AnalyzerForSequenceClassification`: the text, and its second text when
    /// there is one left after preprocessing (else the text alone, as pysentimiento does for an
    /// empty context).
    fn classify(&self, input: &Input, with_sentence: bool) -> Result<Prediction, ApiError> {
        let (sentence, second) = self.read_pair(input)?;
        self.score(sentence, second, with_sentence).map_err(ApiError::Internal)
    }

    /// What a text classifier reads for `input`: the preprocessed text, and the preprocessed
    /// second text unless preprocessing left only spaces. Refused as `predict_one` refuses it.
    /// Bulk scoring's cache is keyed by this.
    pub fn read_pair(&self, input: &Input) -> Result<(String, Option<String>), ApiError> {
        let sentence = self.read(&input.text, "the text")?;
        let pair = self.spec.pair.as_deref().unwrap_or("second text");
        let second = input.second.as_deref().map(|s| self.read(s, &format!("its {pair}"))).transpose()?;
        Ok((sentence, second.filter(|s| !s.chars().all(is_space))))
    }

    /// `predict_one` for a text classifier, from what `read_pair` returned.
    pub fn score_read(
        &self,
        sentence: String,
        second: Option<String>,
        with_sentence: bool,
    ) -> Result<Prediction, ApiError> {
        let started = Instant::now();
        let prediction = self.score(sentence, second, with_sentence).map_err(ApiError::Internal)?;
        self.first_run.call_once(|| {
            tracing::info!(event = "first_run", model = %self.spec.name, ms = started.elapsed().as_secs_f64() * 1e3);
        });
        Ok(prediction)
    }

    fn score(
        &self,
        sentence: String,
        second: Option<String>,
        with_sentence: bool,
    ) -> Result<Prediction, String> {
        let encoded = self.encoder.encode(segments(&sentence, &second))?;
        let logits = self.classifier.run(&encoded.inputs)?;
        let row =
            rows(logits, 2, 1, encoded.inputs.tokens(), &self.spec)?.pop().ok_or("model returned no rows")?;
        Ok(self.prediction(&row, encoded.inputs.truncated, sentence, second, with_sentence))
    }

    /// ONNX Runtime session runs so far.
    pub fn runs(&self) -> u64 {
        self.classifier.runs()
    }

    /// Whether bulk scoring may run this model's texts in padded batches: a text classifier whose
    /// conversion measured that a text answers alike alone and in a batch (`batch_padding_id`).
    pub fn batches(&self) -> bool {
        self.spec.head == Head::Text && self.spec.batch_padding_id.is_some()
    }

    /// `score_read` for many reads: sorted by token count and run in padded batches of at most
    /// `max_batch` inputs of near-equal length. Answers in the reads' order. Only for a model
    /// that `batches()`; a fault fails them all.
    pub fn score_reads(
        &self,
        reads: Vec<(String, Option<String>)>,
        max_batch: usize,
        with_sentence: bool,
    ) -> Result<Vec<Prediction>, ApiError> {
        let pad = self.spec.batch_padding_id.filter(|_| self.batches());
        let pad =
            pad.ok_or_else(|| ApiError::Internal(format!("{} does not run batches", self.spec.name)))?;
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let encoded = reads.iter().map(|(s, second)| self.encoder.encode(segments(s, second)));
        let encoded = encoded.collect::<Result<Vec<_>, _>>().map_err(ApiError::Internal)?;
        let tokens: Vec<usize> = encoded.iter().map(|e| e.inputs.tokens()).collect();
        let mut rows_of = vec![Vec::new(); reads.len()];
        for group in batches(&tokens, max_batch) {
            let batch: Vec<&Inputs> = group.iter().map(|&i| &encoded[i].inputs).collect();
            let logits = self.classifier.run_padded(&batch, pad).map_err(ApiError::Internal)?;
            let rows = rows(logits, 2, group.len(), 0, &self.spec).map_err(ApiError::Internal)?;
            for (&i, row) in group.iter().zip(rows) {
                rows_of[i] = row;
            }
        }
        self.first_run.call_once(|| {
            tracing::info!(event = "first_run", model = %self.spec.name, ms = started.elapsed().as_secs_f64() * 1e3);
        });
        let answers = reads.into_iter().zip(encoded).zip(rows_of);
        Ok(answers
            .map(|(((s, second), e), row)| {
                self.prediction(&row, e.inputs.truncated, s, second, with_sentence)
            })
            .collect())
    }

    fn prediction(
        &self,
        row: &[f32],
        truncated: bool,
        sentence: String,
        second: Option<String>,
        with_sentence: bool,
    ) -> Prediction {
        let spec = &self.spec;
        let p = postprocess::predict(row, &spec.labels, spec.multi_label, truncated);
        let (sentence, context) = if with_sentence { (Some(sentence), second) } else { (None, None) };
        Prediction { sentence, context, ..p }
    }

    /// pysentimiento's `AnalyzerForTokenClassification`: the preprocessed text split into words
    /// as spaCy does, each word labelled by its first token. Every word is in the answer, so a
    /// text of more words than `config::MAX_WORDS` is refused before it is tokenized.
    fn label_words(&self, text: &str, with_entities: bool) -> Result<WordsPrediction, ApiError> {
        let preprocessed = self.read(text, "the text")?;
        let Some(splitter) = self.words.as_ref() else {
            return Err(ApiError::Internal("a word-labelling model without its word splitter".into()));
        };
        let words = splitter.split(&preprocessed);
        if words.len() > MAX_WORDS {
            return Err(ApiError::PayloadTooLarge(format!(
                "the text is {} words after preprocessing, over the limit of {MAX_WORDS} for the {} task, \
                 which labels every word: preprocessing spells out each emoji as words; send fewer emoji or a shorter text",
                words.len(),
                self.spec.task
            )));
        }
        self.label(text, preprocessed, words, with_entities).map_err(ApiError::Internal)
    }

    fn label(
        &self,
        text: &str,
        preprocessed: String,
        words: Vec<Word>,
        with_entities: bool,
    ) -> Result<WordsPrediction, String> {
        let tokens: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
        let encoded = self.encoder.encode(Segments::Words(&tokens))?;
        let logits = self.classifier.run(&encoded.inputs)?;
        let rows = rows(logits, 3, 1, encoded.inputs.tokens(), &self.spec)?;
        let labels = word_labels::word_labels(&words, &encoded.word_ids, &rows, &self.spec.labels);
        let entities = with_entities.then(|| word_labels::entities(&words, &labels));
        let labels = if with_entities { labels } else { word_labels::without_bio_prefix(labels) };
        Ok(WordsPrediction {
            sentence: text.to_string(),
            preprocessed,
            tokens,
            labels,
            entities,
            probas: word_labels::probabilities(&rows),
            truncated: encoded.inputs.truncated,
        })
    }
}

/// Indices into `tokens` (each input's token count) in padded batches: sorted by length, each
/// batch at most `max_batch` long and its longest input at most `MAX_PADDING_PERCENT` longer
/// than its shortest.
fn batches(tokens: &[usize], max_batch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| tokens[i]);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match batches.last_mut() {
            Some(batch)
                if batch.len() < max_batch
                    && tokens[i] * 100 <= tokens[batch[0]] * (100 + MAX_PADDING_PERCENT) =>
            {
                batch.push(i)
            }
            _ => batches.push(vec![i]),
        }
    }
    batches
}

fn segments<'a>(sentence: &'a str, second: &'a Option<String>) -> Segments<'a> {
    match second {
        Some(second) => Segments::Pair(sentence, second),
        None => Segments::One(sentence),
    }
}

/// A thread that runs jobs in turn until its model, which holds the only sender, is dropped.
fn inference_thread(model: &str) -> Sender<Job> {
    let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
    let run = move || {
        for job in inbox {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        }
    };
    if let Err(e) = std::thread::Builder::new().name("inference".into()).spawn(run) {
        tracing::error!(event = "inference_thread_failed", model, error = %e);
    }
    jobs
}

/// spaCy's word rules for the model's language, for the word-labelling tasks only.
fn word_splitter(spec: &ModelSpec) -> Result<Option<WordSplitter>, String> {
    match spec.head {
        Head::Text => Ok(None),
        Head::Words { .. } => {
            let lang = spec.lang.ok_or("ner and pos models need pipeline.json's lang (es or en)")?;
            WordSplitter::new(lang).map(Some)
        }
    }
}

/// A run's logits as rows of label width: one row per text (rank 2, `texts` of them), one per
/// token of one input (rank 3).
fn rows(
    logits: Logits,
    rank: usize,
    texts: usize,
    tokens: usize,
    spec: &ModelSpec,
) -> Result<Vec<Vec<f32>>, String> {
    let width = spec.labels.len();
    let expected: &[usize] = if rank == 2 { &[texts, width] } else { &[texts, tokens, width] };
    if logits.shape != expected {
        return Err(match logits.shape.last() {
            Some(&w) if w != width => width_mismatch(w, spec),
            _ => format!("model output shape {:?} is not {expected:?}", logits.shape),
        });
    }
    Ok(logits.values.chunks(width).map(<[f32]>::to_vec).collect())
}

/// The graph's declared output must fit the task: `[texts, labels]` for a text classifier,
/// `[texts, tokens, labels]` for NER and POS, with as many labels as config.json names.
fn check_output((rank, width): (usize, Option<usize>), spec: &ModelSpec) -> Result<(), String> {
    let (want, kind) = match spec.head {
        Head::Text => (2, "one row of logits per text"),
        Head::Words { .. } => (3, "one row of logits per token"),
    };
    // Rank 0: the graph does not say; the first run checks the shape.
    if rank != 0 && rank != want {
        return Err(format!(
            "model.onnx's output has rank {rank}, but the task {:?} needs {kind} (rank {want})",
            spec.task
        ));
    }
    match width {
        Some(width) if width != spec.labels.len() => Err(width_mismatch(width, spec)),
        _ => Ok(()),
    }
}

fn timed<T>(load: impl FnOnce() -> T) -> (T, u64) {
    let started = Instant::now();
    let value = load();
    (value, started.elapsed().as_millis() as u64)
}

fn width_mismatch(width: usize, spec: &ModelSpec) -> String {
    format!(
        "model.onnx gives {width} logits per row but config.json names {} labels {:?}",
        spec.labels.len(),
        spec.labels
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_inputs_of_near_equal_length_up_to_max_batch() {
        let tokens = [40, 10, 42, 11, 44, 100, 45];
        // 10 and 11 (10 % longer at most), 40 42 44 (45 is over 40 + 10 %), 45, 100.
        assert_eq!(batches(&tokens, 16), [vec![1, 3], vec![0, 2, 4], vec![6], vec![5]]);
        let many = batches(&[30; 40], 16);
        assert_eq!(many.iter().map(Vec::len).collect::<Vec<_>>(), [16, 16, 8]);
        let mut all: Vec<usize> = many.concat();
        all.sort();
        assert_eq!(all, (0..40).collect::<Vec<_>>(), "every input once");
        assert!(batches(&[], 16).is_empty());
        assert_eq!(batches(&[5, 5], 1), [vec![0], vec![1]]);
    }
}
