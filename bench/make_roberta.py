"""A model with RoBERTuito's exact encoder shape and random weights, int8, for benchmarks: its
memory and speed are those of pysentimiento's real robertuito-sentiment-analysis, which users
will deploy. 12 layers, hidden 768, 12 heads, FF 3072, vocab 30,002, 130 positions, 3 labels.

The graph is model/graph.py's (post-LN BERT/RoBERTa encoder); the head is mean pooling + linear
where RoBERTa uses <s> + dense + tanh + linear, a difference of one 768x768 matmul per text.
The tokenizer is the default model's, cut to 30,002 pieces (RoBERTuito's vocabulary size).

    python bench/make_roberta.py DEFAULT_MODEL_DIR OUT_DIR
"""
import json
import pathlib
import sys

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "model"))
import graph  # noqa: E402
from optimize import optimize  # noqa: E402

VOCAB, POSITIONS, H, LAYERS, HEADS, FF, LABELS = 30_002, 130, 768, 12, 12, 3072, ["NEG", "NEU", "POS"]


class RandomWeights:
    """The interface graph.build reads, filled with N(0, 0.02) weights (BERT's initialiser)."""

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.H, self.layers, self.heads, self.FF, self.eps = H, LAYERS, HEADS, FF, 1e-5

    def _n(self, *shape):
        return (self.rng.standard_normal(shape) * 0.02).astype(np.float32)

    def embeddings_rest(self):
        return self._n(POSITIONS, H), self._n(1, H), (np.ones(H, np.float32), np.zeros(H, np.float32))

    def layer(self, _l):
        ln = (np.ones(H, np.float32), np.zeros(H, np.float32))
        lin = lambda o, i: (self._n(o, i), np.zeros(o, np.float32))
        return {"q": lin(H, H), "k": lin(H, H), "v": lin(H, H), "ao": lin(H, H), "aln": ln,
                "fi": lin(FF, H), "fo": lin(H, FF), "oln": ln}


def tokenizer(default_dir):
    tok = json.loads((pathlib.Path(default_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    tok["model"]["vocab"] = tok["model"]["vocab"][:VOCAB]
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["id"] < VOCAB]
    return tok


def main():
    default_dir, out = sys.argv[1], pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    w = RandomWeights()
    model = graph.build(w, w._n(VOCAB, H), w._n(len(LABELS), H), np.zeros(len(LABELS), np.float32), LABELS)
    graph.save(model, out / "model-fp32.onnx")
    quantize_dynamic(str(out / "model-fp32.onnx"), str(out / "model-int8.onnx"), weight_type=QuantType.QInt8,
                     per_channel=True)
    optimize(out / "model-int8.onnx", out)
    for f in ("model-fp32.onnx", "model-int8.onnx"):
        (out / f).unlink()
    (out / "tokenizer.json").write_text(json.dumps(tokenizer(default_dir), ensure_ascii=False), encoding="utf-8")
    config = {"_name_or_path": "bench/roberta-shaped-random", "model_type": "roberta",
              "id2label": {str(i): l for i, l in enumerate(LABELS)}, "problem_type": "single_label_classification",
              "max_position_embeddings": POSITIONS, "pad_token_id": 1, "vocab_size": VOCAB, "hidden_size": H,
              "num_hidden_layers": LAYERS, "num_attention_heads": HEADS, "intermediate_size": FF}
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    pipeline = {"name": "RoBERTuito-shaped, random weights (benchmark only)", "lang": "es", "prefix": "",
                "max_tokens": POSITIONS - 2, "pre_optimized": True}
    (out / "pipeline.json").write_text(json.dumps(pipeline, indent=1) + "\n")
    print(f"wrote {out}: model.onnx + model.onnx.data {(out / 'model.onnx.data').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
