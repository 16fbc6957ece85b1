"""Face detectors run on ONNX Runtime: YuNet (the default pack) and SCRFD (insightface-format packs).

Both return :class:`~openlfr.core.types.Detection` objects with five landmarks, in the
coordinates of the image passed in, sorted by descending score.
"""

from __future__ import annotations

from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort

from openlfr.core.types import Detection


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Find faces in a BGR uint8 image."""
        ...


def _nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float) -> np.ndarray:
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), score_threshold, nms_threshold)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


def _to_detections(
    boxes: np.ndarray, landmarks: np.ndarray, scores: np.ndarray, keep: np.ndarray, scale: float
) -> list[Detection]:
    order = keep[np.argsort(-scores[keep])]
    return [
        Detection(
            box=tuple(float(v) for v in boxes[i] / scale),  # type: ignore[arg-type]
            landmarks=(landmarks[i] / scale).astype(np.float32),
            score=float(scores[i]),
        )
        for i in order
    ]


def _downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink very large stills before detection; faces in them are large anyway."""
    h, w = image.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image, 1.0
    scale = max_side / max(h, w)
    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), scale


class YuNetDetector:
    """YuNet (OpenCV model zoo, 2023mar): anchor-free, strides 8/16/32, any input size divisible by 32.

    Decoding follows OpenCV's ``FaceDetectorYN``: score = sqrt(cls * obj), box centre offsets and
    log-sizes in units of the stride, landmarks as offsets from the grid cell.
    """

    STRIDES = (8, 16, 32)

    def __init__(
        self,
        session: ort.InferenceSession,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int | None = 1920,
    ) -> None:
        self.session = session
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self._input = session.get_inputs()[0].name
        self._outputs = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in self.STRIDES]
        self._grids: dict[tuple[int, int], list[np.ndarray]] = {}

    def _grid(self, pad_h: int, pad_w: int) -> list[np.ndarray]:
        key = (pad_h, pad_w)
        if key not in self._grids:
            grids = []
            for s in self.STRIDES:
                rows, cols = pad_h // s, pad_w // s
                c, r = np.meshgrid(np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32))
                grids.append(np.stack([c.ravel(), r.ravel()], axis=1))
            self._grids[key] = grids
        return self._grids[key]

    def detect(self, image: np.ndarray) -> list[Detection]:
        image, scale = _downscale(image, self.max_side)
        h, w = image.shape[:2]
        pad_h, pad_w = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, pad_h, pad_w), dtype=np.float32)
        blob[0, :, :h, :w] = image.transpose(2, 0, 1)
        out = self.session.run(self._outputs, {self._input: blob})
        n = len(self.STRIDES)
        all_boxes, all_kps, all_scores = [], [], []
        for i, (stride, grid) in enumerate(zip(self.STRIDES, self._grid(pad_h, pad_w), strict=True)):
            cls = np.clip(out[i][0, :, 0], 0, 1)
            obj = np.clip(out[n + i][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            mask = score >= self.score_threshold
            if not mask.any():
                continue
            g = grid[mask]
            bbox = out[2 * n + i][0][mask]
            kps = out[3 * n + i][0][mask].reshape(-1, 5, 2)
            centre = (g + bbox[:, :2]) * stride
            size = np.exp(bbox[:, 2:4]) * stride
            all_boxes.append(np.concatenate([centre - size / 2, size], axis=1))
            all_kps.append((kps + g[:, None, :]) * stride)
            all_scores.append(score[mask])
        if not all_scores:
            return []
        boxes, kps, scores = np.concatenate(all_boxes), np.concatenate(all_kps), np.concatenate(all_scores)
        keep = _nms(boxes, scores, self.score_threshold, self.nms_threshold)
        return _to_detections(boxes, kps, scores, keep, scale)


class SCRFDDetector:
    """SCRFD (insightface): two anchors per cell, distance-to-edge boxes, five landmarks.

    Works with both fixed-size exports (the image is letterboxed into the input) and dynamic ones.
    """

    STRIDES = (8, 16, 32)
    ANCHORS = 2

    def __init__(
        self,
        session: ort.InferenceSession,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_side: int | None = 1920,
    ) -> None:
        self.session = session
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        inp = session.get_inputs()[0]
        self._input = inp.name
        shape = inp.shape
        self._fixed = (int(shape[2]), int(shape[3])) if isinstance(shape[2], int) and isinstance(shape[3], int) else None
        self._outputs = [o.name for o in session.get_outputs()]
        if len(self._outputs) != 9:
            raise ValueError(
                f"SCRFD detector must have 9 outputs (scores, boxes and landmarks at 3 strides), "
                f"found {len(self._outputs)}; a detector without landmarks cannot align faces"
            )

    def detect(self, image: np.ndarray) -> list[Detection]:
        image, scale = _downscale(image, self.max_side)
        h, w = image.shape[:2]
        if self._fixed:
            in_h, in_w = self._fixed
            fit = min(in_h / h, in_w / w)
            resized = cv2.resize(image, (max(1, round(w * fit)), max(1, round(h * fit))))
            scale *= fit
        else:
            in_h, in_w = -(-h // 32) * 32, -(-w // 32) * 32
            resized = image
        canvas = np.zeros((in_h, in_w, 3), dtype=np.float32)
        canvas[: resized.shape[0], : resized.shape[1]] = resized[:, :, ::-1]  # BGR -> RGB
        blob = ((canvas - 127.5) / 128.0).transpose(2, 0, 1)[None]
        out = self.session.run(self._outputs, {self._input: blob})
        out = [o[0] if o.ndim == 3 else o for o in out]  # some exports keep a batch axis
        all_boxes, all_kps, all_scores = [], [], []
        for i, stride in enumerate(self.STRIDES):
            rows, cols = in_h // stride, in_w // stride
            c, r = np.meshgrid(np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32))
            centres = np.repeat(np.stack([c.ravel(), r.ravel()], axis=1) * stride, self.ANCHORS, axis=0)
            scores = out[i].reshape(-1)
            mask = scores >= self.score_threshold
            if not mask.any():
                continue
            dist = out[3 + i].reshape(-1, 4)[mask] * stride
            kps = out[6 + i].reshape(-1, 5, 2)[mask] * stride
            ctr = centres[mask]
            x1y1 = ctr - dist[:, :2]
            x2y2 = ctr + dist[:, 2:]
            all_boxes.append(np.concatenate([x1y1, x2y2 - x1y1], axis=1))
            all_kps.append(kps + ctr[:, None, :])
            all_scores.append(scores[mask])
        if not all_scores:
            return []
        boxes, kps, scores = np.concatenate(all_boxes), np.concatenate(all_kps), np.concatenate(all_scores)
        keep = _nms(boxes, scores, self.score_threshold, self.nms_threshold)
        return _to_detections(boxes, kps, scores, keep, scale)
