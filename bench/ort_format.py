"""Two cold-start levers, measured against what the function loads today (model.onnx +
model.onnx.data, pre-optimized, no optimiser pass):
- ONNX Runtime's ORT-format model with its initializers used in place
  (`session.use_ort_model_bytes_directly`, `session.use_ort_model_bytes_for_initializers`);
- the pre-packed weights saved into the data file once, offline
  (`session.save_external_prepacked_constant_initializers`), so that a session maps them instead
  of packing them at every start.
Each variant loads in a fresh process, RUNS times: session creation and first-run ms (median), and
the process's peak RSS. Python onnxruntime 1.31.1, the library the function loads, one thread.
With --rust BIN, the function's server also starts RUNS times on the model directory as it is and
with the saved pre-packed weights: exec to the first answer, and its logged session ms.

    python bench/ort_format.py MODEL_DIR [--rust BIN]   # the model venv; writes nothing in MODEL_DIR
"""
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

RUNS = 5
CHILD = r'''
import json, resource, sys, time
import numpy as np
import onnxruntime as ort
path, mode, prepack = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
options.enable_cpu_mem_arena = False
if not prepack:
    options.add_session_config_entry("session.disable_prepacking", "1")
started = time.perf_counter()
if mode.startswith("bytes"):
    options.add_session_config_entry("session.use_ort_model_bytes_directly", "1")
    if mode == "bytes+initializers":
        options.add_session_config_entry("session.use_ort_model_bytes_for_initializers", "1")
    model = open(path, "rb").read()
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
else:
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
created = time.perf_counter()
ids = np.array([[0] + list(range(5, 40)) + [2]], dtype=np.int64)
feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
if "token_type_ids" in {i.name for i in session.get_inputs()}:
    feed["token_type_ids"] = np.zeros_like(ids)
session.run(None, feed)
done = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"session_ms": (created - started) * 1e3, "first_run_ms": (done - created) * 1e3, "peak_mib": peak}))
'''


def measure(path, mode, prepack):
    """Median figures, or how the process failed."""
    runs = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, "-c", CHILD, str(path), mode, str(int(prepack))],
                             capture_output=True, text=True)
        if out.returncode != 0:
            how = f"signal {-out.returncode}" if out.returncode < 0 else out.stderr.strip().splitlines()[-1]
            return {"failed": how}
        runs.append(json.loads(out.stdout))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def save_prepacked(model_dir, out):
    """model_dir's graph and weights written again with the pre-packed weights appended to the data."""
    import onnxruntime as ort
    for name in ("config.json", "pipeline.json", "tokenizer.json"):
        shutil.copy(model_dir / name, out / name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.optimized_model_filepath = str(out / "model.onnx")
    for key, value in [("session.optimized_model_external_initializers_file_name", "model.onnx.data"),
                       ("session.optimized_model_external_initializers_min_size_in_bytes", "1024"),
                       ("session.save_external_prepacked_constant_initializers", "1")]:
        options.add_session_config_entry(key, value)
    ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])


def rust_cold_start(binary, model_dir):
    """Median over RUNS fresh servers: ms from exec to the first answered /predict (bench/run.py's
    start), the logged session ms and peak RSS after the load."""
    from rss import free_port
    from run import start

    runs = []
    for _ in range(RUNS):
        port = free_port()
        with tempfile.TemporaryFile("w+") as log:
            server, ms = start([binary, "serve"], dict(os.environ, PORT=str(port), MODEL_DIR=str(model_dir)), port, log=log)
            server.terminate()
            server.wait()
            log.seek(0)
            loaded = next(json.loads(line)["fields"] for line in log if '"model_loaded"' in line)
        runs.append({"cold_start_ms": ms, "session_ms": loaded["session_ms"], "peak_rss_after_load_mb": loaded["peak_rss_mb"]})
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def data_mib(model_dir):
    return (model_dir / "model.onnx.data").stat().st_size / 2**20


def main():
    model_dir = pathlib.Path(sys.argv[1])
    rust = sys.argv[sys.argv.index("--rust") + 1] if "--rust" in sys.argv else None
    with tempfile.TemporaryDirectory() as work:
        prepacked = pathlib.Path(work) / "prepacked"
        prepacked.mkdir()
        save_prepacked(model_dir, prepacked)
        subprocess.run([sys.executable, "-m", "onnxruntime.tools.convert_onnx_models_to_ort", str(model_dir / "model.onnx"),
                        "--output_dir", work, "--optimization_style", "Fixed"], check=True, capture_output=True)
        ort_file = next(pathlib.Path(work).glob("*.ort"))
        size = ort_file.stat().st_size / 2**20
        print(f"model: {model_dir}; model.onnx.data {data_mib(model_dir):.1f} MiB, with the pre-packed weights saved "
              f"{data_mib(prepacked):.1f} MiB; ORT format file {size:.1f} MiB; median of {RUNS} fresh processes")
        print("| variant | session ms | first run ms | peak RSS MiB |")
        print("|---|---|---|---|")
        for label, path, mode, prepack in [
            ("model.onnx + mapped data, pre-packing (the default)", model_dir / "model.onnx", "path", True),
            ("model.onnx + mapped data, no pre-packing", model_dir / "model.onnx", "path", False),
            ("model.onnx + data with the pre-packed weights saved", prepacked / "model.onnx", "path", True),
            ("ORT format, from its path", ort_file, "path", True),
            ("ORT format, bytes used directly", ort_file, "bytes", True),
            ("ORT format, bytes and initializers used in place", ort_file, "bytes+initializers", True),
            ("ORT format, bytes and initializers in place, no pre-packing", ort_file, "bytes+initializers", False),
        ]:
            r = measure(path, mode, prepack)
            if "failed" in r:
                print(f"| {label} | the process failed: {r['failed']} | | |", flush=True)
            else:
                print(f"| {label} | {r['session_ms']:.0f} | {r['first_run_ms']:.0f} | {r['peak_mib']:.0f} |", flush=True)
        if rust:
            print("\n`sentimiento serve`: | layout | exec to first answer ms | session ms | peak RSS after load MB |")
            print("|---|---|---|---|")
            for label, directory in [("the model directory as built", model_dir), ("pre-packed weights saved", prepacked)]:
                r = rust_cold_start(rust, directory)
                print(f"| {label} | {r['cold_start_ms']:.0f} | {r['session_ms']:.0f} | {r['peak_rss_after_load_mb']:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
