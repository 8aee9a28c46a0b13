"""The classification head on e5 features, and its honest evaluation.

Nested 5-fold cross-validation: the outer folds score, an inner 5-fold search picks the
hyper-parameters (regularisation C, class weights, which features, how much lexicon data) on the
training part only, so no test fold ever influences a choice. The lexicon's words (extra training
examples) join the training part of a fold only: every validation and test fold is tweets.
"""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict

C_GRID = [0.1, 0.3, 1, 3, 10, 30, 100]
SEED = 20261127
DESCRIPTION = "multinomial logistic regression, class_weight=balanced"
# The grid the default model's inner folds search (model/levers.py's table: class weights and
# standardising lost; the concatenated features choose C from 0.3..10).
GRID = {"C": [0.3, 1, 3, 10], "class_weight": ["balanced"]}


class Head(ClassifierMixin, BaseEstimator):
    """Logistic regression on the columns `columns` of X (None: all), optionally standardised,
    with `extra` = (X, y) examples of weight `extra_weight` added to every fit."""

    def __init__(self, C=1.0, class_weight="balanced", scale=False, columns=None, extra=None, extra_weight=0.0):
        self.C, self.class_weight, self.scale, self.columns = C, class_weight, scale, columns
        self.extra, self.extra_weight = extra, extra_weight

    def _cols(self, X):
        return X if self.columns is None else X[:, list(self.columns)]

    def fit(self, X, y):
        X, y, weight = self._cols(X), np.asarray(y), np.ones(len(y))
        if self.extra is not None and self.extra_weight > 0:
            X = np.vstack([X, self._cols(self.extra[0])])
            y = np.concatenate([y, self.extra[1]])
            weight = np.concatenate([weight, np.full(len(self.extra[1]), self.extra_weight)])
        self.mean_ = X.mean(0) if self.scale else np.zeros(X.shape[1])
        self.std_ = X.std(0) + 1e-6 if self.scale else np.ones(X.shape[1])
        self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=5000)
        self.model_.fit((X - self.mean_) / self.std_, y, sample_weight=weight)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict((self._cols(X) - self.mean_) / self.std_)

    def linear(self, labels):
        """The head as one linear map on the selected columns, standardisation folded in."""
        order = [list(self.classes_).index(l) for l in labels]
        w = self.model_.coef_[order] / self.std_
        b = self.model_.intercept_[order] - w @ self.mean_
        return w.astype(np.float32), b.astype(np.float32)


def search(grid=None, base=None):
    inner = StratifiedKFold(5, shuffle=True, random_state=SEED + 1)
    return GridSearchCV(base or Head(), grid or GRID, cv=inner, scoring="f1_macro", n_jobs=1)


def _scores(y, pred, labels):
    per_class = f1_score(y, pred, labels=labels, average=None, zero_division=0)
    return {"macro_f1": round(float(per_class.mean()), 4),
            "f1": {l: round(float(f), 4) for l, f in zip(labels, per_class)},
            "accuracy": round(float((np.asarray(pred) == y).mean()), 4)}


def cross_validate(X, y, labels, grid=None, base=None):
    outer = StratifiedKFold(5, shuffle=True, random_state=SEED)
    return _scores(y, cross_val_predict(search(grid, base), X, y, cv=outer), labels)


def majority_baseline(y, labels):
    values, counts = np.unique(y, return_counts=True)
    return _scores(y, np.full(len(y), values[counts.argmax()]), labels)


def fit(X, y, labels, grid=None, base=None):
    """Head on all data: weights [labels, F] and bias in `labels` order, and the chosen parameters."""
    found = search(grid, base).fit(X, y)
    w, b = found.best_estimator_.linear(labels)
    return w, b, {k: v for k, v in found.best_params_.items() if k not in ("extra", "columns")}


def softmax(logits):
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)
