"""Comparing templates.

**The score.** Templates are L2-normalised, and the similarity score of two templates is their
cosine similarity: 1.0 for identical templates, around 0 for unrelated faces, and never above 1.
Higher means more alike. It is not a probability.

**The threshold.** A comparison *matches* when its score is at or above the threshold in use.
Raising the threshold lowers false matches and raises missed matches. Each model pack states a
native threshold; the operational threshold of a deployment is chosen from measured false-match
rates (see ``openlfr evaluate``).
"""

from __future__ import annotations

import numpy as np


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Score of one pair of unit-length templates."""
    return float(np.dot(a, b))


def similarity_matrix(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Scores of every probe against every gallery template, shape (probes, gallery)."""
    return np.atleast_2d(probes) @ gallery.T


def top_k(probes: np.ndarray, gallery: np.ndarray, k: int = 5, chunk: int = 262_144) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best gallery rows for each probe: (scores, indices), each shape (probes, k'), best first.

    Exact search, vectorised; the gallery is scanned in chunks so memory stays bounded for
    galleries of millions of templates. ``k'`` is ``min(k, len(gallery))``.
    """
    probes = np.atleast_2d(probes).astype(np.float32, copy=False)
    n = len(gallery)
    k = min(k, n)
    if k == 0:
        empty = np.zeros((len(probes), 0))
        return empty.astype(np.float32), empty.astype(np.int64)
    best_scores = np.full((len(probes), 0), -np.inf, dtype=np.float32)
    best_idx = np.zeros((len(probes), 0), dtype=np.int64)
    for start in range(0, n, chunk):
        scores = probes @ gallery[start : start + chunk].T
        kk = min(k, scores.shape[1])
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        best_idx = np.concatenate([best_idx, part + start], axis=1)
        if best_scores.shape[1] > k:
            keep = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
            best_idx = np.take_along_axis(best_idx, keep, axis=1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_scores, order, axis=1), np.take_along_axis(best_idx, order, axis=1)
