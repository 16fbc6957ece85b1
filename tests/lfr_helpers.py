"""Small real videos and a ready deployment for the live tests, from the images that ship with dependencies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from openlfr.services import demo_images, deployments
from openlfr.services.subjects import SubjectInfo, add_subject
from openlfr.storage import Store


def walking_clip(
    path: Path, people: list[np.ndarray], seconds: float = 3.0, fps: float = 25.0, size: tuple[int, int] = (960, 540)
) -> Path:
    """Each face (scaled to ~150 px wide) walks across the frame in its own band; one pass each."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    faces = [cv2.resize(p, (150, round(p.shape[0] * 150 / p.shape[1]))) for p in people]
    frames = round(seconds * fps)
    rng = np.random.default_rng(0)
    background = np.clip(rng.normal(110, 20, (height, width, 3)), 0, 255).astype(np.uint8)
    background = cv2.GaussianBlur(background, (0, 0), 3)
    band = height // max(len(faces), 1)
    for n in range(frames):
        frame = background.copy()
        for i, face in enumerate(faces):
            fh, fw = face.shape[:2]
            x = int((width - fw) * n / max(frames - 1, 1)) if i % 2 == 0 else int((width - fw) * (1 - n / max(frames - 1, 1)))
            y = min(height - fh, i * band + max(0, (band - fh) // 2))
            frame[y : y + fh, x : x + fw] = face
        writer.write(frame)
    writer.release()
    return path


def hopper_subject(store: Store, engine, reference: str = "GH-1") -> None:
    info = SubjectInfo(
        reference,
        "Grace Hopper",
        "serious-offence",
        "test subject",
        "matplotlib sample image",
        "test",
        "officer-a",
        date.today() + timedelta(days=30),
    )
    add_subject(store, engine, info, [demo_images.grace_hopper_path()])


def ready_deployment(store: Store, video: Path, threshold: float = 0.45, confirm: tuple[int, int] = (2, 5)) -> int:
    """A deployment planned, watchlist built and approved, authorised: ready to go live now."""
    now = datetime.now(UTC)
    deployment_id = deployments.plan(
        store,
        "Test",
        "Test Street",
        "crime-hotspot",
        now - timedelta(minutes=1),
        now + timedelta(hours=1),
        threshold,
        [deployments.CameraSpec("cam-1", str(video))],
        "planner",
        confirm_n=confirm[0],
        confirm_m=confirm[1],
    )
    deployments.build_watchlist(store, deployment_id, None, "planner")
    deployments.approve_watchlist(store, deployment_id, "supervisor")
    deployments.authorise(store, deployment_id, "supervisor", "necessary and proportionate for the test")
    return deployment_id
