//! The rewriting rules of `preprocess_tweet`, each matching its Python regex's semantics exactly.

use regex::Regex;

use super::unicode::{is_space, WordClass};
use super::Lang;

/// `hashtag_regex = \B#(\w*[a-zA-Z]+\w*)` with `process_hashtags`: the whole run of word characters
/// after `#`, if it holds an ASCII letter, becomes `"<token> " + camel_to_human(run)`.
pub fn hashtags(text: &str, token: &str, word: &WordClass) -> String {
    if !text.contains('#') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        // \B before '#' (a non-word char): the previous char is not a word char, or there is none.
        let at_non_boundary = i == 0 || !word.is_word(chars[i - 1]);
        if chars[i] == '#' && at_non_boundary {
            let run_end = (i + 1..chars.len()).find(|&j| !word.is_word(chars[j])).unwrap_or(chars.len());
            let run: String = chars[i + 1..run_end].iter().collect();
            if run.chars().any(|c| c.is_ascii_alphabetic()) {
                out.push_str(token);
                out.push(' ');
                out.push_str(&camel_to_human(&run));
                i = run_end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `camel_to_human`: a space before each run of ASCII capitals, strip, lower-case.
fn camel_to_human(s: &str) -> String {
    let mut spaced = String::with_capacity(s.len() + 8);
    let mut prev_upper = false;
    for c in s.chars() {
        let upper = c.is_ascii_uppercase();
        if upper && !prev_upper {
            spaced.push(' ');
        }
        spaced.push(c);
        prev_upper = upper;
    }
    spaced.trim_matches(is_space).to_lowercase()
}

/// pysentimiento's `replacements` table: `None` removes the character.
pub fn replace_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '~' | '£' | '¥' | '©' | '°' | '´' | '¶' | '·' | 'º' | '×' | 'ا' | '–' | '—' | '‘' | '’' | '•'
            | '…' | '™' | '●' | '☠' | '☹' | '☺' | '♀' | '♂' | '⚰' | '⛱' | '⛹' | '✈' | '✓' | '❤' | 'ー'
            | '🕯' | '🛰' => {}
            '¨' | '«' | '»' | '“' | '”' => out.push('"'),
            '‼' => out.push('!'),
            '€' => out.push('$'),
            '☻' => out.push('😃'),
            '♡' | '♥' => out.push_str("❤\u{FE0F}"),
            _ => out.push(c),
        }
    }
    out
}

/// `user_regex = @[a-zA-Z0-9_]{0,15}`: every `@` and up to 15 handle characters after it.
pub fn handles(text: &str, token: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        out.push_str(token);
        let after = &rest[at + 1..];
        let n = after.bytes().take(15).take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

const TLDS: &str = "com|co|org|edu|gov|uk|net|ca|de|jp|fr|au|us|ru|ch|it|nl|se|no|es|mil|iq|io|ac|ly|sm";

/// The part of `url_regex` after its lookbehind and first alternation, anchored:
/// `(?:\w{1,}\.{1}){1,5}(?:TLDS){1}(?:\/[a-zA-Z0-9]{1,})*`, with Python's `\w`.
pub fn url_rest_pattern(word_class: &str) -> String {
    format!(r"\A(?:{word_class}+\.){{1,5}}(?:{TLDS})(?:/[a-zA-Z0-9]+)*")
}

/// `url_regex`: `(?<=[^a-zA-Z0-9])(?:https?\:\/\/|[a-zA-Z0-9]{1,}\.{1}|\b)` then the rest.
/// The three openings are tried in order at each position, as the backtracking engine does; the
/// regex crate's leftmost-first match of the rest is the one Python's engine finds.
pub fn urls(text: &str, token: &str, word: &WordClass, rest: &Regex) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((p, c)) = iter.next() {
        let allowed = p >= copied && prev.is_some_and(|b| !b.is_ascii_alphanumeric()) && word.is_word(c);
        let end = if allowed { url_match_end(text, p, prev, word, rest) } else { None };
        if let Some(end) = end {
            out.push_str(&text[copied..p]);
            out.push_str(token);
            copied = end;
        }
        prev = Some(c);
        while end.is_some_and(|e| iter.peek().is_some_and(|&(q, _)| q < e)) {
            prev = iter.next().map(|(_, c)| c);
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn url_match_end(text: &str, p: usize, prev: Option<char>, word: &WordClass, rest: &Regex) -> Option<usize> {
    let at = &text[p..];
    let scheme = ["https://", "http://"].into_iter().find(|s| at.starts_with(s)).map(str::len);
    let alnum_dot = {
        let n = at.bytes().take_while(u8::is_ascii_alphanumeric).count();
        (n > 0 && at.as_bytes().get(n) == Some(&b'.')).then_some(n + 1)
    };
    let boundary = {
        let next_is_word = at.chars().next().is_some_and(|c| word.is_word(c));
        (prev.is_some_and(|b| word.is_word(b)) != next_is_word).then_some(0)
    };
    [scheme, alnum_dot, boundary]
        .into_iter()
        .flatten()
        .find_map(|skip| rest.find(&at[skip..]).map(|m| p + skip + m.end()))
}

/// `(.)\1{n-1}+` -> `\1 * n`: runs of n or more equal characters (newline excepted) cut to n.
/// For n = 1 the Python pattern is `(.)+`, which turns each line's text into its last character.
pub fn shorten(text: &str, n: usize) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            out.push(c);
            continue;
        }
        if n == 1 {
            let mut last = c;
            while let Some(next) = chars.next_if(|&x| x != '\n') {
                last = next;
            }
            out.push(last);
            continue;
        }
        let mut run = 1;
        while chars.next_if_eq(&c).is_some() {
            run += 1;
        }
        out.extend(std::iter::repeat_n(c, run.min(n)));
    }
    out
}

/// `emoji_regex = \|([^\|]+)\|` with `convert_emoji_to_text`: `" <wrapper> " + name with "_" as " "`.
pub fn wrap_emoji_names(text: &str, wrapper: &str) -> String {
    let wrap = format!(" {wrapper} ").replace("  ", " ");
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while let Some(open) = rest.find('|') {
        let after = &rest[open + 1..];
        match after.find('|') {
            Some(close) if close > 0 => {
                out.push_str(&rest[..open]);
                out.push_str(&wrap);
                out.push_str(&after[..close].replace('_', " "));
                out.push_str(&wrap);
                rest = &after[close + 1..];
            }
            // "||": no match at the first bar; the second may open one.
            Some(_) => {
                out.push_str(&rest[..open + 1]);
                rest = after;
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// `laughter_conf[lang]`: (pattern, replacement). Case-sensitive, as in pysentimiento.
pub fn laughter(lang: Lang) -> (&'static str, &'static str) {
    match lang {
        Lang::Es => ("[ja][ja]+aj[ja]+", "jaja"),
        Lang::En | Lang::It => ("[ha][ha]+ah[ha]+", "haha"),
        Lang::Pt => ("[ha][ha]+ah[ha]+|kk+", "kk"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_cuts_runs_but_not_newlines() {
        assert_eq!(shorten("holaaaaa!!!!", 3), "holaaa!!!");
        assert_eq!(shorten("aa\n\n\n\nbb", 2), "aa\n\n\n\nbb");
        assert_eq!(shorten("abc\nde", 1), "c\ne");
    }

    #[test]
    fn handles_take_at_most_15_chars() {
        assert_eq!(handles("@abcdefghijklmnopq x", "@u"), "@upq x");
        assert_eq!(handles("a @ b", "@u"), "a @u b");
    }

    #[test]
    fn emoji_names_and_user_pipes() {
        assert_eq!(wrap_emoji_names("a |cara_feliz| b", "emoji"), "a  emoji cara feliz emoji  b");
        // The second bar of "||" opens "| x |"; checked against Python.
        assert_eq!(wrap_emoji_names("|| x |y|", ""), "|  x  y|");
    }
}
