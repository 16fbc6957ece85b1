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

        self.resnet_model = Path(resnet_model)
        self._dlib = dlib
        self._landmarks = dlib.shape_predictor(str(landmarks_model))
        self._resnet = dlib.face_recognition_model_v1(str(resnet_model))
        # dlib's network keeps per-call scratch state: one camera thread at a time.
        self._lock = threading.Lock()

    def chips(self, image: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray]:
        """dlib's aligned 150x150 RGB chips of the faces at ``detections`` in a BGR uint8 image (fast)."""
        dlib = self._dlib
        chips = []
        with self._lock:
            for d in detections:
                x, y, w, h = d.box
                # Only the region around the face is converted: a 1080p frame costs milliseconds.
                x0, y0 = max(0, int(x - w)), max(0, int(y - h))
                x1, y1 = min(image.shape[1], int(x + 2 * w) + 1), min(image.shape[0], int(y + 2 * h) + 1)
                rgb = np.ascontiguousarray(cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2RGB))
                box = dlib.rectangle(round(x - x0), round(y - y0), round(x - x0 + w), round(y - y0 + h))
                chips.append(dlib.get_face_chip(rgb, self._landmarks(rgb, box), CHIP_SIZE, CHIP_PADDING))
        return chips

    def templates_of_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Unit templates of chips from :meth:`chips`, shape (len(chips), 128). Slow, and dlib holds
        Python's lock meanwhile: the live pipeline runs this in another process (:class:`SecondOpinionProcess`)."""
        if not chips:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            feats = np.array(self._resnet.compute_face_descriptor(list(chips)), dtype=np.float32)
        return unit_rows(feats)

    def templates(self, image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """Templates for the faces at ``detections`` in a BGR uint8 image, shape (len(detections), 128)."""
        return self.templates_of_chips(self.chips(image, detections))


def unit_rows(feats: np.ndarray) -> np.ndarray:
    return (feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)).astype(np.float32)


_worker_resnet = None


def _load_resnet(resnet_model: str) -> None:
    global _worker_resnet
    import dlib

    _worker_resnet = dlib.face_recognition_model_v1(resnet_model)


def _describe_chips(chips: list[np.ndarray]) -> np.ndarray:
    assert _worker_resnet is not None
    if not chips:
        return np.zeros((0, DlibRecognizer.dimension), dtype=np.float32)
    return unit_rows(np.array(_worker_resnet.compute_face_descriptor(chips), dtype=np.float32))


class SecondOpinionProcess:
    """dlib's ResNet in a worker process of its own. dlib keeps Python's global lock for the whole
    ~80 ms of a descriptor, so run on a thread it stalls the camera loop (measured: the main thread
    stopped for up to 99 ms per face, and frames were dropped); in a process it takes only a core.
    Chips cross by pipe and live in the worker's memory only while they are described."""

    def __init__(self, resnet_model: Path) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_load_resnet,
            initargs=(str(resnet_model),),
        )  # fmt: skip
        self._pool.submit(_describe_chips, []).result()  # start it now, not at the first alert

    def submit(self, chips: list[np.ndarray]):
        return self._pool.submit(_describe_chips, chips)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
