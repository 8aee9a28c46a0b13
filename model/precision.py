"""The precision recipes a model directory can be built at, in one place: model/convert.py (make
model HF_MODEL=... PRECISION=...), model/build.py's quantize stage and bench/precision.py (make
bench-precision, which measured them and chose DEFAULT) all call quantize().

Every recipe reads the raw fp32 export (PyTorch's or graph.py's), never the ORT-optimised graph:
the quantizers only know plain MatMul / Gather nodes. The figures behind DEFAULT are in
docs/precision.md.

    quantize(fp32_path, out_path, recipe, calibration=None)

calibration: feeds (dicts of int64 arrays, one text each) for the static recipes; they must not be
the texts the result is judged on.
"""
import pathlib
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

# Chosen by make bench-precision (docs/precision.md): 8-bit weights in blocks of 32, int8 compute
# (accuracy level 4, activations quantized per row and block). On the trained checkpoints: 100 % of
# pysentimiento's labels (sentiment, multi-label), 99.8 % of words, max |dp| 0.026 / 0.005 / 0.068,
# the same answer alone and in a batch (0). No recipe met every target; fp32 compute (level 0)
# is closer (max |dp| 0.035 on words) but ~5x slower, dynamic int8 ~1.6x faster but batch-dependent
# and 2 % of the labels off.
DEFAULT = "nbits8-b32-a4"
# A FFN's output projection reads the widest activations (after GELU): weight K >= 2 N.
WIDE_INPUT_RATIO = 2


def weights(model):
    return {t.name: t for t in model.graph.initializer}


def ffn_outputs(path):
    """The MatMuls that project the feed-forward back to the hidden size: the most sensitive to
    int8 (model/build.py measured it on e5; bench/precision.py on the trained checkpoints)."""
    model = onnx.load(str(path), load_external_data=False)
    init = weights(model)
    names = []
    for node in model.graph.node:
        w = init.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if w is not None and len(w.dims) == 2 and w.dims[1] >= 64 and w.dims[0] >= WIDE_INPUT_RATIO * w.dims[1]:
            names.append(node.name)
    return names


def dynamic(src, dst, per_channel=True, keep_fp32=False, gather=True):
    """ONNX Runtime's dynamic int8: weights int8, activations' scale taken per run (so per batch)."""
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                     op_types_to_quantize=["MatMul", "Gather"] if gather else ["MatMul"],
                     nodes_to_exclude=ffn_outputs(src) if keep_fp32 else [])


def embeddings_8bit(model, block=32, min_rows=1024):
    """Every Gather of a float table with at least `min_rows` rows (the word embeddings) becomes
    GatherBlockQuantized: 8-bit symmetric values in blocks of `block` along a row, one fp32 scale
    each, stored as uint8 with ONNX Runtime's implicit zero point 128. The weights are constant, so
    a text's answer still does not depend on its batch. (ONNX Runtime's MatMulNBitsQuantizer writes
    only 4-bit tables, and on the default model's graph it also raises the opset past graph.py's.)"""
    init = {t.name: t for t in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        table = init.get(node.input[0]) if node.op_type == "Gather" else None
        if (table is None or len(table.dims) != 2 or table.dims[0] < min_rows or table.dims[1] % block
                or table.data_type != onnx.TensorProto.FLOAT):
            nodes.append(node)
            continue
        w = numpy_helper.to_array(table)
        blocks = w.reshape(w.shape[0], -1, block)
        scale = np.abs(blocks).max(-1) / 127
        scale[scale == 0] = 1
        q = (np.clip(np.rint(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8).reshape(w.shape)
        model.graph.initializer.remove(table)
        model.graph.initializer.extend([numpy_helper.from_array(q, table.name + "_q8"),
                                        numpy_helper.from_array(scale.astype(np.float32), table.name + "_scales")])
        nodes.append(helper.make_node(
            "GatherBlockQuantized", [table.name + "_q8", node.input[1], table.name + "_scales"], list(node.output),
            name=node.name + "_q8", domain="com.microsoft", gather_axis=0, quantize_axis=1, block_size=block, bits=8))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def nbits(src, dst, bits, block, level, gather_bits=None, include=None):
    """MatMulNBits: weights in blocks of `block` values along K with one scale each; accuracy level 4
    computes in int8 with activations quantized per row and block, level 0 in fp32. gather_bits: the
    embedding table as GatherBlockQuantized too (4: ONNX Runtime's quantizer; 8: embeddings_8bit)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer
    model = onnx.load(str(src))
    ops = ("MatMul",)
    config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, accuracy_level=level, bits=bits,
                                          op_types_to_quantize=ops)
    quantizer = MatMulNBitsQuantizer(model, bits=bits, block_size=block, is_symmetric=True, accuracy_level=level,
                                     nodes_to_include=include, op_types_to_quantize=ops, algo_config=config)
    quantizer.process()
    model = quantizer.model.model
    if gather_bits == 8:
        model = embeddings_8bit(model, block)
    elif gather_bits:
        gconfig = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=True, bits=gather_bits,
                                               op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),))
        gq = MatMulNBitsQuantizer(model, bits=gather_bits, block_size=block, is_symmetric=True,
                                  op_types_to_quantize=("Gather",), quant_axes=(("Gather", 1),), algo_config=gconfig)
        gq.process()
        model = gq.model.model
    onnx.save(model, str(dst), save_as_external_data=True, location=pathlib.Path(dst).name + ".data")


class Feeds(CalibrationDataReader):
    def __init__(self, feeds):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def static(src, dst, calibration, method=CalibrationMethod.MinMax, keep_fp32=False, per_channel=True):
    """Calibrated static int8 (QDQ): activation scales fixed from the calibration texts, so a text's
    answer does not depend on its batch. Only MatMuls with a constant weight (not attention's QK^T,
    softmax x V, whose operands are both activations)."""
    if not calibration:
        raise ValueError("static quantization needs calibration feeds")
    extra = {"MatMulConstBOnly": True, "ActivationSymmetric": False, "WeightSymmetric": True}
    if method == CalibrationMethod.Percentile:
        extra["CalibPercentile"] = 99.99
    quantize_static(str(src), str(dst), Feeds(calibration), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul"], per_channel=per_channel, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=method,
                    nodes_to_exclude=ffn_outputs(src) if keep_fp32 else [], use_external_data_format=True,
                    extra_options=extra)


def static_with_nbits(src, dst, calibration):
    """Mix: static QDQ int8 for every MatMul but the FFN outputs, those in 8-bit blocks of 32."""
    with tempfile.TemporaryDirectory() as tmp:
        mid = pathlib.Path(tmp) / "qdq.onnx"
        static(src, mid, calibration, keep_fp32=True)
        nbits(mid, dst, 8, 32, 4, include=ffn_outputs(src))


RECIPES = {
    "fp32": None,
    "int8-dynamic": lambda s, d, c: dynamic(s, d),
    "int8-dynamic-per-tensor": lambda s, d, c: dynamic(s, d, per_channel=False),
    "int8-dynamic-ffn-out-fp32": lambda s, d, c: dynamic(s, d, keep_fp32=True),
    **{f"nbits{b}-b{k}-a{a}": (lambda b, k, a: lambda s, d, c: nbits(s, d, b, k, a))(b, k, a)
       for b in (8, 4) for k in (32, 64, 128) for a in (0, 4)},
    "nbits8-b32-a4+emb4": lambda s, d, c: nbits(s, d, 8, 32, 4, gather_bits=4),
    "nbits8-b32-a4+emb8": lambda s, d, c: nbits(s, d, 8, 32, 4, gather_bits=8),
    "nbits8-b32-a0+emb4": lambda s, d, c: nbits(s, d, 8, 32, 0, gather_bits=4),
    "int8-static": lambda s, d, c: static(s, d, c),
    "int8-static-percentile": lambda s, d, c: static(s, d, c, method=CalibrationMethod.Percentile),
    "int8-static-ffn-out-fp32": lambda s, d, c: static(s, d, c, keep_fp32=True),
    "int8-static+ffn-out-nbits8": lambda s, d, c: static_with_nbits(s, d, c),
}
STATIC = {name for name in RECIPES if "static" in name}


def describe(recipe):
    """One line for report.json."""
    if recipe == "fp32":
        return "fp32, as exported"
    if recipe.startswith("nbits"):
        bits, block, level = recipe.split("+")[0][5:].split("-")
        text = (f"MatMulNBits: {bits}-bit symmetric weights in blocks of {block[1:]}, accuracy level {level[1:]}"
                f"{' (int8 compute)' if level == 'a4' else ' (fp32 compute)'}")
        emb = recipe.partition("+emb")[2]
        return text + (f", embeddings GatherBlockQuantized {emb}-bit" if emb else "")
    if "static" in recipe:
        return "onnxruntime quantize_static, QDQ int8, per-channel weights, calibrated activation scales"
    return "onnxruntime quantize_dynamic, QInt8 weights, activation scale per run"


def quantize(src, dst, recipe=DEFAULT, calibration=None):
    """Writes dst (plus dst.data for some recipes) from the fp32 ONNX file src; returns dst, or src
    itself for fp32."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown precision {recipe!r}; one of {', '.join(RECIPES)}")
    if RECIPES[recipe] is None:
        return pathlib.Path(src)
    RECIPES[recipe](src, dst, calibration)
    return pathlib.Path(dst)


def needs_calibration(recipe):
    return recipe in STATIC


def batch_vs_alone(model_path, encodings, names, pad_id, words, multi_label, batch=16):
    """Largest |dp| between a text run alone and the same text in a padded batch of `batch` (ONNX
    Runtime, one thread, the graph loaded as the function loads a pre-optimised one). Dynamic
    quantization takes its activation scale over the whole batch, padding included; a recipe whose
    scales are fixed or per row gives (nearly) 0."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    names = names or [i.name for i in session.get_inputs()]

    def probs(logits):
        if multi_label:
            return 1 / (1 + np.exp(-logits))
        e = np.exp(logits - logits.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    worst = 0.0
    for start in range(0, len(encodings), batch):
        group = encodings[start:start + batch]
        width = max(len(e["input_ids"]) for e in group)
        feed = {n: np.full((len(group), width), pad_id if n == "input_ids" else 0, np.int64) for n in names}
        for row, e in enumerate(group):
            for n in names:
                feed[n][row, :len(e[n])] = e[n]
        batched = probs(session.run(None, feed)[0])
        for row, e in enumerate(group):
            alone = probs(session.run(None, {n: np.asarray([e[n]], np.int64) for n in names})[0])[0]
            mine = batched[row, :len(e["input_ids"])] if words else batched[row]
            worst = max(worst, float(np.abs(mine - alone).max()))
    return worst


def as_feeds(encodings, names):
    """Tokenizer outputs (one text each, numpy) as ONNX feeds."""
    return [{n: np.asarray(e[n], dtype=np.int64).reshape(1, -1) for n in names} for e in encodings]
