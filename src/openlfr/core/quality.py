"""Face quality measures and the policy that decides whether a face is good enough to enrol.

Measures (all computed on what the recogniser will see, so they are comparable across image sizes):

- ``inter_eye_px``: distance between the eye landmarks in the original image, in pixels.
- ``sharpness``: variance of the Laplacian of the aligned 112x112 grey crop (blur lowers it).
- ``brightness``: mean grey level of the aligned crop, 0-255.
- ``contrast``: standard deviation of the grey levels of the aligned crop.
- ``frontalness``: 1.0 for a face looking straight at the camera, falling towards 0 as the head
  turns (yaw, from the nose's offset between the eyes) or tilts (roll, from the eye line).
- ``detector_score``: the detector's confidence, 0-1.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import cv2
import numpy as np

from openlfr.core.types import Detection, QualityReport

#: The measures of a :class:`QualityReport`, in the column order of :meth:`QualityPolicy.accepts`.
MEASURES = ("inter_eye_px", "sharpness", "brightness", "contrast", "frontalness", "detector_score")


def frontalness(landmarks: np.ndarray) -> float:
    right_eye, left_eye, nose = landmarks[0], landmarks[1], landmarks[2]
    eye_vec = left_eye - right_eye
    eye_dist = float(np.linalg.norm(eye_vec))
    if eye_dist < 1e-6:
        return 0.0
    # Yaw: how far the nose sits from the eyes' midpoint, along the eye line, relative to eye distance.
    mid = (left_eye + right_eye) / 2
    yaw = abs(float(np.dot(nose - mid, eye_vec / eye_dist))) / eye_dist
    # Roll: angle of the eye line from horizontal.
    roll = abs(float(np.arctan2(eye_vec[1], eye_vec[0])))
    return float(max(0.0, 1.0 - 2.0 * yaw) * np.cos(min(roll, np.pi / 2)))


def measure(detection: Detection, aligned_crop: np.ndarray) -> QualityReport:
    grey = cv2.cvtColor(aligned_crop, cv2.COLOR_BGR2GRAY)
    return QualityReport(
        inter_eye_px=detection.inter_eye_px,
        sharpness=float(cv2.Laplacian(grey, cv2.CV_64F).var()),
        brightness=float(grey.mean()),
        contrast=float(grey.std()),
        frontalness=frontalness(detection.landmarks),
        detector_score=detection.score,
    )


@dataclass(frozen=True)
class QualityPolicy:
    """Limits a reference (enrolment) image must meet. ``None`` disables a limit.

    The defaults were set from the distribution of these measures over LFW so that ordinary
    press photographs pass and blurred, tiny, dark or strongly turned faces do not.
    """

    min_inter_eye_px: float | None = 20.0
    min_sharpness: float | None = 20.0
    min_brightness: float | None = 40.0
    max_brightness: float | None = 220.0
    min_contrast: float | None = 15.0
    min_frontalness: float | None = 0.25
    min_detector_score: float | None = 0.7

    def accepts(self, measures: np.ndarray) -> np.ndarray:
        """Per row of measures (columns in :data:`MEASURES` order; NaN where no face was found): would the
        face be accepted as a reference? Evaluations use it to enrol only what enrolment would accept."""
        values = np.asarray(measures, dtype=np.float64).reshape(-1, len(MEASURES))
        ok = ~np.isnan(values).any(axis=1)
        for f in fields(self):
            limit = getattr(self, f.name)
            if limit is None:
                continue
            kind, measure_name = f.name.split("_", 1)
            column = values[:, MEASURES.index(measure_name)]
            with np.errstate(invalid="ignore"):
                ok &= column >= limit if kind == "min" else column <= limit
        return ok

    def failures(self, report: QualityReport) -> list[str]:
        """Each failed limit as 'measure value < limit' text; an empty list means the face passes."""
        problems = []
        for f in fields(self):
            limit = getattr(self, f.name)
            if limit is None:
                continue
            kind, measure_name = f.name.split("_", 1)
            value = getattr(report, measure_name)
            if kind == "min" and value < limit:
                problems.append(f"{measure_name} {value:.2f} is below the minimum {limit:g}")
            if kind == "max" and value > limit:
                problems.append(f"{measure_name} {value:.2f} is above the maximum {limit:g}")
        return problems
