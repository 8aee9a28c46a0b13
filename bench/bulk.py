"""make bench-bulk: bulk scoring of tweet-like Spanish texts, the function's streaming CLI against
pysentimiento's own analyzer and a Python onnxruntime script, on the same cores; prints the table
and writes it into BENCHMARKS.md ("Bulk scoring") and bench/build/bulk/results.json.

- texts: a seeded generator recombines the 1,000 tweets of evomsa 2.0.14 (halves of two tweets,
  with handles, hashtags, URLs, emoji and laughter added) into 100,000 lines {"id", "text"};
- rate: texts/s over the first --n lines, for `sentimiento predict --workers 1` and `2`, on the
  default model and on a RoBERTuito-sized checkpoint converted to int8 (bench/models_memory.py's);
  the baselines on that checkpoint: pysentimiento 0.7.3's analyzer.predict(list) (PyTorch fp32,
  its default batch size of 32) and onnxruntime from Python on the same int8 file (batches of 32
  sorted by length, all cores to ONNX Runtime: the fastest script we found);
- ceiling: ONNX Runtime alone on that int8 file with the token ids computed beforehand
  (bench/bulk_floor.py), one text per run in a process per core and in sorted batches of 32: what
  this CPU computes when nothing else is done, against which the 10x target is set;
- memory: the process's peak RSS for 100,000 and 1,000,000 lines (the 100,000 repeated), on the
  tiny test model so that a million lines take seconds: the pipeline must not grow with the input.

    python bench/bulk.py --rust BIN --evomsa SDIST --checkpoint DIR --converted DIR [--n 3000]
"""
import argparse
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import tarfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "bench/build/bulk"
LINES = 100_000
EMOJI = ["😍", "😂", "🙄", "😡", "❤️", "👏", "😢", "🔥", "🤔", "💪"]
EXTRAS = ["jajaja", "jajajajaja", "!!!", "...", "😂😂😂", "xD"]


def tweets(sdist):
    with tarfile.open(sdist) as tar:
        lines = tar.extractfile("evomsa-2.0.14/EvoMSA/tests/tweets.json").read().decode().splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def generate(sdist, path, n=LINES, seed=20261128):
    """n tweet-like texts: the start of one tweet, the end of another, and a few tweet things."""
    rng = random.Random(seed)
    pool = tweets(sdist)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            a, b = rng.choice(pool).split(), rng.choice(pool).split()
            words = a[: max(1, len(a) // 2)] + b[len(b) // 2:]
            for _ in range(rng.randint(0, 3)):
                thing = rng.choice([f"@usuario{rng.randint(1, 999)}", f"#Tema{rng.randint(1, 99)}",
                                    "https://t.co/abc" + str(rng.randint(0, 9999)), rng.choice(EMOJI),
                                    rng.choice(EXTRAS)])
                words.insert(rng.randint(0, len(words)), thing)
            out.write(json.dumps({"id": i, "text": " ".join(words)}, ensure_ascii=False) + "\n")


def head(path, n, out):
    with path.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for _, line in zip(range(n), src):
            dst.write(line)


CPU_CGROUP = pathlib.Path("/sys/fs/cgroup/cpu")
LAMBDA_512_SHARE = 0.29  # 512 MB / 1,769 MB per vCPU


def cpu_share(command, share):
    """command inside a cgroup v1 CPU quota of `share` of one core, as a 512 MB Lambda gets."""
    group = CPU_CGROUP / f"sentimiento-bulk-{os.getpid()}"
    group.mkdir(exist_ok=True)
    (group / "cpu.cfs_period_us").write_text("100000")
    (group / "cpu.cfs_quota_us").write_text(str(int(100000 * share)))
    return ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *command], group


def timed_rust(binary, model, workers, input_path, output_path, share=None, threads=1):
    """(texts/s, peak RSS MiB) of one `sentimiento predict` run, measured by GNU time."""
    env = dict(os.environ, MODEL_DIR=str(model), RUST_LOG="warn", SENTIMIENTO_THREADS=str(threads))
    command = ["/usr/bin/time", "-f", "%M", binary, "predict", "--workers", str(workers),
               "--input", str(input_path), "--output", str(output_path)]
    group = None
    if share:
        command, group = cpu_share(command, share)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if group:
        group.rmdir()
    if done.returncode not in (0, 1):
        sys.exit(f"sentimiento predict failed: {done.stderr[-500:]}")
    lines = sum(1 for _ in output_path.open())
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return lines / seconds, peak_kib / 1024


def python_baseline(script, *args):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{script} failed: {done.stderr[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_benchmarks(rows, memory_rows, batch_effect, args):
    lines = ["## Bulk scoring (`make bench-bulk`)", "",
             f"Tweet-like Spanish texts from `bench/bulk.py`'s seeded generator; rates over the first {args.n:,};",
             f"{os.cpu_count()} cores. Baselines on the same RoBERTuito-sized checkpoint (random weights):",
             "pysentimiento 0.7.3's `analyzer.predict(list)` (PyTorch fp32, batch 32) and onnxruntime from Python",
             "on the function's int8 file (batches of 32 sorted by length, every core to ONNX Runtime).",
             "The two \"ONNX Runtime alone\" rows are the ceiling: session.run on token ids computed beforehand",
             "(bench/bulk_floor.py), no preprocessing, tokenizing, JSON or output; no peak RSS taken.",
             f"Batching moves the answers: of {batch_effect['texts']} texts run alone and in batches of 32, "
             f"{batch_effect['texts_differing']} got other",
             f"probabilities (max |dp| {batch_effect['max_abs_dp']:.2g}): the int8 graph quantizes a run's activations "
             "with one scale per tensor, which a batch's texts share.", "",
             "| model | scorer | texts/s | peak RSS MiB |", "|---|---|---|---|"]
    lines += [f"| {m} | {s} | {r:.1f} | {'' if p is None else f'{p:.0f}'} |" for m, s, r, p in rows]
    lines += ["", "Peak RSS of `sentimiento predict --workers 2` by input size (tiny test model, so the figure is",
              "the pipeline's own):", "", "| lines | peak RSS MiB | texts/s |", "|---|---|---|"]
    lines += [f"| {n:,} | {p:.1f} | {r:,.0f} |" for n, p, r in memory_rows]
    section = "\n".join(lines) + "\n"
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    pattern = r"## Bulk scoring \(`make bench-bulk`\).*?(?=\n## |\Z)"
    if re.search(pattern, text, flags=re.S):  # in place, so that the sections keep their order
        text = re.sub(pattern, lambda _: section, text, count=1, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rust", required=True)
    p.add_argument("--evomsa", required=True)
    p.add_argument("--checkpoint", required=True, help="RoBERTuito-sized Hugging Face checkpoint")
    p.add_argument("--converted", required=True, help="its int8 model directory")
    p.add_argument("--n", type=int, default=3000)
    args = p.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    texts = WORK / "tweets-100k.jsonl"
    if not texts.exists():
        generate(args.evomsa, texts)
    sample = WORK / f"tweets-{args.n}.jsonl"
    head(texts, args.n, sample)
    out = WORK / "out.jsonl"

    rows = []
    for label, model in (("default (e5-small)", ROOT / "model"), ("RoBERTuito-sized int8", pathlib.Path(args.converted))):
        # Two ways to use two cores: two workers (sessions sharing pre-packed weights), or one worker
        # whose session runs each text on two threads.
        for workers, threads in ((1, 1), (2, 1), (1, 2)):
            rate, peak = timed_rust(args.rust, model, workers, sample, out, threads=threads)
            scorer = f"sentimiento predict --workers {workers}" + (f", {threads} ONNX threads" if threads > 1 else "")
            rows.append((label, scorer, rate, peak))
            print(rows[-1], flush=True)
    lambda_rates = {}
    if os.access(CPU_CGROUP, os.W_OK):
        share_sample = WORK / "tweets-500.jsonl"
        head(texts, 500, share_sample)
        for label, model in (("default (e5-small)", ROOT / "model"), ("RoBERTuito-sized int8", pathlib.Path(args.converted))):
            rate, peak = timed_rust(args.rust, model, 1, share_sample, out, share=LAMBDA_512_SHARE)
            lambda_rates[label] = rate
            rows.append((label, "sentimiento predict --workers 1 at 0.29 vCPU (a 512 MB Lambda)", rate, peak))
            print(rows[-1], flush=True)
    onnx = python_baseline("bulk_ort.py", args.converted, sample)
    rows.append(("RoBERTuito-sized int8", "Python onnxruntime", onnx["texts_per_s"], onnx["peak_rss_mib"]))
    print(rows[-1], flush=True)
    ceiling = python_baseline("bulk_floor.py", args.converted, sample)
    rows.append(("RoBERTuito-sized int8", "ONNX Runtime alone, one text per run, a process per core",
                 ceiling["one_text_per_run_texts_per_s"], None))
    rows.append(("RoBERTuito-sized int8", "ONNX Runtime alone, sorted batches of 32, a thread per core",
                 ceiling["batched_texts_per_s"], None))
    print(rows[-2:], ceiling["batched_vs_alone"], flush=True)
    torch = python_baseline("bulk_pysentimiento.py", args.checkpoint, sample)
    rows.append(("RoBERTuito-sized fp32", "pysentimiento analyzer.predict (PyTorch)", torch["texts_per_s"],
                 torch["peak_rss_mib"]))
    print(rows[-1], flush=True)

    million = WORK / "tweets-1m.jsonl"
    if not million.exists():
        with million.open("w", encoding="utf-8") as dst:
            for _ in range(10):
                dst.write(texts.read_text(encoding="utf-8"))
    memory_rows = []
    for n, path in ((LINES, texts), (10 * LINES, million)):
        rate, peak = timed_rust(args.rust, ROOT / "tests/fixtures/tiny", 2, path, out)
        memory_rows.append((n, peak, rate))
        print(memory_rows[-1], flush=True)
    out.unlink()
    (WORK / "results.json").write_text(json.dumps({"rates": rows, "memory": memory_rows, "lambda_512": lambda_rates,
                                                  "batched_vs_alone": ceiling["batched_vs_alone"]},
                                                  indent=1) + "\n")
    write_benchmarks(rows, memory_rows, ceiling["batched_vs_alone"], args)


if __name__ == "__main__":
    main()
