"""The default model's report-only figures (make model-evaluation, part of make test): what
model/build.py's choices are worth, measured after the build so that `make run` does not wait for
them (about 4 of the build's 7 minutes). Writes model/evaluation.json:

- cv: nested 5-fold macro-F1 (the inner folds choose C, the outer folds score; no test fold
  influences a choice) of the majority class, of e5's sentence embedding with the full and the
  pruned vocabulary (fp32), of the head's features in fp32 and as the served model computes them;
- quantized: the served model against fp32 on the 1,000 tweets (labels, probabilities, embeddings);
- vocabulary: how far pruning moves the tweets' sentence embeddings (NumPy, full vocabulary);
- files: report.json's hashes, so the figures name the model they describe.

    .venv-model/bin/python model/evaluate.py --model model
"""
import argparse
import json
import pathlib
import sys
import time

import numpy as np
from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import e5  # noqa: E402
import head  # noqa: E402
from build import LABELS, encode, run, session  # noqa: E402


def timed(name, compute):
    started = time.perf_counter()
    value = compute()
    print(f"== {name}: {time.perf_counter() - started:.1f} s", flush=True)
    return value


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="model")
    model = pathlib.Path(p.parse_args().model)
    work = model / "build"
    inputs = np.load(work / "evaluation-inputs.npz")
    y, after, features = inputs["y"], inputs["after"], inputs["features"]
    tweets = json.loads((work / "tweets-preprocessed.json").read_text(encoding="utf-8"))
    report = json.loads((model / "report.json").read_text(encoding="utf-8"))

    full_json = (work / "tokenizer-full.json").read_text(encoding="utf-8")
    weights = e5.E5Weights(work / "e5-small-q4.bin")
    reference = e5.Reference(weights, weights.word_embeddings()[: len(json.loads(full_json)["model"]["vocab"])])
    full_ids = encode(Tokenizer.from_str(full_json), tweets)
    before = timed("embed the tweets, full vocabulary (NumPy)", lambda: np.stack([reference.embed(i) for i in full_ids]))

    served_ids = encode(Tokenizer.from_file(str(model / "tokenizer.json")), tweets)
    logits, emb_q, feats_q = timed("score the tweets with the served model", lambda: run(
        session(model / "model.onnx"), served_ids, ["logits", "sentence_embedding", "features"], 1))
    # fp32's answers: the fp32 graph's last step (logits = features @ w.T + b) on its own features.
    p32 = head.softmax(features @ inputs["head_w"].T + inputs["head_b"])
    p_q = head.softmax(logits)

    cv = {"majority_baseline": head.majority_baseline(y, LABELS)}
    for name, X in (("before_pruning_fp32", before), ("after_pruning_fp32", after), ("features_fp32", features),
                    ("after_pruning_quantized", feats_q)):
        cv[name] = timed(f"nested 5-fold CV, {name}", lambda X=X: head.cross_validate(X, y, LABELS))
        print(f"   macro-F1 {cv[name]['macro_f1']}", flush=True)
    evaluation = {
        "cv": cv,
        "quantized": {"agreement_with_fp32": float((p32.argmax(1) == p_q.argmax(1)).mean()),
                      "max_probability_difference": float(np.abs(p32 - p_q).max()),
                      "min_cosine_vs_fp32_embedding": float((emb_q * after).sum(1).min())},
        "vocabulary": {"tweets_min_cosine_full_vs_pruned": float((before * after).sum(1).min())},
        "files": report["files"],
    }
    print(f"   quantized vs fp32: {evaluation['quantized']}")
    (model / "evaluation.json").write_text(json.dumps(evaluation, indent=1) + "\n")
    print(f"wrote {model / 'evaluation.json'}")


if __name__ == "__main__":
    main()
