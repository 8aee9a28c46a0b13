"""Lambda simulation (make bench-lambda, part of make bench): each service runs in a cgroup v1 with
the CPU share and memory of a Lambda function (vCPU = memory / 1,769 MB: 512 MB gets 0.29 of a
core, 1,769 MB one core; cpu.cfs_quota_us over a 100 ms period, memory.limit_in_bytes), and is
measured as a function would be:

- cold start: process start to the first answered POST /predict (median of COLD_RUNS, page cache
  warm), and once more after dropping the page cache (the disk read included);
- warm latency p50/p99 over WARM requests of one tweet, each after a quiet CFS period (an idle
  instance's request), and one 64-text batch (throughput once the quota is the limit);
- the group's peak memory (page cache charged to it included, as Lambda counts it) and the
  process's peak RSS.

Stacks:
- the Rust server with Lambda's environment (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, so its model budget
  is a function's): lazy (model on the first request), eager (SENTIMIENTO_EAGER=1, the template's
  default), and without weight pre-packing (SENTIMIENTO_PREPACK=0);
- the Python onnxruntime service (bench/python_service.py) on the same ONNX file, lazy as the seed
  configured it, and eager (EAGER=1);
- the seed's own stack (bench/seed_service.py: FastAPI + pysentimiento + PyTorch) on the checkpoint
  the RoBERTuito-shaped ONNX file was converted from.

An eager stack loads its model in Lambda's init phase, which AWS runs on a full vCPU for an
on-demand function whatever its memory (AWS's Lambda guide, "Utilize initialization phase"): its
group starts with one core's quota, and gets the memory's share once the service listens (both
servers load an eager model before they listen), before its first request.

Writes bench/build/lambda/results.json and the "Lambda simulation" section of BENCHMARKS.md.
Needs root (cgroups). A stack that does not answer within START_TIMEOUT_S, or dies, is reported
as failed, with the group's memory limit hits.

    python bench/lambda_sim.py --rust BIN --ort-venv V --torch-venv V --evomsa SDIST \
        --models default=model roberta=DIR --checkpoint CKPT
"""
import argparse
import http.client
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import drop_page_cache, tweets  # noqa: E402
from rss import free_port, memory  # noqa: E402

SIZES_MB = (512, 1769)
MB_PER_VCPU = 1769
PERIOD_US = 100_000
COLD_RUNS = 3
WARM = 100
# Warm requests are spaced by one CFS period, so that each starts with the quota of a fresh period,
# as a request to an idle instance does; back to back they would measure throughput (the batch does).
PACE_S = PERIOD_US / 1e6
# A start that takes longer is reported as failed (Lambda's own init limit is 10 s).
START_TIMEOUT_S = 300
# Public Lambda prices (x86, us-east-1): per GB-second and per million requests.
GB_SECOND_USD = 0.0000166667
REQUEST_USD_PER_MILLION = 0.20
CGROUP = "/sys/fs/cgroup"
OUT = Path("bench/build/lambda")


class Group:
    """A fresh cpu + memory cgroup with a function's share; `wrap` starts a command inside it."""

    def __init__(self, name, mb):
        self.dirs = {kind: Path(CGROUP, kind, f"sentimiento-lambda-{name}-{os.getpid()}") for kind in ("cpu", "memory")}
        for d in self.dirs.values():
            d.mkdir()
        (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        self.share(mb / MB_PER_VCPU)
        (self.dirs["memory"] / "memory.limit_in_bytes").write_text(str(mb * 2**20))

    def share(self, vcpu):
        quota = int(PERIOD_US * min(vcpu, 2.0))
        (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))

    def wrap(self, command):
        enter = " && ".join(f"echo $$ > {d}/cgroup.procs" for d in self.dirs.values())
        return ["sh", "-c", f'{enter} && exec "$@"', "sh", *command]

    def peak_mib(self):
        return int((self.dirs["memory"] / "memory.max_usage_in_bytes").read_text()) / 2**20

    def limit_hits(self):
        return int((self.dirs["memory"] / "memory.failcnt").read_text())

    def remove(self):
        for d in self.dirs.values():
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def post(port, body, timeout=600):
    """The status of one POST /predict; raises OSError when the connection fails."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("POST", "/predict", json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def first_answer(proc, port, text, timeout=START_TIMEOUT_S):
    """ms from now until POST /predict answers 200; None if the process died first."""
    started = time.perf_counter()
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return None
        try:
            status = post(port, {"text": text}, timeout=max(deadline - time.time(), 0.1))
        except OSError:  # not listening yet, or the deadline passed mid-request
            time.sleep(0.005)
            continue
        if status != 200:
            raise RuntimeError(f"{proc.args} answered {status} to its first request")
        return (time.perf_counter() - started) * 1e3
    raise RuntimeError(f"{proc.args} did not answer within {timeout} s")


def listening(proc, port, timeout=START_TIMEOUT_S):
    """Waits until the port takes a connection (no request sent); False if the process died first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"{proc.args} did not listen within {timeout} s")


def start(stack, mb, env, log=subprocess.DEVNULL):
    """The stack's process inside a fresh group; returns (proc, port, group, cold start ms)."""
    port = free_port()
    group = Group(stack["name"], mb)
    if stack.get("init_phase"):  # Lambda's init phase: a full vCPU until the service is ready
        group.share(1.0)
    command = [c.replace("{port}", str(port)) for c in stack["command"]]
    # What Lambda sets: the function's model budget follows its memory size.
    lambda_env = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(mb)} if stack["name"].startswith("rust") else {}
    started = time.perf_counter()
    proc = subprocess.Popen(group.wrap(command), env=dict(env, **stack["env"], **lambda_env, PORT=str(port)),
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        if stack.get("init_phase") and listening(proc, port):
            group.share(mb / MB_PER_VCPU)
        answered = first_answer(proc, port, "Me encanta este día, qué genial")
    except RuntimeError:
        stop(proc, group)
        raise
    if answered is None:
        hits = group.limit_hits()
        stop(proc, group)
        raise RuntimeError(f"died (exit {proc.returncode}) before its first answer; memory limit hit {hits} times")
    return proc, port, group, (time.perf_counter() - started) * 1e3


def stop(proc, group):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    group.remove()


def stages(log_path):
    """Where the Rust server's cold start went, from its own log lines (model_loaded, first_run);
    None for the other stacks."""
    found = {}
    for line in log_path.read_text(errors="replace").splitlines():
        fields = json.loads(line).get("fields", {}) if line.startswith("{") else {}
        if fields.get("event") == "model_loaded":
            found.update({k[:-3]: fields[k] for k in ("preprocessor_ms", "library_ms", "tokenizer_ms", "session_ms", "load_ms")})
        elif fields.get("event") == "first_run" and "first_run" not in found:
            found["first_run"] = round(fields["ms"], 1)
    return found or None


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(stack, mb, texts, env):
    try:
        return measured(stack, mb, texts, env)
    except (RuntimeError, OSError) as e:
        return {"failed": str(e)}


def measured(stack, mb, texts, env):
    colds = []
    for _ in range(COLD_RUNS):
        proc, _, group, cold = start(stack, mb, env)
        stop(proc, group)
        colds.append(cold)
    drop_page_cache()
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"{stack['name']}-{mb}.log"
    with open(log_path, "w") as log:
        proc, port, group, cold_dropped = start(stack, mb, env, log)
    try:
        times = []
        for text in texts[:WARM]:
            time.sleep(PACE_S)
            started = time.perf_counter()
            if post(port, {"text": text}) != 200:
                return {"failed": "a warm request failed"}
            times.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        try:
            batch_status = post(port, {"texts": texts[:64]})
        except OSError:  # killed mid-batch
            batch_status = None
        batch_ms = (time.perf_counter() - started) * 1e3
        alive = proc.poll() is None
        rss = memory(proc.pid) if alive else {}
        return {
            "cold_ms": statistics.median(colds), "cold_range_ms": [min(colds), max(colds)],
            "cold_page_cache_dropped_ms": cold_dropped,
            "warm_p50_ms": pct(times, 0.5), "warm_p99_ms": pct(times, 0.99),
            "batch64_ms": batch_ms if batch_status == 200 and alive else None,
            "group_peak_mib": group.peak_mib(), "process_peak_rss_mib": rss.get("VmHWM"),
            "cold_start_stages_ms": stages(log_path),
        }
    finally:
        stop(proc, group)


def cost_per_million(mb, p50_ms):
    """Single-text requests at the warm p50, billed per started millisecond."""
    gb_seconds = mb / 1024 * math.ceil(p50_ms) / 1000 * 1e6
    return gb_seconds * GB_SECOND_USD + REQUEST_USD_PER_MILLION, gb_seconds


def stacks(args, model_dir, with_seed):
    rust = {"MODEL_DIR": model_dir, "ORT_DYLIB_PATH": os.path.abspath("lib/libonnxruntime.so")}
    uvicorn = lambda venv, app: [f"{venv}/bin/uvicorn", app, "--app-dir", "bench", "--port", "{port}",
                                 "--workers", "1", "--loop", "asyncio", "--log-level", "warning"]
    found = [
        {"name": "rust", "label": "Rust, lazy", "command": [args.rust, "serve"], "env": rust},
        {"name": "rust-eager", "label": "Rust, SENTIMIENTO_EAGER=1, init at a full vCPU", "command": [args.rust, "serve"],
         "env": dict(rust, SENTIMIENTO_EAGER="1"), "init_phase": True},
        {"name": "rust-no-prepack", "label": "Rust, SENTIMIENTO_PREPACK=0", "command": [args.rust, "serve"],
         "env": dict(rust, SENTIMIENTO_PREPACK="0")},
        {"name": "python-ort", "label": "Python onnxruntime (FastAPI)", "command": uvicorn(args.ort_venv, "python_service:app"),
         "env": {"MODEL_DIR": model_dir, "OMP_NUM_THREADS": "1"}},
        {"name": "python-ort-eager", "label": "Python onnxruntime (FastAPI), EAGER=1, init at a full vCPU",
         "command": uvicorn(args.ort_venv, "python_service:app"),
         "env": {"MODEL_DIR": model_dir, "OMP_NUM_THREADS": "1", "EAGER": "1"}, "init_phase": True},
    ]
    if with_seed:
        found.append({"name": "seed", "label": "seed: FastAPI + pysentimiento + PyTorch",
                      "command": uvicorn(args.torch_venv, "seed_service:app"),
                      "env": {"CHECKPOINT": args.checkpoint, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}})
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rust", required=True)
    parser.add_argument("--ort-venv", required=True)
    parser.add_argument("--torch-venv", required=True)
    parser.add_argument("--evomsa", required=True)
    parser.add_argument("--models", nargs="+", required=True, help="name=DIR; `roberta` also gets the seed stack")
    parser.add_argument("--checkpoint", required=True, help="the PyTorch checkpoint of the roberta model")
    parser.add_argument("--only", help="measure only the stacks whose name starts with this; keep the "
                        "other figures of the last results.json")
    args = parser.parse_args()
    if not os.access(f"{CGROUP}/cpu", os.W_OK) or not os.access(f"{CGROUP}/memory", os.W_OK):
        sys.exit(f"the Lambda simulation needs writable cgroup v1 cpu and memory controllers under {CGROUP} (root)")
    texts = tweets(args.evomsa)
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_DIR", "PORT")}
    last = json.loads((OUT / "results.json").read_text()) if args.only else {"models": {}}
    results = {"sizes_mb": SIZES_MB, "models": {}}
    for spec in args.models:
        name, model_dir = spec.split("=", 1)
        size = sum(f.stat().st_size for f in Path(model_dir).glob("model.onnx*")) / 2**20
        kept = {(r["stack"], r["memory_mb"]): r for r in last["models"].get(name, {}).get("runs", [])}
        results["models"][name] = {"dir": model_dir, "model_mib": size, "runs": []}
        for stack in stacks(args, model_dir, name == "roberta"):
            for mb in SIZES_MB:
                if args.only and not stack["name"].startswith(args.only) and (stack["label"], mb) in kept:
                    figures = kept[(stack["label"], mb)]
                else:
                    figures = measure(stack, mb, texts, env)
                    figures.update(stack=stack["label"], memory_mb=mb)
                    print(json.dumps({"model": name, **figures}), flush=True)
                results["models"][name]["runs"].append(figures)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    write_section(results)


def row(run):
    if "failed" in run:
        return f"| {run['stack']} | {run['memory_mb']} | {run['failed']} | | | | | |"
    cost, _ = cost_per_million(run["memory_mb"], run["warm_p50_ms"])
    batch = f"{run['batch64_ms'] / 1e3:.2f} s" if run["batch64_ms"] else "failed"
    return (f"| {run['stack']} | {run['memory_mb']} | {run['cold_ms']:.0f} ({run['cold_range_ms'][0]:.0f}-"
            f"{run['cold_range_ms'][1]:.0f}); {run['cold_page_cache_dropped_ms']:.0f} cache dropped | "
            f"{run['warm_p50_ms']:.1f} / {run['warm_p99_ms']:.1f} | {batch} | {run['group_peak_mib']:.0f} | "
            f"{run['process_peak_rss_mib'] or 0:.0f} | ${cost:.2f} |")


def write_section(results):
    lines = [
        "## Lambda simulation",
        "",
        "`make bench-lambda` (part of `make bench`, bench/lambda_sim.py). Each service runs in a cgroup v1 with",
        "the CPU share and memory of a Lambda function: vCPU = memory / 1,769 MB (512 MB: a CPU quota of",
        "29 % of one core; 1,769 MB: one core), memory limit = the memory setting. Cold start: process",
        f"start to the first answered POST /predict, median of {COLD_RUNS} (range), page cache warm; then once",
        f"with the page cache dropped. Warm: {WARM} single tweets, client-side, each after a quiet 100 ms",
        "CFS period (a request to an idle instance); back-to-back requests are throttled by the quota,",
        "which the 64-text batch shows. An eager stack's group has one core's quota until the service",
        "listens (its model loaded), as AWS runs an on-demand function's init phase on a full vCPU, and",
        "the memory's share from its first request on. Group peak: the cgroup's",
        "peak usage, page cache charged to it included. Cost: one million single-text requests at the warm",
        f"p50, billed per started ms: memory/1024 GB x ceil(p50) ms x 1e6 x ${GB_SECOND_USD} per GB-s +",
        f"${REQUEST_USD_PER_MILLION:.2f} per million requests (x86 price; API Gateway's own charge not included).",
        "",
    ]
    for name, model in results["models"].items():
        lines += [f"### {name} ({model['dir']}, {model['model_mib']:.0f} MiB of ONNX)", "",
                  "| stack | memory MB | cold start ms | warm p50 / p99 ms | 64-text batch | group peak MiB | process peak RSS MiB | $ per 1M requests |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [row(run) for run in model["runs"]]
        lines.append("")
        staged = [r for r in model["runs"] if r.get("cold_start_stages_ms")]
        if staged:
            lines += ["Where the Rust server's cold start went (its `model_loaded` and `first_run` log lines, ms; the",
                      "tokenizer loads beside the session; the rest of the cold start is the process start and the request):", "",
                      "| stack | memory MB | preprocessor | library | session | tokenizer | model load in all | first run |",
                      "|---|---|---|---|---|---|---|---|"]
            for r in staged:
                st = r["cold_start_stages_ms"]
                lines.append(f"| {r['stack']} | {r['memory_mb']} | {st.get('preprocessor')} | {st.get('library')} | "
                             f"{st.get('session')} | {st.get('tokenizer')} | {st.get('load')} | {st.get('first_run')} |")
            lines.append("")
    path = Path("BENCHMARKS.md")
    text = path.read_text() if path.exists() else ""
    start = text.find("## Lambda simulation")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + text[end + 1:] if end >= 0 else text[:start]
    path.write_text(text.rstrip() + "\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
