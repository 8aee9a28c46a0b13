"""Pruning e5's 250,002-piece Unigram vocabulary to what Spanish text needs.

Kept: every piece used to segment the Spanish word lists (pyspellchecker's dictionary and
wordfreq's most frequent words, read from their PyPI wheels: no root, no apt) as written,
Capitalised and UPPER, and with common punctuation attached, as in running text;
the preprocessed tweets, the Spanish emoji names and preprocessing tokens, numbers and ASCII
punctuation; every single-character piece (so any text still segments without <unk>); the
special tokens. Ids are renumbered in the old order, so <s> <pad> </s> <unk> stay 0..3. The
Viterbi segmentation of any text whose original pieces are all kept is unchanged: pruning only
removes alternatives.
"""
import gzip
import json
import zipfile

import msgpack
import numpy as np
from tokenizers import Tokenizer

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def spellchecker_words(wheel):
    """pyspellchecker's Spanish dictionary: a gzipped JSON object word -> count."""
    with zipfile.ZipFile(wheel) as z:
        return set(json.loads(gzip.decompress(z.read("spellchecker/resources/es.json.gz"))))


def wordfreq_words(wheel, top):
    """The `top` most frequent words of wordfreq's large Spanish list: gzipped msgpack of a header
    then bins of words, most frequent bin first (wordfreq's "cB" format)."""
    with zipfile.ZipFile(wheel) as z:
        header, *bins = msgpack.unpackb(gzip.decompress(z.read("wordfreq/data/large_es.msgpack.gz")), raw=False)
    if header.get("format") != "cB":
        raise ValueError(f"{wheel}: unexpected wordfreq format {header}")
    return set([w for b in bins for w in b][:top])


def read_word_lists(spellchecker_wheel, wordfreq_wheel, wordfreq_top):
    return sorted(spellchecker_words(spellchecker_wheel) | wordfreq_words(wordfreq_wheel, wordfreq_top))


def variants(words):
    out = set()
    for w in words:
        out.update((w, w.lower(), w[:1].upper() + w[1:], w.upper()))
    return sorted(out)


SUFFIXES = [",", ".", "!", "?", ":", ";", ")", '"', "...", "!!!", "?!"]
PREFIXES = ["¿", "¡", "(", '"', "#"]


def with_punctuation(words):
    """Words as they stand in running text, where punctuation joins them into one pre-token."""
    forms = {f for w in words for f in (w.lower(), w[:1].upper() + w[1:])}
    return [f + s for f in forms for s in SUFFIXES] + [p + f for f in forms for p in PREFIXES]


def used_ids(tokenizer, texts):
    ids = set()
    for enc in tokenizer.encode_batch(texts, add_special_tokens=False):
        ids.update(enc.ids)
    return ids


def prune(tokenizer_json, keep_texts):
    """Returns (pruned tokenizer.json as a dict, kept old ids in new order)."""
    full = Tokenizer.from_str(json.dumps(tokenizer_json))
    vocab = tokenizer_json["model"]["vocab"]
    keep = used_ids(full, keep_texts)
    keep.update(i for i, (piece, _) in enumerate(vocab) if len(piece.replace("\u2581", "")) <= 1)
    keep.update(full.token_to_id(t) for t in SPECIALS)
    kept = np.array(sorted(keep), dtype=np.int64)
    new_id = {int(old): new for new, old in enumerate(kept)}

    pruned = json.loads(json.dumps(tokenizer_json))
    pruned["model"]["vocab"] = [vocab[i] for i in kept]
    pruned["model"]["unk_id"] = new_id[tokenizer_json["model"]["unk_id"]]
    for token in pruned["added_tokens"]:
        token["id"] = new_id[token["id"]]
    for special in pruned["post_processor"]["special_tokens"].values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    return pruned, kept


def unchanged_share(full, pruned, kept, texts):
    """Share of texts whose token sequence maps back to exactly the original one."""
    a = full.encode_batch(texts, add_special_tokens=False)
    b = pruned.encode_batch(texts, add_special_tokens=False)
    same = sum(1 for x, y in zip(a, b) if list(x.ids) == [int(kept[i]) for i in y.ids])
    return same / max(len(texts), 1)
