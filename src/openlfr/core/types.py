"""Plain data passed between the stages of the biometric core."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One face found by a detector, in the pixel coordinates of the image it was found in.

    ``landmarks`` are five (x, y) points in the order right eye, left eye, nose tip,
    right mouth corner, left mouth corner (the subject's right is the image's left).
    """

    box: tuple[float, float, float, float]  # x, y, width, height
    landmarks: np.ndarray  # shape (5, 2), float32
    score: float

    @property
    def inter_eye_px(self) -> float:
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> Detection:
        """The same detection in another image's coordinates: multiplied by ``factor``, then shifted."""
        x, y, w, h = self.box
        dx, dy = offset
        return Detection(
            box=(x * factor + dx, y * factor + dy, w * factor, h * factor),
            landmarks=(self.landmarks * factor + np.array([dx, dy], dtype=np.float32)).astype(np.float32),
            score=self.score,
        )


@dataclass(frozen=True)
class QualityReport:
    """Measures of how usable a face is; see :mod:`openlfr.core.quality` for their meaning."""

    inter_eye_px: float
    sharpness: float
    brightness: float
    contrast: float
    frontalness: float
    detector_score: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


@dataclass
class Face:
    """A detected face with its quality measures and, when asked for, its template."""

    detection: Detection
    quality: QualityReport
    template: np.ndarray | None = field(default=None, repr=False)
