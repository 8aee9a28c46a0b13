"""The memory budget under concurrency: four models, 8 clients at once, inside a memory cgroup.

Lays out four copies of the default model as four tasks (MODEL_DIR/<task>/es/, symlinks to its
files), serves them with SENTIMIENTO_MEMORY_MB=200 inside a 512 MB cgroup v1 memory limit (as a
512 MB Lambda function would run), and sends 8 concurrent clients for 20 s, each cycling through
the four tasks. Passes when every request got a 200 (or the 503 `overloaded` that sheds a request
which waited past SENTIMIENTO_QUEUE_TIMEOUT_S, as designed, when a busy machine slows the loads)
and the process's peak anonymous memory (RssAnon, sampled every 10 ms) stayed within the budget
plus ONNX Runtime's base: the library's code and environment, mapped with the first model and not
counted by the budget (~21 MiB measured, registry.rs; 30 MiB allowed). The budget counts what a
load adds to anonymous memory; pages mapped from the model files are clean page cache, which the
kernel takes back under the cgroup's limit, and here the four "models" map one set of files, so
VmRSS counts those pages once per loaded copy (the 8-bit default model keeps its embedding table
mapped: peak VmRSS 228-242 MiB with three copies loaded, printed beside the anonymous peak).
Measured 2026-12-01 on the int8 default model (release builds, a busy 2-core machine): today's main 342-348 MiB, all four models loaded at once; after the fix 198-199
MiB, two loaded at a time, every request answered (148 in 20 s against 1869: with room for two of
four models, clients cycling over all four make most requests a load).

Needs root (a writable cgroup v1 memory controller); skips with a message otherwise. Standard
library only.

    python3 tests/registry_storm.py target/release/sentimiento model
"""
import http.client
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from rss import CGROUP_ROOT, TEXTS, cgroup_figures, free_port, limited, memory, wait_listening  # noqa: E402

TASKS = ["sentiment", "emotion", "hate_speech", "irony"]
BUDGET_MB = 200
ORT_BASE_MB = 30
GROUP_LIMIT_MB = 512
CLIENTS = 8
SECONDS = 20


def layout(model_dir, root):
    """root/<task>/es/ for each task: symlinks to the model's files, pipeline.json naming the task."""
    pipeline = json.loads((model_dir / "pipeline.json").read_text())
    for task in TASKS:
        dst = root / task / "es"
        dst.mkdir(parents=True)
        for f in model_dir.iterdir():
            if f.is_file() and f.name != "pipeline.json":
                (dst / f.name).symlink_to(f.resolve())
        (dst / "pipeline.json").write_text(json.dumps(dict(pipeline, task=task, lang="es")))


def client(port, first, stop, statuses, lock):
    n = first
    while not stop.is_set():
        body = json.dumps({"text": TEXTS[n % len(TEXTS)], "task": TASKS[n % len(TASKS)], "lang": "es"})
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("POST", "/predict", body, {"content-type": "application/json"})
            response = conn.getresponse()
            status, data = response.status, response.read()
            conn.close()
        except OSError as e:
            status, data = f"connection: {e}", b""
        with lock:
            statuses.setdefault(status, []).append(data[:300])
        n += 1


def sample_rss(pid, stop, peak):
    """peak: [VmRSS, RssAnon] maxima, in MiB."""
    while not stop.is_set():
        try:
            now = memory(pid)
            peak[0], peak[1] = max(peak[0], now["VmRSS"]), max(peak[1], now["RssAnon"])
        except (OSError, KeyError):
            return
        time.sleep(0.01)


def health(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read())


def storm(binary, models, log):
    port = free_port()
    command, group = limited([binary, "serve"], GROUP_LIMIT_MB)
    env = dict(os.environ, MODEL_DIR=str(models), PORT=str(port), SENTIMIENTO_MEMORY_MB=str(BUDGET_MB))
    env.setdefault("ORT_DYLIB_PATH", str(ROOT / "lib/libonnxruntime.so"))
    server = subprocess.Popen(command, env=env, stderr=log.open("w"))
    statuses, lock, stop, rss_peak = {}, threading.Lock(), threading.Event(), [0.0, 0.0]
    try:
        wait_listening(port, server)
        # The server's pid is the shell's: the wrapper execs it in place.
        threads = [threading.Thread(target=client, args=(port, i, stop, statuses, lock)) for i in range(CLIENTS)]
        threads.append(threading.Thread(target=sample_rss, args=(server.pid, stop, rss_peak)))
        for t in threads:
            t.start()
        time.sleep(SECONDS)
        stop.set()
        for t in threads:
            t.join(timeout=90)
        hung = [t for t in threads if t.is_alive()]
        mem = memory(server.pid)
        end = health(port)
        group_peak, limit_hits = cgroup_figures(group)
    finally:
        server.terminate()
        server.wait()
        os.rmdir(group)
    lines = log.read_text().splitlines()
    return {
        "statuses": statuses,
        "hung_clients": len(hung),
        "peak_rss_mib": max(mem["VmHWM"], rss_peak[0]),
        "peak_anon_mib": max(mem["RssAnon"], rss_peak[1]),
        "group_peak_mib": group_peak,
        "limit_hits": limit_hits,
        "loads": sum('"model_loaded"' in line for line in lines),
        "unloads": sum('"model_unloaded"' in line for line in lines),
        "loaded_at_end": [f"{m['task']}/{m['lang']}" for m in end["models"] if m["loaded"]],
        "counted_mb_at_end": end["memory"].get("counted_mb"),
        "footprints_mb": {m["task"]: m["memory_mb"] for m in end["models"]},
    }


def main():
    binary, model_dir = sys.argv[1], pathlib.Path(sys.argv[2]).resolve()
    if os.geteuid() != 0 or not os.access(CGROUP_ROOT, os.W_OK):
        print(f"registry_storm: skipped: needs root and a writable cgroup v1 memory controller at {CGROUP_ROOT}")
        return 0
    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        layout(model_dir, work / "models")
        figures = storm(binary, work / "models", work / "serve.log")
    answered = {str(status): len(replies) for status, replies in figures["statuses"].items()}
    limit = BUDGET_MB + ORT_BASE_MB
    print(f"registry_storm: {CLIENTS} clients x {SECONDS} s over {len(TASKS)} models, budget {BUDGET_MB} MB: "
          f"answers {answered}; peak anonymous memory {figures['peak_anon_mib']:.0f} MiB (limit {limit}: budget + "
          f"ONNX Runtime's base {ORT_BASE_MB}), peak RSS {figures['peak_rss_mib']:.0f} MiB; cgroup peak "
          f"{figures['group_peak_mib']:.0f} MiB (page cache included), limit hits {figures['limit_hits']}; {figures['loads']} loads, {figures['unloads']} "
          f"unloads; loaded at the end {figures['loaded_at_end']}, counted {figures['counted_mb_at_end']} MB; "
          f"footprints {figures['footprints_mb']}")
    failures = []
    not_ok = {s: r for s, r in figures["statuses"].items() if s != 200 and not (s == 503 and all(b'"overloaded"' in x for x in r))}
    if not_ok:
        failures.append("answers other than 200 or a shed 503: " + "; ".join(f"{s} x{len(r)} e.g. {r[0]!r}" for s, r in not_ok.items()))
    if 200 not in figures["statuses"]:
        failures.append("no request was answered")
    if figures["hung_clients"]:
        failures.append(f"{figures['hung_clients']} clients never got an answer")
    if figures["peak_anon_mib"] > limit:
        failures.append(f"peak anonymous memory {figures['peak_anon_mib']:.0f} MiB is over {limit} MiB")
    for failure in failures:
        print(f"registry_storm: FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
