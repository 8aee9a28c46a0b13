"""Measures the int8 recipes model/convert.py could use against PyTorch fp32 (what pysentimiento's
analyzer computes), on checkpoints in pysentimiento's shape; prints one row per recipe and model.

    python model/quant_recipes.py CHECKPOINT_DIR...   (the venv of tests/pysentimiento/requirements.txt)

The figures chose convert.py's recipe (docs/models.md).
"""
import pathlib
import re
import sys
import tempfile

import numpy as np
import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import convert  # noqa: E402

FFN_OUTPUT = re.compile(r"layer\.\d+/output/dense/MatMul")  # not attention/output: the FFN's second matrix

RECIPES = {
    "per-tensor, MatMul": dict(per_channel=False, op_types_to_quantize=["MatMul"]),
    "per-tensor, MatMul+Gather": dict(per_channel=False, op_types_to_quantize=["MatMul", "Gather"]),
    "per-channel, MatMul": dict(per_channel=True, op_types_to_quantize=["MatMul"]),
    "per-channel, MatMul+Gather": dict(per_channel=True, op_types_to_quantize=["MatMul", "Gather"]),
    "per-channel, MatMul+Gather, FFN out fp32": dict(per_channel=True, op_types_to_quantize=["MatMul", "Gather"],
                                                     ffn_fp32=True),
}


def quantize(fp32, int8, per_channel, op_types_to_quantize, ffn_fp32=False):
    exclude = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
               if ffn_fp32 and FFN_OUTPUT.search(n.name)]
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=per_channel,
                     op_types_to_quantize=op_types_to_quantize, nodes_to_exclude=exclude)


def main():
    print("| model | recipe | same labels | max abs dp | file MB |")
    print("|---|---|---|---|---|")
    for src in sys.argv[1:]:
        config, model = convert.read_checkpoint(src)
        multi = config.problem_type == "multi_label_classification"
        lang = "it" if config.model_type == "bert" else "es"
        texts = convert.check_texts(lang)
        with tempfile.TemporaryDirectory() as tmp:
            work = pathlib.Path(tmp)
            tokenizer, _ = convert.tokenizer_json(src, work, texts)
            names = convert.export(model, tokenizer, work / "fp32.onnx")
            p_ref = convert.probabilities(convert.logits_torch(model, tokenizer, texts), multi)
            for recipe, options in RECIPES.items():
                quantize(work / "fp32.onnx", work / "int8.onnx", **options)
                p = convert.probabilities(convert.logits_onnx(work / "int8.onnx", tokenizer, texts, names), multi)
                same = np.mean([a == b for a, b in zip(convert.labels_of(p_ref, multi), convert.labels_of(p, multi))])
                size = (work / "int8.onnx").stat().st_size / 1e6
                print(f"| {pathlib.Path(src).name} | {recipe} | {same:.1%} | {np.abs(p - p_ref).max():.3f} | {size:.2f} |",
                      flush=True)


if __name__ == "__main__":
    main()
