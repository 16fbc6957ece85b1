"""The face engine: detect -> landmarks -> align -> quality -> template, on whole images."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from openlfr.core.alignment import ARCFACE_112, align_face
from openlfr.core.detector import Detector
from openlfr.core.quality import measure
from openlfr.core.recognizer import Recognizer
from openlfr.core.second_opinion import DlibRecognizer
from openlfr.core.types import Detection, Face


@dataclass
class FaceEngine:
    """Everything needed to turn images into comparable templates, and nothing that stores them.

    ``pack_id`` names the model pack (and its recogniser checksum) that produced the templates:
    templates from different packs are not comparable and must never be mixed.
    """

    detector: Detector
    recognizer: Recognizer
    pack_id: str
    native_threshold: float
    template: np.ndarray = field(default_factory=lambda: ARCFACE_112.copy())
    #: Optional second recogniser fused with the first (see :mod:`openlfr.core.second_opinion`):
    #: templates are ``[sqrt(w)·first, sqrt(1-w)·second]`` with ``w = fusion_weight``.
    second: DlibRecognizer | None = None
    fusion_weight: float = 1.0
    #: The pack's default alert threshold where one was chosen for it; None: the native one.
    calibrated_threshold: float | None = None
    #: Faces with fewer pixels between the eyes than this are never compared for an alert in the
    #: live pipeline (the pack's measured limit, ``ModelPack.min_alert_inter_eye_px``); None: no limit.
    min_alert_inter_eye_px: float | None = None

    @property
    def alert_threshold(self) -> float:
        return self.native_threshold if self.calibrated_threshold is None else self.calibrated_threshold

    @property
    def dimension(self) -> int:
        return self.recognizer.dimension + (self.second.dimension if self.second else 0)

    def first_model_part(self, template: np.ndarray) -> np.ndarray:
        """The first model's part of a template (all of it for single-model packs), not rescaled."""
        return template[: self.recognizer.dimension] if self.second else template

    def second_opinion_floor(self, threshold: float) -> float:
        """The first-model score below which no second opinion can lift a fused score to ``threshold``
        (the second model's cosine is at most 1), so asking it would be wasted time."""
        return (threshold - (1.0 - self.fusion_weight)) / self.fusion_weight if self.second else -1.0

    def first_model_scores(self, scores: np.ndarray) -> np.ndarray:
        """First-model cosines from scores of first-model-only templates (``describe(second_opinion=False)``)."""
        return scores / self.fusion_weight if self.second else scores

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Detection]:
        """Faces in ``image``; with ``scale`` < 1 found on a reduced copy (a quarter of the pixels at 0.5,
        so about a quarter of the time) and returned in full-resolution coordinates. Faces smaller than
        about 20 px in the reduced copy are missed: choose the scale from the smallest face wanted."""
        if scale >= 1.0:
            return self.detector.detect(image)
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        return [d.scaled(1.0 / scale) for d in self.detector.detect(small)]

    def refine(self, image: np.ndarray, detection: Detection, margin: float = 1.0) -> Detection:
        """The detection found again at full resolution in a window around it (``margin`` face sizes
        each side): landmarks from a reduced frame are a pixel or two off at full size, which costs
        alignment and so recognition. Returns ``detection`` itself when the window finds no face there."""
        x, y, w, h = detection.box
        h_img, w_img = image.shape[:2]
        x0, y0 = max(0, int(x - margin * w)), max(0, int(y - margin * h))
        x1, y1 = min(w_img, int(x + w * (1 + margin)) + 1), min(h_img, int(y + h * (1 + margin)) + 1)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return detection
        found = self.detector.detect(np.ascontiguousarray(image[y0:y1, x0:x1]))
        if not found:
            return detection
        cx, cy = x + w / 2 - x0, y + h / 2 - y0
        nearest = min(found, key=lambda d: (d.box[0] + d.box[2] / 2 - cx) ** 2 + (d.box[1] + d.box[3] / 2 - cy) ** 2)
        nx, ny, nw, nh = nearest.box
        if abs(nx + nw / 2 - cx) > w / 2 or abs(ny + nh / 2 - cy) > h / 2 or not 0.5 <= nw / max(w, 1e-6) <= 2.0:
            return detection  # another face in the window, not this one
        return nearest.scaled(1.0, (float(x0), float(y0)))

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        return align_face(image, detection.landmarks, self.template)

    def faces(self, image: np.ndarray, with_templates: bool = True) -> list[Face]:
        """All faces in a BGR uint8 image, largest-scored first, with quality and templates."""
        detections = self.detect(image)
        return self.describe(image, detections, with_templates)

    def describe(
        self, image: np.ndarray, detections: list[Detection], with_templates: bool = True, second_opinion: bool = True
    ) -> list[Face]:
        """Quality and templates for faces already detected (e.g. by a tracker), in one batch.

        ``second_opinion=False`` (packs with a second model): templates carry the first model's
        part only, the second part zero, until :meth:`add_second_opinion` fills it in.
        """
        crops = [self.align(image, d) for d in detections]
        faces = [Face(d, measure(d, c)) for d, c in zip(detections, crops, strict=True)]
        if with_templates and crops:
            templates = self.recognizer.templates(crops)
            if self.second:
                first = templates
                templates = np.zeros((len(crops), self.dimension), dtype=np.float32)
                templates[:, : first.shape[1]] = np.sqrt(self.fusion_weight) * first
            for face, template in zip(faces, templates, strict=True):
                face.template = template
            if self.second and second_opinion:
                self.add_second_opinion(image, faces)
        return faces

    def add_second_opinion(self, image: np.ndarray, faces: list[Face]) -> None:
        """Fill in the second model's part of these faces' templates (from ``describe(second_opinion=False)``)."""
        if not self.second or not faces:
            return
        self.fill_second_opinion(faces, self.second.templates(image, [f.detection for f in faces]))

    def fill_second_opinion(self, faces: list[Face], second: np.ndarray) -> None:
        """Put the second model's unit templates (one row per face) into these faces' fused templates."""
        offset = self.recognizer.dimension
        for face, template in zip(faces, second, strict=True):
            assert face.template is not None
            face.template[offset:] = np.sqrt(1.0 - self.fusion_weight) * template
