"""Hostile soak: normal traffic to `sentimiento serve` while other clients misbehave for STORM_S
seconds: stalled bodies, abandoned 64-text batches, half-sent headers, idle connections and
oversized `Expect: 100-continue` uploads. Prints the figures; exits 1 unless
- normal requests keep succeeding (>= 99 % answered 200, and every oversized upload got its 413),
- RSS returns to within 10 MB of its pre-storm value once the storm is over,
- SIGTERM afterwards ends the process within the drain time (25 s).

    python bench/soak_hostile.py target/release/sentimiento     # MODEL_DIR, ORT_DYLIB_PATH from env
"""
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from rss import TEXTS, free_port, memory, wait_listening  # noqa: E402

STORM_S = 30
MAX_RSS_RETURN_MB = 10.0
DRAIN_S = 25
BATCH = json.dumps({"texts": [TEXTS[i % len(TEXTS)] for i in range(64)]}).encode()


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=15)


def until(stop, action):
    """Repeats action until the storm ends; a refused or reset connection is part of the game."""
    while not stop.is_set():
        try:
            action()
        except OSError:
            time.sleep(0.05)


def stalled_body(port, stop):
    s = connect(port)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"te")
    s.recv(4096)  # the server answers 408 when the body deadline passes
    s.close()


def abandoned_batch(port, stop):
    s = connect(port)
    s.sendall(f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(BATCH)}\r\n\r\n"
              .encode() + BATCH)
    time.sleep(0.05)
    s.close()


def half_headers(port, stop):
    s = connect(port)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty")
    s.recv(4096)  # closed at the header deadline
    s.close()


def idle(port, stop):
    s = connect(port)
    s.recv(4096)  # closed at the header (idle) deadline
    s.close()


def oversized_expect(port, stop, refused):
    s = connect(port)
    s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
              b"Content-Length: 50000000\r\nConnection: close\r\n\r\n")
    answer = s.recv(4096)
    refused.append(answer.startswith(b"HTTP/1.1 413"))
    s.close()
    time.sleep(0.2)


def normal(port, stop, results):
    while not stop.is_set():
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/predict", json.dumps({"text": TEXTS[len(results) % len(TEXTS)]}),
                         {"content-type": "application/json"})
            status = conn.getresponse().status
            conn.close()
        except OSError:
            status = 0
        results.append((status, (time.perf_counter() - started) * 1e3))


def main():
    binary = sys.argv[1]
    port = free_port()
    server = subprocess.Popen([binary, "serve"], env=dict(os.environ, PORT=str(port)), stderr=subprocess.DEVNULL)
    stop, results, refused = threading.Event(), [], []
    try:
        wait_listening(port, server)
        warm = []
        warm_stop = threading.Event()
        warm_thread = threading.Thread(target=normal, args=(port, warm_stop, warm))
        warm_thread.start()
        time.sleep(5)
        warm_stop.set()
        warm_thread.join()
        before = memory(server.pid)["VmRSS"]
        workers = [threading.Thread(target=normal, args=(port, stop, results)) for _ in range(2)]
        hostile = [(stalled_body, 20), (abandoned_batch, 8), (half_headers, 20), (idle, 50)]
        for action, count in hostile:
            workers += [threading.Thread(target=until, args=(stop, lambda a=action: a(port, stop)))
                        for _ in range(count)]
        workers += [threading.Thread(target=until, args=(stop, lambda: oversized_expect(port, stop, refused)))]
        for w in workers:
            w.daemon = True
            w.start()
        peak = before
        for _ in range(STORM_S):
            time.sleep(1)
            peak = max(peak, memory(server.pid)["VmRSS"])
        stop.set()
        time.sleep(12)  # past the header and body deadlines: every hostile connection is gone
        after = memory(server.pid)["VmRSS"]
        alive = server.poll() is None
        started = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=DRAIN_S + 10)
        exit_s = time.perf_counter() - started
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    ok_share = sum(s == 200 for s, _ in results) / max(len(results), 1)
    latencies = sorted(ms for s, ms in results if s == 200)
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else float("nan")
    print(f"storm: {STORM_S} s of 20 stalled bodies, 8 abandoning 64-text batches, 20 half-sent headers, 50 idle "
          f"connections, oversized Expect uploads; alongside 2 normal clients")
    print(f"normal requests: {len(results)}, answered 200: {ok_share:.1%}, p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
          f"statuses seen: {sorted(set(s for s, _ in results))}")
    print(f"oversized Expect uploads refused with 413: {sum(refused)}/{len(refused)}")
    print(f"RSS: before the storm {before:.1f} MiB, peak {peak:.1f} MiB, 12 s after {after:.1f} MiB "
          f"({after - before:+.1f} MiB; limit {MAX_RSS_RETURN_MB})")
    print(f"SIGTERM to exit: {exit_s:.2f} s (drain limit {DRAIN_S} s); alive until then: {alive}")
    ok = (ok_share >= 0.99 and refused and all(refused) and after - before <= MAX_RSS_RETURN_MB
          and alive and exit_s <= DRAIN_S and server.returncode == 0)
    print(f"soak-hostile: {int(ok)} passed, {int(not ok)} failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
