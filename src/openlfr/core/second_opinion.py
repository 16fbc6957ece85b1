"""dlib's ResNet as a second, independent recogniser, fused with the first at template level.

Why a second model: SFace alone scores some people's photographs of themselves no higher than the
closest strangers score against each other, so no threshold separates them. dlib's ResNet was
trained on other data and errs on other pairs; averaging the two models' cosines separates
people that neither separates alone (README, "Measured").

Why fuse templates rather than scores: with unit templates ``a`` (first model) and ``b`` (dlib),
the fused template ``[sqrt(w)·a, sqrt(1-w)·b]`` is unit length and the inner product of two of them
is ``w·cos_a + (1-w)·cos_b``. Everything that compares templates (watchlists, the custody index,
threshold calibration) works on fused templates unchanged.

dlib is slow (about 77 ms a face against SFace's 12 ms), so the live pipeline asks for the second
opinion only on views that the first model already puts near a watchlist subject
(:meth:`FaceEngine.describe` with ``second_opinion=False``, then :meth:`FaceEngine.add_second_opinion`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from openlfr.core.types import Detection

#: dlib's face chip: 150x150 with 25% padding, as its ResNet was trained.
CHIP_SIZE, CHIP_PADDING = 150, 0.25


class DlibRecognizer:
    """Unit-length 128-d dlib ResNet templates of faces already detected (dlib's own 5-point
    landmarks place its chip; its detector is not used)."""

    dimension = 128

    def __init__(self, landmarks_model: Path, resnet_model: Path) -> None:
        import dlib  # only packs with a second opinion need it

        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(str(landmarks_model))
        self._resnet = dlib.face_recognition_model_v1(str(resnet_model))
        # dlib's network keeps per-call scratch state: one camera thread at a time.
        self._lock = threading.Lock()

    def templates(self, image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """Templates for the faces at ``detections`` in a BGR uint8 image, shape (len(detections), 128)."""
        if not detections:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rgb = np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        dlib = self._dlib
        with self._lock:
            chips = []
            for d in detections:
                x, y, w, h = d.box
                shape = self._landmarks(rgb, dlib.rectangle(round(x), round(y), round(x + w), round(y + h)))
                chips.append(dlib.get_face_chip(rgb, shape, CHIP_SIZE, CHIP_PADDING))
            feats = np.array(self._resnet.compute_face_descriptor(chips), dtype=np.float32)
        return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
