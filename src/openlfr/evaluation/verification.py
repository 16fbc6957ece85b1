"""Verification (1:1) accuracy with the evidence behind each figure: ROC and DET curves, and the true
accept rate (TAR) at fixed false accept rates (FAR) with the number of impostor comparisons behind them.

Data sets:

- *LFW View 2*: the 6,000 pairs of ``pairs.txt`` (3,000 mated, 3,000 impostor), templates as
  ``lfw.evaluate`` makes them, plus its 10-fold accuracy;
- *a labelled folder* (``DIR/<identity>/<images>``): every mated pair (two images of one person), and
  every non-mated pair when there are at most ``max_non_mated`` of them, else a uniform random sample of
  that many drawn without replacement. Images without a detected face are left out and counted.

TAR at FAR f: the threshold is placed so that at most ``floor(f × N)`` of the N impostor scores are
above it, and TAR is the share of mated scores above it. The rule for how far to trust it (the
"rule of 30", Doddington et al. 2000): *supported* when N × f >= 30, i.e. at least 30 impostor scores
lie above the threshold; *indicative only* when 1 <= N × f < 30; *cannot be measured* when N × f < 1
(fewer impostor comparisons than 1/f, so not even one false accept can be observed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openlfr.core.engine import FaceEngine
from openlfr.errors import OpenLFRError
from openlfr.evaluation import lfw
from openlfr.evaluation.aliases import NONE, AliasList
from openlfr.evaluation.openset import RULE_OF, folder_names, identity_of, template_cache

FARS = (1e-2, 1e-3, 1e-4, 1e-5)
MAX_NON_MATED = 10_000_000


@dataclass
class PairScores:
    """Mated and impostor scores of one data set, and how they were obtained."""

    dataset: str
    mated: np.ndarray = field(repr=False)
    non_mated: np.ndarray = field(repr=False)
    images: int = 0
    people: int = 0
    images_without_face: int = 0
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def far_support(comparisons: int, far: float) -> str:
    expected = comparisons * far
    if expected >= RULE_OF:
        return "supported"
    if expected >= 1:
        return f"too few impostor comparisons (N·FAR = {expected:.1f} < {RULE_OF}): indicative only"
    return f"too few impostor comparisons (N·FAR = {expected:.2f} < 1): cannot be measured"


def tar_at_far(mated: np.ndarray, non_mated: np.ndarray, far: float) -> dict:
    """TAR with the threshold set so that at most floor(FAR × N) impostor scores lie above it."""
    n = len(non_mated)
    allowed = int(np.floor(far * n))
    if allowed >= n or not len(mated):
        raise OpenLFRError("TAR at FAR needs mated scores and more impostor scores than FAR × N")
    threshold = float(np.sort(non_mated)[::-1][allowed])
    measurable = n * far >= 1  # else no false accept could be seen: the threshold says nothing about this FAR
    return {
        "far": far,
        "tar": round(float((mated > threshold).mean()), 5) if measurable else None,
        "threshold_accept_above": round(threshold, 5) if measurable else None,
        "false_accepts": int((non_mated > threshold).sum()),
        "impostor_comparisons": n,
        "mated_comparisons": len(mated),
        "status": far_support(n, far),
    }


def curves(mated: np.ndarray, non_mated: np.ndarray, points: int = 400) -> dict[str, np.ndarray]:
    """FAR, TAR and FNMR at thresholds spread evenly on a log scale of FAR down to 1/N."""
    impostors = np.sort(non_mated)[::-1]
    genuine = np.sort(mated)
    n = len(impostors)
    ks = np.unique(np.round(np.logspace(0, np.log10(max(n, 1)), points)).astype(int)) - 1  # 0 .. n-1 accepted above
    thresholds = impostors[ks]
    far = (ks + 0.0) / max(n, 1)  # impostors strictly above impostors[k] (ties aside)
    fnmr = np.searchsorted(genuine, thresholds, side="right") / max(len(genuine), 1)
    return {"threshold": thresholds, "far": far, "tar": 1 - fnmr, "fnmr": fnmr}


def equal_error_rate(mated: np.ndarray, non_mated: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where the false non-match and false match rates cross."""
    grid = np.linspace(-0.2, 1.0, 2401)
    fnmr = np.searchsorted(np.sort(mated), grid, side="left") / max(len(mated), 1)
    fmr = 1 - np.searchsorted(np.sort(non_mated), grid, side="left") / max(len(non_mated), 1)
    k = int(np.argmin(np.abs(fnmr - fmr)))
    return float((fnmr[k] + fmr[k]) / 2), float(grid[k])


def summary(scores: PairScores, fars: tuple[float, ...] = FARS) -> dict:
    eer, eer_threshold = equal_error_rate(scores.mated, scores.non_mated)
    return {
        "dataset": scores.dataset,
        "images": scores.images,
        "people": scores.people,
        "images_without_face": scores.images_without_face,
        "mated_comparisons": len(scores.mated),
        "impostor_comparisons": len(scores.non_mated),
        "equal_error_rate": round(eer, 5),
        "eer_threshold": round(eer_threshold, 4),
        "tar_at_far": [tar_at_far(scores.mated, scores.non_mated, f) for f in fars],
        "notes": scores.notes,
        **scores.extra,
    }


# ------------------------------------------------------------------------------------------------ data sets


def lfw_view2(
    engine: FaceEngine,
    lfw_root: Path,
    pairs_file: Path | None = None,
    folds: int | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    aliases: AliasList = NONE,
) -> tuple[PairScores, lfw.VerificationResult]:
    """View 2 exactly as ``lfw.evaluate`` runs it, with templates from the cache. The ten-fold accuracy keeps
    every pair (the published protocol); the impostor statistics leave out pairs the alias list names."""
    pairs_path = pairs_file or lfw_root / "pairs.txt"
    images_dir = lfw_root / lfw.IMAGES_DIR
    if not pairs_path.is_file() or not images_dir.is_dir():
        raise OpenLFRError(f"{lfw_root} must contain {pairs_path.name} and {lfw.IMAGES_DIR}/ (LFW deep-funneled)")
    fold_pairs = lfw.read_pairs(pairs_path)[:folds]
    names = sorted({p for fold in fold_pairs for pair in fold for p in pair[:2]})
    index = {n: i for i, n in enumerate(names)}
    templates = template_cache(engine, images_dir, names, cache_dir, progress)
    a = np.array([index[p[0]] for fold in fold_pairs for p in fold])
    b = np.array([index[p[1]] for fold in fold_pairs for p in fold])
    same = np.array([p[2] for fold in fold_pairs for p in fold])
    fold_of = np.array([f for f, fold in enumerate(fold_pairs) for _ in fold])
    scores = np.einsum("ij,ij->i", templates[a], templates[b])
    accuracies, thresholds = lfw.ten_fold(scores, same, fold_of)
    missing = int((np.linalg.norm(templates, axis=1) == 0).sum())
    result = lfw.VerificationResult(accuracies, thresholds, scores, same, len(names), missing)
    listed = np.array([aliases.same(p[0], p[1]) for fold in fold_pairs for p in fold], bool) & ~same
    pairs = PairScores(
        dataset=f"LFW View 2 ({pairs_path.name}, {len(fold_pairs)} folds)",
        mated=scores[same],
        non_mated=scores[~same & ~listed],
        images=len(names),
        people=len({identity_of(n) for n in names}),
        images_without_face=missing,
        notes=[
            "images without a detected face keep a zero template and score 0 (the LFW protocol keeps every pair)",
            f"{int(listed.sum())} impostor pair(s) left out as label errors (alias list {aliases.source}); "
            "the ten-fold accuracy keeps them, as the published protocol does",
        ],
        extra={"ten_fold": result.as_dict(), "excluded_comparisons": int(listed.sum())},
    )
    return pairs, result


def upper_pair(k: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major index ``k`` of the strict upper triangle of an n × n matrix → (i, j), i < j."""
    i = n - 2 - np.floor(np.sqrt(-8.0 * k + 4.0 * n * (n - 1) - 7) / 2.0 - 0.5).astype(np.int64)
    j = k + i + 1 - n * (n - 1) // 2 + (n - i) * ((n - i) - 1) // 2
    return i, j.astype(np.int64)


def all_pairs(
    templates: np.ndarray,
    identities: list[str],
    max_non_mated: int = MAX_NON_MATED,
    seed: int = 0,
    names: list[str] | None = None,
    aliases: AliasList = NONE,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(mated scores, impostor scores, how the impostors were chosen) over every usable image; impostor pairs
    the alias list names (``names`` are the images, ``<identity>/<file>``) are left out and counted in the text."""
    ids = np.array(identities)
    names = names if names is not None else [f"{i}/{k}" for k, i in enumerate(identities)]
    dropped = 0
    mated = []
    for person in np.unique(ids):
        rows = np.flatnonzero(ids == person)
        if len(rows) >= 2:
            s = templates[rows] @ templates[rows].T
            mated.append(s[np.triu_indices(len(rows), 1)])
    mated_scores = np.concatenate(mated) if mated else np.zeros(0, np.float32)
    n = len(templates)
    total = n * (n - 1) // 2 - len(mated_scores)
    if total <= max_non_mated:
        out = []
        for start in range(0, n, 1024):
            s = templates[start : start + 1024] @ templates.T
            rows = np.arange(start, min(start + 1024, n))[:, None]
            keep = (np.arange(n)[None, :] > rows) & (ids[None, :] != ids[rows])
            ii, jj = aliases.excluded_pairs(names[start : start + 1024], names)
            listed = np.zeros_like(keep)
            listed[ii, jj] = True
            dropped += int((keep & listed).sum())
            out.append(s[keep & ~listed])
        how = f"all {total - dropped:,} non-mated pairs ({dropped:,} left out as label errors, alias list {aliases.source})"
        return mated_scores, np.concatenate(out) if out else np.zeros(0, np.float32), how
    rng = np.random.default_rng(seed)
    all_upper = n * (n - 1) // 2
    li, lj = aliases.excluded_pairs(names, names)  # listed label errors: few, so kept as pair keys
    listed_keys = np.unique(np.minimum(li, lj) * n + np.maximum(li, lj))
    dropped = len(listed_keys)
    picked = np.zeros(0, np.int64)
    while len(picked) < max_non_mated:  # sample without replacement: draw, deduplicate, top up
        picked = np.unique(np.concatenate([picked, rng.integers(0, all_upper, max_non_mated - len(picked) + 1000)]))
        i, j = upper_pair(picked, n)
        picked = picked[(ids[i] != ids[j]) & ~np.isin(i * n + j, listed_keys)]
    picked = rng.permutation(picked)[:max_non_mated]
    i, j = upper_pair(picked, n)
    scores = np.concatenate(
        [np.einsum("ij,ij->i", templates[i[s : s + 200_000]], templates[j[s : s + 200_000]]) for s in range(0, len(i), 200_000)]
    )
    how = (
        f"a uniform random sample (seed {seed}, without replacement) of {max_non_mated:,} of the {total - dropped:,} non-mated "
        f"pairs ({dropped:,} left out beforehand as label errors, alias list {aliases.source})"
    )
    return mated_scores, scores, how


def folder_pairs(
    engine: FaceEngine,
    folder: Path,
    max_non_mated: int = MAX_NON_MATED,
    seed: int = 0,
    limit_people: int | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    per_person: int | None = None,
    aliases: AliasList = NONE,
) -> PairScores:
    """All mated pairs and all (or a sample of) non-mated pairs of a labelled folder.

    ``per_person`` keeps at most that many images of each person (drawn with ``seed``), so that a few
    much-photographed people do not supply most of the mated pairs.
    """
    names = folder_names(folder, limit_people)
    templates = template_cache(engine, folder, names, cache_dir, progress)
    ok = np.linalg.norm(templates, axis=1) > 0
    if per_person:
        rng = np.random.default_rng(seed)
        by_person: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            by_person.setdefault(identity_of(n), []).append(i)
        keep = sorted(
            r
            for rows in by_person.values()
            for r in (rows if len(rows) <= per_person else rng.choice(rows, per_person, replace=False))
        )
        templates, names, ok = templates[keep], [names[i] for i in keep], ok[keep]
    used = [n for n, good in zip(names, ok, strict=True) if good]
    mated, non_mated, how = all_pairs(templates[ok], [identity_of(n) for n in used], max_non_mated, seed, used, aliases)
    if not len(mated) or not len(non_mated):
        raise OpenLFRError(f"{folder} needs at least one person with two images and two people")
    return PairScores(
        dataset=f"labelled folder {folder}",
        mated=mated,
        non_mated=non_mated,
        images=len(names),
        people=len({identity_of(n) for n in names}),
        images_without_face=int((~ok).sum()),
        notes=[
            "mated: every pair of images of the same person (people with many images weigh more)"
            + (f"; at most {per_person} images per person" if per_person else ""),
            f"non-mated: {how}",
            f"{int((~ok).sum())} image(s) without a detected face left out",
        ],
    )


# ---------------------------------------------------------------------------------------------------- plots


def roc_figure(sets: list[PairScores]):
    from openlfr.evaluation.report import new_figure

    fig = new_figure()
    ax = fig.subplots()
    for s in sets:
        c = curves(s.mated, s.non_mated)
        ax.plot(
            np.maximum(c["far"], 1 / max(len(s.non_mated), 1)),
            c["tar"],
            lw=1.6,
            label=f"{s.dataset} ({len(s.non_mated):,} impostor pairs)",
        )
    for f in FARS:
        ax.axvline(f, color="#999", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("False accept rate (log scale)")
    ax.set_ylabel("True accept rate")
    ax.set_title("ROC: mated pairs accepted against impostor pairs accepted")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def det_figure(sets: list[PairScores]):
    from openlfr.evaluation.report import new_figure

    fig = new_figure()
    ax = fig.subplots()
    for s in sets:
        c = curves(s.mated, s.non_mated)
        floor = 1 / max(len(s.mated), 1)
        ax.plot(np.maximum(c["far"], 1 / max(len(s.non_mated), 1)), np.maximum(c["fnmr"], floor), lw=1.6, label=s.dataset)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("False match rate (log scale)")
    ax.set_ylabel("False non-match rate (log scale)")
    ax.set_title("DET: both error rates; lower left is better")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    return fig
