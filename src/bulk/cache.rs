//! Answers for repeated texts, scored once. Archives repeat texts: a retweet is `RT @ana: ` and
//! the original, and preprocessing maps every handle to one user token, so the model reads the
//! same text again. The cache is keyed by what the model reads (task, language, the preprocessed
//! text and second text), not by the raw line, so a near-duplicate (another URL, another emoji)
//! is served from it only when preprocessing made it the same text.
//!
//! Bounded: a fixed number of entries, allocated up front, outside the workers' buffers.
//! - Key: keyed SipHash-1-3 with 128 bits of output, the key drawn at random per run. Two texts
//!   collide by chance with probability ~n²/2¹²⁹ (10⁻²¹ for a billion distinct texts), and
//!   nobody can craft a collision without the run's key, so a text cannot get another's answer.
//!   Storing the texts instead would cost ~10x the memory per entry.
//! - Answer: a bit per label of the output (the label index for a single-label task) and the
//!   probabilities as the f32 the model path computed, so a hit serialises byte for byte as
//!   the text scored again would.
//! - Eviction: CLOCK (second chance). A hit only sets a bit, so the shared lock is held for
//!   nanoseconds; a new entry starts unmarked, so the many one-off texts of an archive leave at
//!   the hand's next pass while a text seen again (a tweet being retweeted) stays another round.
//!   LRU would evict about as well but relinks a list on every hit; FIFO would drop a popular
//!   text as soon as it is old.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use siphasher::sip128::{Hasher128, SipHasher13};

use crate::postprocess::{Output, Prediction, Probas};

/// The default capacity: ~38 MiB at 3 labels (a slot of 33 bytes, and 2.6 index buckets of 25
/// bytes each), enough for the retweets of a day of a trending topic to meet their original.
pub const DEFAULT_ENTRIES: usize = 400_000;

/// The output is a bit per label: a model with more labels is not cached.
pub const MAX_LABELS: usize = 32;

/// One stored answer, as handed in and out.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Bit i set: label i is (one of) the output.
    pub output: u32,
    pub truncated: bool,
    pub probs: Vec<f32>,
}

pub struct Cache {
    sip: (u64, u64),
    width: usize,
    clock: Mutex<Clock>,
    hits: AtomicU64,
}

impl Cache {
    /// A cache of `entries` answers of `width` probabilities each; `None` when it would hold
    /// nothing (0 entries, or too many labels).
    pub fn new(entries: usize, width: usize) -> Option<Self> {
        if entries == 0 || width == 0 || width > MAX_LABELS {
            return None;
        }
        let random = uuid::Uuid::new_v4().as_u128() ^ uuid::Uuid::new_v4().as_u128().rotate_left(64);
        let sip = (random as u64, (random >> 64) as u64);
        let clock = Mutex::new(Clock::new(entries.min(u32::MAX as usize), width));
        Some(Self { sip, width, clock, hits: AtomicU64::new(0) })
    }

    /// The key of what the model reads: `parts` (task, language, text, second text) each
    /// length-prefixed, so that moving bytes from one part to the next changes the key.
    pub fn key(&self, parts: &[Option<&str>]) -> u128 {
        let mut hasher = SipHasher13::new_with_keys(self.sip.0, self.sip.1);
        for part in parts {
            match part {
                None => hasher.write_u8(0),
                Some(part) => {
                    hasher.write_u8(1);
                    hasher.write_usize(part.len());
                    hasher.write(part.as_bytes());
                }
            }
        }
        hasher.finish128().as_u128()
    }

    pub fn get(&self, key: u128) -> Option<Stored> {
        let stored = self.clock.lock().unwrap_or_else(|p| p.into_inner()).get(key);
        self.hits.fetch_add(u64::from(stored.is_some()), Ordering::Relaxed);
        stored
    }

    /// Answers served from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn put(&self, key: u128, answer: &Stored) {
        if answer.probs.len() == self.width {
            self.clock.lock().unwrap_or_else(|p| p.into_inner()).put(key, answer);
        }
    }

    pub fn entries(&self) -> usize {
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).keys.len()
    }
}

impl Stored {
    /// The answer as stored; `None` when its output is not among `labels`.
    pub fn of(prediction: &Prediction, labels: &[String]) -> Option<Self> {
        let bit = |label: &String| labels.iter().position(|l| l == label).map(|i| 1u32 << i);
        let output = match &prediction.output {
            Output::Label(label) => bit(label)?,
            Output::Labels(chosen) => chosen.iter().map(bit).sum::<Option<u32>>()?,
        };
        let probs = prediction.probas.0.iter().map(|(_, p)| *p).collect();
        Some(Self { output, truncated: prediction.truncated, probs })
    }

    /// The prediction it was made of, in the model's label order, with what the model read
    /// when `sentence` is asked for.
    pub fn prediction(
        &self,
        labels: &[String],
        multi_label: bool,
        sentence: Option<(String, Option<String>)>,
    ) -> Prediction {
        let mut chosen =
            labels.iter().enumerate().filter(|(i, _)| self.output & (1 << i) != 0).map(|(_, l)| l.clone());
        let output = match multi_label {
            true => Output::Labels(chosen.collect()),
            false => Output::Label(chosen.next().unwrap_or_default()),
        };
        let probas = Probas(labels.iter().cloned().zip(self.probs.iter().copied()).collect());
        let (sentence, context) = sentence.unzip();
        Prediction { output, probas, truncated: self.truncated, sentence, context: context.flatten() }
    }
}

const SEEN: u8 = 1;
const TRUNCATED: u8 = 2;

/// The entries in slots of parallel arrays, and the hand that goes round them.
struct Clock {
    capacity: usize,
    width: usize,
    /// Key halves (8-byte aligned: a u128 key would pad each bucket to 32 bytes) -> slot.
    index: HashMap<(u64, u64), u32, KeyIsHash>,
    keys: Vec<u128>,
    outputs: Vec<u32>,
    flags: Vec<u8>,
    probs: Vec<f32>,
    hand: usize,
}

impl Clock {
    fn new(capacity: usize, width: usize) -> Self {
        Self {
            capacity,
            width,
            // Twice the entries: evictions leave tombstones, and a table more than half full
            // of entries then doubles instead of cleaning them up in place (measured: 62 MiB
            // instead of 29 at 400,000 entries, over a million lines).
            index: HashMap::with_capacity_and_hasher(capacity.saturating_mul(2), KeyIsHash),
            keys: Vec::with_capacity(capacity),
            outputs: Vec::with_capacity(capacity),
            flags: Vec::with_capacity(capacity),
            probs: Vec::with_capacity(capacity * width),
            hand: 0,
        }
    }

    fn get(&mut self, key: u128) -> Option<Stored> {
        let slot = *self.index.get(&halves(key))? as usize;
        self.flags[slot] |= SEEN;
        Some(Stored {
            output: self.outputs[slot],
            truncated: self.flags[slot] & TRUNCATED != 0,
            probs: self.probs[slot * self.width..(slot + 1) * self.width].to_vec(),
        })
    }

    fn put(&mut self, key: u128, answer: &Stored) {
        // Two workers may score the same text at once: the first answer stays.
        if self.index.contains_key(&halves(key)) {
            return;
        }
        let flags = if answer.truncated { TRUNCATED } else { 0 };
        let slot = match self.keys.len() < self.capacity {
            true => {
                self.keys.push(key);
                self.outputs.push(answer.output);
                self.flags.push(flags);
                self.probs.extend_from_slice(&answer.probs);
                self.keys.len() - 1
            }
            false => {
                let slot = self.victim();
                self.index.remove(&halves(self.keys[slot]));
                self.keys[slot] = key;
                self.outputs[slot] = answer.output;
                self.flags[slot] = flags;
                self.probs[slot * self.width..(slot + 1) * self.width].copy_from_slice(&answer.probs);
                slot
            }
        };
        self.index.insert(halves(key), slot as u32);
    }

    /// The first unmarked slot from the hand on, unmarking the marked ones it passes.
    fn victim(&mut self) -> usize {
        loop {
            let slot = self.hand;
            self.hand = (self.hand + 1) % self.capacity;
            if self.flags[slot] & SEEN == 0 {
                return slot;
            }
            self.flags[slot] &= !SEEN;
        }
    }
}

fn halves(key: u128) -> (u64, u64) {
    (key as u64, (key >> 64) as u64)
}

/// The keys are already uniform hashes: the index uses their low bits rather than hashing again.
#[derive(Clone, Copy, Default)]
struct KeyIsHash;

impl BuildHasher for KeyIsHash {
    type Hasher = LowBits;
    fn build_hasher(&self) -> LowBits {
        LowBits(0)
    }
}

struct LowBits(u64);

impl Hasher for LowBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
    fn write_u64(&mut self, half: u64) {
        self.0 ^= half;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(p: f32) -> Stored {
        Stored { output: 1, truncated: p > 0.5, probs: vec![p, 1.0 - p, 0.0] }
    }

    #[test]
    fn an_answer_comes_back_as_it_went_in() {
        let cache = Cache::new(4, 3).unwrap();
        let key = cache.key(&[Some("sentiment"), Some("es"), Some("hola"), None]);
        assert_eq!(cache.get(key), None);
        cache.put(key, &answer(0.7));
        assert_eq!(cache.get(key), Some(answer(0.7)));
    }

    #[test]
    fn the_key_is_what_the_model_reads_part_by_part() {
        let cache = Cache::new(4, 3).unwrap();
        let key = |parts: &[Option<&str>]| cache.key(parts);
        let base = key(&[Some("sentiment"), Some("es"), Some("ab"), None]);
        assert_eq!(base, key(&[Some("sentiment"), Some("es"), Some("ab"), None]));
        assert_ne!(base, key(&[Some("sentiment"), Some("es"), Some("a"), Some("b")]));
        assert_ne!(base, key(&[Some("sentiment"), Some("es"), Some("ab"), Some("")]));
        assert_ne!(base, key(&[Some("emotion"), Some("es"), Some("ab"), None]));
        assert_ne!(base, key(&[Some("sentiment"), Some("en"), Some("ab"), None]));
        assert_ne!(base, Cache::new(4, 3).unwrap().key(&[Some("sentiment"), Some("es"), Some("ab"), None]));
    }

    #[test]
    fn capacity_is_respected_and_a_text_seen_again_outlives_one_offs() {
        let cache = Cache::new(3, 3).unwrap();
        let keys: Vec<u128> = (0..6).map(|i| cache.key(&[Some(&i.to_string())])).collect();
        for &key in &keys[..3] {
            cache.put(key, &answer(0.1));
        }
        assert!(cache.get(keys[0]).is_some(), "key 0 seen again");
        cache.put(keys[3], &answer(0.2));
        assert_eq!(cache.entries(), 3);
        assert!(cache.get(keys[0]).is_some(), "the hand passed over key 0, which was seen");
        assert_eq!(cache.get(keys[1]), None, "the first one-off went");
        cache.put(keys[4], &answer(0.3));
        cache.put(keys[5], &answer(0.4));
        assert_eq!(cache.entries(), 3);
        let kept: Vec<bool> = keys.iter().map(|&k| cache.get(k).is_some()).collect();
        assert_eq!(kept, [true, false, false, false, true, true]);
    }

    #[test]
    fn evictions_never_grow_the_index() {
        let cache = Cache::new(1000, 3).unwrap();
        let buckets = || cache.clock.lock().unwrap().index.capacity();
        let before = buckets();
        for i in 0..20_000 {
            cache.put(cache.key(&[Some(&i.to_string())]), &answer(0.1));
        }
        // capacity() is entries + room left, and a removal's tombstone takes room until the next
        // in-place rehash: it may dip below `before`, only a reallocation would take it above.
        let after = buckets();
        assert_eq!(cache.entries(), 1000);
        assert!(after <= before, "the index grew from {before} to {after}");
    }

    #[test]
    fn the_first_answer_stays_and_a_cache_of_nothing_is_none() {
        let cache = Cache::new(2, 3).unwrap();
        let key = cache.key(&[Some("x")]);
        cache.put(key, &answer(0.1));
        cache.put(key, &answer(0.9));
        assert_eq!((cache.get(key), cache.entries()), (Some(answer(0.1)), 1));
        assert!(Cache::new(0, 3).is_none());
        assert!(Cache::new(10, MAX_LABELS + 1).is_none());
    }
}
