//! Words as spaCy's rule-based tokenizer splits a text (Spanish, English): pysentimiento's NER and
//! POS analyzers label these words, so offsets and entities depend on splitting them the same way.
//!
//! The algorithm follows spaCy 3.8's `Tokenizer.__call__`: split on whitespace (a single space is
//! dropped, any other whitespace becomes a word), peel prefixes and suffixes off each piece, split
//! what is left on infixes, honour special cases (tokenizer exceptions) whole and, afterwards,
//! across words. The rules are spaCy's own, as data (src/words/data, scripts/gen_word_rules.py);
//! the golden test below holds it to spaCy's own result on thousands of texts.

use std::collections::HashMap;

use fancy_regex::Regex;
use serde::Deserialize;

use crate::preprocess::Lang;

/// How many characters at the start (end) of a piece the prefix (suffix) search reads first; the
/// same constant as scripts/gen_word_rules.py's, which checks that the rules allow it.
const AFFIX_WINDOW: usize = 16;

/// One word: its text, where it starts (in code points, as spaCy's `Token.idx`) and whether a
/// space follows it (`Token.whitespace_`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    pub space: bool,
}

#[derive(Deserialize)]
struct Rules {
    prefix: String,
    suffix: String,
    infix: String,
    url: String,
    specials: Vec<(String, Vec<String>)>,
    matched: Vec<(String, Vec<String>)>,
}

pub struct WordSplitter {
    prefix: Regex,
    suffix: Regex,
    infix: Regex,
    url: Regex,
    /// Special case -> the words it is split into.
    specials: HashMap<String, Vec<String>>,
    /// The word sequences of the special cases looked for across words, by their first word.
    matched: HashMap<String, Vec<Vec<String>>>,
}

impl WordSplitter {
    /// spaCy's rules for `lang`; pysentimiento builds word splitters for Spanish and English only.
    pub fn new(lang: Lang) -> Result<Self, String> {
        let data = match lang {
            Lang::Es => include_str!("words/data/es.json"),
            Lang::En => include_str!("words/data/en.json"),
            other => return Err(format!("token tasks split words for es and en only, not {other:?}")),
        };
        let rules: Rules = serde_json::from_str(data).map_err(|e| format!("word rules: {e}"))?;
        let compile = |name: &str, pattern: &str| {
            Regex::new(pattern).map_err(|e| format!("word rules: the {name} pattern does not compile: {e}"))
        };
        let mut matched: HashMap<String, Vec<Vec<String>>> = HashMap::new();
        for (_case, words) in rules.matched {
            if let Some(first) = words.first() {
                matched.entry(first.clone()).or_default().push(words);
            }
        }
        Ok(Self {
            prefix: compile("prefix", &rules.prefix)?,
            suffix: compile("suffix", &rules.suffix)?,
            infix: compile("infix", &rules.infix)?,
            url: compile("url", &rules.url)?,
            specials: rules.specials.into_iter().collect(),
            matched,
        })
    }

    pub fn split(&self, text: &str) -> Vec<Word> {
        let mut pieces: Vec<(String, bool)> = Vec::new();
        let Some(first) = text.chars().next() else {
            return Vec::new();
        };
        let mut in_space = is_space(first);
        let mut start = 0;
        for (i, c) in text.char_indices() {
            if is_space(c) == in_space {
                continue;
            }
            if start < i {
                self.split_piece(&text[start..i], &mut pieces);
            }
            // A single space only marks the word before it; other whitespace is a word.
            if c == ' ' {
                if let Some(last) = pieces.last_mut() {
                    last.1 = true;
                }
                start = i + 1;
            } else {
                start = i;
            }
            in_space = !in_space;
        }
        if start < text.len() {
            self.split_piece(&text[start..], &mut pieces);
        }
        let pieces = self.apply_matched(pieces);
        let mut start = 0;
        pieces
            .into_iter()
            .map(|(text, space)| {
                let word = Word { start, space, text };
                start += word.text.chars().count() + usize::from(space);
                word
            })
            .collect()
    }

    fn special(&self, text: &str) -> Option<&Vec<String>> {
        self.specials.get(text)
    }

    /// One run of non-space (or of space) characters.
    fn split_piece(&self, piece: &str, out: &mut Vec<(String, bool)>) {
        let mut push = |word: &str| out.push((word.to_string(), false));
        if let Some(words) = self.special(piece) {
            return words.iter().for_each(|w| push(w));
        }
        let (prefixes, middle, suffixes) = self.split_affixes(piece);
        prefixes.iter().for_each(|w| push(w));
        if !middle.is_empty() {
            if let Some(words) = self.special(middle) {
                words.iter().for_each(|w| push(w));
            } else if self.url.is_match(middle).unwrap_or(false) {
                push(middle);
            } else {
                self.split_infixes(middle, &mut push);
            }
        }
        suffixes.iter().rev().for_each(|w| push(w));
    }

    /// Peels prefixes and suffixes until neither is left or a special case remains.
    fn split_affixes<'a>(&self, mut s: &'a str) -> (Vec<&'a str>, &'a str, Vec<&'a str>) {
        let (mut prefixes, mut suffixes) = (Vec::new(), Vec::new());
        let mut last_len = 0;
        while !s.is_empty() && s.len() != last_len {
            if self.special(s).is_some() {
                break;
            }
            last_len = s.len();
            let pre = self.prefix_len(s);
            if pre != 0 && pre < s.len() && self.special(&s[pre..]).is_some() {
                prefixes.push(&s[..pre]);
                s = &s[pre..];
                break;
            }
            let suf = self.suffix_len(&s[pre..]).map_or(0, |chars| s.len() - start_of_last(s, chars));
            if suf != 0 && suf < s.len() && self.special(&s[..s.len() - suf]).is_some() {
                suffixes.push(&s[s.len() - suf..]);
                s = &s[..s.len() - suf];
                break;
            }
            if pre != 0 && suf != 0 && pre + suf <= s.len() {
                prefixes.push(&s[..pre]);
                suffixes.push(&s[s.len() - suf..]);
                s = &s[pre..s.len() - suf];
            } else if pre != 0 {
                prefixes.push(&s[..pre]);
                s = &s[pre..];
            } else if suf != 0 {
                suffixes.push(&s[s.len() - suf..]);
                s = &s[..s.len() - suf];
            }
        }
        (prefixes, s, suffixes)
    }

    /// Length in bytes of the prefix at the start of `s` (0: none).
    ///
    /// spaCy searches the whole piece on every turn of the affix loop, which makes a long piece of
    /// punctuation quadratic (10,000 characters of `()`: 8 s in spaCy). Every affix rule but a run
    /// of dots is at most a few characters long, and no prefix rule looks ahead for more than what
    /// follows it (scripts/gen_word_rules.py checks both), so the first AFFIX_WINDOW characters
    /// decide, unless the match reaches their end: a longer run, or a look-ahead that needed the
    /// next character; then the whole piece is searched. Same answer, constant time per turn.
    fn prefix_len(&self, s: &str) -> usize {
        let end = s.char_indices().nth(AFFIX_WINDOW).map_or(s.len(), |(i, _)| i);
        let search = |text: &str| match self.prefix.find(text) {
            Ok(Some(m)) => m.end() - m.start(),
            _ => 0,
        };
        match search(&s[..end]) {
            len if len == end && end < s.len() => search(s),
            len => len,
        }
    }

    /// Length in code points of the leftmost suffix match (spaCy then cuts that many characters
    /// off the end, which is the match itself but for Python's `$` before a final newline).
    ///
    /// As for prefixes, the search starts AFFIX_WINDOW characters from the end (look-behinds still
    /// see what is before); only a match at the window's first character could be the tail of a
    /// longer run of dots, and then the whole piece is searched.
    fn suffix_len(&self, s: &str) -> Option<usize> {
        let from = s.char_indices().rev().nth(AFFIX_WINDOW - 1).map_or(0, |(i, _)| i);
        let search = |pos| self.suffix.find_from_pos(s, pos).ok().flatten();
        let found = match search(from) {
            Some(m) if m.start() == from && from > 0 => search(0),
            found => found,
        };
        found.filter(|m| m.end() > m.start()).map(|m| m.as_str().chars().count())
    }

    /// Splits on every infix match, the infix a word of its own; an infix at the very start is
    /// not split off (spaCy skips it).
    fn split_infixes(&self, s: &str, push: &mut impl FnMut(&str)) {
        let mut start = 0;
        for m in self.infix.find_iter(s).filter_map(Result::ok) {
            if m.start() == 0 {
                continue;
            }
            if m.start() != start {
                push(&s[start..m.start()]);
            }
            if m.start() != m.end() {
                push(m.as_str());
            }
            start = m.end();
        }
        if start < s.len() {
            push(&s[start..]);
        }
    }

    /// Special cases that affix splitting cut into several words are put back together, as
    /// spaCy does once a text is split: each matched span becomes the case's own words when its
    /// text (spaces between its words included) is the case.
    fn apply_matched(&self, words: Vec<(String, bool)>) -> Vec<(String, bool)> {
        let spans = self.matched_spans(&words);
        if spans.is_empty() {
            return words;
        }
        let mut out = Vec::with_capacity(words.len());
        let mut done = 0;
        for (start, end) in spans {
            out.extend_from_slice(&words[done..start]);
            out.extend(self.rejoined(&words[start..end]));
            done = end;
        }
        out.extend_from_slice(&words[done..]);
        out
    }

    /// Every occurrence of a special case's words, then spaCy's filter: longest first, then
    /// leftmost; a span whose first or last word an earlier one took is dropped (which leaves
    /// no overlaps). In order of position.
    fn matched_spans(&self, words: &[(String, bool)]) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = Vec::new();
        for (i, (word, _)) in words.iter().enumerate() {
            for pattern in self.matched.get(word).into_iter().flatten() {
                let end = i + pattern.len();
                if end <= words.len() && words[i..end].iter().zip(pattern).all(|((w, _), p)| w == p) {
                    found.push((i, end));
                }
            }
        }
        found.sort_by_key(|&(start, end)| (std::cmp::Reverse(end - start), start));
        let mut taken = vec![false; words.len()];
        let mut kept = Vec::new();
        for (start, end) in found {
            if !taken[start] && !taken[end - 1] {
                kept.push((start, end));
            }
            taken[start..end].iter_mut().for_each(|t| *t = true);
        }
        kept.sort();
        kept
    }

    fn rejoined(&self, span: &[(String, bool)]) -> Vec<(String, bool)> {
        let last = span.len() - 1;
        let spaced = |(k, (word, space)): (usize, &(String, bool))| match *space && k < last {
            true => format!("{word} "),
            false => word.clone(),
        };
        let text: String = span.iter().enumerate().map(spaced).collect();
        let Some(case) = self.special(&text) else {
            return span.to_vec();
        };
        let mut words: Vec<(String, bool)> = case.iter().map(|w| (w.clone(), false)).collect();
        if let Some(final_word) = words.last_mut() {
            final_word.1 = span[last].1;
        }
        words
    }
}

/// Byte offset where the last `chars` characters of `s` begin.
fn start_of_last(s: &str, chars: usize) -> usize {
    s.char_indices().rev().nth(chars - 1).map_or(0, |(i, _)| i)
}

/// Python's `str.isspace`, which spaCy splits on: Unicode White_Space plus the information
/// separators U+001C..U+001F.
pub fn is_space(c: char) -> bool {
    matches!(c, '\u{1c}'..='\u{1f}') || c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn words(lang: Lang, text: &str) -> Vec<String> {
        WordSplitter::new(lang).unwrap().split(text).into_iter().map(|w| w.text).collect()
    }

    #[test]
    fn splits_punctuation_and_keeps_special_cases() {
        assert_eq!(words(Lang::Es, "¡Hola, mundo!"), ["¡", "Hola", ",", "mundo", "!"]);
        assert_eq!(words(Lang::En, "I can't go."), ["I", "ca", "n't", "go", "."]);
        assert_eq!(words(Lang::Es, "vivo en EE.UU. y"), ["vivo", "en", "EE.UU.", "y"]);
    }

    #[test]
    fn whitespace_runs_are_words_and_offsets_are_code_points() {
        let split = WordSplitter::new(Lang::Es).unwrap().split("añó  b\nc");
        let got: Vec<(&str, usize, bool)> =
            split.iter().map(|w| (w.text.as_str(), w.start, w.space)).collect();
        assert_eq!(
            got,
            [("añó", 0, true), (" ", 4, false), ("b", 5, false), ("\n", 6, false), ("c", 7, false)]
        );
    }

    #[test]
    fn urls_stay_whole_and_empty_text_has_no_words() {
        assert_eq!(words(Lang::Es, "mira https://t.co/abc?x=1 ya"), ["mira", "https://t.co/abc?x=1", "ya"]);
        assert!(words(Lang::Es, "").is_empty());
    }

    /// tests/golden/words.jsonl: spaCy's words and spaces for ~14,000 texts (`make golden-words`).
    #[test]
    fn matches_spacy_on_the_golden_texts() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/words.jsonl");
        let golden = std::fs::read_to_string(path).unwrap();
        let splitters = [Lang::Es, Lang::En].map(|lang| WordSplitter::new(lang).unwrap());
        let (mut checked, mut failures) = (0, Vec::new());
        for line in golden.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let splitter = &splitters[usize::from(row["lang"] == "en")];
            let text = row["text"].as_str().unwrap();
            let split = splitter.split(text);
            let words: Vec<&str> = split.iter().map(|w| w.text.as_str()).collect();
            let spaces: String = split.iter().map(|w| if w.space { '1' } else { '0' }).collect();
            checked += 1;
            if words
                != row["words"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect::<Vec<_>>()
                || spaces != row["spaces"].as_str().unwrap()
            {
                failures.push(format!(
                    "[{}] {text:?}\n  spaCy {} {}\n  port  {words:?} {spaces}",
                    row["lang"], row["words"], row["spaces"]
                ));
            }
        }
        let shown = failures.iter().take(20).cloned().collect::<Vec<_>>().join("\n");
        assert!(failures.is_empty(), "{} of {checked} differ:\n{shown}", failures.len());
        assert!(checked > 10_000, "only {checked} golden texts");
    }
}
