"""Multinomial logistic regression (L2) in numpy, for ``tiergate train router``.

When to use: the training command's fits; never at serving time (``LearnedRouter`` only
multiplies by the fitted weights). Full-batch Adam from zeros for a fixed number of steps:
no randomness, so the same inputs give the same weights, byte for byte. Returned weights have
one row per feature column and the bias as the last row; the bias is not penalised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
STEPS = 300


def fit_softmax(features: Array, labels: Array, classes: int, l2: float) -> Array:
    """Multinomial logistic regression (L2), full-batch Adam from zeros: (d + 1, classes)."""
    n, d = features.shape
    x = np.hstack([features, np.ones((n, 1))])
    w = np.zeros((d + 1, classes))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    target = np.eye(classes)[labels]
    decay = np.ones((d + 1, 1))
    decay[-1] = 0.0  # no penalty on the bias
    for t in range(1, STEPS + 1):
        p = _softmax_rows(x @ w)
        grad = x.T @ (p - target) / n + l2 * decay * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        w -= 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def fit_sparse_softmax(
    terms: Sequence[Array], dense: Array, labels: Array, classes: int, dim: int, l2: float
) -> Array:
    """Multinomial logistic regression over hashed words (value 1/sqrt(n) each) plus dense
    columns, full-batch Adam from zeros: (dim + dense columns + 1, classes), the bias last."""
    n = len(terms)
    index = np.concatenate(list(terms))
    counts = np.array([len(t) for t in terms])
    value = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1)), counts)
    owner = np.repeat(np.arange(n), counts)
    x = np.hstack([dense, np.ones((n, 1))])
    w = np.zeros((dim + x.shape[1], classes))
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    target = np.eye(classes)[labels]
    decay = np.ones((len(w), 1))
    decay[-1] = 0.0
    for t in range(1, STEPS + 1):
        z = x @ w[dim:]
        for c in range(classes):
            z[:, c] += np.bincount(owner, weights=value * w[index, c], minlength=n)
        g = (_softmax_rows(z) - target) / n
        grad = np.zeros_like(w)
        for c in range(classes):
            grad[:dim, c] = np.bincount(index, weights=value * g[owner, c], minlength=dim)
        grad[dim:] = x.T @ g
        grad += l2 * decay * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad * grad
        w -= 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def _softmax_rows(z: Array) -> Array:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: Array = e / e.sum(axis=1, keepdims=True)
    return out
