//! The process-wide place that holds the models: which (task, lang) pairs the function serves,
//! which are loaded, and which to unload when memory runs short.
//!
//! `MODEL_DIR` holds one model (its files at the top, as `make model` writes it) or one model per
//! task and language, `MODEL_DIR/<task>/<lang>/` with pysentimiento's task names. Each model loads
//! on its first request (the cold start) and stays warm. With a memory budget, the least recently
//! used model is unloaded before loading one that would not fit, so a third model does not kill a
//! 512 MB function.
//!
//! The budget counts every copy in memory, not only the ones requests can still get: a model
//! unloaded while requests hold it stays counted (and is handed out again, never loaded a second
//! time) until its last request drops it, and a load that needs its memory waits for that.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::Instrument;

use crate::config::Settings;
use crate::error::ApiError;
use crate::memory;
use crate::metrics::Metrics;
use crate::model::Model;
use crate::model_dir::{ModelSpec, Pipeline, DEFAULT_TASK};
use crate::preprocess::Preprocessor;

/// The language a request gets when it names none and the task has several.
const DEFAULT_LANG: &str = "es";
/// How often a load waiting for an unloaded model's last requests looks again: an `Arc` says
/// nothing when it drops, and a request on the default model takes ~10 ms.
const DRAIN_POLL: Duration = Duration::from_millis(5);

pub struct Registry {
    settings: Settings,
    entries: Vec<Entry>,
    /// What a request that names no task and no language gets: sentiment/es, else the only model.
    default: Option<usize>,
    preprocessor: OnceLock<Arc<Preprocessor>>,
    /// One load at a time, so that the memory check and the load it made room for do not interleave.
    loading: tokio::sync::Mutex<()>,
    /// The process's own resident memory before any model (MiB), counted against the budget.
    base_mb: f64,
    clock: AtomicU64,
    /// What the process counts (metrics.rs): kept here, the one process-wide place.
    metrics: Metrics,
}

/// One servable (task, lang) pair and its model directory.
pub struct Entry {
    pub task: String,
    pub lang: String,
    pub dir: PathBuf,
    /// Found as `<task>/<lang>/` (checked against its pipeline.json) rather than alone at the top.
    nested: bool,
    model: RwLock<Slot>,
    /// When the model was last handed out (the registry's clock), for least-recently-used.
    last_used: AtomicU64,
    /// The most KiB of anonymous memory one load of the model added; 0 until loaded.
    measured_kib: AtomicU64,
    /// Times the model was loaded: once, unless it was unloaded and freed in between.
    loads: AtomicU64,
}

/// An entry's model: the copy requests get, and the copy still in memory after it was unloaded.
#[derive(Default)]
struct Slot {
    live: Option<Arc<Model>>,
    /// The last copy loaded: alive while the slot or any request holds it.
    last: Weak<Model>,
    /// Alive until that copy's memory is freed, which ends after `last` dies: a session takes a
    /// while to free, and a load started meanwhile stacked on it (measured: a 258 MiB peak for a
    /// 200 MB budget in the storm test, against 202-213 otherwise).
    memory: Weak<()>,
}

impl Registry {
    /// Lists what `settings.model_dir` holds; nothing is loaded yet.
    pub fn new(settings: Settings) -> Self {
        let entries: Vec<Entry> = discover(&settings.model_dir)
            .into_iter()
            .map(|Found { task, lang, dir, nested }| Entry {
                task,
                lang,
                dir,
                nested,
                model: RwLock::new(Slot::default()),
                last_used: AtomicU64::new(0),
                measured_kib: AtomicU64::new(0),
                loads: AtomicU64::new(0),
            })
            .collect();
        let default = match entries.iter().position(|e| e.task == DEFAULT_TASK && e.lang == DEFAULT_LANG) {
            Some(i) => Some(i),
            None => (entries.len() == 1).then_some(0),
        };
        Self {
            metrics: Metrics::new(settings.emf.clone()),
            settings,
            entries,
            default,
            preprocessor: OnceLock::new(),
            loading: tokio::sync::Mutex::new(()),
            base_mb: memory::rss_kib() as f64 / 1024.0,
            clock: AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn default_entry(&self) -> Option<&Entry> {
        self.default.map(|i| &self.entries[i])
    }

    /// The model a request asked for. A missing task or language takes sentiment / es when that
    /// narrows the choice to one model; anything else is a 400 that lists what is served.
    pub fn resolve(&self, task: Option<&str>, lang: Option<&str>) -> Result<&Entry, ApiError> {
        if let (None, None, Some(entry)) = (task, lang, self.default_entry()) {
            return Ok(entry);
        }
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| task.is_none_or(|t| t == e.task) && lang.is_none_or(|l| l == e.lang))
            .collect();
        let chosen = match matching.as_slice() {
            [one] => Some(*one),
            several => several.iter().copied().find(|e| {
                (task.is_some() || e.task == DEFAULT_TASK) && (lang.is_some() || e.lang == DEFAULT_LANG)
            }),
        };
        chosen.ok_or_else(|| {
            let asked = json!({ "task": task, "lang": lang });
            let served: Vec<String> = self.entries.iter().map(|e| format!("{}/{}", e.task, e.lang)).collect();
            let hint = if matching.len() > 1 { "; name both \"task\" and \"lang\"" } else { "" };
            ApiError::UnknownModel(format!(
                "no single model for {asked}{hint}; this function serves (task/lang): {}",
                served.join(", ")
            ))
        })
    }

    /// The entry's model, loading it on first use (the cold start).
    pub async fn get(&'static self, entry: &'static Entry) -> Result<Arc<Model>, ApiError> {
        let model = match entry.loaded() {
            Some(model) => model,
            // On its own task: a client that hangs up mid-load does not waste the load for the next one.
            None => tokio::spawn(self.load(entry).in_current_span())
                .await
                .map_err(|e| ApiError::ModelUnavailable(format!("model loading panicked: {e}")))??,
        };
        // Touched when handed out, not when the request arrived: a request that waited for a
        // load behind others would otherwise make its just-loaded model the next one unloaded.
        self.touch(entry);
        Ok(model)
    }

    fn touch(&self, entry: &Entry) {
        entry.last_used.store(self.clock.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    async fn load(&'static self, entry: &'static Entry) -> Result<Arc<Model>, ApiError> {
        let _one_at_a_time = self.loading.lock().await;
        // Unloaded but still in use: the same copy again, never a second one beside it.
        if let Some(model) = entry.loaded().or_else(|| entry.restore()) {
            return Ok(model);
        }
        let failed = |message: String| {
            tracing::error!(event = "model_load_failed", task = %entry.task, lang = %entry.lang, error = %message);
            ApiError::ModelUnavailable(message)
        };
        // The small JSON files first: a wrong directory is refused before the weights are read.
        entry.read_spec().map_err(failed)?;
        self.make_room(entry).await?;
        let before_kib = memory::anon_kib();
        let started = Instant::now();
        let (settings, dir) = (self.settings.clone(), entry.dir.clone());
        let preprocessor = self.preprocessor.get_or_init(|| Arc::new(Preprocessor::new())).clone();
        let preprocessor_ms = started.elapsed().as_millis() as u64;
        // Loading reads ~100 MB and builds the session: keep it off the async workers.
        let model = tokio::task::spawn_blocking(move || Model::load(&dir, &settings, preprocessor))
            .await
            .map_err(|e| format!("model loading panicked: {e}"))
            .and_then(|r| r)
            .map(Arc::new)
            .map_err(failed)?;
        self.metrics.model_loaded(&entry.task, &entry.lang, started.elapsed().as_secs_f64());
        // Process-wide, so a model freed meanwhile can make this read low (measured: 0.0 MB under
        // 8 concurrent clients): the largest reading is kept, and footprint_mb floors it.
        let added_kib = memory::anon_kib().saturating_sub(before_kib);
        entry.measured_kib.fetch_max(added_kib.max(1), Ordering::Relaxed);
        entry.loads.fetch_add(1, Ordering::Relaxed);
        let rss = memory::rss();
        tracing::info!(
            event = "model_loaded",
            model = %model.spec.name,
            task = %entry.task,
            lang = %entry.lang,
            load_ms = started.elapsed().as_millis() as u64,
            preprocessor_ms,
            library_ms = model.load_ms.library,
            tokenizer_ms = model.load_ms.tokenizer,
            session_ms = model.load_ms.session,
            added_mb = added_kib / 1024,
            rss_mb = rss.map(|r| r.rss_mb),
            peak_rss_mb = rss.map(|r| r.peak_rss_mb),
        );
        // Before the next load can look for a model to unload (that one waits for this lock).
        self.touch(entry);
        entry.put(&model);
        Ok(model)
    }

    /// Unloads least recently used models until `entry` fits the budget, then waits until the
    /// unloaded ones that requests still hold are freed. The budget chooses what to unload, it
    /// does not refuse: when nothing is left to unload or wait for, the model loads anyway (the
    /// estimate before a first load is only an estimate) and a warning says so. Waiting longer
    /// than a request may queue is a 503 `overloaded`.
    ///
    /// Memory in use is counted, not read from the kernel at that moment: RSS includes mapped files,
    /// whose pages the kernel drops and faults back in under a cgroup limit, so it reads low exactly
    /// when memory is short (measured: four RoBERTa-base models in a 512 MB cgroup looked like three).
    /// Each model counts the anonymous memory it added at load; ONNX Runtime's own code (~21 MiB,
    /// mapped with the first model) is left to the budget's headroom.
    async fn make_room(&self, entry: &Entry) -> Result<(), ApiError> {
        let Some(budget_mb) = self.settings.memory_budget_mb else {
            return Ok(());
        };
        let need_mb = entry.footprint_mb();
        let deadline = Instant::now() + self.settings.queue_timeout;
        let mut freed = false;
        loop {
            let in_memory_mb = self.counted_mb(entry, Entry::in_memory);
            if in_memory_mb + need_mb <= budget_mb {
                break;
            }
            let kept_mb = self.counted_mb(entry, |e| e.loaded().is_some());
            if kept_mb + need_mb > budget_mb {
                if let Some(victim) = self.victim(entry) {
                    victim.unload();
                    freed = true;
                    tracing::info!(event = "model_unloaded", task = %victim.task, lang = %victim.lang,
                        reason = "memory_budget", still_in_use = victim.in_memory(), need_mb, budget_mb);
                    continue;
                }
            }
            let waiting_for: Vec<String> = self
                .others(entry)
                .filter(|e| e.in_memory() && e.loaded().is_none())
                .map(|e| format!("{}/{}", e.task, e.lang))
                .collect();
            if waiting_for.is_empty() {
                tracing::warn!(event = "memory_budget_exceeded", task = %entry.task, lang = %entry.lang,
                    in_use_mb = in_memory_mb, need_mb, budget_mb);
                break;
            }
            if Instant::now() >= deadline {
                return Err(ApiError::Overloaded(format!(
                    "loading {}/{} needs the memory of {}, still answering requests; retry shortly",
                    entry.task,
                    entry.lang,
                    waiting_for.join(", ")
                )));
            }
            freed = true;
            tokio::time::sleep(DRAIN_POLL).await;
        }
        if freed {
            memory::release_free_heap();
        }
        Ok(())
    }

    fn others(&self, entry: &Entry) -> impl Iterator<Item = &Entry> + '_ {
        let entry: *const Entry = entry;
        self.entries.iter().filter(move |e| !std::ptr::eq(*e, entry))
    }

    /// MiB the budget counts besides `entry`: the process's own and every other model `counts`.
    fn counted_mb(&self, entry: &Entry, counts: impl Fn(&Entry) -> bool) -> f64 {
        self.base_mb + self.others(entry).filter(|e| counts(e)).map(Entry::footprint_mb).sum::<f64>()
    }

    /// MiB the budget counts now: the process's own and every model in memory.
    pub fn in_memory_mb(&self) -> f64 {
        self.base_mb + self.entries.iter().filter(|e| e.in_memory()).map(Entry::footprint_mb).sum::<f64>()
    }

    /// The model to unload first: an idle one (unloading it frees its memory now) before one that
    /// requests hold, least recently used first.
    fn victim(&self, entry: &Entry) -> Option<&Entry> {
        self.others(entry)
            .filter(|e| e.loaded().is_some())
            .min_by_key(|e| (e.in_use(), e.last_used.load(Ordering::Relaxed)))
    }
}

impl Entry {
    /// The copy requests get, if loaded.
    pub fn loaded(&self) -> Option<Arc<Model>> {
        self.slot().live.clone()
    }

    /// In memory: loaded, or unloaded while a request still holds it.
    fn in_memory(&self) -> bool {
        self.slot().memory.strong_count() > 0
    }

    /// Held by a request now (besides the registry's own reference).
    fn in_use(&self) -> bool {
        let slot = self.slot();
        slot.last.strong_count() > usize::from(slot.live.is_some())
    }

    fn slot(&self) -> std::sync::RwLockReadGuard<'_, Slot> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    fn slot_mut(&self) -> std::sync::RwLockWriteGuard<'_, Slot> {
        self.model.write().unwrap_or_else(|p| p.into_inner())
    }

    fn put(&self, model: &Arc<Model>) {
        *self.slot_mut() =
            Slot { live: Some(model.clone()), last: Arc::downgrade(model), memory: model.memory_token() };
    }

    /// The unloaded copy, loaded again, if a request still holds it.
    fn restore(&self) -> Option<Arc<Model>> {
        let mut slot = self.slot_mut();
        slot.live = slot.last.upgrade();
        slot.live.clone()
    }

    /// New requests no longer get this copy; the ones holding it free it when they end.
    fn unload(&self) {
        let unloaded = self.slot_mut().live.take();
        drop(unloaded); // outside the lock: freeing a session takes a while
    }

    /// Times the model was loaded.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// MiB the model adds when loaded: the most one of its loads added, and never less than the
    /// estimate from its files, since concurrent work can make a load read low.
    pub fn footprint_mb(&self) -> f64 {
        let measured_mb = self.measured_kib.load(Ordering::Relaxed) as f64 / 1024.0;
        measured_mb.max(self.estimate_mb())
    }

    /// About the weights' size (a RoBERTa-base int8 model of 104 MiB added 88 MiB of anonymous
    /// memory, its weights pre-packed; 100 MiB as the first model, with ONNX Runtime's own) plus
    /// ~10x the tokenizer's JSON.
    fn estimate_mb(&self) -> f64 {
        let size = |name: &str| std::fs::metadata(self.dir.join(name)).map_or(0, |m| m.len()) as f64;
        let weights = size("model.onnx") + size("model.onnx.data");
        (weights + size("tokenizer.json") * 10.0) / (1024.0 * 1024.0)
    }

    /// What the model directory declares, checked against the layout it was found in.
    pub fn read_spec(&self) -> Result<ModelSpec, String> {
        if self.nested && !self.dir.join("pipeline.json").is_file() {
            return Err(format!(
                "{}: pipeline.json is missing; a model laid out as <task>/<lang>/ needs one that names \
                 them: {{\"task\": {:?}, \"lang\": {:?}}}",
                self.dir.display(),
                self.task,
                self.lang
            ));
        }
        let spec = ModelSpec::read(&self.dir)?;
        self.check(&spec)?;
        Ok(spec)
    }

    /// A directory laid out as `<task>/<lang>/` must hold that task's model in that language.
    fn check(&self, spec: &ModelSpec) -> Result<(), String> {
        let lang = spec.lang.map_or("none", |l| l.as_str());
        match !self.nested || (spec.task == self.task && lang == self.lang) {
            true => Ok(()),
            false => Err(format!(
                "{}: pipeline.json says task {:?}, lang {lang:?}, but the directory is {}/{}",
                self.dir.display(),
                spec.task,
                self.task,
                self.lang
            )),
        }
    }

    /// What `/health` says of the model: always its key, its labels once loaded; never its
    /// directory, since `/health` answers without the API key.
    pub fn describe(&self) -> serde_json::Value {
        let mut about = json!({
            "task": self.task,
            "lang": self.lang,
            "memory_mb": (self.footprint_mb() * 10.0).round() / 10.0,
            "loaded": false,
            "loads": self.loads(),
        });
        if let Some(m) = self.loaded() {
            about["loaded"] = json!(true);
            about["name"] = json!(m.spec.name);
            about["labels"] = json!(m.spec.labels);
            about["multi_label"] = json!(m.spec.multi_label);
            about["preprocessing_lang"] = json!(m.spec.lang.map(|l| l.as_str()));
            about["max_tokens"] = json!(m.spec.max_tokens);
        }
        about
    }
}

/// A model directory found under `MODEL_DIR`.
struct Found {
    task: String,
    lang: String,
    dir: PathBuf,
    /// Laid out as `<task>/<lang>/` rather than alone at the top.
    nested: bool,
}

/// Every model under `root`. A root with a model of its own (or with nothing in the nested layout)
/// is one model, named by its pipeline.json; a missing or broken one is still listed, so that its
/// first request answers 503 naming what is wrong.
fn discover(root: &Path) -> Vec<Found> {
    let nested = if root.join("config.json").exists() { Vec::new() } else { nested(root) };
    if !nested.is_empty() {
        return nested;
    }
    let pipeline = Pipeline::read(root).unwrap_or_default();
    let lang = pipeline.lang.unwrap_or_else(|| DEFAULT_LANG.into());
    vec![Found { task: pipeline.task, lang, dir: root.to_path_buf(), nested: false }]
}

fn nested(root: &Path) -> Vec<Found> {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut found = Vec::new();
    for task in subdirectories(root) {
        for lang in subdirectories(&task) {
            if lang.join("config.json").is_file() {
                found.push(Found { task: name(&task), lang: name(&lang), dir: lang, nested: true });
            }
        }
    }
    found
}

fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(models: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (task, lang) in models {
            let dir = root.path().join(task).join(lang);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("config.json"), "{}").unwrap();
        }
        root
    }

    fn registry(root: &Path) -> Registry {
        Registry::new(Settings::for_model(root))
    }

    fn pick(r: &Registry, task: Option<&str>, lang: Option<&str>) -> Result<String, ApiError> {
        r.resolve(task, lang).map(|e| format!("{}/{}", e.task, e.lang))
    }

    #[test]
    fn a_model_at_the_top_is_the_only_one_and_the_default() {
        let root = layout(&[]);
        std::fs::write(root.path().join("config.json"), "{}").unwrap();
        std::fs::write(root.path().join("pipeline.json"), r#"{"task": "irony", "lang": "it"}"#).unwrap();
        let r = registry(root.path());
        assert_eq!(pick(&r, None, None).unwrap(), "irony/it");
        assert_eq!(pick(&r, Some("irony"), None).unwrap(), "irony/it");
        assert_eq!(pick(&r, Some("sentiment"), None).unwrap_err().code(), "unknown_model");
    }

    #[test]
    fn nested_layout_defaults_to_spanish_sentiment() {
        let root =
            layout(&[("emotion", "es"), ("sentiment", "en"), ("sentiment", "es"), ("hate_speech", "en")]);
        let r = registry(root.path());
        assert_eq!(r.entries().len(), 4);
        assert_eq!(pick(&r, None, None).unwrap(), "sentiment/es");
        assert_eq!(pick(&r, Some("emotion"), None).unwrap(), "emotion/es");
        assert_eq!(pick(&r, None, Some("en")).unwrap(), "sentiment/en");
        assert_eq!(
            pick(&r, Some("hate_speech"), None).unwrap(),
            "hate_speech/en",
            "the task's only language"
        );
        assert_eq!(pick(&r, Some("sentiment"), Some("en")).unwrap(), "sentiment/en");
    }

    #[test]
    fn an_unknown_pair_is_a_400_that_lists_what_is_served() {
        let root = layout(&[("emotion", "es"), ("sentiment", "es")]);
        let err = registry(root.path()).resolve(Some("irony"), Some("es")).err().unwrap();
        assert_eq!((err.status(), err.code()), (400, "unknown_model"));
        assert!(err.message().contains("emotion/es, sentiment/es"), "{}", err.message());
    }

    #[test]
    fn without_a_default_the_request_must_choose() {
        let root = layout(&[("emotion", "en"), ("irony", "pt")]);
        let r = registry(root.path());
        assert!(r.default_entry().is_none());
        assert!(r.resolve(None, None).err().unwrap().message().contains("name both"));
        assert_eq!(pick(&r, None, Some("pt")).unwrap(), "irony/pt");
    }

    #[test]
    fn a_missing_model_dir_is_still_one_entry_that_fails_when_used() {
        let r = registry(Path::new("/nonexistent/model"));
        assert_eq!(pick(&r, None, None).unwrap(), "sentiment/es");
    }

    #[test]
    fn footprint_is_the_larger_of_the_file_estimate_and_the_measurement() {
        let root = layout(&[("sentiment", "es")]);
        let dir = root.path().join("sentiment/es");
        std::fs::write(dir.join("model.onnx"), vec![0u8; 4 << 20]).unwrap();
        let r = registry(root.path());
        assert!((r.entries()[0].footprint_mb() - 4.0).abs() < 0.01);
        r.entries()[0].measured_kib.store(6144, Ordering::Relaxed);
        assert_eq!(r.entries()[0].footprint_mb(), 6.0);
        // A load that read low (a model freed meanwhile) does not shrink what the budget counts.
        r.entries()[0].measured_kib.store(1, Ordering::Relaxed);
        assert!((r.entries()[0].footprint_mb() - 4.0).abs() < 0.01);
    }

    /// `root/<task>/es/` for each task, holding the tiny fixture, each counted as `pad_mb` by its
    /// files' estimate (a sparse model.onnx.data its graph does not read): exact arithmetic for
    /// the budget, whatever else the test process has allocated.
    fn padded_models(tasks: &[&str], pad_mb: u64) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
        for task in tasks {
            let dir = root.path().join(task).join("es");
            std::fs::create_dir_all(&dir).unwrap();
            for name in ["config.json", "model.onnx", "tokenizer.json"] {
                std::fs::copy(fixture.join(name), dir.join(name)).unwrap();
            }
            let pipeline = json!({ "task": task, "lang": "es", "max_tokens": 16 });
            std::fs::write(dir.join("pipeline.json"), pipeline.to_string()).unwrap();
            std::fs::File::create(dir.join("model.onnx.data")).unwrap().set_len(pad_mb << 20).unwrap();
        }
        root
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_model_that_waited_for_its_load_is_not_the_next_one_unloaded() {
        let root = padded_models(&["emotion", "irony", "sentiment"], 1000);
        let mut r = registry(root.path());
        r.settings.memory_budget_mb = Some(r.base_mb + 2500.0); // room for two of them
        let r: &'static Registry = Box::leak(Box::new(r));
        let entry = |task| r.resolve(Some(task), None).unwrap();
        r.get(entry("sentiment")).await.unwrap();
        r.get(entry("emotion")).await.unwrap();
        // irony's request waits behind another load, and meanwhile both others answer requests.
        let another_load = r.loading.lock().await;
        let mut irony = Box::pin(r.get(entry("irony")));
        assert!(tokio::time::timeout(Duration::from_millis(50), &mut irony).await.is_err());
        r.get(entry("sentiment")).await.unwrap();
        r.get(entry("emotion")).await.unwrap();
        drop(another_load);
        irony.await.unwrap(); // sentiment, the least recently used, made room
        assert!(entry("sentiment").loaded().is_none());
        // irony was handed out last: emotion is the one to make room for sentiment again.
        r.get(entry("sentiment")).await.unwrap();
        assert!(entry("irony").loaded().is_some(), "the model just loaded was unloaded");
        assert!(entry("emotion").loaded().is_none());
    }
}
