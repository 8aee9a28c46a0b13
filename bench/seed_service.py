"""The seed project's own stack, for the Lambda simulation (bench/lambda_sim.py): FastAPI + uvicorn
+ pysentimiento 0.7.3's analyzer (transformers, PyTorch fp32) on a local checkpoint, created on the
first request and kept, as the seed did (one worker, OMP_NUM_THREADS=1, gc.collect() after loading).

    CHECKPOINT=DIR OMP_NUM_THREADS=1 uvicorn seed_service:app --app-dir bench --workers 1 --loop asyncio
"""
import gc
import os

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel
from pysentimiento import create_analyzer

app = FastAPI()
_analyzer = None


def analyzer():
    global _analyzer
    if _analyzer is None:
        _analyzer = create_analyzer(task="sentiment", lang="es", model_name=os.environ["CHECKPOINT"])
        gc.collect()
    return _analyzer


def answer(output):
    return {"output": output.output, "probas": output.probas}


class Request(BaseModel):
    text: str | None = None
    texts: list[str] | None = None


@app.post("/predict")
def predict(request: Request):
    if request.text is not None:
        return answer(analyzer().predict(request.text))
    if request.texts:
        return {"results": [answer(o) for o in analyzer().predict(request.texts)]}
    raise HTTPException(400, "send text or texts")
