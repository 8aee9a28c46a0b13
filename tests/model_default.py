"""The default model as the function serves it (after `make model`):

1. parity: for every default-argument text of the golden corpus, the Rust function's
   probabilities equal Python onnxruntime's on the same model.onnx within 1e-5 (Python side:
   pysentimiento's own preprocessing from the golden file, the tokenizers library, one text per run);
2. clearly positive / negative Spanish sentences (tests/clear_sentences.tsv) get POS / NEG, and the
   README's examples answer as a reader expects;
3. the plain sentences (tests/plain_sentences.tsv: complaints, facts, questions, praise) score at
   least PLAIN_FLOOR, and exactly what report.json says;
4. report.json holds the SHA-256 of every file make model wrote, and evaluation.json (make
   model-evaluation) the nested CV of that same build, above the majority class.

    .venv-model/bin/python tests/model_default.py target/release/sentimiento model
"""
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5
# What the default model reaches on tests/plain_sentences.tsv (docs/default-model.md); the issue's
# target is 0.90.
PLAIN_FLOOR = 0.729  # 35/48 (NEG 15, NEU 5, POS 15) at nbits8-b32-a4+emb8, measured 2026-12-02 (fp32: 37)
README_EXAMPLES = [("NEG", "odio el lunes"), ("POS", "qué genial"), ("POS", "me encanta")]


def rust_predict(binary, model_dir, texts):
    out = []
    for i in range(0, len(texts), 64):
        done = subprocess.run([binary, "predict", "--", *texts[i:i + 64]], env=dict(os.environ, MODEL_DIR=str(model_dir)),
                              capture_output=True, text=True, check=True)
        out += json.loads(done.stdout)["results"] if len(texts[i:i + 64]) > 1 else [json.loads(done.stdout)]
    return out


def python_probas(model_dir, sentences, labels):
    pipeline = json.loads((model_dir / "pipeline.json").read_text())
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(pipeline["max_tokens"])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    rows = []
    for s in sentences:
        ids = np.array([tok.encode(pipeline["prefix"] + s).ids], np.int64)
        logits = session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
        e = np.exp(logits - logits.max())
        rows.append(dict(zip(labels, (e / e.sum()).tolist())))
    return rows


def check_parity(binary, model_dir, labels):
    rows = [json.loads(l) for l in open(ROOT / "tests/golden/preprocess.jsonl", encoding="utf-8")]
    rows = [r for r in rows if not r["args"] and r["text"].strip()]
    rust = rust_predict(binary, model_dir, [r["text"] for r in rows])
    python = python_probas(model_dir, [r["es"] for r in rows], labels)
    diffs = [abs(a["probas"][l] - b[l]) for a, b in zip(rust, python) for l in labels]
    worst = max(diffs)
    print(f"parity: {len(rows)} texts, max |rust - python| = {worst:.2e} (tolerance {TOLERANCE})")
    return worst <= TOLERANCE


def wrong_answers(binary, model_dir, cases):
    got = [p["output"] for p in rust_predict(binary, model_dir, [text for _, text in cases])]
    wrong = [(want, out, text) for (want, text), out in zip(cases, got) if want != out]
    for want, out, text in wrong:
        print(f"  expected {want}, got {out}: {text}")
    return wrong


def read_cases(name):
    return [line.split("\t", 1) for line in (ROOT / "tests" / name).read_text(encoding="utf-8").splitlines()]


def check_clear(binary, model_dir):
    cases = read_cases("clear_sentences.tsv") + README_EXAMPLES
    wrong = wrong_answers(binary, model_dir, cases)
    print(f"clear sentences and the README's examples: {len(cases) - len(wrong)}/{len(cases)} right")
    return not wrong


def check_plain(binary, model_dir):
    cases = read_cases("plain_sentences.tsv")
    share = 1 - len(wrong_answers(binary, model_dir, cases)) / len(cases)
    reported = json.loads((model_dir / "report.json").read_text())["plain_sentences"]["share"]
    print(f"plain sentences: {share:.1%} right (report.json {reported:.1%}, floor {PLAIN_FLOOR:.1%})")
    return share >= PLAIN_FLOOR and abs(share - reported) < 5e-4  # report.json rounds to 4 places


def check_report(model_dir):
    report = json.loads((model_dir / "report.json").read_text())
    evaluation = json.loads((model_dir / "evaluation.json").read_text())
    cv = evaluation["cv"]
    ok = cv["after_pruning_quantized"]["macro_f1"] > cv["majority_baseline"]["macro_f1"]
    ok &= evaluation["files"] == report["files"]  # the evaluation describes this build
    for name, digest in report["files"].items():
        ok &= hashlib.sha256((model_dir / name).read_bytes()).hexdigest() == digest
    print(f"report: quantized CV macro-F1 {cv['after_pruning_quantized']['macro_f1']} vs majority "
          f"{cv['majority_baseline']['macro_f1']} (evaluation.json); file hashes {'match' if ok else 'DO NOT match'}")
    return ok


def main():
    binary, model_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    labels = [v for _, v in sorted(json.loads((model_dir / "config.json").read_text())["id2label"].items(),
                                   key=lambda kv: int(kv[0]))]
    results = [check_parity(binary, model_dir, labels), check_clear(binary, model_dir), check_plain(binary, model_dir),
               check_report(model_dir)]
    print(f"model: {sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
