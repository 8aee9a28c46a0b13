"""Peak memory of the running function: starts `sentimiento serve`, sends N /predict requests
(single texts and batches of 8, tweet-length Spanish), and prints the server's VmRSS / VmHWM
read from /proc after the first request and after the last.

With --limit-mb M the server runs inside a cgroup (v1 memory controller) limited to M MB, and the
group's own peak usage and limit hits are printed too: the proof that it fits in that memory.

    python bench/rss.py target/release/sentimiento [N] [--limit-mb M]   # MODEL_DIR, ORT_DYLIB_PATH from env
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import time

TEXTS = [
    "Me encanta este día, qué genial",
    "Odio los lunes, el servicio fue horrible",
    "La película estuvo bien, nada especial",
    "Qué maravilla de concierto anoche, gracias a todos",
    "Nunca más compro en esta tienda, fatal atención",
    "Hoy llueve en Madrid y el tráfico está como siempre",
    "El mejor café de la ciudad, lo recomiendo",
    "Estoy triste por la noticia, qué pena",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                fields[key] = int(value.split()[0]) / 1024
    return fields


def post(port, body, path="/predict"):
    """One JSON POST on a fresh connection; returns (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def post_ok(port, body):
    status, data = post(port, body)
    if status != 200:
        sys.exit(f"request failed: {status} {data!r}")


def wait_listening(port, server):
    for _ in range(300):
        if server.poll() is not None:
            sys.exit(f"server exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("server did not start")


CGROUP_ROOT = "/sys/fs/cgroup/memory"


def limited(command, limit_mb):
    """Wraps command so it starts inside a fresh memory cgroup limited to limit_mb; returns (command, dir)."""
    group = os.path.join(CGROUP_ROOT, f"sentimiento-bench-{os.getpid()}")
    os.mkdir(group)
    with open(os.path.join(group, "memory.limit_in_bytes"), "w") as f:
        f.write(str(limit_mb * 1024 * 1024))
    wrapper = ["sh", "-c", f'echo $$ > {group}/cgroup.procs && exec "$@"', "sh", *command]
    return wrapper, group


def cgroup_figures(group):
    read = lambda name: int(open(os.path.join(group, name)).read())
    return read("memory.max_usage_in_bytes") / 2**20, read("memory.failcnt")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--limit-mb")]
    limit = next((int(a.split("=")[1]) for a in sys.argv[1:] if a.startswith("--limit-mb=")), None)
    binary, n = args[0], int(args[1]) if len(args) > 1 else 100
    port = free_port()
    command, group = [binary, "serve"], None
    if limit:
        if not os.access(CGROUP_ROOT, os.W_OK):
            sys.exit(f"--limit-mb needs a writable cgroup v1 memory controller at {CGROUP_ROOT} (root)")
        command, group = limited(command, limit)
    server = subprocess.Popen(command, env=dict(os.environ, PORT=str(port)), stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, server)
        started = time.perf_counter()
        post_ok(port, {"text": TEXTS[0]})
        cold_ms = (time.perf_counter() - started) * 1e3
        first = memory(server.pid)
        started = time.perf_counter()
        for i in range(1, n):
            body = {"texts": TEXTS} if i % 10 == 0 else {"text": TEXTS[i % len(TEXTS)]}
            post_ok(port, body)
        warm_ms = (time.perf_counter() - started) * 1e3 / max(n - 1, 1)
        last = memory(server.pid)
        in_group = cgroup_figures(group) if group else None
    finally:
        server.terminate()
        server.wait()
        if group:
            os.rmdir(group)
    print(f"model: {os.environ.get('MODEL_DIR', 'model')}")
    print(f"first request (lazy load included): {cold_ms:.1f} ms")
    print(f"mean of the next {n - 1} requests: {warm_ms:.2f} ms")
    print(f"after 1 request:    RSS {first['VmRSS']:.1f} MiB, peak {first['VmHWM']:.1f} MiB")
    print(f"after {n} requests: RSS {last['VmRSS']:.1f} MiB, peak {last['VmHWM']:.1f} MiB")
    if in_group:
        print(f"cgroup limit {limit} MB: all {n} requests answered; group peak {in_group[0]:.1f} MiB "
              f"(page cache included), limit hits {in_group[1]}")


if __name__ == "__main__":
    main()
