"""pysentimiento's own analyzer against the function, on checkpoints in pysentimiento's shape.

1. tests/pysentimiento/make_checkpoints.py builds seeded local checkpoints (RoBERTa single-label,
   multi-label and 7-label; an Italian BERT with only a slow tokenizer; four that must be refused);
2. pysentimiento 0.7.3's create_analyzer(task, lang, model_name=DIR).predict(text) gives the
   reference on 400+ varied texts (handles, URLs, hashtags, emoji, laughter, texts over 128 tokens);
3. `make models CHECKPOINTS=... PRECISION=fp32` and `make model HF_MODEL=DIR TASK=... MODEL_LANG=...`
   (int8) convert them into MODEL_DIR/<task>/<lang>/ layouts, and the function (`sentimiento
   predict --task --lang`) answers every text:
   fp32 must give pysentimiento's output and preprocessed sentence with probabilities within 1e-4;
   int8's label agreement and max |dp| are reported and held to floors set from measurement;
4. the checkpoints the function cannot serve are refused with a message that says why.

    python tests/pysentimiento/check.py BIN WORK    (the venv of tests/pysentimiento/requirements.txt)
"""
import json
import os
import pathlib
import random
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
SERVED = {"sentiment-es": ("sentiment", "es"), "hate_speech-es": ("hate_speech", "es"),
          "emotion-es": ("emotion", "es"), "irony-it": ("irony", "it")}
REFUSED = {"gpt2-classifier": "model_type 'gpt2'", "masked-lm": "is not a sequence classifier",
           "no-labels": "names no labels", "slow-bpe": "BertweetTokenizer has no tokenizer.json"}
FP32_TOLERANCE = 1e-4
# int8 floors, set from measurement on these checkpoints (90.5-98.6 % same outputs, max |dp|
# 0.13-0.48; multi-label outputs must match on every label): random weights drawn wide to spread
# the logits make them more sensitive to quantization than trained models.
INT8_MIN_AGREEMENT = 0.88
INT8_MAX_DP = 0.6
BATCH = 64

results = {"passed": 0, "failed": 0}


def check(ok, message):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {message}", flush=True)


def texts():
    """420 varied golden-corpus texts (the hand-written rule cases first) and 20 over 128 tokens."""
    rows = [json.loads(line) for line in (ROOT / "tests/golden/preprocess.jsonl").open()]
    pool = [r["text"] for r in rows if not r["args"] and r["text"].strip() and "\x00" not in r["text"]]
    rng = random.Random(11)
    chosen = pool[:150] + rng.sample(pool[150:], 270)
    longs = [" ".join(rng.sample(pool[150:], 40))[:9000] for _ in range(20)]
    return chosen + longs


def reference(checkpoint, task, lang, inputs):
    from pysentimiento import create_analyzer
    analyzer = create_analyzer(task=task, lang=lang, model_name=str(checkpoint))
    rows = []
    for text in inputs:
        out = analyzer.predict(text)
        rows.append({"output": out.output, "probas": out.probas, "sentence": out.sentence})
    return rows


def make(*args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True)


def convert(checkpoint, task, lang, precision, out):
    return make("model", f"HF_MODEL={checkpoint}", f"TASK={task}", f"MODEL_LANG={lang}", f"PRECISION={precision}",
                f"OUT={out}")


def convert_all_fp32(work):
    """`make models` over a CHECKPOINTS/<task>/<lang>/ layout of the servable checkpoints."""
    by_task = work / "by-task"
    for name, (task, lang) in SERVED.items():
        link = by_task / task / lang
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(work / "checkpoints" / name)
    pairs = " ".join(f"{task}/{lang}" for task, lang in SERVED.values())
    done = make("models", f"MODELS={pairs}", f"CHECKPOINTS={by_task}", "PRECISION=fp32", f"MODELS_DIR={work / 'fp32'}")
    check(done.returncode == 0, f"make models MODELS=\"{pairs}\" PRECISION=fp32: {said(done, 'convert')}")


def served(binary, model_dir, task, lang, inputs):
    rows = []
    for i in range(0, len(inputs), BATCH):
        chunk = inputs[i:i + BATCH]
        done = subprocess.run([binary, "predict", "--task", task, "--lang", lang, "--include-sentence", *chunk],
                              env=dict(os.environ, MODEL_DIR=str(model_dir)), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"predict failed: {done.stdout} {done.stderr}")
        answer = json.loads(done.stdout)
        rows += answer["results"] if len(chunk) > 1 else [answer]
    return rows


def said(done, prefix):
    """The converter's own closing line, among PyTorch's warnings."""
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith(prefix)]
    return lines[-1] if lines else "(no message)"


def compare(name, precision, want, got):
    same = [w["output"] == g["output"] for w, g in zip(want, got)]
    dp = max(abs(w["probas"][k] - g["probas"][k]) for w, g in zip(want, got) for k in w["probas"])
    agreement = sum(same) / len(same)
    summary = f"{name} {precision}: {sum(same)}/{len(same)} same output ({agreement:.1%}), max |dp| {dp:.2g}"
    if precision == "fp32":
        sentences = sum(w["sentence"] == g.get("sentence") for w, g in zip(want, got))
        check(all(same) and dp <= FP32_TOLERANCE and sentences == len(want),
              f"{summary}, {sentences}/{len(want)} same preprocessed sentence (tolerance {FP32_TOLERANCE})")
    else:
        check(agreement >= INT8_MIN_AGREEMENT and dp <= INT8_MAX_DP,
              f"{summary} (floors: {INT8_MIN_AGREEMENT:.0%}, {INT8_MAX_DP})")
    truncated = sum(g["truncated"] for g in got)
    return {"agreement": agreement, "max_dp": dp, "truncated_texts": truncated}


def main():
    binary, work = sys.argv[1], pathlib.Path(sys.argv[2]).resolve()
    subprocess.run([sys.executable, str(HERE / "make_checkpoints.py"), str(work / "checkpoints")], check=True,
                   capture_output=True)
    inputs = texts()
    figures = {}
    convert_all_fp32(work)
    for name, (task, lang) in SERVED.items():
        checkpoint = work / "checkpoints" / name
        want = reference(checkpoint, task, lang, inputs)
        done = convert(checkpoint, task, lang, "int8", work / "int8" / task / lang)
        check(done.returncode == 0, f"make model HF_MODEL={name} (int8): {said(done, 'convert')}")
        for precision in ("fp32", "int8"):
            got = served(binary, work / precision, task, lang, inputs)
            figures[f"{name} {precision}"] = compare(name, precision, want, got)
    check(all(f["truncated_texts"] >= 20 for f in figures.values()), "texts over 128 tokens say truncated")
    for name, expected in REFUSED.items():
        done = convert(work / "checkpoints" / name, "sentiment", "es", "int8", work / "refused" / name)
        check(done.returncode != 0 and expected in done.stderr and not (work / "refused" / name).exists(),
              f"{name}: {said(done, 'convert: refused')}")
    (work / "figures.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(f"pysentimiento: {len(inputs)} texts per model; figures in {work / 'figures.json'}")
    print(f"pysentimiento: {results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
