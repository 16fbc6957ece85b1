"""Five-point similarity alignment to the 112x112 crop the recognisers were trained on."""

from __future__ import annotations

import cv2
import numpy as np

#: Where the five landmarks sit in a 112x112 crop (the ArcFace/SFace convention).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``src`` onto ``dst`` (Umeyama, 1991).

    Returns the 2x3 matrix for ``cv2.warpAffine``. A similarity (not a full affine) keeps the
    face's proportions, which is what the recogniser expects.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    src_var = (src_c**2).sum() / n
    scale = (s * d).sum() / src_var if src_var > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, template: np.ndarray = ARCFACE_112, size: int = 112) -> np.ndarray:
    """Warp the face whose five landmarks are given into a ``size`` x ``size`` crop."""
    matrix = similarity_transform(landmarks, template * (size / 112.0))
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
