"""Writes tests/golden/words.jsonl: how spaCy 3.8.18's blank Spanish and English tokenizers (the
word splitters of pysentimiento 0.7.3's NER and POS analyzers) split thousands of texts. The Rust
port (src/words.rs) must give the same words and spaces on every line (tests/words_golden.rs).

Texts, per language: the golden preprocessing corpus as pysentimiento's token analyzers
preprocess it (handles kept) and half of it as written; every special case alone and inside punctuation; every
Unicode space between words; pieces longer than the port's affix window; and seeded random strings built from the characters and pieces the
rules react to (quotes, brackets, dots, units, currencies, emoticons, URLs, hyphens, digits).

    python tests/golden/make_words_golden.py     (the torch venv, with spacy==3.8.18: make golden-words)
"""
import json
import pathlib
import random

from pysentimiento.preprocessing import preprocess_tweet
from spacy.lang.en import English
from spacy.lang.es import Spanish

HERE = pathlib.Path(__file__).resolve().parent
SPACES = ["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680",
          "\u2000", "\u2005", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "  ", " \n ", "\u200b"]
PIECES = ["a", "b", "Z", "ñ", "é", "1", "2", "0", ".", ",", ";", ":", "!", "?", "¿", "¡", "(", ")", "[", "]",
          "{", "}", "'", '"', "«", "»", "“", "”", "’", "-", "–", "—", "/", "\\", "+", "*", "^", "=", "<", ">",
          "%", "$", "€", "£", "°", "km", "kg", "C", "F", "…", "...", "#", "@", "&", "_", "~", " ", " ", " ",
          ":)", ":-(", "<3", "xD", ":p", "😂", "❤️", "https://", "www.", ".com", ".es", "t.co/x", "?q=1",
          "EE.UU.", "etc.", "Sr.", "Dr.", "a.C.", "n't", "'s", "'ll", "U.S.", "co-op", "e-mail", "2x3",
          "10km", "5$", "$5", "3.14", "1,000", "hola", "mundo", "Hola", "MUNDO", "usuario", "@usuario"]


def long_affixes():
    """Pieces longer than the port's 16-character affix window: runs of dots that end or start
    past it, a look-ahead rule (`+` not before a digit) at its edge, brackets around words."""
    out = []
    for n in (14, 15, 16, 17, 18, 30):
        out += ["a" + "." * n, "." * n + "a", "(" * n + "+5", "(" * n + "+a", "(" * (n - 1) + "+" + "5" * 3,
                "hola" + "…" * n, "(" * n + "hola" + ")" * n, "¿" * n + "qué" + "?" * n + "." * n,
                "x" + ".)" * n, "'" * n + "s" + "'" * n, "km" * n + "5km", "5" + "." * n + "km"]
    return out


def corpus():
    rows = [json.loads(line) for line in (HERE / "preprocess.jsonl").open()]
    return [r["text"] for r in rows if not r["args"]]


def texts(lang, specials, rng):
    raw = corpus()
    out = [preprocess_tweet(t, lang=lang, preprocess_handles=False) for t in raw]
    out += raw[::2]
    for case in specials:
        out += [case, f"({case}).", f"¿{case}?", f"dice {case}, y"]
    out += [f"hola{s}mundo{s}" for s in SPACES] + [f"{s}a. b{s}" for s in SPACES] + long_affixes()
    for _ in range(1500):
        out.append("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 14))))
    seen, unique = set(), []
    for text in out:
        if text not in seen:
            seen.add(text)
            unique.append(text)
    return unique


def main():
    rng = random.Random(20261128)
    with (HERE / "words.jsonl").open("w") as f:
        for lang, nlp in (("es", Spanish()), ("en", English())):
            specials = sorted(nlp.tokenizer.rules)
            rows = texts(lang, specials, rng)
            for text in rows:
                doc = nlp.tokenizer(text)
                words = [t.text for t in doc]
                spaces = "".join("1" if t.whitespace_ else "0" for t in doc)
                assert [t.idx for t in doc] == starts(words, spaces), text
                f.write(json.dumps({"lang": lang, "text": text, "words": words, "spaces": spaces},
                                   ensure_ascii=False) + "\n")
            print(f"{lang}: {len(rows)} texts")


def starts(words, spaces):
    """Token.idx as the port computes it: each word's length plus its space, summed."""
    out, at = [], 0
    for word, space in zip(words, spaces):
        out.append(at)
        at += len(word) + (space == "1")
    return out


if __name__ == "__main__":
    main()
