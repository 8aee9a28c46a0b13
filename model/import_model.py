"""Imports an already exported ONNX sequence classifier as the function's model directory
(make model FROM=DIR), and validates it the way the function will use it.

DIR holds config.json and tokenizer.json, and model.onnx or the Hugging Face export layout
onnx/model_quantized.onnx (preferred: int8) / onnx/model.onnx. Checks: config has id2label, the
graph takes input_ids and attention_mask (token_type_ids optional), its first output has one
column per label on a sample sentence, and the tokenizer loads. The graph is then optimised
offline (model/optimize.py), its weights written to model.onnx.data.

    python model/import_model.py --from DIR --out model [--lang es] [--prefix ""]
"""
import argparse
import json
import pathlib
import shutil
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from optimize import optimize

CANDIDATES = ["model.onnx", "onnx/model_quantized.onnx", "onnx/model.onnx"]
SAMPLE = "Me encanta este día, qué genial"


def fail(message):
    sys.exit(f"import: {message}")


def validate(onnx_path, tokenizer_path, config, prefix, max_tokens):
    labels = config.get("id2label") or fail("config.json has no id2label")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    if not {"input_ids", "attention_mask"} <= inputs:
        fail(f"{onnx_path.name} takes {sorted(inputs)}, not input_ids and attention_mask")
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_truncation(max_tokens)
    ids = np.array([tok.encode(prefix + SAMPLE).ids], np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in inputs:
        feed["token_type_ids"] = np.zeros_like(ids)
    logits = session.run(None, feed)[0]
    if logits.shape != (1, len(labels)):
        fail(f"first output has shape {logits.shape}, expected (1, {len(labels)}) for id2label {labels}")
    return labels


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="src", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--lang", default="es")
    p.add_argument("--prefix", default="")
    args = p.parse_args()
    src, out = pathlib.Path(args.src), pathlib.Path(args.out)
    onnx_path = next((src / c for c in CANDIDATES if (src / c).is_file()), None) or fail(f"no {CANDIDATES} in {src}")
    for name in ("config.json", "tokenizer.json"):
        (src / name).is_file() or fail(f"{src / name} is missing")
    config = json.loads((src / "config.json").read_text())
    positions = config.get("max_position_embeddings", 130)
    # RoBERTa-style models (pysentimiento's) reserve two positions: 130 -> 128 tokens.
    max_tokens = min(128, positions - 2 if config.get("model_type") in ("roberta", "xlm-roberta") else positions)
    labels = validate(onnx_path, src / "tokenizer.json", config, args.prefix, max_tokens)
    out.mkdir(parents=True, exist_ok=True)
    optimize(onnx_path, out)
    for name in ("config.json", "tokenizer.json"):
        shutil.copyfile(src / name, out / name)
    pipeline = {"name": config.get("_name_or_path") or src.name, "lang": args.lang, "prefix": args.prefix,
                "max_tokens": max_tokens, "pre_optimized": True}
    (out / "pipeline.json").write_text(json.dumps(pipeline, indent=1, ensure_ascii=False) + "\n")
    (out / "report.json").unlink(missing_ok=True)  # the default model's report does not describe this one
    print(f"imported {onnx_path} ({len(labels)} labels: {list(labels.values())}) into {out}")


if __name__ == "__main__":
    main()
