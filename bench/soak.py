"""Soak: sends 10,000 mixed requests (valid single, valid batch, invalid) to `sentimiento serve`
and prints its RSS every 1,000. After the first 1,000 (warm-up) RSS may grow by at most 2 MB;
exits 1 if it grows more, if the server dies, or if any answer has the wrong status.

    python bench/soak.py target/release/sentimiento [N]     # MODEL_DIR, ORT_DYLIB_PATH from env
"""
import http.client
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from rss import TEXTS, free_port, memory, wait_listening  # noqa: E402

MAX_GROWTH_MB = 2.0
INVALID = [
    (b"{", 400), (b'{"text": 5}', 400), (b'{"txt": "hola"}', 400), (b'[1, 2]', 400), (b'{"text": "  "}', 400),
    (b'{"texts": []}', 400), (b"\xff\xfe", 400), (json.dumps({"texts": ["a"] * 65}).encode(), 413),
    (b'{"text": "a", "text": "b"}', 400),
]


def request(rng):
    kind = rng.random()
    if kind < 0.5:
        return json.dumps({"text": rng.choice(TEXTS)}).encode(), 200
    if kind < 0.7:
        return json.dumps({"texts": rng.sample(TEXTS, 4)}).encode(), 200
    return rng.choice(INVALID)


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    port = free_port()
    server = subprocess.Popen([binary, "serve"], env=dict(os.environ, PORT=str(port)), stderr=subprocess.DEVNULL)
    rng = random.Random(7)
    samples, wrong = [], 0
    started = time.time()
    try:
        wait_listening(port, server)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(1, n + 1):
            body, expected = request(rng)
            conn.request("POST", "/predict", body, {"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            wrong += response.status != expected
            if i % 1000 == 0:
                rss = memory(server.pid)["VmRSS"]
                samples.append(rss)
                print(f"{i:6d} requests  RSS {rss:7.1f} MiB  ({time.time() - started:5.0f} s)", flush=True)
        alive = server.poll() is None
    finally:
        server.terminate()
        server.wait()
    growth = samples[-1] - samples[0]
    print(f"RSS growth after warm-up (request 1,000 -> {n:,}): {growth:+.1f} MiB (limit {MAX_GROWTH_MB}); "
          f"wrong statuses: {wrong}; server alive: {alive}")
    ok = growth <= MAX_GROWTH_MB and wrong == 0 and alive
    print(f"soak: {int(ok)} passed, {int(not ok)} failed")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
