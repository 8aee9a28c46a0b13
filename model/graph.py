"""The e5-small encoder + classification head as one ONNX graph, written with the onnx package.

input_ids, attention_mask [batch, sequence] (int64) -> logits [batch, labels]: BERT embeddings
(word + position + token type 0, LayerNorm), 12 post-LN layers (attention with the padding mask,
exact-erf GELU), then the head's features: for each (layer, pooling) in `features`, that layer's
hidden states pooled (masked mean, or the first token) and L2-normalised, concatenated; a linear
head reads them. `sentence_embedding` (last layer, mean, L2: e5's own) is an output too, for checks.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# The head's features, chosen by nested cross-validation (model/levers.py, docs/default-model.md):
# (layer, pooling), layer 0 = the embeddings, 12 = the last layer.
# Measured: the last layer's mean alone 0.594 macro-F1; layers 9-12 mean + the last layer's first
# token 0.613, and the plain sentences 31 -> 37 of 48.
FEATURES = ((9, "mean"), (10, "mean"), (11, "mean"), (12, "mean"), (12, "first"))
POOLINGS = ("mean", "first")


class Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, array):
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type, inputs, **attrs):
        self.n += 1
        out = f"{op_type.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, w, b, name):
        # w is [out, in] as stored; MatMul wants [in, out].
        wt = self.const(f"{name}.weight", w.T.astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, wt]), self.const(f"{name}.bias", b.astype(np.float32))])

    def layernorm(self, x, wb, eps, name):
        w = self.const(f"{name}.weight", wb[0].astype(np.float32))
        b = self.const(f"{name}.bias", wb[1].astype(np.float32))
        return self.op("LayerNormalization", [x, w, b], axis=-1, epsilon=float(eps))


def build(weights, word, head_w, head_b, labels, features=FEATURES):
    """weights: e5.E5Weights; word: [vocab, H] (pruned) embeddings; head: [labels, F], [labels]
    with F = len(features) * H."""
    H, NH = weights.H, weights.heads
    hd = H // NH
    g = Builder()
    pos, typ, eln = weights.embeddings_rest()

    # Embeddings.
    tokens = g.op("Gather", [g.const("embeddings.word", word.astype(np.float32)), "input_ids"])
    seq_len = g.op("Gather", [g.op("Shape", ["input_ids"]), g.const("one_i", np.array(1, np.int64))])
    positions = g.op("Range", [g.const("zero_i", np.array(0, np.int64)), seq_len, "one_i"])
    pos_emb = g.op("Gather", [g.const("embeddings.position", pos.astype(np.float32)), positions])
    x = g.op("Add", [g.op("Add", [tokens, pos_emb]), g.const("embeddings.type0", typ[0].astype(np.float32))])
    x = g.layernorm(x, eln, weights.eps, "embeddings.ln")
    hidden = [x]

    # Additive attention mask [batch, 1, 1, seq]: 0 for tokens, -10000 for padding.
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask4 = g.op("Unsqueeze", [mask_f, g.const("axes_1_2", np.array([1, 2], np.int64))])
    neg = g.op("Mul", [g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), mask4]),
                       g.const("neg_big", np.array(-10000.0, np.float32))])

    heads_shape = g.const("heads_shape", np.array([0, 0, NH, hd], np.int64))
    merge_shape = g.const("merge_shape", np.array([0, 0, H], np.int64))
    scale = g.const("scale", np.array(1.0 / np.sqrt(hd), np.float32))
    for l in range(weights.layers):
        ly = weights.layer(l)
        split = lambda t: g.op("Transpose", [g.op("Reshape", [t, heads_shape])], perm=[0, 2, 1, 3])
        q = split(g.linear(x, *ly["q"], f"l{l}.q"))
        k = g.op("Transpose", [g.op("Reshape", [g.linear(x, *ly["k"], f"l{l}.k"), heads_shape])], perm=[0, 2, 3, 1])
        v = split(g.linear(x, *ly["v"], f"l{l}.v"))
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), scale]), neg])
        ctx = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge_shape])
        x = g.layernorm(g.op("Add", [x, g.linear(ctx, *ly["ao"], f"l{l}.attn_out")]), ly["aln"], weights.eps, f"l{l}.aln")
        mid = g.linear(x, *ly["fi"], f"l{l}.ffn_in")
        gelu = g.op("Mul", [g.op("Mul", [mid, g.const(f"l{l}.half", np.array(0.5, np.float32))]),
                            g.op("Add", [g.op("Erf", [g.op("Div", [mid, g.const(f"l{l}.sqrt2", np.array(np.sqrt(2.0), np.float32))])]),
                                         g.const(f"l{l}.one", np.array(1.0, np.float32))])])
        x = g.layernorm(g.op("Add", [x, g.linear(gelu, *ly["fo"], f"l{l}.ffn_out")]), ly["oln"], weights.eps, f"l{l}.oln")
        hidden.append(x)

    mask3 = g.op("Unsqueeze", [mask_f, g.const("axis_2", np.array([2], np.int64))])
    axis1 = g.const("axis_1", np.array([1], np.int64))
    tiny = g.const("tiny", np.array(1e-12, np.float32))

    def pooled(layer, pooling):
        h = hidden[layer]
        if pooling == "first":
            v = g.op("Gather", [h, "zero_i"], axis=1)  # token 0, <s>: padding is on the right
        else:  # masked mean
            summed = g.op("ReduceSum", [g.op("Mul", [h, mask3]), axis1], keepdims=0)
            v = g.op("Div", [summed, g.op("ReduceSum", [mask3, axis1], keepdims=0)])
        norm = g.op("ReduceL2", [v], axes=[-1], keepdims=1)  # axes is an attribute before opset 18
        return g.op("Div", [v, g.op("Max", [norm, tiny])])

    g.nodes.append(helper.make_node("Identity", [pooled(weights.layers, "mean")], ["sentence_embedding"]))
    parts = [pooled(layer, pooling) for layer, pooling in features]
    feats = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=-1)
    g.nodes.append(helper.make_node("Identity", [feats], ["features"]))
    logits = g.linear("features", head_w, head_b, "classifier")
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
              for n in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)]),
               helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", H]),
               helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", len(features) * H])]
    graph = helper.make_graph(g.nodes, "e5_small_sentiment", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sentimiento")
    model.ir_version = 8
    return model


def save(model, path):
    # Over 2 GB would need external data; the pruned model is far below that.
    onnx.checker.check_model(model)
    onnx.save(model, path)
