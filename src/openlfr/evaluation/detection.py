"""Detection recall on synthetic 1080p frames of LFW faces at a given face width.

Why synthetic: no public set gives thousands of known faces at exactly 24 or 40 px in full-HD
frames. :mod:`openlfr.simulation.frames` pastes LFW faces at a chosen size with exact truth.

**Matching.** A true face is *found* when a detection overlaps its face box with intersection
over union (IoU) of at least 0.3; each detection can find at most one face and each face is found
at most once (greedy, highest IoU first). 0.3 rather than the usual 0.5 because the truth box is
LFW's *mean* face box (individual faces differ by about 9% in width) and because at 24 px a
3-pixel disagreement about where the chin ends already costs 0.1 IoU: the looser threshold
measures whether the face was found, not box-drawing conventions. Faces are at least 8 px apart,
so a detection of one face can never reach IoU 0.3 with another.

**False detections** are the detections that found no face. Those whose centre lies inside a
pasted face patch are counted separately (``false_in_patches``): they are usually a second box on
the same face or a bystander at the edge of an LFW photograph, not a false alarm on background.

**Time** is wall-clock time of ``detector.detect(frame)`` alone (preprocessing, inference,
decoding and NMS) on the 1080p BGR frame, after one untimed warm-up call.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from openlfr.core.detector import Detector
from openlfr.core.types import Detection
from openlfr.simulation.frames import FRAME_SIZE, FaceTruth, compose_frame, make_background, pick_lfw_faces

#: Minimum IoU between a detection and a true face box for the face to count as found.
IOU_THRESHOLD = 0.3

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x, y, width, height) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match(
    truths: list[Box], detections: list[Box], iou_threshold: float = IOU_THRESHOLD
) -> tuple[list[tuple[int, int, float]], list[int]]:
    """One-to-one greedy matching: (truth index, detection index, IoU) pairs and unmatched detections."""
    pairs = [(v, t, d) for t, tb in enumerate(truths) for d, db in enumerate(detections) if (v := iou(tb, db)) >= iou_threshold]
    pairs.sort(reverse=True)
    used_t: set[int] = set()
    used_d: set[int] = set()
    matches = []
    for v, t, d in pairs:
        if t in used_t or d in used_d:
            continue
        used_t.add(t)
        used_d.add(d)
        matches.append((t, d, v))
    return matches, [d for d in range(len(detections)) if d not in used_d]


@dataclass
class RecallResult:
    """Detection results at one face width over a set of synthetic frames."""

    face_width_px: float
    frames: int = 0
    faces: int = 0
    found: int = 0
    false_detections: int = 0
    false_in_patches: int = 0
    detect_ms: list[float] = field(default_factory=list, repr=False)
    ious: list[float] = field(default_factory=list, repr=False)
    missed: list[FaceTruth] = field(default_factory=list, repr=False)

    @property
    def recall(self) -> float:
        return self.found / self.faces if self.faces else 0.0

    @property
    def false_per_frame(self) -> float:
        return self.false_detections / self.frames if self.frames else 0.0

    @property
    def mean_detect_ms(self) -> float:
        return float(np.mean(self.detect_ms)) if self.detect_ms else float("nan")

    @property
    def median_detect_ms(self) -> float:
        return float(np.median(self.detect_ms)) if self.detect_ms else float("nan")

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else float("nan")

    def add_frame(self, truths: list[FaceTruth], detections: list[Detection], elapsed_ms: float) -> None:
        matches, unmatched = match([t.box for t in truths], [d.box for d in detections])
        self.frames += 1
        self.faces += len(truths)
        self.found += len(matches)
        self.ious += [v for _, _, v in matches]
        self.detect_ms.append(elapsed_ms)
        found = {t for t, _, _ in matches}
        self.missed += [t for i, t in enumerate(truths) if i not in found]
        self.false_detections += len(unmatched)
        for d in unmatched:
            x, y, w, h = detections[d].box
            cx, cy = x + w / 2, y + h / 2
            if any(p[0] <= cx < p[0] + p[2] and p[1] <= cy < p[1] + p[3] for p in (t.patch for t in truths)):
                self.false_in_patches += 1

    def as_dict(self) -> dict[str, float | int]:
        return {
            "face_width_px": self.face_width_px,
            "frames": self.frames,
            "faces": self.faces,
            "found": self.found,
            "recall": round(self.recall, 4),
            "false_detections": self.false_detections,
            "false_in_patches": self.false_in_patches,
            "false_per_frame": round(self.false_per_frame, 3),
            "mean_iou": round(self.mean_iou, 3),
            "mean_detect_ms": round(self.mean_detect_ms, 1),
            "median_detect_ms": round(self.median_detect_ms, 1),
        }


def measure_recall(
    detector: Detector,
    lfw_root: str | Path,
    face_widths: Iterable[float] = (24, 40),
    frames: int = 10,
    faces_per_frame: int = 16,
    seed: int = 0,
    noise_std: float = 2.0,
    size: tuple[int, int] = FRAME_SIZE,
) -> list[RecallResult]:
    """Recall, false detections and detection time for each face width, one result per width.

    Every width uses the same seed, so the same people on the same backgrounds are measured at
    each size and differences between widths are due to size alone. ``detector`` is anything
    with ``detect(bgr) -> list[Detection]`` (a detector or a :class:`~openlfr.core.FaceEngine`).
    """
    results = []
    for width in face_widths:
        rng = np.random.default_rng(seed)
        result = RecallResult(face_width_px=float(width))
        warm = False
        for _ in range(frames):
            faces = pick_lfw_faces(lfw_root, faces_per_frame, rng)
            frame, truths = compose_frame(
                faces, width, rng, background=make_background(rng, size), size=size, noise_std=noise_std
            )
            if not warm:
                detector.detect(frame)
                warm = True
            start = time.perf_counter()
            detections = detector.detect(frame)
            elapsed = (time.perf_counter() - start) * 1e3
            result.add_frame(truths, detections, elapsed)
        results.append(result)
    return results
