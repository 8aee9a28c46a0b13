//! Any text, any language, any switches: preprocessing never panics, and its output has no
//! leading or trailing whitespace (pysentimiento strips it last).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sentimiento::preprocess::{Lang, Options, Preprocessor};

static PREPROCESSOR: OnceLock<Preprocessor> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let lang = [Lang::Es, Lang::En, Lang::It, Lang::Pt][(flags & 3) as usize];
    let options = Options {
        preprocess_hashtags: flags & 4 == 0,
        char_replace: flags & 8 == 0,
        demoji: flags & 16 == 0,
        normalize_laughter: flags & 32 == 0,
        shorten: [Some(3), Some(1), Some(2), None][(flags >> 6) as usize],
        ..Options::default()
    };
    let out = PREPROCESSOR.get_or_init(Preprocessor::new).preprocess(text, lang, &options);
    let stripped = out.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c));
    assert_eq!(out, stripped);
});
