"""make model HF_MODEL=<hub id or local checkpoint dir>: a pysentimiento (Hugging Face) sequence
classifier, or token classifier for --task ner / pos, converted to the function's model
directory, at model/precision.py's DEFAULT precision unless told otherwise.

    python model/convert.py --from SRC --out DIR [--task sentiment] [--lang es] [--precision RECIPE]

Stages: read the checkpoint and refuse what the function cannot serve (an architecture other than
a BERT/RoBERTa-family sequence classifier, or token classifier for ner/pos, labels left at
LABEL_0..) -> tokenizer.json (converted from a slow tokenizer when the checkpoint has none, and
checked id for id against transformers on what the task reads: texts, text pairs for
targeted_sentiment and context_hate_speech, spaCy's words for ner and pos) ->
ONNX export with PyTorch (checked against PyTorch's logits) -> quantized (model/precision.py's
recipe; docs/precision.md has each one's agreement) -> the import step (model/import_model.py:
validate, optimise offline, pipeline.json). report.json keeps the figures: how far the served
graph is from PyTorch's fp32 on the check texts.

pipeline.json carries what pysentimiento's analyzer does for the model: the task, the language,
max length 128, and the preprocessing arguments of pysentimiento's model table
(model/pysentimiento-models.json) when SRC is one of its hub ids; for any other SRC, as
pysentimiento does for a `model_name`, only what --preprocessing gives.

Runs in the pinned venv of tests/pysentimiento/requirements.txt (PyTorch, transformers); with
HF_HUB_OFFLINE=1 (the Makefile sets it for local directories) nothing is fetched.
"""
import argparse
import json
import pathlib
import random
import sys
import tempfile

import numpy as np
import onnxruntime as ort
import torch
from tokenizers import Tokenizer
from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          AutoTokenizer)

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import import_model  # noqa: E402
import precision  # noqa: E402

# Model types whose sequence classifiers export and run with the function's inputs
# (input_ids, attention_mask, token_type_ids when the tokenizer makes them) and are tested here:
# RoBERTa (RoBERTuito, BERTweet, BERTabaporu) and BERT (BETO, the Italian and Portuguese BERTs).
SERVABLE = ("roberta", "xlm-roberta", "camembert", "bert")
CHECK_TEXTS = 300
OPSET = 17


def refuse(message):
    sys.exit(f"convert: refused: {message}")


def check_inputs(task, lang):
    """What the model reads, as pysentimiento gives it: tweet-like texts from the golden corpus,
    preprocessed; for a pair task, each with another text as its target or context (an empty
    one every fifth: the text is then read alone); for ner and pos, spaCy's words of the text
    preprocessed with handles kept."""
    texts, rng = golden_texts()
    long_text = " ".join(texts[:60])  # past 128 tokens: truncation is checked too
    return as_inputs(texts[:CHECK_TEXTS] + [long_text], task, lang, rng)


def golden_texts():
    """The golden corpus's texts, shuffled, and the generator that shuffled them."""
    rows = [json.loads(line) for line in (HERE.parent / "tests/golden/preprocess.jsonl").open()]
    texts = [r["text"] for r in rows if not r["args"] and r["text"].strip()]
    rng = random.Random(0)
    rng.shuffle(texts)
    return texts, rng


def calibration_inputs(task, lang, n=200):
    """The static recipes' calibration texts: the golden corpus's last ones (after shuffling), never
    the check texts above."""
    return as_inputs(golden_texts()[0][-n:], task, lang, random.Random(1))


def as_inputs(chosen, task, lang, rng):
    """Texts as the task's model reads them (pysentimiento's preprocessing; words, or pairs)."""
    from pysentimiento.preprocessing import preprocess_tweet
    if task in import_model.WORD_TASKS:
        from spacy.lang.en import English
        from spacy.lang.es import Spanish
        split = (Spanish() if lang == "es" else English()).tokenizer
        return [[w.text for w in split(preprocess_tweet(t, lang=lang, preprocess_handles=False))] for t in chosen]
    texts = [preprocess_tweet(t, lang=lang) for t in chosen]
    if task in import_model.PAIRS:
        seconds = rng.sample(texts, len(texts))
        return [(t, s) if i % 5 else t for i, (t, s) in enumerate(zip(texts, seconds))]
    return texts


def encode(tokenizer, item, **kwargs):
    """A text, a (text, second text) pair, or a list of words, as pysentimiento encodes it."""
    if isinstance(item, list):
        return tokenizer(item, is_split_into_words=True, truncation=True, max_length=import_model.MAX_TOKENS, **kwargs)
    parts = item if isinstance(item, tuple) else (item,)
    return tokenizer(*parts, truncation=True, max_length=import_model.MAX_TOKENS, **kwargs)


def encode_served(served, item):
    if isinstance(item, list):
        return served.encode(item, is_pretokenized=True).ids
    return served.encode(*item).ids if isinstance(item, tuple) else served.encode(item).ids


def read_checkpoint(src, task):
    config = AutoConfig.from_pretrained(src)
    architecture = (config.architectures or ["(none)"])[0]
    if config.model_type not in SERVABLE:
        refuse(f"{src}: model_type {config.model_type!r} ({architecture}) is not one the function runs "
               f"({', '.join(SERVABLE)})")
    words = task in import_model.WORD_TASKS
    head = "ForTokenClassification" if words else "ForSequenceClassification"
    if not architecture.endswith(head):
        refuse(f"{src}: {architecture} is not a {'token' if words else 'sequence'} classifier, which the task "
               f"{task!r} needs (ner and pos label tokens; the other tasks classify texts)")
    labels = [config.id2label[i] for i in range(config.num_labels)]
    if labels == [f"LABEL_{i}" for i in range(len(labels))]:
        refuse(f"{src}: config.json names no labels (id2label is transformers' default {labels}); "
               f"set id2label to the model's label names")
    auto = AutoModelForTokenClassification if words else AutoModelForSequenceClassification
    return config, auto.from_pretrained(src).eval()


def ships_tokenizer_json(src):
    """pysentimiento's analyzer loads a checkpoint's own tokenizer.json when it has one."""
    from transformers.utils import cached_file
    return cached_file(src, "tokenizer.json", _raise_exceptions_for_missing_entries=False) is not None


def slow_original(src, fast):
    """The tokenizer a converted tokenizer.json must match: the checkpoint's slow one."""
    try:
        return AutoTokenizer.from_pretrained(src, use_fast=False)
    except (ValueError, OSError, TypeError):
        return fast


def tokenizer_json(src, out, items):
    """Writes out/tokenizer.json and checks that it encodes every check input as transformers does."""
    tokenizer = AutoTokenizer.from_pretrained(src)
    if not tokenizer.is_fast:
        refuse(f"{src}: {type(tokenizer).__name__} has no tokenizer.json and transformers cannot convert it to "
               f"one (pysentimiento's English BERTweet models are such); the function needs a Hugging Face "
               f"tokenizer.json")
    # Saved without the checkpoint's own padding and truncation: a tokenizer.json may pad every
    # text to a fixed length (all-MiniLM-L6-v2's pads to 128, which made every check input differ
    # from transformers, whose calls turn padding off), and the function sets its own truncation.
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(out / "tokenizer.json"))
    reference = tokenizer if ships_tokenizer_json(src) else slow_original(src, tokenizer)
    served = Tokenizer.from_file(str(out / "tokenizer.json"))
    served.enable_truncation(import_model.MAX_TOKENS)
    for item in items:
        want = encode(reference, item)["input_ids"]
        got = encode_served(served, item)
        if got != want:
            refuse(f"{src}: the converted tokenizer.json encodes {item!r} as {got[:12]}..., "
                   f"{type(reference).__name__} as {want[:12]}...")
    return tokenizer, type(reference).__name__


def export(model, tokenizer, path, words):
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    # Two texts of different lengths under most tokenizers (WordPiece splits "qué" differently
    # from BPE): padded, as a batch must be, so the export also sees a real attention mask.
    sample = tokenizer(["hola mundo", "qué tal"], padding=True, return_tensors="pt")
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch", 1: "sequence"} if words else {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(model, tuple(sample[n] for n in names), str(path), input_names=names,
                          output_names=["logits"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return names


def logits_torch(model, tokenizer, items):
    """Rows of logits: one per text, or one per token for a token classifier."""
    rows = []
    with torch.no_grad():
        for item in items:
            rows.append(np.atleast_2d(model(**encode(tokenizer, item, return_tensors="pt")).logits[0].numpy()))
    return np.concatenate(rows)


def logits_onnx(path, tokenizer, items, names):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = []
    for item in items:
        ids = encode(tokenizer, item, return_tensors="np")
        rows.append(np.atleast_2d(session.run(["logits"], {n: ids[n].astype(np.int64) for n in names})[0][0]))
    return np.concatenate(rows)


def probabilities(logits, multi_label):
    if multi_label:
        return 1 / (1 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def labels_of(probs, multi_label):
    return [tuple(p > 0.5) for p in probs] if multi_label else list(probs.argmax(axis=1))


# "int8" named today's int8-dynamic before the precision table (docs/precision.md) chose a default.
ALIASES = {"int8": "int8-dynamic"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--from", dest="src", required=True, help="hub id or local checkpoint directory")
    p.add_argument("--out", required=True)
    p.add_argument("--task", default="sentiment")
    p.add_argument("--lang", default="es")
    p.add_argument("--precision", choices=(*precision.RECIPES, *ALIASES), default=precision.DEFAULT)
    p.add_argument("--preprocessing", default=None, help="preprocess_tweet arguments as JSON")
    args = p.parse_args()
    table = json.loads((HERE / "pysentimiento-models.json").read_text())
    builtin = table.get(args.lang, {}).get(args.task, {})
    if args.preprocessing is not None:
        preprocessing = json.loads(args.preprocessing)
    else:
        preprocessing = builtin.get("preprocessing_args", {}) if builtin.get("model_name") == args.src else {}
    out = pathlib.Path(args.out)

    if args.task in import_model.WORD_TASKS and args.lang not in import_model.WORD_LANGS:
        refuse(f"{args.task} splits words with spaCy's {import_model.WORD_LANGS} tokenizers, as pysentimiento "
               f"does; not {args.lang!r}")
    config, model = read_checkpoint(args.src, args.task)
    multi_label = config.problem_type == "multi_label_classification"
    texts = check_inputs(args.task, args.lang)
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        tokenizer, tokenizer_checked = tokenizer_json(args.src, work, texts)
        config.save_pretrained(work)
        names = export(model, tokenizer, work / "fp32.onnx", args.task in import_model.WORD_TASKS)
        reference = logits_torch(model, tokenizer, texts)
        exported = logits_onnx(work / "fp32.onnx", tokenizer, texts, names)
        export_error = float(np.abs(exported - reference).max())
        if export_error > 1e-4:
            refuse(f"the ONNX export differs from PyTorch by {export_error:.2g} (limit 1e-4)")
        recipe = ALIASES.get(args.precision, args.precision)
        feeds = None
        if precision.needs_calibration(recipe):
            feeds = precision.as_feeds([encode(tokenizer, i, return_tensors="np") for i in calibration_inputs(args.task, args.lang)], names)
        served = precision.quantize(work / "fp32.onnx", work / "quantized.onnx", recipe, feeds)
        p_ref = probabilities(reference, multi_label)
        p_served = probabilities(logits_onnx(served, tokenizer, texts, names), multi_label)
        agreement = float(np.mean([a == b for a, b in zip(labels_of(p_ref, multi_label),
                                                               labels_of(p_served, multi_label))]))
        # A hub id names itself; a local checkpoint by its last two folders (e.g. "sentiment/es").
        local = pathlib.Path(args.src)
        name = "/".join(local.resolve().parts[-2:]) if local.is_dir() else args.src
        pipeline_json = import_model.pipeline(name, args.task, args.lang, config.to_dict(), preprocessing)
        labels = import_model.install(served, work, out, pipeline_json)
    report = {
        "source": args.src, "task": args.task, "lang": args.lang, "precision": recipe,
        "architecture": config.architectures[0], "labels": labels, "tokenizer_checked_against": tokenizer_checked,
        "check_texts": len(texts), "export_max_abs_logit_error": export_error,
        "vs_pytorch_fp32": {"label_agreement": agreement, "labelled": "tokens" if args.task in import_model.WORD_TASKS else "texts",
                            "max_abs_probability_difference": float(np.abs(p_served - p_ref).max())},
    }
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"converted {args.src} ({recipe}, {len(labels)} labels) into {out}: "
          f"{agreement:.1%} same labels as PyTorch fp32, max |dp| "
          f"{report['vs_pytorch_fp32']['max_abs_probability_difference']:.2g}")


if __name__ == "__main__":
    main()
