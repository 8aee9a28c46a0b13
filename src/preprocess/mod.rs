//! pysentimiento 0.7.3's `preprocess_tweet(text, lang, ...)`, byte for byte (with emoji 2.10.1).
//!
//! The models were trained on text passed through it, so it runs before tokenization. Its quirks are
//! kept on purpose: a lone `@` becomes the user token, handles stop after 15 characters, a URL at
//! the very start of the text is not replaced, `|...|` pairs typed by users are wrapped like emoji
//! names, laughter is matched case-sensitively. The steps run in pysentimiento's order.

mod emoji;
mod rules;
mod unicode;

use std::str::FromStr;

use regex::Regex;

use self::emoji::EmojiTable;
use self::unicode::WordClass;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En = 0,
    Es = 1,
    It = 2,
    Pt = 3,
}

impl FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "es" => Ok(Self::Es),
            "en" => Ok(Self::En),
            "it" => Ok(Self::It),
            "pt" => Ok(Self::Pt),
            _ => Err(format!("unsupported preprocessing language {s:?} (es, en, it, pt)")),
        }
    }
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es => "es",
            Self::En => "en",
            Self::It => "it",
            Self::Pt => "pt",
        }
    }

    /// pysentimiento's `default_args[lang]`: user, URL and hashtag tokens.
    fn default_tokens(self) -> [&'static str; 3] {
        match self {
            Self::Es => ["@usuario", "url", "hashtag"],
            Self::En | Self::Pt => ["@USER", "HTTPURL", "hashtag"],
            Self::It => ["##user", "##url", "##hashtag"],
        }
    }
}

/// `preprocess_tweet`'s keyword arguments, with its defaults.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// `None` or `""` take the language's default, as Python's `user_token or default` does.
    pub user_token: Option<String>,
    pub url_token: Option<String>,
    pub preprocess_hashtags: bool,
    pub hashtag_token: Option<String>,
    pub char_replace: bool,
    pub demoji: bool,
    /// Runs of this many or more equal characters are cut to this many; `None` or 0: off.
    pub shorten: Option<usize>,
    pub normalize_laughter: bool,
    pub emoji_wrapper: String,
    pub preprocess_handles: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            user_token: None,
            url_token: None,
            preprocess_hashtags: true,
            hashtag_token: None,
            char_replace: true,
            demoji: true,
            shorten: Some(3),
            normalize_laughter: true,
            emoji_wrapper: "emoji".into(),
            preprocess_handles: true,
        }
    }
}

/// Compiled once per process (the registry shares one among its models): regexes, the emoji tree,
/// Python's `\w`.
pub struct Preprocessor {
    word: WordClass,
    emoji: EmojiTable,
    url_rest: Regex,
    laughter: [Regex; 4],
}

impl Default for Preprocessor {
    fn default() -> Self {
        Self::new()
    }
}

impl Preprocessor {
    pub fn new() -> Self {
        let word = WordClass::load();
        let url_rest = Regex::new(&rules::url_rest_pattern(&word.regex_class())).expect("URL pattern");
        let laughter = [Lang::En, Lang::Es, Lang::It, Lang::Pt]
            .map(|lang| Regex::new(rules::laughter(lang).0).expect("laughter pattern"));
        Self { word, emoji: EmojiTable::load(), url_rest, laughter }
    }

    pub fn preprocess(&self, text: &str, lang: Lang, options: &Options) -> String {
        let [user, url, hashtag] = lang.default_tokens();
        let pick = |token: &Option<String>, default: &'static str| match token.as_deref() {
            None | Some("") => default.to_string(),
            Some(t) => t.to_string(),
        };
        let mut text = text.to_string();
        if options.preprocess_hashtags {
            text = rules::hashtags(&text, &pick(&options.hashtag_token, hashtag), &self.word);
        }
        if options.char_replace {
            text = rules::replace_chars(&text);
        }
        if options.preprocess_handles {
            text = rules::handles(&text, &pick(&options.user_token, user));
        }
        text = rules::urls(&text, &pick(&options.url_token, url), &self.word, &self.url_rest);
        if let Some(n) = options.shorten.filter(|&n| n > 0) {
            text = rules::shorten(&text, n);
        }
        if options.demoji {
            text = self.emoji.demojize(&text, lang);
            text = rules::wrap_emoji_names(&text, &options.emoji_wrapper);
        }
        if options.normalize_laughter {
            let replacement = rules::laughter(lang).1;
            text = self.laughter[lang as usize].replace_all(&text, regex::NoExpand(replacement)).into_owned();
        }
        text.trim_matches(unicode::is_space).to_string()
    }
}
