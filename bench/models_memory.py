"""Memory of several pysentimiento-shaped models in one function (make bench-models).

Builds one RoBERTuito-sized checkpoint (RoBERTa-base: 12 layers, hidden 768, vocabulary 30,002,
130 positions; random weights, since the real ones are on the hub), converts it with
model/convert.py (int8-dynamic: the precision every RoBERTuito-sized figure of BENCHMARKS.md was
measured at, pinned since the default changed; docs/precision.md), and lays it out as six of pysentimiento's (task, lang) pairs,
MODEL_DIR/<task>/<lang>/. Then:

1. without a budget: loads the models one after another and prints the server's RSS after each
   (50 requests per model, so the embedding rows those texts use are resident);
2. as a 512 MB Lambda function would run (AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512, so the default
   budget, inside a 512 MB cgroup v1 memory limit): three rounds over the six models; every
   request must be answered, and the least recently used model unloaded to make room.

    python bench/models_memory.py BIN WORK   (the venv of tests/pysentimiento/requirements.txt)
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from rss import CGROUP_ROOT, TEXTS, cgroup_figures, free_port, limited, memory, post, wait_listening  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAIRS = ["sentiment/es", "emotion/es", "hate_speech/es", "irony/es", "sentiment/pt", "emotion/pt"]
REQUESTS_PER_MODEL = 50


def checkpoint(out):
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification
    sys.path.insert(0, str(ROOT / "tests/pysentimiento"))
    import make_checkpoints
    if (out / "config.json").exists():
        return
    torch.manual_seed(0)
    tokenizer = make_checkpoints.roberta_tokenizer(make_checkpoints.corpus("es"))
    labels = ["NEG", "NEU", "POS"]
    config = RobertaConfig(vocab_size=30002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, id2label=dict(enumerate(labels)),
                           label2id={label: i for i, label in enumerate(labels)})
    RobertaForSequenceClassification(config).eval().save_pretrained(out)
    tokenizer.save_pretrained(out)


def layout(converted, models):
    for pair in PAIRS:
        dst = models / pair
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(converted, dst)
        pipeline = json.loads((dst / "pipeline.json").read_text())
        pipeline["task"], pipeline["lang"] = pair.split("/")
        (dst / "pipeline.json").write_text(json.dumps(pipeline, indent=1) + "\n")


def ask(port, pair, n):
    task, lang = pair.split("/")
    for i in range(n):
        status, data = post(port, {"text": TEXTS[i % len(TEXTS)], "task": task, "lang": lang})
        if status != 200:
            raise RuntimeError(f"{pair}: {status} {data[:200]!r}")


def health(port):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/health")
    return json.loads(conn.getresponse().read())


def serve(binary, models, env, log, limit_mb=None):
    """The server on a free port, its log (JSON lines on stderr) into the file log."""
    port = free_port()
    command, group = [binary, "serve"], None
    if limit_mb:
        command, group = limited(command, limit_mb)
    server = subprocess.Popen(command, env=dict(os.environ, **env, MODEL_DIR=str(models), PORT=str(port)),
                              stderr=log.open("w"))
    wait_listening(port, server)
    return server, port, group


def one_after_another(binary, models, log):
    server, port, _ = serve(binary, models, {}, log)
    rows = []
    try:
        base = memory(server.pid)["VmRSS"]
        for pair in PAIRS[:4]:
            ask(port, pair, REQUESTS_PER_MODEL)
            rows.append((pair, memory(server.pid)))
    finally:
        server.terminate()
        server.wait()
    print(f"\nwithout a budget (RSS before any model: {base:.0f} MiB):")
    print("| models loaded | RSS MiB | added by this model MiB | peak RSS MiB |")
    print("|---|---|---|---|")
    previous = base
    for n, (task, mem) in enumerate(rows, 1):
        print(f"| {n} (+{task}) | {mem['VmRSS']:.0f} | {mem['VmRSS'] - previous:.0f} | {mem['VmHWM']:.0f} |")
        previous = mem["VmRSS"]
    return {"base_mib": base, "after_each": [{"model": pair, **m} for pair, m in rows]}


def as_a_512_mb_lambda(binary, models, log):
    if not os.access(CGROUP_ROOT, os.W_OK):
        print(f"skipped the 512 MB run: no writable cgroup v1 memory controller at {CGROUP_ROOT}")
        return None
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"], check=False)
    server, port, group = serve(binary, models, {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}, log, limit_mb=512)
    answered = 0
    try:
        for _ in range(3):
            for pair in PAIRS:
                ask(port, pair, 20)
                answered += 20
        loaded = [f"{m['task']}/{m['lang']}" for m in health(port)["models"] if m["loaded"]]
        peak, hits = cgroup_figures(group)
        rss = memory(server.pid)
    finally:
        server.terminate()
        server.wait()
        os.rmdir(group)
    unloads = sum('"model_unloaded"' in line for line in log.read_text().splitlines())
    print(f"\nas a 512 MB function (budget 384 MB; 512 MB cgroup): {answered}/{answered} answered over 3 rounds "
          f"of {len(PAIRS)} models; {unloads} unloads; loaded at the end: {loaded}; process peak "
          f"{rss['VmHWM']:.0f} MiB; group peak {peak:.0f} MiB (page cache included), limit hits {hits}")
    return {"answered": answered, "unloads": unloads, "loaded_at_end": loaded, "process_peak_mib": rss["VmHWM"],
            "group_peak_mib": peak, "limit_hits": hits}


def main():
    binary, work = sys.argv[1], pathlib.Path(sys.argv[2]).resolve()
    checkpoint(work / "checkpoint")
    converted = work / "converted"
    if not (converted / "model.onnx").exists():
        subprocess.run([sys.executable, str(ROOT / "model/convert.py"), "--from", str(work / "checkpoint"),
                        "--out", str(converted), "--precision", "int8-dynamic"], check=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    size = sum(p.stat().st_size for p in converted.iterdir() if p.name.startswith("model.onnx")) / 2**20
    print(f"RoBERTuito-sized int8 model: {size:.0f} MiB of model.onnx + model.onnx.data")
    layout(converted, work / "models")
    figures = {"model_file_mib": size, "no_budget": one_after_another(binary, work / "models", work / "serve.log"),
               "lambda_512": as_a_512_mb_lambda(binary, work / "models", work / "serve-512.log")}
    (work / "results.json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
