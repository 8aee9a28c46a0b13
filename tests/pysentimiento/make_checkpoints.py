"""Seeded local Hugging Face checkpoints in the shape of pysentimiento's models, made offline.

pysentimiento's own weights live on the Hugging Face hub, which these machines cannot reach, so the
tests build checkpoints of the same architecture with RoBERTuito's configuration shrunk for speed
(random weights, seeded) and tokenizers trained here in RoBERTuito's style. pysentimiento's own
analyzer loads them by path, which makes it the reference the function is checked against.

    python tests/pysentimiento/make_checkpoints.py OUT

writes OUT/<name>/ for
- servable, compared with pysentimiento: sentiment-es (RoBERTa, NEG/NEU/POS, no problem_type),
  hate_speech-es (RoBERTa, multi-label), emotion-es (RoBERTa, 7 labels), irony-it (BERT, WordPiece,
  shipped with a slow tokenizer only: the conversion must make and check a tokenizer.json);
  targeted_sentiment-es (RoBERTa reading a text and a target), context_hate_speech-es (BERT,
  as BETO: WordPiece with a fast tokenizer, token types, multi-label, reading a text and a
  context); ner-es / ner-en (RoBERTa token classifiers with LinCE's BIO labels) and pos-es /
  pos-en (with its part-of-speech tags); own-normalizer (a BERT sentiment classifier whose
  tokenizer.json normalises unlike its slow vocab.txt: served as the tokenizer.json says);
- refused by the conversion: gpt2-classifier (an architecture the function does not run),
  masked-lm (not a classifier), no-labels (id2label left at LABEL_0..), slow-bpe (a BERTweet-style
  slow tokenizer that has no fast equivalent).
"""
import json
import pathlib
import sys
from collections import Counter

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (BertConfig, BertForSequenceClassification, BertTokenizer, BertTokenizerFast,
                          BertweetTokenizer, GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast,
                          RobertaConfig, RobertaForMaskedLM, RobertaForSequenceClassification,
                          RobertaForTokenClassification)

ROOT = pathlib.Path(__file__).resolve().parents[2]
SEED = 20261128
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTuito's ids 0..4

TASKS = {
    "sentiment-es": (["NEG", "NEU", "POS"], None),
    "hate_speech-es": (["hateful", "targeted", "aggressive"], "multi_label_classification"),
    "emotion-es": (["others", "joy", "sadness", "anger", "surprise", "disgust", "fear"],
                   "single_label_classification"),
    "targeted_sentiment-es": (["NEG", "NEU", "POS"], None),
}
# The label sets of pysentimiento's robertuito-ner and robertuito-pos (LinCE).
NER = ["O"] + [f"{bio}-{kind}" for kind in ("EVENT", "GROUP", "LOC", "ORG", "OTHER", "PER", "PROD", "TIME", "TITLE")
               for bio in ("B", "I")]
POS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
       "SCONJ", "SYM", "UNK", "VERB", "X"]
WORD_TASKS = {"ner-es": NER, "ner-en": NER, "pos-es": POS, "pos-en": POS}
CONTEXT_HATE = ["WOMEN", "LGBTI", "RACISM", "CLASS", "POLITICS", "DISABLED", "APPEARANCE", "CRIMINAL", "CALLS"]


def corpus(lang):
    """pysentimiento's preprocessed text of the golden corpus: what the models read."""
    rows = [json.loads(line) for line in (ROOT / "tests/golden/preprocess.jsonl").open()]
    return [r[lang] for r in rows if not r["args"]]


def roberta_tokenizer(texts):
    """RoBERTuito's recipe: NFKC + lowercase, Metaspace pieces, BPE, <s> A </s>."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1500, special_tokens=SPECIALS, min_frequency=2))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>", model_max_length=128)


def roberta_config(vocab, labels=None, problem_type=None):
    # RoBERTuito's configuration (130 positions, pad 1, one token type) with smaller layers. A wide
    # initialiser spreads the logits, so that labels and probabilities differ from text to text.
    config = RobertaConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, max_position_embeddings=130, type_vocab_size=1,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2, initializer_range=0.3)
    if labels:
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    config.problem_type = problem_type
    return config


def save(model, tokenizer, out):
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"wrote {out}")


def wordpiece_vocab(texts, path):
    """A WordPiece vocabulary built deterministically (the tokenizers trainer breaks ties in a
    different order from run to run): the specials, every character alone and as a continuation,
    and the 1,000 most frequent lower-cased words."""
    pre = pre_tokenizers.BertPreTokenizer()
    words = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(normalizers.BertNormalizer().normalize_str(t)))
    chars = sorted({c for w in words for c in w})
    common = [w for w, _ in sorted(words.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:1000]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + [f"##{c}" for c in chars] + common
    path.write_text("".join(f"{piece}\n" for piece in vocab))


def bert_irony(texts, out):
    """An Italian BERT classifier (pysentimiento's bert-it models are BERTs) with only a slow tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    wordpiece_vocab(texts, out / "vocab.txt")
    tokenizer = BertTokenizer(str(out / "vocab.txt"), do_lower_case=True, model_max_length=128)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=512, initializer_range=0.3,
                        id2label={0: "not ironic", 1: "ironic"}, label2id={"not ironic": 0, "ironic": 1})
    save(BertForSequenceClassification(config).eval(), tokenizer, out)
    assert not (out / "tokenizer.json").exists(), "the slow-tokenizer case must ship no tokenizer.json"


def bert_context_hate(texts, out):
    """BETO's shape: a BERT with a fast WordPiece tokenizer whose pairs carry token type 1."""
    out.mkdir(parents=True, exist_ok=True)
    wordpiece_vocab(texts, out / "vocab.txt")
    tokenizer = BertTokenizerFast(str(out / "vocab.txt"), do_lower_case=True, model_max_length=128)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=512, type_vocab_size=2, initializer_range=0.3,
                        id2label=dict(enumerate(CONTEXT_HATE)), label2id={l: i for i, l in enumerate(CONTEXT_HATE)},
                        problem_type="multi_label_classification")
    save(BertForSequenceClassification(config).eval(), tokenizer, out)
    assert (out / "tokenizer.json").exists()


def bert_own_normalizer(texts, out):
    """A BERT whose tokenizer.json normalises differently from its slow vocab.txt (it also maps q
    to k): pysentimiento's analyzer reads the tokenizer.json, so the conversion must check against
    that, not against the slow tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    wordpiece_vocab(texts, out / "vocab.txt")
    tokenizer = BertTokenizerFast(str(out / "vocab.txt"), do_lower_case=True, model_max_length=128)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=512, initializer_range=0.3,
                        id2label={0: "NEG", 1: "NEU", 2: "POS"}, label2id={"NEG": 0, "NEU": 1, "POS": 2})
    save(BertForSequenceClassification(config).eval(), tokenizer, out)
    spec = json.loads((out / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "Sequence", "normalizers": [
        spec["normalizer"], {"type": "Replace", "pattern": {"String": "q"}, "content": "k"}]}
    (out / "tokenizer.json").write_text(json.dumps(spec))


def slow_bpe(roberta_dir, out):
    """A BERTweet-style checkpoint: fastBPE vocab.txt + bpe.codes, which transformers cannot make fast."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("".join(f"{w} 1\n" for w in ["hola", "mundo", "ho@@", "la@@"]))
    (out / "bpe.codes").write_text("h o 1\nho la 1\n")
    tokenizer = BertweetTokenizer(str(out / "vocab.txt"), str(out / "bpe.codes"))
    config = roberta_config(len(tokenizer), ["NEG", "NEU", "POS"])
    save(RobertaForSequenceClassification(config).eval(), tokenizer, out)


def main():
    out = pathlib.Path(sys.argv[1])
    torch.manual_seed(SEED)
    tokenizer = roberta_tokenizer(corpus("es"))
    for name, (labels, problem_type) in TASKS.items():
        config = roberta_config(len(tokenizer), labels, problem_type)
        save(RobertaForSequenceClassification(config).eval(), tokenizer, out / name)
    bert_irony(corpus("it"), out / "irony-it")
    for name, labels in WORD_TASKS.items():
        save(RobertaForTokenClassification(roberta_config(len(tokenizer), labels)).eval(), tokenizer, out / name)
    bert_context_hate(corpus("es"), out / "context_hate_speech-es")
    bert_own_normalizer(corpus("es"), out / "own-normalizer")

    gpt2 = GPT2Config(vocab_size=len(tokenizer), n_positions=130, n_embd=32, n_layer=1, n_head=2,
                      pad_token_id=1, id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1})
    save(GPT2ForSequenceClassification(gpt2).eval(), tokenizer, out / "gpt2-classifier")
    save(RobertaForMaskedLM(roberta_config(len(tokenizer))).eval(), tokenizer, out / "masked-lm")
    config = roberta_config(len(tokenizer))
    config.num_labels = 3
    save(RobertaForSequenceClassification(config).eval(), tokenizer, out / "no-labels")
    slow_bpe(out / "sentiment-es", out / "slow-bpe")


if __name__ == "__main__":
    main()
