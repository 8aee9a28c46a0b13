//! `emoji.demojize(text, language=lang, delimiters=("|", "|"))` of emoji 2.10.1, ported step for
//! step from its tokenizer (including how it splits non-RGI ZWJ sequences and drops stray
//! variation selectors), over the package's own data (data/emoji-2.10.1.tsv).

use std::collections::{HashMap, HashSet};

use super::Lang;

const DATA: &str = include_str!("data/emoji-2.10.1.tsv");
const ZWJ: char = '\u{200D}';

struct Entry {
    component: bool,
    /// Names without colons, by `Lang` index; empty when the package has no translation.
    names: [&'static str; 4],
}

/// Every prefix of every emoji, as the package's search tree holds them.
pub struct EmojiTable {
    prefixes: HashMap<&'static str, Option<Entry>>,
    /// The tree's roots, so most characters are ruled out without building a key.
    first_chars: HashSet<char>,
}

#[derive(Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    /// Matched by the tree walk; an unmatched char stays as it is even if it is an emoji itself.
    matched: bool,
}

impl EmojiTable {
    pub fn load() -> Self {
        let mut prefixes = HashMap::new();
        // The first line is a header; emoji rows may start with "#" (keycaps).
        for line in DATA.lines().skip(1) {
            let fields: Vec<&'static str> = line.split('\t').collect();
            let [emoji, component, en, es, it, pt] = fields[..] else { panic!("bad emoji row {line:?}") };
            for (i, _) in emoji.char_indices().skip(1) {
                prefixes.entry(&emoji[..i]).or_insert(None);
            }
            let entry = Entry { component: component == "1", names: [en, es, it, pt] };
            prefixes.insert(emoji, Some(entry));
        }
        let first_chars = prefixes.keys().filter_map(|k| k.chars().next()).collect();
        Self { prefixes, first_chars }
    }

    fn in_tree(&self, key: &str) -> bool {
        self.prefixes.contains_key(key)
    }

    /// The end of the deepest tree path from `i` (stopping at ignored positions), if it is an emoji.
    fn walk(&self, chars: &[char], i: usize, ignored: &[bool]) -> Option<usize> {
        let mut key = String::from(chars[i]);
        let mut j = i + 1;
        while j < chars.len() && !ignored[j] {
            key.push(chars[j]);
            if !self.in_tree(&key) {
                key.pop();
                break;
            }
            j += 1;
        }
        self.entry(&key).is_some().then_some(j)
    }

    fn entry(&self, key: &str) -> Option<&Entry> {
        self.prefixes.get(key).and_then(Option::as_ref)
    }

    pub fn demojize(&self, text: &str, lang: Lang) -> String {
        let untouched =
            |c: char| !self.first_chars.contains(&c) && !matches!(c, ZWJ | '\u{FE0E}' | '\u{FE0F}');
        // Most texts hold no emoji: skip the tokenizer (ASCII letters are never in the tree).
        if text.chars().all(|c| c.is_ascii_alphabetic() || c == ' ' || untouched(c)) {
            return text.to_string();
        }
        let chars: Vec<char> = text.chars().collect();
        let key = |start: usize, end: usize| -> String { chars[start..end].iter().collect() };
        let mut tokens: Vec<Token> = Vec::new();
        // The package keeps a list of ignored positions and searches it at every step, which is
        // quadratic in long ZWJ chains; a flag per position gives the same answers in linear time.
        let mut ignored = vec![false; chars.len()];
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if ignored[i] {
                i += 1;
                if c == ZWJ {
                    tokens.push(Token { start: i - 1, end: i, matched: false });
                }
                continue;
            }
            if self.first_chars.contains(&c) {
                if let Some(j) = self.walk(&chars, i, &ignored) {
                    tokens.push(Token { start: i, end: j, matched: true });
                    i = j;
                    continue;
                }
            } else if c == ZWJ && self.follows_emoji(&tokens, &chars, i) {
                // A ZWJ joining emoji into a sequence that is not RGI: go back and read the parts.
                ignored[i] = true;
                let last = *tokens.last().expect("checked by follows_emoji");
                let last_is_component = self.entry(&key(last.start, last.end)).is_some_and(|e| e.component);
                if last_is_component {
                    let from = tokens.len().saturating_sub(2);
                    i -= tokens[from..].iter().map(|t| t.end - t.start).sum::<usize>();
                    if chars[i] == ZWJ {
                        i += 1;
                        tokens.pop();
                    } else {
                        tokens.truncate(from);
                    }
                } else {
                    i -= last.end - last.start;
                    tokens.pop();
                }
                continue;
            }
            // Unmatched variation selectors are dropped, as the package does.
            if c != '\u{FE0E}' && c != '\u{FE0F}' {
                tokens.push(Token { start: i, end: i + 1, matched: false });
            }
            i += 1;
        }
        self.render(&chars, &tokens, lang)
    }

    fn follows_emoji(&self, tokens: &[Token], chars: &[char], i: usize) -> bool {
        let Some(last) = tokens.last() else {
            return false;
        };
        let last_text: String = chars[last.start..last.end].iter().collect();
        self.entry(&last_text).is_some() && i > 0 && self.first_chars.contains(&chars[i - 1])
    }

    fn render(&self, chars: &[char], tokens: &[Token], lang: Lang) -> String {
        let mut out = String::with_capacity(chars.len());
        for t in tokens {
            let text = &chars[t.start..t.end];
            let name = match t.matched {
                true => self.entry(&text.iter().collect::<String>()).map(|e| e.names[lang as usize]),
                false => None,
            };
            // Untranslated emoji stay as they are, like unmatched chars.
            match name.filter(|n| !n.is_empty()) {
                Some(name) => {
                    out.push('|');
                    out.push_str(name);
                    out.push('|');
                }
                None => out.extend(text),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Fastest of three runs of demojize on `units` repetitions of man + ZWJ (not an RGI sequence).
    fn time_chain(table: &EmojiTable, units: usize) -> Duration {
        let text = "\u{1F468}\u{200D}".repeat(units);
        let runs = (0..3).map(|_| {
            let started = Instant::now();
            std::hint::black_box(table.demojize(&text, Lang::Es));
            started.elapsed()
        });
        runs.min().unwrap()
    }

    #[test]
    fn long_zwj_chains_cost_linear_time() {
        // 8x the input: linear work is ~8x the time, the package's quadratic search ~64x.
        let table = EmojiTable::load();
        let (short, long) = (time_chain(&table, 2_000), time_chain(&table, 16_000));
        let ratio = long.as_secs_f64() / short.as_secs_f64().max(1e-6);
        assert!(ratio < 24.0, "8x the chain took {ratio:.1}x the time ({short:?} -> {long:?})");
    }

    #[test]
    fn a_zwj_chain_is_read_as_its_parts() {
        let table = EmojiTable::load();
        let out = table.demojize("\u{1F468}\u{200D}\u{1F468}\u{200D}x", Lang::Es);
        assert_eq!(out, "|hombre|\u{200D}|hombre|\u{200D}x");
    }
}
