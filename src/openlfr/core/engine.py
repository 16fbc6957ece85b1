"""The face engine: detect -> landmarks -> align -> quality -> template, on whole images."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openlfr.core.alignment import ARCFACE_112, align_face
from openlfr.core.detector import Detector
from openlfr.core.quality import measure
from openlfr.core.recognizer import Recognizer
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

    @property
    def dimension(self) -> int:
        return self.recognizer.dimension

    def detect(self, image: np.ndarray) -> list[Detection]:
        return self.detector.detect(image)

    def align(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        return align_face(image, detection.landmarks, self.template)

    def faces(self, image: np.ndarray, with_templates: bool = True) -> list[Face]:
        """All faces in a BGR uint8 image, largest-scored first, with quality and templates."""
        detections = self.detect(image)
        return self.describe(image, detections, with_templates)

    def describe(self, image: np.ndarray, detections: list[Detection], with_templates: bool = True) -> list[Face]:
        """Quality and templates for faces already detected (e.g. by a tracker), in one batch."""
        crops = [self.align(image, d) for d in detections]
        faces = [Face(d, measure(d, c)) for d, c in zip(detections, crops, strict=True)]
        if with_templates and crops:
            for face, template in zip(faces, self.recognizer.templates(crops), strict=True):
                face.template = template
        return faces
