"""CCTV recording of a camera in segments, encrypted at rest, for the 31-day footage retention rule.

Frames are written to a segment file readable only by the service account (mode 0600) while the
segment is open; when it closes (every ``segment_seconds``) the file is encrypted into the store,
the plain file removed, and a ``FootageSegment`` row records the camera and time span so the
retention job can delete it when its time is up.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from openlfr.errors import NotFoundError
from openlfr.media.video import Frame
from openlfr.storage import Store
from openlfr.storage.crypto import record_context
from openlfr.storage.models import FootageSegment
from openlfr.storage.store import private_dir

FOOTAGE_CONTEXT = "footage"


class SegmentRecorder:
    def __init__(self, store: Store, deployment_id: int, camera: str, fps: float, segment_seconds: float = 60.0) -> None:
        self.store = store
        self.deployment_id = deployment_id
        self.camera = camera
        self.fps = fps
        self.segment_seconds = segment_seconds
        self.segments: list[int] = []
        self._writer: cv2.VideoWriter | None = None
        self._path: Path | None = None
        self._start: float | None = None
        self._last: float | None = None
        self._frames = 0

    def _open(self, frame: Frame) -> None:
        folder = private_dir(self.store.home / "footage")
        self._path = folder / f"{uuid.uuid4().hex}.part.mp4"
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        h, w = frame.image.shape[:2]
        self._writer = cv2.VideoWriter(str(self._path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
        self._start = frame.captured_at
        self._frames = 0

    def write(self, frame: Frame) -> None:
        if self._writer is None:
            self._open(frame)
        assert self._writer is not None and self._start is not None
        self._writer.write(frame.image)
        self._frames += 1
        self._last = frame.captured_at
        if frame.captured_at - self._start >= self.segment_seconds:
            self.close_segment()

    def close_segment(self) -> None:
        if self._writer is None or self._path is None:
            return
        self._writer.release()
        self._writer = None
        try:
            data = self._path.read_bytes()
            blob = None
            try:
                with self.store.session() as s:
                    row = FootageSegment(
                        deployment_id=self.deployment_id,
                        camera_name=self.camera,
                        file=None,
                        started_at=datetime.fromtimestamp(self._start or 0, UTC),
                        ended_at=datetime.fromtimestamp(self._last or self._start or 0, UTC),
                        frames=self._frames,
                    )
                    s.add(row)
                    s.flush()  # the file is sealed to the segment's id
                    blob = self.store.write_blob("footage", data, segment_context(row.id))
                    row.file = blob
                    s.flush()
                    self.segments.append(row.id)
            except BaseException:
                if blob is not None:
                    self.store.delete_blob(blob)
                raise
        finally:
            self._path.unlink(missing_ok=True)
            self._path = None


def segment_context(segment_id: int | None) -> str:
    """Associated data of footage segment ``segment_id``'s encrypted file."""
    return record_context(FOOTAGE_CONTEXT, "footage_segments", segment_id, "file")


def read_segment(store: Store, segment_id: int) -> list[np.ndarray]:
    """Decrypt a stored segment and decode its frames (for review or export by an authorised user)."""
    import tempfile

    with store.session() as s:
        segment = s.get(FootageSegment, segment_id)
        if segment is None or segment.file is None:
            raise NotFoundError(f"footage segment {segment_id} does not exist or was deleted")
        relative = segment.file
    data = store.read_blob(relative, segment_context(segment_id))
    with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
        os.chmod(tmp.name, 0o600)
        tmp.write(data)
        tmp.flush()
        capture = cv2.VideoCapture(tmp.name)
        frames = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(image)
        capture.release()
    return frames
