//! One model: spec + tokenizer + ONNX session, loaded from its directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Settings;
use crate::error::ApiError;
use crate::model_dir::ModelSpec;
use crate::postprocess::{self, Prediction};
use crate::preprocess::Preprocessor;
use crate::session::Classifier;
use crate::tokenize::TextEncoder;

pub struct Model {
    pub spec: ModelSpec,
    /// Shared by every model of the process: compiled rules and the emoji table.
    preprocessor: Arc<Preprocessor>,
    encoder: TextEncoder,
    classifier: Classifier,
    /// Requests take turns on the session here, waiting asynchronously rather than parked on a
    /// blocking thread, so that a request can see how long it waited before it starts.
    turn: tokio::sync::Semaphore,
    /// Where the cold start went, for the `model_loaded` log line.
    pub load_ms: LoadTimes,
    /// The first run also pays for buffers ONNX Runtime allocates lazily: logged once, as the
    /// cold start's last stage.
    first_run: std::sync::Once,
}

#[derive(Debug, Clone, Copy)]
pub struct LoadTimes {
    /// Loading libonnxruntime.so and creating its environment (0 after the process's first model).
    pub library: u64,
    pub tokenizer: u64,
    pub session: u64,
}

impl Model {
    pub fn load(dir: &Path, settings: &Settings, preprocessor: Arc<Preprocessor>) -> Result<Self, String> {
        let spec = ModelSpec::read(dir)?;
        // The tokenizer (~50 ms) loads on a second thread while ONNX Runtime builds the session.
        let (encoder, classifier, library_ms) = std::thread::scope(|scope| {
            let encoder = scope.spawn(|| {
                timed(|| {
                    TextEncoder::load(&spec.tokenizer_path(), &spec.prefix, spec.max_tokens, spec.pad_id)
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
        let (encoder, classifier) = (encoder.0?, classifier.0?);
        match classifier.declared_width() {
            Some(width) if width != spec.labels.len() => Err(width_mismatch(width, &spec)),
            _ => Ok(Self {
                spec,
                preprocessor,
                encoder,
                classifier,
                turn: tokio::sync::Semaphore::new(1),
                load_ms,
                first_run: std::sync::Once::new(),
            }),
        }
    }

    /// Waits for this model's turn; hold the permit while running `predict`.
    pub async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.turn.acquire().await.expect("the turn semaphore is never closed")
    }

    /// The text the model reads: pysentimiento's preprocessing with the model's language and arguments.
    pub fn preprocess(&self, text: &str) -> String {
        match self.spec.lang {
            Some(lang) => self.preprocessor.preprocess(text, lang, &self.spec.options),
            None => text.to_string(),
        }
    }

    /// Predictions in input order; `with_sentence` adds the preprocessed text to each. `proceed`
    /// runs before each text and may stop the run there.
    ///
    /// One text per session run, never a padded batch: int8 models quantize activations per
    /// tensor, so in a batch a text's probabilities would depend on its neighbours (measured on
    /// the default model: up to 0.19, with 2.9 % of labels flipping). Same text, same answer.
    pub fn predict(
        &self,
        texts: &[String],
        with_sentence: bool,
        proceed: impl Fn() -> Result<(), ApiError>,
    ) -> Result<Vec<Prediction>, ApiError> {
        let run = |text: &String| {
            proceed()?;
            self.predict_one(text, with_sentence).map_err(ApiError::Internal)
        };
        texts.iter().map(run).collect()
    }

    pub fn predict_one(&self, text: &str, with_sentence: bool) -> Result<Prediction, String> {
        let started = Instant::now();
        let sentence = self.preprocess(text);
        let batch = self.encoder.encode(std::slice::from_ref(&sentence))?;
        let logits = self.classifier.run(&batch)?.pop().ok_or("model returned no rows")?;
        let spec = &self.spec;
        if logits.len() != spec.labels.len() {
            return Err(width_mismatch(logits.len(), spec));
        }
        let p = postprocess::predict(&logits, &spec.labels, spec.multi_label, batch.truncated[0]);
        self.first_run.call_once(|| {
            tracing::info!(event = "first_run", model = %spec.name, ms = started.elapsed().as_secs_f64() * 1e3);
        });
        Ok(Prediction { sentence: with_sentence.then_some(sentence), ..p })
    }
}

fn timed<T>(load: impl FnOnce() -> T) -> (T, u64) {
    let started = Instant::now();
    let value = load();
    (value, started.elapsed().as_millis() as u64)
}

fn width_mismatch(width: usize, spec: &ModelSpec) -> String {
    format!(
        "model.onnx gives {width} logits per text but config.json names {} labels {:?}",
        spec.labels.len(),
        spec.labels
    )
}
