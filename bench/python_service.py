"""The Python service the benchmark compares against: FastAPI + uvicorn configured as the seed
project was (one worker, asyncio loop, OMP_NUM_THREADS=1, lazy-loaded singleton, gc.collect()
after loading; EAGER=1 loads it at start instead), but running the same ONNX file with onnxruntime and the `tokenizers` package
instead of PyTorch: the best a Python user could do. Same preprocessing (pysentimiento's own
preprocess_tweet), same API.

    MODEL_DIR=model OMP_NUM_THREADS=1 uvicorn python_service:app --app-dir bench --workers 1 --loop asyncio
"""
import gc
import json
import os
import pathlib

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from tokenizers import Tokenizer

from pysentimiento_preprocessing import load as load_preprocess_tweet

app = FastAPI()
_model = None


class Model:
    def __init__(self, directory):
        d = pathlib.Path(directory)
        config = json.loads((d / "config.json").read_text())
        self.pipeline = json.loads((d / "pipeline.json").read_text())
        self.labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.pipeline["max_tokens"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(d / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.token_types = "token_type_ids" in {i.name for i in self.session.get_inputs()}
        self.preprocess = load_preprocess_tweet()

    def predict(self, text):
        ids = np.array([self.tokenizer.encode(self.pipeline["prefix"] + self.preprocess(text, lang="es")).ids])
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if self.token_types:  # transformers' RoBERTa exports declare it (all zeros)
            feed["token_type_ids"] = np.zeros_like(ids)
        logits = self.session.run(["logits"], feed)[0][0]
        e = np.exp(logits - logits.max())
        p = e / e.sum()
        return {"output": self.labels[int(p.argmax())], "probas": dict(zip(self.labels, p.tolist()))}


def model():
    global _model
    if _model is None:
        _model = Model(os.environ.get("MODEL_DIR", "model"))
        gc.collect()
    return _model


# EAGER=1 loads the model at import, before uvicorn listens: Lambda's init phase (bench/lambda_sim.py).
if os.environ.get("EAGER") == "1":
    model()


class Request(BaseModel):
    text: str | None = None
    texts: list[str] | None = None


@app.post("/predict")
def predict(request: Request):
    m = model()
    if request.text is not None:
        return m.predict(request.text)
    if request.texts:
        return {"results": [m.predict(t) for t in request.texts]}
    raise HTTPException(400, "send text or texts")


@app.get("/health")
def health():
    return {"status": "ok", "loaded": _model is not None}
