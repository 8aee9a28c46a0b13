"""The last step of every model directory: ONNX Runtime's graph optimisations applied once, offline,
and the weights moved to model.onnx.data beside a small model.onnx.

Why: ONNX Runtime maps external weights from the file instead of parsing a 109 MB protobuf and
copying every tensor out of it, and a graph that is already fused needs no optimisation pass at
load. Measured on the RoBERTuito-shaped model (`sentimiento serve`, median of 5 cold starts): exec
to first answer 443 -> 190 ms, peak RSS after the first request 183 -> 142 MiB.

"Extended" is the highest level whose result is portable: "all" adds layout changes tuned to the
CPU that runs the optimiser, and a Lambda may run on another one. pipeline.json then says
"pre_optimized": true, and the function loads the graph with optimisations off.
"""
import pathlib
import tempfile

import onnxruntime as ort

DATA = "model.onnx.data"


def optimize(src, out):
    """Writes out/model.onnx + out/model.onnx.data from the ONNX file src (src may be out/model.onnx)."""
    out = pathlib.Path(out)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(pathlib.Path(tmp) / "model.onnx")
        options.add_session_config_entry("session.optimized_model_external_initializers_file_name", DATA)
        options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
        (out / DATA).unlink(missing_ok=True)
        written = [p.name for p in pathlib.Path(tmp).iterdir()]  # no DATA when every tensor is tiny
        for name in written:
            (pathlib.Path(tmp) / name).replace(out / name)
    return sorted(written)
