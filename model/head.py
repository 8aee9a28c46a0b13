"""The classification head on e5 sentence embeddings, and its honest evaluation.

Nested 5-fold cross-validation: the outer folds score, an inner 5-fold search picks the
regularisation C on the training part only, so no test fold ever influences a choice.
"""
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict

C_GRID = [0.1, 0.3, 1, 3, 10, 30, 100]
SEED = 20261127


def _search():
    model = LogisticRegression(max_iter=5000, class_weight="balanced")
    inner = StratifiedKFold(5, shuffle=True, random_state=SEED + 1)
    return GridSearchCV(model, {"C": C_GRID}, cv=inner, scoring="f1_macro")


def _scores(y, pred, labels):
    per_class = f1_score(y, pred, labels=labels, average=None, zero_division=0)
    return {"macro_f1": round(float(per_class.mean()), 4),
            "f1": {l: round(float(f), 4) for l, f in zip(labels, per_class)},
            "accuracy": round(float((np.asarray(pred) == y).mean()), 4)}


def cross_validate(X, y, labels):
    outer = StratifiedKFold(5, shuffle=True, random_state=SEED)
    return _scores(y, cross_val_predict(_search(), X, y, cv=outer), labels)


def majority_baseline(y, labels):
    values, counts = np.unique(y, return_counts=True)
    return _scores(y, np.full(len(y), values[counts.argmax()]), labels)


def fit(X, y, labels):
    """Head on all data: weights [labels, H] and bias in `labels` order, and the chosen C."""
    search = _search().fit(X, y)
    model = search.best_estimator_
    order = [list(model.classes_).index(l) for l in labels]
    return model.coef_[order].astype(np.float32), model.intercept_[order].astype(np.float32), search.best_params_["C"]


def softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
