//! The ONNX Runtime session: token ids in, logits out (per text, or per token), for one input or
//! a padded batch.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::TensorRef;

use crate::config::Settings;
use crate::tokenize::Inputs;

pub struct Classifier {
    /// `Session::run` takes `&mut self`, so each session runs one text at a time: one session is
    /// what a 0.3 vCPU Lambda can use; bulk scoring opens one per worker (`Settings::sessions`) so
    /// that workers run side by side. Each holds its own pre-packed weights: ort's shared
    /// PrepackedWeights container was measured to save nothing on these int8 graphs (2 workers on
    /// the RoBERTuito-sized model: 243 MiB peak with it, 239 MiB without).
    sessions: Vec<Mutex<Session>>,
    feeds_token_types: bool,
    output: String,
    /// Session runs so far (bulk scoring reports them: fewer than its texts when it batches).
    runs: AtomicU64,
}

impl Classifier {
    /// `pre_optimized`: the graph is already fused (model/optimize.py), so no optimisation pass.
    pub fn load(model: &Path, pre_optimized: bool, settings: &Settings) -> Result<Self, String> {
        let env = runtime(&settings.ort_library)?;
        let sessions = (0..settings.sessions.max(1))
            .map(|_| build_session(&env, model, pre_optimized, settings))
            .collect::<ort::Result<Vec<Session>>>()
            .map_err(|e| format!("cannot load ONNX model {}: {e}", model.display()))?;
        let session = &sessions[0];
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            if !inputs.contains(&required) {
                return Err(format!("{} has no input {required:?} (inputs: {inputs:?})", model.display()));
            }
        }
        let feeds_token_types = inputs.contains(&"token_type_ids");
        let output = session.outputs().first().map(|o| o.name().to_string()).ok_or("model has no outputs")?;
        let sessions = sessions.into_iter().map(Mutex::new).collect();
        Ok(Self { sessions, feeds_token_types, output, runs: AtomicU64::new(0) })
    }

    /// The output's declared rank and last dimension (`None` where the graph leaves it symbolic):
    /// `[texts, labels]` for a classifier, `[texts, tokens, labels]` for a token classifier.
    pub fn declared_shape(&self) -> (usize, Option<usize>) {
        let session = self.sessions[0].lock().unwrap_or_else(|p| p.into_inner());
        match session.outputs().first().map(|o| o.dtype()) {
            Some(ort::value::ValueType::Tensor { shape, .. }) => {
                (shape.len(), shape.last().and_then(|&d| usize::try_from(d).ok()))
            }
            _ => (0, None),
        }
    }

    /// The logits of one input: their shape and values, row-major.
    pub fn run(&self, inputs: &Inputs) -> Result<Logits, String> {
        let shape = [1, inputs.tokens()];
        self.run_tensors(shape, &inputs.input_ids, &inputs.attention_mask, &inputs.token_type_ids)
    }

    /// The logits of several inputs in one run, each padded at its end to the longest with `pad`
    /// (masked out, token type 0): rows in the inputs' order.
    pub fn run_padded(&self, batch: &[&Inputs], pad: i64) -> Result<Logits, String> {
        let width = batch.iter().map(|i| i.tokens()).max().unwrap_or(0);
        let padded = |field: fn(&Inputs) -> &[i64], fill: i64| {
            let mut all = Vec::with_capacity(batch.len() * width);
            for inputs in batch {
                all.extend_from_slice(field(inputs));
                all.resize(all.len() + width - inputs.tokens(), fill);
            }
            all
        };
        let ids = padded(|i| &i.input_ids, pad);
        let mask = padded(|i| &i.attention_mask, 0);
        let types = padded(|i| &i.token_type_ids, 0);
        self.run_tensors([batch.len(), width], &ids, &mask, &types)
    }

    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn run_tensors(
        &self,
        shape: [usize; 2],
        ids: &[i64],
        mask: &[i64],
        types: &[i64],
    ) -> Result<Logits, String> {
        let tensor = |data| view(shape, data);
        let mut feeds: Vec<(Cow<str>, SessionInputValue)> =
            vec![("input_ids".into(), tensor(ids)?.into()), ("attention_mask".into(), tensor(mask)?.into())];
        if self.feeds_token_types {
            feeds.push(("token_type_ids".into(), tensor(types)?.into()));
        }
        // A panic while holding the lock cannot leave the session half-updated: ORT owns its state.
        let mut session = self.free_session();
        self.runs.fetch_add(1, Ordering::Relaxed);
        let outputs = session.run(feeds).map_err(|e| format!("inference failed: {e}"))?;
        let (shape, values) = outputs[self.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("output {:?} is not a float tensor: {e}", self.output))?;
        let shape = shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
        Ok(Logits { shape, values: values.to_vec() })
    }
}

pub struct Logits {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Classifier {
    /// A session no other thread is running, else (more threads than sessions) wait for the first.
    fn free_session(&self) -> std::sync::MutexGuard<'_, Session> {
        let free = self.sessions.iter().find_map(|s| s.try_lock().ok());
        free.unwrap_or_else(|| self.sessions[0].lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Borrows the inputs' buffers: no copy between tokenizer output and the tensors.
fn view(shape: [usize; 2], data: &[i64]) -> Result<TensorRef<'_, i64>, String> {
    TensorRef::from_array_view((shape, data)).map_err(|e| e.to_string())
}

fn build_session(
    env: &Environment,
    model: &Path,
    pre_optimized: bool,
    settings: &Settings,
) -> ort::Result<Session> {
    // No CPU memory arena: measured on the default model (bench/rss.py, 100 requests), the arena
    // kept ~21 MiB more resident (153 vs 132 MiB peak) at the same latency.
    let cpu = ort::ep::CPU::default().with_arena_allocator(false).build();
    // Even on a fused graph the optimiser's passes cost ~40-80 ms of the cold start.
    let level = if pre_optimized { GraphOptimizationLevel::Disable } else { GraphOptimizationLevel::Level3 };
    Session::builder(env)?
        .with_optimization_level(level)?
        .with_intra_threads(settings.intra_threads)?
        .with_inter_threads(1)?
        .with_execution_providers([cpu])?
        .with_prepacking(settings.prepack)?
        .commit_from_file(model)
}

/// ONNX Runtime allows one environment per process: it is created once and kept even when a
/// model fails to load, so that a fixed model directory can be loaded by the next request.
pub fn runtime(libraries: &[PathBuf]) -> Result<Environment, String> {
    static ENV: Mutex<Option<Environment>> = Mutex::new(None);
    let mut slot = ENV.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(env) = slot.as_ref() {
        return Ok(env.clone());
    }
    let mut tried = Vec::new();
    for path in libraries {
        match ort::init_from(path) {
            Ok(builder) => {
                let env = builder.with_name("sentimiento").with_telemetry(false);
                let env = env.build().map_err(|e| e.to_string())?;
                *slot = Some(env.clone());
                return Ok(env);
            }
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(format!(
        "cannot load the ONNX Runtime library ({}); run `make ort` or set ORT_DYLIB_PATH",
        tried.join("; ")
    ))
}
