"""Turn aligned 112x112 face crops into L2-normalised templates on ONNX Runtime."""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort


class Recognizer:
    """Batched template extraction.

    ``mean``/``std`` are applied before the network (SFace normalises inside its graph, so its
    pack uses 0/1; insightface ArcFace packs use 127.5/127.5). With ``flip=True`` each face is
    also run mirrored and the two templates are summed, a cheap test-time augmentation whose
    effect on accuracy is measured by ``openlfr evaluate lfw``.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        mean: float = 0.0,
        std: float = 1.0,
        flip: bool = True,
        batch_size: int = 4,
    ) -> None:
        self.session = session
        self.mean = mean
        self.std = std
        self.flip = flip
        self.batch_size = batch_size
        self._input = session.get_inputs()[0].name
        shape = session.get_inputs()[0].shape
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
        out_shape = session.get_outputs()[0].shape
        self.dimension = int(out_shape[-1])

    def _run(self, blob: np.ndarray) -> np.ndarray:
        if self._fixed_batch == 1 and blob.shape[0] > 1:
            return np.concatenate([self.session.run(None, {self._input: b[None]})[0] for b in blob])
        return self.session.run(None, {self._input: blob})[0]

    def templates(self, crops: list[np.ndarray]) -> np.ndarray:
        """Templates for BGR uint8 crops, shape (len(crops), dimension), each of unit length."""
        if not crops:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # One pass from BGR uint8 crops to an RGB float NCHW batch (OpenCV does the swap and layout).
        blob = cv2.dnn.blobFromImages(crops, scalefactor=1.0 / self.std, mean=(self.mean,) * 3, swapRB=True)
        if self.flip:
            blob = np.concatenate([blob, blob[..., ::-1]])
        feats = np.concatenate([self._run(blob[i : i + self.batch_size]) for i in range(0, len(blob), self.batch_size)]).astype(
            np.float32
        )
        if self.flip:
            n = len(crops)
            feats = feats[:n] + feats[n:]
        norms = np.linalg.norm(feats, axis=1, keepdims=True)
        return feats / np.maximum(norms, 1e-12)
