"""The pysentimiento baseline of make bench-bulk: pysentimiento 0.7.3's own analyzer on a local
checkpoint, `analyzer.predict(list)` (its batched path: Trainer, batch size 32, PyTorch fp32).
Prints one JSON line: texts/s (model loading included, as for the other scorers) and peak RSS.

    python bench/bulk_pysentimiento.py CHECKPOINT INPUT.jsonl
"""
import json
import resource
import sys
import time


def main():
    checkpoint, path = sys.argv[1], sys.argv[2]
    texts = [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
    started = time.perf_counter()
    from pysentimiento import create_analyzer
    analyzer = create_analyzer(task="sentiment", lang="es", model_name=checkpoint)
    outputs = analyzer.predict(texts)
    seconds = time.perf_counter() - started
    assert len(outputs) == len(texts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"texts": len(texts), "texts_per_s": len(texts) / seconds, "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()
