"""The Python onnxruntime baseline of make bench-bulk: the function's int8 model file scored from
Python as fast as we could make it — pysentimiento's preprocessing, the tokenizers library,
batches of 32 texts sorted by length (little padding), every core to ONNX Runtime's threads.
Prints one JSON line: texts/s and peak RSS.

    python bench/bulk_ort.py MODEL_DIR INPUT.jsonl
"""
import json
import os
import resource
import sys
import time

import numpy as np
import onnxruntime as ort
from pysentimiento.preprocessing import preprocess_tweet
from tokenizers import Tokenizer

BATCH = 32


def main():
    model_dir, path = sys.argv[1], sys.argv[2]
    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
    started = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count()
    session = ort.InferenceSession(os.path.join(model_dir, "model.onnx"), options, providers=["CPUExecutionProvider"])
    wants_types = "token_type_ids" in {i.name for i in session.get_inputs()}
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.enable_truncation(128)
    pad = json.load(open(os.path.join(model_dir, "config.json"))).get("pad_token_id", 1)
    tokenizer.enable_padding(pad_id=pad)
    encoded = [tokenizer.encode(preprocess_tweet(t, lang="es")).ids for t in texts]
    order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
    labels = [None] * len(texts)
    for start in range(0, len(order), BATCH):
        chunk = order[start:start + BATCH]
        width = max(len(encoded[i]) for i in chunk)
        ids = np.full((len(chunk), width), pad, np.int64)
        mask = np.zeros_like(ids)
        for row, i in enumerate(chunk):
            ids[row, :len(encoded[i])] = encoded[i]
            mask[row, :len(encoded[i])] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if wants_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        logits = session.run(None, feed)[0]
        for row, i in enumerate(chunk):
            labels[i] = int(logits[row].argmax())
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"texts": len(texts), "texts_per_s": len(texts) / seconds, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
