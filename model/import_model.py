"""Imports an already exported ONNX sequence (or token) classifier as the function's model
directory (make model FROM=DIR), and validates it the way the function will use it. Its `install` is also
the last step of model/convert.py (make model HF_MODEL=...).

DIR holds config.json and tokenizer.json, and model.onnx or the Hugging Face export layout
onnx/model_quantized.onnx (preferred: int8) / onnx/model.onnx. Checks: config has id2label, the
graph takes input_ids and attention_mask (token_type_ids optional), its first output has one
column per label on a sample sentence (per token for ner and pos), and the tokenizer loads. The graph is then optimised
offline (model/optimize.py), its weights written to model.onnx.data.

    python model/import_model.py --from DIR --out model [--task sentiment] [--lang es] [--prefix ""]
"""
import argparse
import json
import pathlib
import shutil
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from optimize import optimize  # noqa: E402

CANDIDATES = ["model.onnx", "onnx/model_quantized.onnx", "onnx/model.onnx"]
SAMPLE = "Me encanta este día, qué genial"
# Texts of varied lengths for the batch check: in one padded batch and alone they must answer alike.
BATCH_TEXTS = [SAMPLE, "hola", "no", "qué asco de servicio, nunca más vuelvo a este lugar", "la reunión es a las cinco",
               "el tren sale del andén tres y llega tarde otra vez, como todos los lunes de este mes", "😂😂",
               "@usuario gracias!!! https://t.co/x", "odio el lunes", "Buenos días a todos, que tengan una excelente semana"]
# A text's answer in a batch may differ from its answer alone by float rounding only.
BATCH_TOLERANCE = 1e-5
# pysentimiento forces tokenizer.model_max_length = 128 for every model.
MAX_TOKENS = 128
# RoBERTa-family models number positions from pad_token_id + 1 (RoBERTuito: 130 -> 128 usable).
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert")
LANGS = ("es", "en", "it", "pt")
# pysentimiento's word-labelling tasks, and the languages it splits words for (spaCy's es and en).
WORD_TASKS = ("ner", "pos")
WORD_LANGS = ("es", "en")
# Tasks that read a second text, and pysentimiento's name for it.
PAIRS = {"targeted_sentiment": "target", "context_hate_speech": "context"}


def fail(message):
    sys.exit(f"import: {message}")


def max_tokens(config):
    """pysentimiento's 128, or fewer when the model has fewer usable positions."""
    positions = config.get("max_position_embeddings", MAX_TOKENS)
    if config.get("model_type") in OFFSET_POSITIONS:
        positions -= pad_id(config) + 1
    return min(MAX_TOKENS, positions)


def pad_id(config):
    """`"pad_token_id": null` in a config.json means the family's default: RoBERTa's 1, BERT's 0."""
    pad = config.get("pad_token_id")
    return pad if pad is not None else int(config.get("model_type") in OFFSET_POSITIONS)


def validate(onnx_path, tokenizer_path, config, prefix, task):
    labels = config.get("id2label") or fail("config.json has no id2label")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = {i.name for i in session.get_inputs()}
    if not {"input_ids", "attention_mask"} <= inputs:
        fail(f"{onnx_path.name} takes {sorted(inputs)}, not input_ids and attention_mask")
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_truncation(max_tokens(config))
    ids = np.array([tok.encode(prefix + SAMPLE).ids], np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    if "token_type_ids" in inputs:
        feed["token_type_ids"] = np.zeros_like(ids)
    logits = session.run(None, feed)[0]
    expected = (1, ids.shape[1], len(labels)) if task in WORD_TASKS else (1, len(labels))
    if logits.shape != expected:
        fail(f"first output has shape {logits.shape}, expected {expected} for the task {task!r} and id2label {labels}")
    return labels


def pipeline(name, task, lang, config, preprocessing=None, prefix=""):
    """pipeline.json: everything pysentimiento does for this model besides the graph. Its token
    analyzers keep handles (preprocess_handles=False) unless told otherwise."""
    if lang not in LANGS:
        fail(f"lang {lang!r} is not one of pysentimiento's {LANGS}")
    preprocessing = dict(preprocessing or {})
    if task in WORD_TASKS:
        if lang not in WORD_LANGS:
            fail(f"{task} splits words with spaCy's {WORD_LANGS} tokenizers, as pysentimiento does; not {lang!r}")
        preprocessing.setdefault("preprocess_handles", False)
    out = {"name": name, "task": task, "lang": lang, "preprocessing": preprocessing, "prefix": prefix,
           "max_tokens": max_tokens(config), "pre_optimized": True}
    if task in PAIRS:
        out["pair"] = PAIRS[task]
    return out


def install(onnx_path, src, out, pipeline_json):
    """Validates onnx_path, optimises it into out/, and writes config.json, tokenizer.json (from the
    directory src) and pipeline.json beside it. Returns the labels."""
    config = json.loads((src / "config.json").read_text())
    labels = validate(onnx_path, src / "tokenizer.json", config, pipeline_json["prefix"], pipeline_json["task"])
    out.mkdir(parents=True, exist_ok=True)
    optimize(onnx_path, out)
    for name in ("config.json", "tokenizer.json"):
        if (src / name).resolve() != (out / name).resolve():
            shutil.copyfile(src / name, out / name)
    batched = batch_difference(out / "model.onnx", out / "tokenizer.json", config, pipeline_json)
    if batched <= BATCH_TOLERANCE:
        # Bulk scoring runs padded batches only on a graph measured here to allow them.
        pipeline_json = pipeline_json | {"batch_padding_id": pad_id(config)}
    (out / "pipeline.json").write_text(json.dumps(pipeline_json, indent=1, ensure_ascii=False) + "\n")
    print(f"import: a text in a padded batch vs alone: max |dp| {batched:.2g}: "
          + ("bulk scoring batches" if batched <= BATCH_TOLERANCE else "bulk scoring runs one text at a time"))
    return list(labels.values())


def batch_difference(onnx_path, tokenizer_path, config, pipeline_json):
    """precision.batch_vs_alone on the installed graph, loaded as the function loads it."""
    from precision import batch_vs_alone
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_truncation(pipeline_json["max_tokens"])
    encodings = [{"input_ids": e.ids, "attention_mask": e.attention_mask, "token_type_ids": e.type_ids}
                 for e in (tok.encode(pipeline_json["prefix"] + t) for t in BATCH_TEXTS)]
    multi = config.get("problem_type") == "multi_label_classification"
    return batch_vs_alone(onnx_path, encodings, None, pad_id(config), pipeline_json["task"] in WORD_TASKS, multi,
                          batch=len(BATCH_TEXTS))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="src", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--task", default="sentiment")
    p.add_argument("--lang", default="es")
    p.add_argument("--prefix", default="")
    args = p.parse_args()
    src, out = pathlib.Path(args.src), pathlib.Path(args.out)
    onnx_path = next((src / c for c in CANDIDATES if (src / c).is_file()), None) or fail(f"no {CANDIDATES} in {src}")
    for name in ("config.json", "tokenizer.json"):
        (src / name).is_file() or fail(f"{src / name} is missing")
    config = json.loads((src / "config.json").read_text())
    name = config.get("_name_or_path") or src.name
    labels = install(onnx_path, src, out, pipeline(name, args.task, args.lang, config, prefix=args.prefix))
    (out / "report.json").unlink(missing_ok=True)  # the default model's report does not describe this one
    print(f"imported {onnx_path} ({len(labels)} labels: {labels}) into {out}")


if __name__ == "__main__":
    main()
