"""Writes the data files the Rust preprocessing embeds (src/preprocess/data/), from the same
sources pysentimiento 0.7.3 uses at run time:

- emoji-2.10.1.tsv: every key of emoji 2.10.1's EMOJI_DATA (the search tree demojize walks),
  whether it is a component, and its name in en/es/it/pt without the colons. The emoji
  package's data is BSD-3-Clause licensed (Copyright (c) 2014-2021, Taehoon Kim, Kevin Wurster
  and Tahir Jalilov), derived from the Unicode emoji data files (Unicode License v3).
- python-word.txt: the code point ranges Python's `re` treats as `\\w` in str patterns
  (str.isalnum() or "_"), which pysentimiento's hashtag, boundary and URL rules use. Rust's
  Unicode word class differs (it includes combining marks), so the table comes from Python.

Run with Python 3.11 and emoji==2.10.1 (`make preprocess-data` sets up a throw-away venv).
"""
import pathlib
import re
import sys
import unicodedata

import emoji
from emoji.unicode_codes import EMOJI_DATA, STATUS

OUT = pathlib.Path(__file__).resolve().parent.parent / "src/preprocess/data"
LANGS = ["en", "es", "it", "pt"]


def check_versions():
    if emoji.__version__ != "2.10.1" or sys.version_info[:2] != (3, 11):
        sys.exit(f"need emoji 2.10.1 on Python 3.11, have {emoji.__version__} on {sys.version}")


def emoji_rows():
    for emj, data in EMOJI_DATA.items():
        names = [data[lang][1:-1] if lang in data else "" for lang in LANGS]
        for field in [emj, *names]:
            assert "\t" not in field and "\n" not in field, field
        component = "1" if data["status"] == STATUS["component"] else "0"
        yield "\t".join([emj, component, *names])


def word_ranges():
    ranges = []
    for cp in range(0x110000):
        if re.match(r"\w", chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return ranges


def main():
    check_versions()
    OUT.mkdir(parents=True, exist_ok=True)
    header = f"# emoji {emoji.__version__} EMOJI_DATA: emoji\tcomponent\t" + "\t".join(LANGS) + "\n"
    (OUT / "emoji-2.10.1.tsv").write_text(header + "\n".join(emoji_rows()) + "\n", encoding="utf-8")
    lines = [f"{a:X} {b:X}" for a, b in word_ranges()]
    header = f"# Python {sys.version.split()[0]} (Unicode {unicodedata.unidata_version}) re \\w ranges, hex\n"
    (OUT / "python-word.txt").write_text(header + "\n".join(lines) + "\n")
    print(f"wrote {OUT}: {len(EMOJI_DATA)} emoji, {len(lines)} word ranges")


if __name__ == "__main__":
    main()
