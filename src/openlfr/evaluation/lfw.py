"""LFW View 2: the standard 10-fold verification protocol (Huang et al., 2007).

For each fold, the threshold that maximises accuracy on the other nine folds is applied to the
held-out fold; the figure reported is the mean and standard deviation of the ten fold accuracies.
LFW's deep-funneled images hold one centred face, sometimes with others around it: the face used
is the detected one nearest the centre.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openlfr.core.engine import FaceEngine
from openlfr.core.types import Detection
from openlfr.errors import OpenLFRError
from openlfr.media.images import load_image

IMAGES_DIR = "lfw-deepfunneled"
Pair = tuple[str, str, bool]


def read_pairs(path: Path) -> list[list[Pair]]:
    """Parse ``pairs.txt`` into folds of (image, image, same-person) tuples."""
    lines = path.read_text().split("\n")
    header = lines[0].split()
    if len(header) == 2:
        n_folds, per = int(header[0]), int(header[1])
    else:  # View 1 files have a single count and one fold
        n_folds, per = 1, int(header[0]) // 2
    rows = [line.split() for line in lines[1:] if line.strip()]
    if len(rows) != n_folds * per * 2:
        raise OpenLFRError(f"{path} should list {n_folds * per * 2} pairs, found {len(rows)}")

    def image(name: str, number: str) -> str:
        return f"{name}/{name}_{int(number):04d}.jpg"

    folds: list[list[Pair]] = []
    for f in range(n_folds):
        fold: list[Pair] = []
        for row in rows[f * per * 2 : (f + 1) * per * 2]:
            if len(row) == 3:
                fold.append((image(row[0], row[1]), image(row[0], row[2]), True))
            elif len(row) == 4:
                fold.append((image(row[0], row[1]), image(row[2], row[3]), False))
            else:
                raise OpenLFRError(f"{path}: cannot parse pair line {' '.join(row)!r}")
        folds.append(fold)
    return folds


def central_face(detections: list[Detection], width: int, height: int) -> Detection | None:
    if not detections:
        return None
    centre = np.array([width / 2, height / 2])

    def distance(d: Detection) -> float:
        x, y, w, h = d.box
        return float(np.linalg.norm(np.array([x + w / 2, y + h / 2]) - centre))

    return min(detections, key=distance)


@dataclass
class VerificationResult:
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    scores: np.ndarray = field(repr=False)
    same: np.ndarray = field(repr=False)
    images: int = 0
    detector_fallbacks: int = 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_accuracies))

    def roc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """False-accept rate, true-accept rate and threshold for every distinct score."""
        order = np.argsort(-self.scores)
        s, y = self.scores[order], self.same[order]
        tar = np.cumsum(y) / max(y.sum(), 1)
        far = np.cumsum(~y) / max((~y).sum(), 1)
        return far, tar, s

    def tar_at_far(self, far_target: float) -> float:
        far, tar, _ = self.roc()
        ok = far <= far_target
        return float(tar[ok].max()) if ok.any() else 0.0

    def as_dict(self) -> dict:
        return {
            "protocol": "LFW View 2, 10-fold, threshold chosen on 9 folds and tested on the 10th",
            "mean_accuracy": round(self.mean, 5),
            "std_accuracy": round(self.std, 5),
            "fold_accuracies": [round(a, 5) for a in self.fold_accuracies],
            "fold_thresholds": [round(t, 5) for t in self.fold_thresholds],
            "pairs": len(self.scores),
            "images": self.images,
            "images_without_detection": self.detector_fallbacks,
            "tar_at_far": {str(f): round(self.tar_at_far(f), 5) for f in (1e-2, 1e-3)},
        }


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy; ties resolved to the midpoint between neighbouring scores."""
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # Accuracy when the threshold sits just above s[i]: negatives at or below i are right.
    correct_neg = np.cumsum(~y)
    correct_pos = y.sum() - np.cumsum(y)
    acc = np.concatenate([[y.sum()], correct_neg + correct_pos])
    i = int(np.argmax(acc))
    if i == 0:
        return float(s[0] - 1e-6)
    if i == len(s):
        return float(s[-1] + 1e-6)
    return float((s[i - 1] + s[i]) / 2)


def ten_fold(scores: np.ndarray, same: np.ndarray, fold_of: np.ndarray) -> tuple[list[float], list[float]]:
    accuracies, thresholds = [], []
    if len(np.unique(fold_of)) < 2:
        raise OpenLFRError("cross-validation needs at least 2 folds (the threshold is chosen on the others)")
    for f in np.unique(fold_of):
        train, test = fold_of != f, fold_of == f
        t = best_threshold(scores[train], same[train])
        accuracies.append(float(((scores[test] >= t) == same[test]).mean()))
        thresholds.append(t)
    return accuracies, thresholds


def labelled_face(engine: FaceEngine, image: np.ndarray, images_dir: Path) -> Detection | None:
    """The face an image of a labelled folder is filed for, or None.

    LFW's images are cropped around the named person, so its face is the one nearest the centre (a larger
    neighbour can be in the frame); any other labelled folder of photographs uses the main-face rule that
    enrolment and search use (:func:`openlfr.core.selection.main_face`). An image without a face at the
    detector's threshold is tried once more with a permissive one.
    """
    from openlfr.core.selection import main_face

    def pick(faces: list[Detection], w: int, h: int) -> Detection | None:
        if images_dir.name == IMAGES_DIR:
            return central_face(faces, w, h)
        return main_face(faces) if faces else None

    h, w = image.shape[:2]
    face = pick(engine.detect(image), w, h)
    if face is None:
        saved = engine.detector.score_threshold
        engine.detector.score_threshold = 0.1
        try:
            face = pick(engine.detect(image), w, h)
        finally:
            engine.detector.score_threshold = saved
    return face


def image_templates(
    engine: FaceEngine, images_dir: Path, names: list[str], progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, int]:
    """One template per image (its :func:`labelled_face`), in order; rows of images without a face stay zero."""
    templates = np.zeros((len(names), engine.dimension), dtype=np.float32)
    fallbacks = 0
    for n, name in enumerate(names):
        image = load_image(images_dir / name)
        face = labelled_face(engine, image, images_dir)
        if face is None:
            fallbacks += 1  # template stays zero: every comparison scores 0
        else:
            templates[n] = engine.describe(image, [face])[0].template
        if progress:
            progress(n + 1, len(names))
    return templates, fallbacks


def image_quality(
    engine: FaceEngine, images_dir: Path, names: list[str], progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """The quality measures (:data:`openlfr.core.quality.MEASURES`) of each image's :func:`labelled_face`, in
    order; NaN rows for images without a face. Detection and alignment only: much faster than templates."""
    from openlfr.core.quality import MEASURES, measure

    values = np.full((len(names), len(MEASURES)), np.nan)
    for n, name in enumerate(names):
        image = load_image(images_dir / name)
        face = labelled_face(engine, image, images_dir)
        if face is not None:
            report = measure(face, engine.align(image, face))
            values[n] = [getattr(report, m) for m in MEASURES]
        if progress:
            progress(n + 1, len(names))
    return values


def evaluate(
    engine: FaceEngine,
    lfw_root: str | Path,
    pairs_file: str = "pairs.txt",
    limit_folds: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerificationResult:
    """Run View 2 on an LFW folder holding ``pairs.txt`` and ``lfw-deepfunneled/``."""
    root = Path(lfw_root)
    images_dir = root / IMAGES_DIR
    pairs_path = root / pairs_file
    if not pairs_path.is_file() or not images_dir.is_dir():
        raise OpenLFRError(f"{root} must contain {pairs_file} and {IMAGES_DIR}/ (LFW deep-funneled)")
    folds = read_pairs(pairs_path)[:limit_folds]
    names = sorted({p for fold in folds for pair in fold for p in pair[:2]})
    index = {n: i for i, n in enumerate(names)}
    templates, fallbacks = image_templates(engine, images_dir, names, progress)
    a = np.array([index[p[0]] for fold in folds for p in fold])
    b = np.array([index[p[1]] for fold in folds for p in fold])
    same = np.array([p[2] for fold in folds for p in fold])
    fold_of = np.array([f for f, fold in enumerate(folds) for _ in fold])
    scores = np.einsum("ij,ij->i", templates[a], templates[b])
    accuracies, thresholds = ten_fold(scores, same, fold_of)
    return VerificationResult(accuracies, thresholds, scores, same, len(names), fallbacks)


def write_roc_plot(result: VerificationResult, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar, _ = result.roc()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.plot(np.maximum(far, 1e-5), tar, lw=1.8)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0.8, 1.0)
    ax.set_xlabel("False accept rate")
    ax.set_ylabel("True accept rate")
    ax.set_title(f"{title}\nmean accuracy {result.mean * 100:.2f}% ± {result.std * 100:.2f}%")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
