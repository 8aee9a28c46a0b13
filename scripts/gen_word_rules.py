"""Writes src/words/data/{es,en}.json: the rules of spaCy's rule-based tokenizer, which
pysentimiento 0.7.3's NER and POS analyzers use to split a text into words, as data the Rust
port (src/words.rs) compiles.

Per language (spacy.lang.es.Spanish / spacy.lang.en.English, the blank pipelines pysentimiento
builds):
- `prefix`, `suffix`, `infix`, `url`: the tokenizer's compiled Python patterns, rewritten from
  Python's own parse of them (re._parser) into the syntax of Rust's fancy-regex. Every literal
  becomes \\x{..}; `\\d`, `\\w`, `\\s` and their negations become the explicit code point ranges
  Python matches with them (Rust's Unicode classes differ at the edges); `$` becomes what it
  means in Python, end of text or before a final newline.
- `specials`: every special case (tokenizer exception), with the words it splits into.
- `matched`: the special cases spaCy also looks for across tokens (those containing an affix,
  an infix or a space), each with the words affix splitting alone makes of it.

spaCy is MIT licensed (Copyright (C) 2016-2024 ExplosionAI GmbH, 2016 spaCy GmbH, 2015 Matthew
Honnibal). Run with spacy==3.8.18 on Python 3.11 (`make word-rules`).
"""
import json
import pathlib
import re
import sys
from re import _constants as C
from re import _parser as sre_parse

import spacy
from spacy.attrs import ORTH
from spacy.lang.en import English
from spacy.lang.es import Spanish
from spacy.tokenizer import Tokenizer

OUT = pathlib.Path(__file__).resolve().parent.parent / "src/words/data"
SPACY = "3.8.18"
# src/words.rs looks for a prefix in the first AFFIX_WINDOW characters of a piece and for a suffix
# in its last ones (see there): exact only while every rule is that short or is a run of one
# character, and no prefix rule needs to see ahead (a positive look-ahead).
AFFIX_WINDOW = 16


def ranges_of(pattern):
    """The code points a one-character Python pattern matches, as (first, last) runs."""
    test = re.compile(pattern).fullmatch
    runs, start = [], None
    for cp in range(0x110000 + 1):
        inside = cp < 0x110000 and test(chr(cp)) is not None
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            runs.append((start, cp - 1))
            start = None
    return runs


CATEGORIES = {
    C.CATEGORY_DIGIT: (r"\d", False), C.CATEGORY_NOT_DIGIT: (r"\d", True),
    C.CATEGORY_SPACE: (r"\s", False), C.CATEGORY_NOT_SPACE: (r"\s", True),
    C.CATEGORY_WORD: (r"\w", False), C.CATEGORY_NOT_WORD: (r"\w", True),
}
_RANGES = {}


def lit(cp):
    return "\\x{%x}" % cp


def run(lo, hi):
    return lit(lo) if lo == hi else f"{lit(lo)}-{lit(hi)}"


def category(cat):
    """(class body, negated) for \\d, \\w, \\s and their negations."""
    pattern, negated = CATEGORIES[cat]
    if pattern not in _RANGES:
        _RANGES[pattern] = "".join(run(lo, hi) for lo, hi in ranges_of(pattern))
    return _RANGES[pattern], negated


def emit_class(items):
    negate, body = False, []
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            body.append(lit(av))
        elif op is C.RANGE:
            body.append(run(*av))
        elif op is C.CATEGORY:
            inner, negated = category(av)
            body.append(f"[^{inner}]" if negated else f"[{inner}]")
        else:
            raise ValueError(f"class item {op} {av}")
    return "[" + ("^" if negate else "") + "".join(body) + "]"


def emit(tree):
    return "".join(emit_item(op, av) for op, av in tree)


def repeat(lo, hi):
    return "{%d,}" % lo if hi is C.MAXREPEAT else "{%d,%d}" % (lo, hi)


def emit_item(op, av):
    if op is C.LITERAL:
        return lit(av)
    if op is C.NOT_LITERAL:
        return f"[^{lit(av)}]"
    if op is C.ANY:
        return "[^\\n]"
    if op is C.IN:
        return emit_class(av)
    if op is C.CATEGORY:
        inner, negated = category(av)
        return f"[^{inner}]" if negated else f"[{inner}]"
    if op is C.BRANCH:
        return "(?:" + "|".join(emit(branch) for branch in av[1]) + ")"
    if op is C.SUBPATTERN:
        group, add_flags, del_flags, inner = av
        if add_flags & ~re.UNICODE or del_flags:
            raise ValueError(f"flags {add_flags} {del_flags}")
        return "(?:" + emit(inner) + ")"
    if op in (C.MAX_REPEAT, C.MIN_REPEAT):
        lo, hi, inner = av
        return "(?:" + emit(inner) + ")" + repeat(lo, hi) + ("?" if op is C.MIN_REPEAT else "")
    if op is C.AT:
        if av is C.AT_BEGINNING or av is C.AT_BEGINNING_STRING:
            return "\\A"
        if av is C.AT_END:
            return "(?=\\n?\\z)"  # Python's `$`: the end, or before a newline that ends the text
        if av is C.AT_END_STRING:
            return "\\z"
        raise ValueError(f"anchor {av}")
    if op in (C.ASSERT, C.ASSERT_NOT):
        direction, inner = av
        kind = ("=" if op is C.ASSERT else "!")
        return "(?" + ("<" if direction < 0 else "") + kind + emit(inner) + ")"
    raise ValueError(f"unsupported regex construct {op} {av}")


def rust_pattern(compiled):
    if compiled.flags & ~(re.UNICODE):
        raise ValueError(f"flags {compiled.flags}")
    return emit(sre_parse.parse(compiled.pattern, compiled.flags))


def check_window(compiled):
    tree = sre_parse.parse(compiled.pattern, compiled.flags)
    # One alternation, anchored (the parser may factor the prefixes' common `^` out of it).
    assert all(op is C.AT for op, _ in tree if op is not C.BRANCH)
    [branches] = [av[1] for op, av in tree if op is C.BRANCH]
    for branch in branches:
        assert not any(o is C.ASSERT and a[0] > 0 for o, a in walk(branch)), f"a positive look-ahead: {branch}"
        if branch.getwidth()[1] <= AFFIX_WINDOW:
            continue
        items = [item for item in branch if item[0] is not C.AT]
        run = (len(items) == 2 and items[0][0] is C.LITERAL and items[1][0] is C.MAX_REPEAT
               and list(items[1][1][2]) == [items[0]])
        assert run, f"a rule longer than {AFFIX_WINDOW} characters is not a run of one character: {items}"


def walk(tree):
    """Every (op, av) of a parsed pattern, nested ones included."""
    for op, av in tree:
        yield op, av
        if op is C.BRANCH:
            for branch in av[1]:
                yield from walk(branch)
        elif op in (C.SUBPATTERN, C.MAX_REPEAT, C.MIN_REPEAT, C.ASSERT, C.ASSERT_NOT):
            yield from walk(av[-1])


def orths(substrings):
    return [spec.get(ORTH, spec.get("ORTH")) for spec in substrings]


def rules(nlp):
    t = nlp.tokenizer
    bare = Tokenizer(nlp.vocab, rules={}, prefix_search=t.prefix_search, suffix_search=t.suffix_search,
                     infix_finditer=t.infix_finditer, token_match=t.token_match, url_match=t.url_match)
    assert t.token_match is None and t.faster_heuristics, "the port assumes no token_match"
    specials = sorted((string, orths(subs)) for string, subs in t.rules.items())
    for string, words in specials:
        assert "".join(words) == string, string
    check_window(t.prefix_search.__self__)
    check_window(t.suffix_search.__self__)
    matched = [[string, [w.text for w in bare(string)]] for string, _ in specials
               if t.find_prefix(string) or t.find_infix(string) or t.find_suffix(string) or " " in string]
    return {
        "spacy": SPACY,
        "prefix": rust_pattern(t.prefix_search.__self__),
        "suffix": rust_pattern(t.suffix_search.__self__),
        "infix": rust_pattern(t.infix_finditer.__self__),
        "url": rust_pattern(t.url_match.__self__),
        "specials": specials,
        "matched": matched,
    }


def main():
    if spacy.__version__ != SPACY or sys.version_info[:2] != (3, 11):
        sys.exit(f"need spacy {SPACY} on Python 3.11, have {spacy.__version__} on {sys.version}")
    OUT.mkdir(parents=True, exist_ok=True)
    for lang, nlp in (("es", Spanish()), ("en", English())):
        data = rules(nlp)
        path = OUT / f"{lang}.json"
        path.write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n")
        print(f"wrote {path}: {len(data['specials'])} special cases, {len(data['matched'])} matched across words, "
              f"{path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
