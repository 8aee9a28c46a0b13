"""Preprocessing throughput, Rust vs pysentimiento, on the same texts: the golden corpus
(default arguments only) repeated until it is a few MB. Prints MB/s of input text for each.

Rust is timed as `sentimiento preprocess` over a JSON Lines file (process start and JSON
encoding included, so its figure is a lower bound); Python as preprocess_tweet() calls in a
loop, in process. Run with the golden venv's Python (make bench-preprocess):

    python bench/preprocess.py target/release/sentimiento tests/golden/preprocess.jsonl
"""
import json
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from pysentimiento_preprocessing import load  # noqa: E402

REPEAT = 30
LANG = "es"


def best_of(n, run):
    return min(run() for _ in range(n))


def main():
    binary, golden = sys.argv[1], sys.argv[2]
    rows = [json.loads(l) for l in open(golden, encoding="utf-8")]
    texts = [r["text"] for r in rows if not r["args"]] * REPEAT
    mb = sum(len(t.encode()) for t in texts) / 1e6

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        path = f.name

    def rust():
        with open(path, "rb") as stdin:
            started = time.perf_counter()
            subprocess.run([binary, "preprocess", "--lang", LANG], stdin=stdin, stdout=subprocess.DEVNULL, check=True)
            return time.perf_counter() - started

    preprocess_tweet = load()

    def python():
        started = time.perf_counter()
        for t in texts:
            preprocess_tweet(t, lang=LANG)
        return time.perf_counter() - started

    rust_s, python_s = best_of(3, rust), best_of(3, python)
    print(f"corpus: {len(texts)} texts, {mb:.2f} MB (golden corpus x{REPEAT}), lang {LANG}, best of 3")
    print(f"rust   sentimiento preprocess: {rust_s:.2f} s  {mb / rust_s:7.2f} MB/s")
    print(f"python preprocess_tweet:       {python_s:.2f} s  {mb / python_s:7.2f} MB/s")
    print(f"speed-up: {python_s / rust_s:.1f}x")


if __name__ == "__main__":
    main()
