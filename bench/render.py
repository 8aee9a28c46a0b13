"""Render's free instance (make bench-render; docs/render.md): each stack in a cgroup v1 with 512 MB
and a 0.1 CPU quota (cfs_quota_us 10000 per 100000), measured as a user meets it after the
instance spun down:

- start: process start to the first 200 from GET /health (the seed's stack has no such route: its
  first HTTP answer of any kind), and to the first answered POST /predict; median of COLD_RUNS
  with the page cache warm, then once with it dropped (a new instance reads everything from disk);
- warm p50 / p99 over WARM single texts, each after a quiet CFS period (a request to an idle
  instance), and the group's peak memory (page cache charged to it included) and limit hits.

Stacks: the Rust server with render.yaml's environment (SENTIMIENTO_EAGER=1, its memory budget,
a generated API key) on the default model and on a RoBERTuito-shaped one (random weights), and
the seed's own FastAPI + pysentimiento + PyTorch stack (bench/seed_service.py) on that model's
checkpoint. A stack that gives no answer within START_TIMEOUT_S is reported as failed, with the
group's memory limit hits. Writes the "Render free instance" section of BENCHMARKS.md and
bench/build/render/results.json. Needs root (cgroups).

    python bench/render.py --rust BIN --models default=model roberta=DIR --torch-venv V --checkpoint CKPT
"""
import argparse
import http.client
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lambda_sim import Group, pct, stop  # noqa: E402
from rss import TEXTS, free_port  # noqa: E402
from run import drop_page_cache  # noqa: E402

MEMORY_MB = 512
CPU = 0.1
COLD_RUNS = 3
WARM = 50
PACE_S = 0.1  # one CFS period
# Render's own limit for a deploy to pass its health check is minutes; past this one a stack is
# reported as failed (the seed's stack thrashed for 12 minutes at 512 MB in the Lambda simulation).
START_TIMEOUT_S = 300
OUT = Path("bench/build/render")


def request(port, method, path, body=None, headers=None, timeout=START_TIMEOUT_S):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, json.dumps(body) if body is not None else None,
                 {"content-type": "application/json", **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def until(proc, ask, deadline):
    """Polls ask() until it returns True; raises RuntimeError if the process dies or time runs out."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            if ask():
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"no answer within {START_TIMEOUT_S} s")


def first_answer(port, stack, deadline):
    """True once POST /predict answers 200; any other status ends the stack's run."""
    status = request(port, "POST", "/predict", {"text": TEXTS[0]}, stack["headers"],
                     timeout=max(deadline - time.monotonic(), 1))
    if status != 200:
        raise RuntimeError(f"its first POST /predict answered {status}")
    return True


def start(stack):
    """One start in a fresh group: (proc, port, group, ms to healthy, ms to the first answer)."""
    port = free_port()
    group = Group(stack["name"], MEMORY_MB)
    group.share(CPU)
    command = [c.replace("{port}", str(port)) for c in stack["command"]]
    env = dict(os.environ, **stack["env"], PORT=str(port))
    started = time.monotonic()
    proc = subprocess.Popen(group.wrap(command), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = started + START_TIMEOUT_S
    try:
        until(proc, lambda: request(port, "GET", "/health", timeout=5) in stack["healthy"], deadline)
        healthy = (time.monotonic() - started) * 1e3
        until(proc, lambda: first_answer(port, stack, deadline), deadline)
        answered = (time.monotonic() - started) * 1e3
    except RuntimeError as e:
        hits = group.limit_hits()
        stop(proc, group)
        raise RuntimeError(f"{e}; memory limit hit {hits} times") from None
    return proc, port, group, healthy, answered


def measure(stack):
    try:
        return measured(stack)
    except RuntimeError as e:
        return {"failed": str(e)}


def measured(stack):
    starts = []
    for _ in range(stack.get("cold_runs", COLD_RUNS)):
        proc, _, group, healthy, answered = start(stack)
        stop(proc, group)
        starts.append((healthy, answered))
    drop_page_cache()
    proc, port, group, healthy_dropped, answered_dropped = start(stack)
    try:
        times = []
        for i in range(stack.get("warm", WARM)):
            time.sleep(PACE_S)
            began = time.perf_counter()
            if request(port, "POST", "/predict", {"text": TEXTS[i % len(TEXTS)]}, stack["headers"]) != 200:
                return {"failed": "a warm request failed"}
            times.append((time.perf_counter() - began) * 1e3)
        return {
            "healthy_ms": statistics.median(s[0] for s in starts), "answered_ms": statistics.median(s[1] for s in starts),
            "healthy_dropped_ms": healthy_dropped, "answered_dropped_ms": answered_dropped,
            "warm_p50_ms": pct(times, 0.5), "warm_p99_ms": pct(times, 0.99), "group_peak_mib": group.peak_mib(),
            "limit_hits": group.limit_hits(),
        }
    finally:
        stop(proc, group)


def blueprint_env():
    """render.yaml's values, a generated API key, and the user's keys left empty."""
    service = yaml.safe_load(Path("render.yaml").read_text())["services"][0]
    env = {e["key"]: str(e.get("value", "")) for e in service["envVars"]}
    env["SENTIMIENTO_API_KEY"] = secrets.token_urlsafe(32)
    return env


def stacks(args):
    env = blueprint_env()
    rust_env = dict(env, ORT_DYLIB_PATH=os.path.abspath("lib/libonnxruntime.so"))
    key = {"authorization": f"Bearer {env['SENTIMIENTO_API_KEY']}"}
    found = []
    for spec in args.models:
        name, model_dir = spec.split("=", 1)
        found.append({"name": f"rust-{name}", "label": f"Rust, render.yaml, {name} model ({model_dir})",
                      "command": [args.rust, "serve"], "env": dict(rust_env, MODEL_DIR=model_dir),
                      "headers": key, "healthy": {200}})
    # The seed answers 404 to /health (it had no such route) once uvicorn listens; it loads its
    # model on the first request, as it did on Render.
    found.append({"name": "seed", "label": "seed: FastAPI + pysentimiento + PyTorch, roberta checkpoint",
                  "command": [f"{args.torch_venv}/bin/uvicorn", "seed_service:app", "--app-dir", "bench", "--port",
                              "{port}", "--workers", "1", "--loop", "asyncio", "--log-level", "warning"],
                  "env": {"CHECKPOINT": args.checkpoint, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
                  "headers": {}, "healthy": {200, 404}, "cold_runs": 1, "warm": 20})
    return found


def row(label, r):
    if "failed" in r:
        return f"| {label} | failed: {r['failed']} | | | | |"
    s = lambda ms: f"{ms / 1e3:.1f}"
    return (f"| {label} | {s(r['healthy_ms'])} / {s(r['answered_ms'])} | {s(r['healthy_dropped_ms'])} / "
            f"{s(r['answered_dropped_ms'])} | {r['warm_p50_ms']:.0f} / {r['warm_p99_ms']:.0f} | {r['group_peak_mib']:.0f} | "
            f"{r.get('limit_hits', '')} |")


def write_section(results):
    load = os.getloadavg()[0]
    lines = [
        "## Render free instance",
        "",
        f"`make bench-render` (bench/render.py), {time.strftime('%Y-%m-%d')}, load average {load:.1f} on 2 cores",
        "(a busy machine: read the figures as ratios). Each stack in a cgroup v1 of 512 MB with a 0.1 CPU",
        "quota (10 ms per 100 ms period), as Render lists its free instance. Start: process start to the",
        "first 200 from `/health` / to the first answered `POST /predict` (what a user waits after the",
        f"instance spun down), median of {COLD_RUNS} with the page cache warm (the seed: 1), then once",
        "with it dropped. Warm: single texts, each after a quiet 100 ms period. Group peak: the cgroup's",
        "peak usage, page cache included; limit hits: its memory.failcnt (allocations that had to reclaim",
        "first). The roberta model has RoBERTuito's shape with random weights;",
        "the seed's stack has no `/health` (its first answer of any status is counted) and loads the",
        "model on the first request, as it did on Render.",
        "",
        "| stack | start -> healthy / first answer, s | page cache dropped, s | warm p50 / p99 ms | group peak MiB | limit hits |",
        "|---|---|---|---|---|---|",
    ]
    lines += [row(r["label"], r) for r in results]
    path = Path("BENCHMARKS.md")
    text = path.read_text()
    begin = text.find("## Render free instance")
    if begin >= 0:
        end = text.find("\n## ", begin + 1)
        text = text[:begin] + (text[end + 1:] if end >= 0 else "")
    path.write_text(text.rstrip() + "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rust", required=True)
    parser.add_argument("--models", nargs="+", required=True, help="name=DIR")
    parser.add_argument("--torch-venv", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--only", help="measure only the stacks whose name starts with this; keep the others' "
                        "figures from the last results.json")
    args = parser.parse_args()
    if not os.access("/sys/fs/cgroup/cpu", os.W_OK) or not os.access("/sys/fs/cgroup/memory", os.W_OK):
        sys.exit("bench/render.py needs writable cgroup v1 cpu and memory controllers (root)")
    last = {r["label"]: r for r in json.loads((OUT / "results.json").read_text())} if args.only else {}
    results = []
    for stack in stacks(args):
        if args.only and not stack["name"].startswith(args.only) and stack["label"] in last:
            results.append(last[stack["label"]])
            continue
        figures = dict(measure(stack), label=stack["label"])
        print(json.dumps(figures), flush=True)
        results.append(figures)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    write_section(results)


if __name__ == "__main__":
    main()
