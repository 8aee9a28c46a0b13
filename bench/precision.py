"""make bench-precision: every recipe of model/precision.py measured where it matters (issue #21).

1. Fidelity, on the three trained checkpoints of tests/pysentimiento/make_trained.py (a real
   pretrained BERT, fine-tuned): each recipe's model directory, built as `make model HF_MODEL=`
   builds it (export, quantize, model/import_model.py's install), is served by the Rust binary
   (`sentimiento predict`) on check.py's 440 texts and compared with pysentimiento 0.7.3's own
   analyzer at fp32 (computed once per checkpoint, check.py's code): label agreement (words for
   the token classifier), max |dp|; then a text alone against the same text in a padded batch of 16
   (ONNX Runtime from Python on the served graph: the server runs one text per run); model files.
2. Speed and memory, for the recipes given by --serve, on the RoBERTuito-sized checkpoint
   (RoBERTa-base shape, random weights: bench/models_memory.py's): `sentimiento serve` cold start
   (exec to first answer, median of 3), peak RSS after 1,000 requests, warm p50 at one vCPU and at a
   512 MB function's 0.29 vCPU (cgroup v1 cpu quota, 512 MB memory limit, requests one CFS period
   apart as bench/lambda_sim.py does), and how many such models fit Lambda's 250 MiB unzipped
   package beside the binary and libonnxruntime.so.

Calibration texts of the static recipes: evomsa's tweets (not the evaluation texts).

    python bench/precision.py BIN WORK WHEEL EVOMSA_SDIST CACHE [--recipes A,B] [--serve A,B]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "model"), str(ROOT / "tests/pysentimiento"), str(ROOT / "bench")]
import check  # noqa: E402
import convert  # noqa: E402
import import_model  # noqa: E402
import make_trained  # noqa: E402
import precision  # noqa: E402

TASKS = {"sentiment-es": "sentiment", "hate_speech-es": "hate_speech", "ner-es": "ner"}
LANG = "es"
CALIBRATION_TEXTS = 200
BATCH = 16
BATCH_TEXTS = 64
LAMBDA_ZIP_MIB = 250
REQUESTS = 1000
WARM = 60


def calibration(tokenizer, names, task, evomsa):
    """Feeds from evomsa's tweets, preprocessed as the analyzer does (words for a token task)."""
    from pysentimiento.preprocessing import preprocess_tweet
    rows = make_trained.tweets(evomsa)[-CALIBRATION_TEXTS:]
    if task in import_model.WORD_TASKS:
        from spacy.lang.es import Spanish
        split = Spanish().tokenizer
        items = [[w.text for w in split(preprocess_tweet(r["text"], lang=LANG, preprocess_handles=False))] for r in rows]
    else:
        items = [preprocess_tweet(r["text"], lang=LANG) for r in rows]
    return precision.as_feeds([convert.encode(tokenizer, i, return_tensors="np") for i in items], names)


def prepare(src, task, work, evomsa):
    """fp32 export, tokenizer.json and config.json in work/ (as convert.py does), and calibration."""
    work.mkdir(parents=True, exist_ok=True)
    config, model = convert.read_checkpoint(str(src), task)
    tokenizer, _ = convert.tokenizer_json(str(src), work, convert.check_inputs(task, LANG)[:20])
    config.save_pretrained(work)
    names = convert.export(model, tokenizer, work / "fp32.onnx", task in import_model.WORD_TASKS)
    return tokenizer, names, calibration(tokenizer, names, task, evomsa)


def build(recipe, work, task, feeds, out):
    """The recipe's model directory in out/<task>/es, as make model would install it."""
    served = precision.quantize(work / "fp32.onnx", work / f"{recipe}.onnx", recipe, feeds)
    config = json.loads((work / "config.json").read_text())
    pipeline = import_model.pipeline(recipe, task, LANG, config)
    import_model.install(served, work, out / task / LANG, pipeline)
    return out / task / LANG


def files_mb(model_dir):
    return sum(p.stat().st_size for p in model_dir.iterdir() if p.name.startswith("model.onnx")) / 1e6


def batch_vs_alone(model_dir, tokenizer, names, items, words, multi_label):
    encodings = [convert.encode(tokenizer, i) for i in items]
    return precision.batch_vs_alone(model_dir / "model.onnx", encodings, names, tokenizer.pad_token_id or 0, words,
                                    multi_label, BATCH)


def reference(trained, name, task, inputs, base):
    """pysentimiento's answers, computed once per checkpoint (cached in base/reference.json)."""
    cached = base / "reference.json"
    if not cached.exists():
        partial = cached.with_suffix(".partial")
        partial.write_text(json.dumps(check.reference(trained / name, task, LANG, inputs)))
        partial.replace(cached)
    return json.loads(cached.read_text())


def fidelity(binary, trained, recipes, work, evomsa):
    """Recipe by recipe (the first ones are measured on every checkpoint before the next starts)."""
    inputs = check.texts()
    ready = {}
    for name, task in TASKS.items():
        base = work / name
        tokenizer, names, feeds = prepare(trained / name, task, base, evomsa)
        want = reference(trained, name, task, inputs, base)
        words = task in import_model.WORD_TASKS
        items = [w["tokens"] if words else w["sentence"] for w in want[:BATCH_TEXTS]]
        ready[name] = (task, base, tokenizer, names, feeds, want, items, words)
    rows = []
    for recipe in recipes:
        for name, (task, base, tokenizer, names, feeds, want, items, words) in ready.items():
            started = time.monotonic()
            try:
                model_dir = build(recipe, base, task, feeds, base / "recipes" / recipe)
                got = check.served(binary, base / "recipes" / recipe, task, LANG, inputs)
            except Exception as e:  # a recipe ONNX Runtime (or the server) cannot run: say so, go on
                rows.append({"checkpoint": name, "recipe": recipe, "error": str(e)[:300]})
                print(f"{name} {recipe}: failed: {str(e)[:300]}", flush=True)
                continue
            figures = check.compare(name, task, recipe, want, got, (0.0, float("inf")))
            row = {"checkpoint": name, "recipe": recipe, "agreement": figures["agreement"], "max_dp": figures["max_dp"],
                   "batch_vs_alone": batch_vs_alone(model_dir, tokenizer, names, items, words, task == "hate_speech"),
                   "files_mb": files_mb(model_dir), "seconds": time.monotonic() - started}
            rows.append(row)
            print(json.dumps(row), flush=True)
            save(work.parent / "results.json", "fidelity", [row])
    return rows


def roberta(work):
    """bench/models_memory.py's RoBERTuito-sized checkpoint (random weights), built once."""
    import models_memory
    models_memory.checkpoint(work / "checkpoint")
    return work / "checkpoint"


def serve(binary, model_dir, env=None, group=None):
    from rss import free_port
    port = free_port()
    command = [binary, "serve"]
    if group:
        command = group.wrap(command)
    proc = subprocess.Popen(command, env=dict(os.environ, **(env or {}), MODEL_DIR=str(model_dir), PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def stop(proc):
    proc.terminate()
    proc.wait()


def cold_start(binary, model_dir, text):
    from lambda_sim import first_answer
    times = []
    for _ in range(3):
        proc, port = serve(binary, model_dir, {"SENTIMIENTO_EAGER": "0"})
        try:
            times.append(first_answer(proc, port, text))
        finally:
            stop(proc)
    return statistics.median(times)


def rss_after(binary, model_dir, texts):
    from lambda_sim import first_answer, post
    from rss import memory
    proc, port = serve(binary, model_dir)
    try:
        first_answer(proc, port, texts[0])
        for i in range(REQUESTS):
            post(port, {"text": texts[i % len(texts)]})
        return memory(proc.pid)["VmHWM"]
    finally:
        stop(proc)


def warm_p50(binary, model_dir, texts, vcpu, mb):
    """Median latency of WARM one-tweet requests, one CFS period apart, in a cgroup with that share."""
    from lambda_sim import PACE_S, Group, first_answer, post
    group = Group(f"precision-{vcpu}", mb)
    group.share(vcpu)
    proc, port = serve(binary, model_dir, {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(mb)}, group)
    try:
        first_answer(proc, port, texts[0])
        times = []
        for i in range(WARM):
            time.sleep(PACE_S)
            started = time.perf_counter()
            if post(port, {"text": texts[i % len(texts)]}) != 200:
                raise RuntimeError("a warm request failed")
            times.append((time.perf_counter() - started) * 1e3)
        return statistics.median(times), group.peak_mib(), group.limit_hits()
    finally:
        stop(proc)
        group.remove()


def speed(binary, recipes, work, evomsa):
    import run
    texts = run.tweets(evomsa)
    checkpoint = roberta(work)
    base = work / "converted"
    tokenizer, names, feeds = prepare(checkpoint, "sentiment", base, evomsa)
    fixed = ROOT.joinpath("lib/libonnxruntime.so").stat().st_size + pathlib.Path(binary).stat().st_size
    rows = []
    for recipe in recipes:
        model_dir = build(recipe, base, "sentiment", feeds[:50], base / "recipes" / recipe)
        mb = files_mb(model_dir)
        row = {"recipe": recipe, "files_mb": mb, "cold_start_ms": cold_start(binary, model_dir, texts[0]),
               "peak_rss_mib_after_1000": rss_after(binary, model_dir, texts)}
        row["warm_p50_ms_1vcpu"], _, _ = warm_p50(binary, model_dir, texts, 1.0, 1769)
        row["warm_p50_ms_0.29vcpu"], row["group_peak_mib_512"], row["limit_hits_512"] = \
            warm_p50(binary, model_dir, texts, 512 / 1769, 512)
        row["fit_in_250_mib"] = int((LAMBDA_ZIP_MIB * 2**20 - fixed) // (mb * 1e6))
        rows.append(row)
        print(json.dumps(row), flush=True)
        save(work.parent / "results.json", "speed", [row])
    return rows


def save(results, part, rows):
    """Adds rows to results.json, replacing earlier rows of the same (checkpoint, recipe): several
    runs (fidelity and speed apart, or recipes split) may write it."""
    saved = json.loads(results.read_text()) if results.exists() else {}
    mine = {(r.get("checkpoint"), r["recipe"]) for r in rows}
    saved[part] = [r for r in saved.get(part, []) if (r.get("checkpoint"), r["recipe"]) not in mine] + rows
    saved["machine"] = {"cpu": subprocess.run(["sh", "-c", "lscpu | grep 'Model name'"], capture_output=True,
                                              text=True).stdout.split(":")[-1].strip(), "load": os.getloadavg()}
    partial = results.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(saved, indent=1) + "\n")
    partial.replace(results)


def table(fid, spd):
    by = {}
    for r in fid:
        by.setdefault(r["recipe"], {})[r["checkpoint"]] = r
    lines = ["| recipe | " + " | ".join(f"{c}: agree / max dp / batch dp" for c in TASKS) + " | files MB (MiniLM) |",
             "|---|" + "---|" * (len(TASKS) + 1)]
    for recipe, cells in by.items():
        out = []
        for c in TASKS:
            r = cells.get(c)
            out.append("not measured" if r is None else "failed" if "error" in r else
                       f"{r['agreement']:.2%} / {r['max_dp']:.3f} / {r['batch_vs_alone']:.2g}")
        mb = next((r["files_mb"] for r in cells.values() if "files_mb" in r), float("nan"))
        lines.append(f"| {recipe} | " + " | ".join(out) + f" | {mb:.1f} |")
    if spd:
        lines += ["", "| recipe (RoBERTuito-sized) | files MB | cold start ms | peak RSS MiB after 1,000 | warm p50 ms 1 vCPU |"
                  " warm p50 ms 0.29 vCPU | 512 MB group peak MiB / limit hits | fit in 250 MiB |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in spd:
            lines.append(f"| {r['recipe']} | {r['files_mb']:.0f} | {r['cold_start_ms']:.0f} | "
                         f"{r['peak_rss_mib_after_1000']:.0f} | {r['warm_p50_ms_1vcpu']:.1f} | "
                         f"{r['warm_p50_ms_0.29vcpu']:.1f} | {r['group_peak_mib_512']:.0f} / {r['limit_hits_512']} | "
                         f"{r['fit_in_250_mib']} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("work")
    p.add_argument("wheel")
    p.add_argument("evomsa")
    p.add_argument("cache")
    p.add_argument("--recipes", default=",".join(precision.RECIPES))
    p.add_argument("--serve", default="")
    args = p.parse_args()
    import torch
    torch.set_num_threads(1)  # pysentimiento's reference: one thread, as the server's texts run
    work = pathlib.Path(args.work).resolve()
    results = work / "results.json"
    recipes = [r for r in args.recipes.split(",") if r]
    if recipes:
        trained = make_trained.build(args.wheel, args.evomsa, args.cache)
        fidelity(args.binary, trained, recipes, work / "trained", args.evomsa)
    served = [r for r in args.serve.split(",") if r]
    if served:
        speed(args.binary, served, work / "roberta", args.evomsa)
    saved = json.loads(results.read_text()) if results.exists() else {}
    print(table(saved.get("fidelity", []), saved.get("speed", [])))


if __name__ == "__main__":
    main()
