"""Closed- and open-set identification on LFW, as a retrospective search sees it.

Protocol (stated so the figures can be checked and repeated):

- *gallery*: the first image (``_0001``) of every LFW person, except a held-out set of people
  (``holdout`` of those with two or more images, chosen with a fixed seed) who are not enrolled;
- *mated probes*: every other image of the enrolled people who have two or more images;
- *non-mated probes*: every image of the held-out people;
- optional *distractors*: synthetic templates added to the gallery (``openlfr.index.synthetic``),
  to see how ranks hold up as the gallery grows.

Rank-k hit rate: the share of mated probes whose own gallery image is among the k best scores.
For non-mated probes, the distribution of their best score says how often a search for someone
not in the database would put a stranger above a given threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openlfr.core import top_k
from openlfr.core.engine import FaceEngine
from openlfr.errors import OpenLFRError
from openlfr.evaluation.lfw import IMAGES_DIR, image_templates

RANKS = (1, 5, 10, 20)
THRESHOLDS = (0.30, 0.363, 0.40, 0.45, 0.50)


@dataclass
class IdentificationResult:
    gallery: int
    distractors: int
    mated_probes: int
    non_mated_probes: int
    rank_hits: dict[int, float]
    non_mated_best: np.ndarray
    mated_best_genuine: np.ndarray
    images_without_face: int
    #: The pack's alert threshold (the default for alerts and searches), reported beside the fixed ones
    #: (scores differ between packs).
    pack_threshold: float | None = None
    #: The data set's name, as the protocol line states it.
    dataset: str = "LFW"
    #: Impostor comparisons left out as label errors (alias list).
    excluded_comparisons: int = 0

    def non_mated_share_at(self, threshold: float) -> float:
        """The share of non-mated probes whose best score is at or above ``threshold``."""
        return round(float((self.non_mated_best >= threshold).mean()) if len(self.non_mated_best) else 0.0, 5)

    def as_dict(self) -> dict:
        q = np.quantile(self.non_mated_best, [0.5, 0.9, 0.99, 0.999]) if len(self.non_mated_best) else [0, 0, 0, 0]
        thresholds = THRESHOLDS if self.pack_threshold is None else sorted({*THRESHOLDS, float(self.pack_threshold)})
        share = {str(t): self.non_mated_share_at(t) for t in thresholds}
        return {
            "protocol": f"{self.dataset}: gallery = first image of each enrolled person; mated probes = their other images; "
            "non-mated probes = every image of held-out people",
            "gallery_size": self.gallery,
            "synthetic_distractors": self.distractors,
            "mated_probes": self.mated_probes,
            "non_mated_probes": self.non_mated_probes,
            "rank_hit_rate": {f"rank_{k}": round(v, 5) for k, v in self.rank_hits.items()},
            "non_mated_best_score_quantiles": {
                p: round(float(v), 4) for p, v in zip(("50%", "90%", "99%", "99.9%"), q, strict=True)
            },
            "non_mated_share_above": share,
            "pack_threshold": self.pack_threshold,
            # The share of strangers a search or alert at the pack's default threshold would put forward.
            "non_mated_share_at_pack_threshold": None
            if self.pack_threshold is None
            else self.non_mated_share_at(self.pack_threshold),
            "mated_genuine_score_median": round(float(np.median(self.mated_best_genuine)), 4)
            if len(self.mated_best_genuine)
            else None,
            "images_without_face": self.images_without_face,
            "excluded_comparisons": self.excluded_comparisons,
        }


def split(names: list[str], holdout: float, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(gallery images, mated probe images, non-mated probe images) from LFW image names."""
    people: dict[str, list[str]] = {}
    for name in sorted(names):
        people.setdefault(name.split("/")[0], []).append(name)
    multi = sorted(p for p, imgs in people.items() if len(imgs) >= 2)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(multi, size=round(len(multi) * holdout), replace=False).tolist()) if holdout > 0 else set()
    gallery, mated, non_mated = [], [], []
    for person, imgs in sorted(people.items()):
        if person in held:
            non_mated += imgs
        else:
            gallery.append(imgs[0])
            mated += imgs[1:]
    return gallery, mated, non_mated


def evaluate(
    engine: FaceEngine,
    lfw_root: str | Path,
    holdout: float = 0.1,
    seed: int = 0,
    distractors: np.ndarray | None = None,
    limit_people: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> IdentificationResult:
    images_dir = Path(lfw_root) / IMAGES_DIR
    if not images_dir.is_dir():
        raise OpenLFRError(f"{lfw_root} must contain {IMAGES_DIR}/ (LFW deep-funneled)")
    people = sorted(p.name for p in images_dir.iterdir() if p.is_dir())
    if limit_people:
        people = people[:limit_people]
    names = [f"{p}/{f.name}" for p in people for f in sorted((images_dir / p).glob("*.jpg"))]
    gallery_names, mated_names, non_mated_names = split(names, holdout, seed)
    order = gallery_names + mated_names + non_mated_names
    templates, missing = image_templates(engine, images_dir, order, progress)
    g, m = len(gallery_names), len(mated_names)
    gallery, mated, non_mated = templates[:g], templates[g : g + m], templates[g + m :]
    extra = 0 if distractors is None else len(distractors)
    if extra:
        gallery = np.vstack([gallery, distractors.astype(np.float32)])
    owner = {n.split("/")[0]: i for i, n in enumerate(gallery_names)}
    truth = np.array([owner[n.split("/")[0]] for n in mated_names], dtype=np.int64)
    k = max(RANKS)
    hits = {r: 0 for r in RANKS}
    genuine = np.einsum("ij,ij->i", mated, gallery[truth]) if m else np.zeros(0)
    if m:
        _scores, rows = top_k(mated, gallery, k=k)
        for r in RANKS:
            hits[r] = int((rows[:, :r] == truth[:, None]).any(axis=1).sum())
    best = top_k(non_mated, gallery, k=1)[0][:, 0] if len(non_mated) else np.zeros(0)
    return IdentificationResult(
        gallery=g,
        distractors=extra,
        mated_probes=m,
        non_mated_probes=len(non_mated),
        rank_hits={r: hits[r] / max(m, 1) for r in RANKS},
        non_mated_best=best,
        mated_best_genuine=genuine,
        images_without_face=missing,
        pack_threshold=engine.alert_threshold,
    )
