"""Synthetic face templates whose score distributions match real ones: benchmark galleries and distractors.

Why a Gaussian is enough: real templates (SFace on LFW) are close to isotropic — their covariance
spreads over ~113 of 128 dimensions — so a normalised Gaussian with their mean and covariance
reproduces the impostor score distribution, its far tail, and the best impostor score in a gallery
(measured by :func:`compare`; figures in docs/scaling.md). Identities add one level:

    centre ~ N(mean, Σ_between)      image = normalise(centre + e),  e ~ N(0, Σ_within)

``Σ_within`` is the pooled within-person covariance of the real templates, scaled by one factor so
that the median mated score matches the real one, and each image's noise is scaled again by a
log-normal factor whose spread is fitted so that the mated scores' 10–90% range matches too (real
photographs of one person differ by very different amounts: pose, age, light); ``Σ_between`` is the
total covariance less the within part (so impostor scores keep matching). Samples come in chunks, each from its own seeded
generator, so 10⁷ rows need only one chunk in memory and any identity's centre can be drawn again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

QUANTILES = (0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999)
DEFAULT_CHUNK = 1 << 18


@dataclass(frozen=True)
class TemplateModel:
    mean: np.ndarray  # (d,)
    between: np.ndarray  # (d, d) factor: Σ_between = between @ between.T
    within: np.ndarray  # (d, d) factor: Σ_within = within @ within.T
    spread: float = 0.0  # each image's noise is scaled by exp(spread · z): some photos are far worse than others

    @property
    def dim(self) -> int:
        return len(self.mean)


def _factor(cov: np.ndarray) -> np.ndarray:
    """A square root of a covariance, negative eigenvalues (noise of the estimate) clipped to zero."""
    values, vectors = np.linalg.eigh((cov + cov.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))).astype(np.float32)


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return [g for g in np.split(order, bounds) if len(g) >= 2]


def mated_scores(templates: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Scores of every pair of templates with the same label."""
    out = []
    for group in _groups(np.asarray(labels)):
        s = templates[group] @ templates[group].T
        out.append(s[np.triu_indices(len(group), 1)])
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def fit(real: np.ndarray, labels: np.ndarray | None = None, seed: int = 0) -> TemplateModel:
    """Fit the model to real unit templates; ``labels`` (person of each row) enable identities."""
    x = np.asarray(real, np.float64)
    mean, total = x.mean(axis=0), np.cov(x, rowvar=False)
    groups = _groups(np.asarray(labels)) if labels is not None else []
    if not groups:
        return TemplateModel(mean.astype(np.float32), _factor(total), np.zeros_like(total, np.float32))
    scatter = sum((x[g] - x[g].mean(axis=0)).T @ (x[g] - x[g].mean(axis=0)) for g in groups)
    within = scatter / sum(len(g) - 1 for g in groups)
    real_mated = mated_scores(np.asarray(real, np.float32), labels)
    target_median = float(np.median(real_mated))
    target_width = float(np.subtract(*np.quantile(real_mated, [0.9, 0.1])))

    def model(scale: float, spread: float) -> TemplateModel:
        noise = scale * within
        between = _factor(total - np.exp(2 * spread**2) * noise)
        return TemplateModel(mean.astype(np.float32), between, _factor(noise), spread)

    def mated(m: TemplateModel) -> np.ndarray:
        x2 = sample_array(m, 8000, seed=seed, per_identity=2, chunk=8000)
        return np.sum(x2[0::2] * x2[1::2], axis=1)

    def fit_scale(spread: float) -> TemplateModel:
        low, high = 0.05, 4.0  # more within-person noise, lower mated scores
        for _ in range(14):
            mid = (low * high) ** 0.5
            low, high = (mid, high) if np.median(mated(model(mid, spread))) > target_median else (low, mid)
        return model((low * high) ** 0.5, spread)

    low, high = 0.0, 1.5  # a wider spread, a wider range of mated scores
    for _ in range(12):
        mid = (low + high) / 2
        width = float(np.subtract(*np.quantile(mated(fit_scale(mid)), [0.9, 0.1])))
        low, high = (mid, high) if width < target_width else (low, mid)
    return fit_scale((low + high) / 2)


def _images(model: TemplateModel, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(centres.shape, np.float32) @ model.within.T
    if model.spread:
        noise *= np.exp(model.spread * rng.standard_normal((len(centres), 1), np.float32))
    x = centres + noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32, copy=False)


def _chunk_centres(model: TemplateModel, seed: int, chunk: int, per_chunk: int) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng([seed, chunk])
    z = rng.standard_normal((per_chunk, model.dim), np.float32)
    return model.mean + z @ model.between.T, rng


def sample(
    model: TemplateModel,
    n: int,
    seed: int = 0,
    chunk: int = DEFAULT_CHUNK,
    per_identity: int = 1,
) -> Iterator[np.ndarray]:
    """``n`` unit templates in chunks of ``chunk`` rows (rounded to whole identities).

    Row ``r`` is an image of identity ``r // per_identity``; every chunk has its own generator.
    """
    per_chunk = max(chunk // per_identity, 1)
    rows = per_chunk * per_identity
    for c, start in enumerate(range(0, n, rows)):
        centres, rng = _chunk_centres(model, seed, c, per_chunk)
        m = min(rows, n - start)
        yield _images(model, np.repeat(centres, per_identity, axis=0)[:m], rng)


def sample_array(model: TemplateModel, n: int, seed: int = 0, per_identity: int = 1, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """:func:`sample` gathered into one array (for small ``n``)."""
    return np.concatenate(list(sample(model, n, seed, chunk, per_identity))) if n else np.zeros((0, model.dim), np.float32)


def new_images(
    model: TemplateModel,
    identities: np.ndarray,
    seed: int,
    image_seed: int,
    chunk: int = DEFAULT_CHUNK,
    per_identity: int = 1,
) -> np.ndarray:
    """Fresh images (not in the gallery) of identities of a gallery drawn by :func:`sample` with ``seed``: mated probes."""
    identities = np.asarray(identities, np.int64)
    per_chunk = max(chunk // per_identity, 1)
    centres = np.empty((len(identities), model.dim), np.float32)
    for c in np.unique(identities // per_chunk).tolist():
        sel = identities // per_chunk == c
        chunk_centres, _ = _chunk_centres(model, seed, c, per_chunk)
        centres[sel] = chunk_centres[identities[sel] - c * per_chunk]
    return _images(model, centres, np.random.default_rng([seed, image_seed, 1 << 30]))


# --------------------------------------------------------------------------------------------
# How close two sets of templates are


def score_stats(
    templates: np.ndarray, labels: np.ndarray | None = None, seed: int = 0, pairs: int = 200_000
) -> dict[str, np.ndarray]:
    """Impostor scores (random pairs of different people), mated scores, and each person's best impostor score.

    The last ("nn") takes one template per person and its best score against the others: the score
    of the top impostor candidate in a gallery of that many people, which is what an examiner sees.
    """
    x = np.asarray(templates, np.float32)
    labels = np.arange(len(x)) if labels is None else np.asarray(labels)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(x), pairs), rng.integers(0, len(x), pairs)
    keep = labels[i] != labels[j]
    stats = {"impostor": np.sum(x[i[keep]] * x[j[keep]], axis=1)}
    mated = mated_scores(x, labels)
    if len(mated):
        stats["mated"] = mated
    _, first = np.unique(labels, return_index=True)
    one = x[first]
    nn = np.full(len(one), -np.inf, np.float32)
    for start in range(0, len(one), 4096):
        s = one[start : start + 4096] @ one.T
        s[np.arange(len(s)), np.arange(start, start + len(s))] = -np.inf
        nn[start : start + len(s)] = s.max(axis=1)
    stats["nn"] = nn
    return stats


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, points, "right") / len(a) - np.searchsorted(b, points, "right") / len(b))))


def compare(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray]) -> dict[str, dict]:
    """For each distribution in both: quantiles of each and their KS distance."""
    out = {}
    for kind in real.keys() & synthetic.keys():
        q = [q for q in QUANTILES if min(len(real[kind]), len(synthetic[kind])) * (1 - q) >= 1]
        out[kind] = {
            "quantiles": q,
            "real": np.quantile(real[kind], q).round(4).tolist(),
            "synthetic": np.quantile(synthetic[kind], q).round(4).tolist(),
            "ks": round(ks_distance(real[kind], synthetic[kind]), 4),
            "n": [len(real[kind]), len(synthetic[kind])],
        }
    return dict(sorted(out.items()))
