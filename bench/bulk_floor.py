"""The ceiling of make bench-bulk: ONNX Runtime alone on the int8 model, token ids computed
beforehand, so that no preprocessing, tokenizing, parsing or writing is counted. Two ways to use
every core: one text per run in one process per core (one thread each: what `sentimiento predict
--workers N` does), and batches of 32 sorted by length in one process with a thread per core.
Prints one JSON line: texts/s of each, and how far batching moves a text's probabilities (the int8
graph quantizes each run's activations with one scale per tensor, so a batch's texts share it).

    python bench/bulk_floor.py MODEL_DIR INPUT.jsonl
"""
import json
import multiprocessing
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from pysentimiento.preprocessing import preprocess_tweet
from tokenizers import Tokenizer

BATCH = 32


def session(model_dir, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(os.path.join(model_dir, "model.onnx"), options, providers=["CPUExecutionProvider"])


def feed(session_, chunk, pad):
    """The session's inputs for a chunk of token id lists, padded to the longest."""
    width = max(map(len, chunk))
    ids = np.full((len(chunk), width), pad, np.int64)
    mask = np.zeros_like(ids)
    for row, e in enumerate(chunk):
        ids[row, :len(e)], mask[row, :len(e)] = e, 1
    out = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in {i.name for i in session_.get_inputs()}:
        out["token_type_ids"] = np.zeros_like(ids)
    return out


def one_by_one(model_dir, encoded, ready, go, done):
    s = session(model_dir, 1)
    feeds = [feed(s, [e], pad=0) for e in encoded]
    ready.put(1)
    go.wait()
    for f in feeds:
        s.run(None, f)
    done.put(time.perf_counter())


def per_core_rate(model_dir, encoded, cores):
    """Wall time from a common start to the last process's end: the processes start in step."""
    ready, done, go = multiprocessing.Queue(), multiprocessing.Queue(), multiprocessing.Event()
    procs = [multiprocessing.Process(target=one_by_one, args=(model_dir, encoded[i::cores], ready, go, done))
             for i in range(cores)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get()
    started = time.perf_counter()
    go.set()
    ended = max(done.get() for _ in procs)
    for p in procs:
        p.join()
    return len(encoded) / (ended - started)


def batched_rate(model_dir, encoded, cores, pad):
    s = session(model_dir, cores)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    feeds = [feed(s, [encoded[i] for i in order[start:start + BATCH]], pad) for start in range(0, len(order), BATCH)]
    started = time.perf_counter()
    for f in feeds:
        s.run(None, f)
    return len(encoded) / (time.perf_counter() - started)


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def batch_effect(model_dir, encoded, pad, n=64):
    """Max |probability difference| over n texts run alone and in batches of 32, and how many differ."""
    s = session(model_dir, 1)

    def run(chunk):
        return softmax(s.run(None, feed(s, chunk, pad))[0])

    alone = np.concatenate([run([e]) for e in encoded[:n]])
    batched = np.concatenate([run(encoded[i:i + BATCH]) for i in range(0, n, BATCH)])
    diff = np.abs(alone - batched).max(axis=1)
    return {"texts": n, "max_abs_dp": float(diff.max()), "texts_differing": int((diff > 0).sum())}


def main():
    model_dir, path = sys.argv[1], sys.argv[2]
    pipeline = json.load(open(os.path.join(model_dir, "pipeline.json")))
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.enable_truncation(pipeline["max_tokens"])
    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
    encoded = [tokenizer.encode(pipeline["prefix"] + preprocess_tweet(t, lang="es")).ids for t in texts]
    pad = json.load(open(os.path.join(model_dir, "config.json"))).get("pad_token_id", 1)
    cores = len(os.sched_getaffinity(0))
    print(json.dumps({"texts": len(texts), "cores": cores, "mean_tokens": float(np.mean([len(e) for e in encoded])),
                      "one_text_per_run_texts_per_s": per_core_rate(model_dir, encoded, cores),
                      "batched_texts_per_s": batched_rate(model_dir, encoded, cores, pad),
                      "batched_vs_alone": batch_effect(model_dir, encoded, pad)}))


if __name__ == "__main__":
    main()
