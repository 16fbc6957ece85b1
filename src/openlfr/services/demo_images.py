"""The two real faces that ship inside our dependencies, used by the demo and the tests.

- Grace Hopper: ``matplotlib``'s ``sample_data/grace_hopper.jpg``.
- Eileen Collins: scikit-image's ``data.astronaut()``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def grace_hopper_path() -> Path:
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def grace_hopper() -> np.ndarray:
    image = cv2.imread(str(grace_hopper_path()))
    if image is None:
        raise FileNotFoundError("matplotlib's grace_hopper.jpg sample is missing")
    return image


def eileen_collins() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def camera_scene(seed: int = 7) -> np.ndarray:
    """A 1280x720 'camera' frame in which both people appear, changed as a camera would change them.

    Hopper's face is a rotated, shrunk, darker, JPEG-recompressed copy of the same photograph that
    is enrolled, so a match is expected but the probe is not the reference image.
    """
    rng = np.random.default_rng(seed)
    scene = np.full((720, 1280, 3), 90, np.uint8)
    scene[:] = np.linspace(60, 150, 1280, dtype=np.uint8)[None, :, None]
    scene = cv2.add(scene, rng.integers(0, 25, scene.shape, dtype=np.uint8))

    def place(image: np.ndarray, width: int, angle: float, gain: float, x: int, y: int) -> None:
        h, w = image.shape[:2]
        scaled = cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
        sh, sw = scaled.shape[:2]
        rot = cv2.getRotationMatrix2D((sw / 2, sh / 2), angle, 1.0)
        scaled = cv2.warpAffine(scaled, rot, (sw, sh), borderMode=cv2.BORDER_REFLECT)
        scaled = np.clip(scaled.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        scene[y : y + sh, x : x + sw] = scaled

    place(grace_hopper(), 300, 7.0, 0.8, 120, 200)
    place(eileen_collins(), 340, -5.0, 1.05, 800, 150)
    ok, jpeg = cv2.imencode(".jpg", scene, [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
