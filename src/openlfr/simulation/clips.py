"""Short walk-past clips from any face photographs (the demo and the tests use the ones that ship with
dependencies): each face crosses the frame in its own band, changed a little as a camera would."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def walking_clip(
    path: str | Path,
    people: list[np.ndarray],
    seconds: float = 3.0,
    fps: float = 25.0,
    size: tuple[int, int] = (960, 540),
    face_width: int | list[int] = 150,
    tilt_deg: float = 0.0,
    gain: float = 1.0,
) -> Path:
    """Write an MP4 in which each photograph (scaled to ``face_width`` px wide, one value or one per
    photograph) walks across once."""
    path = Path(path)
    width, height = size
    widths = face_width if isinstance(face_width, list) else [face_width] * len(people)
    faces = []
    for photo, fw in zip(people, widths, strict=True):
        face = cv2.resize(photo, (fw, round(photo.shape[0] * fw / photo.shape[1])), interpolation=cv2.INTER_AREA)
        if tilt_deg:
            h, w = face.shape[:2]
            face = cv2.warpAffine(
                face, cv2.getRotationMatrix2D((w / 2, h / 2), tilt_deg, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT
            )
        faces.append(np.clip(face.astype(np.float32) * gain, 0, 255).astype(np.uint8))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video to {path}")
    frames = round(seconds * fps)
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(np.clip(rng.normal(110, 20, (height, width, 3)), 0, 255).astype(np.uint8), (0, 0), 3)
    band = height // max(len(faces), 1)
    try:
        for n in range(frames):
            frame = background.copy()
            progress = n / max(frames - 1, 1)
            for i, face in enumerate(faces):
                fh, fw = face.shape[:2]
                x = int((width - fw) * (progress if i % 2 == 0 else 1 - progress))
                y = min(height - fh, i * band + max(0, (band - fh) // 2))
                frame[y : y + fh, x : x + fw] = face
            writer.write(frame)
    finally:
        writer.release()
    return path
