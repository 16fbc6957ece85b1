"""Camera sources: video files, RTSP/HTTP streams, local cameras and image folders, behind one interface.

A stream that drops is reopened with exponential back-off by the same source object, so the
camera worker carries on without restarting; each drop and reconnection is reported through the
``on_event`` callback. Every frame carries its capture time: the wall clock for live sources, and
for files a camera clock that starts when the file is opened and advances at the file's frame rate.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from openlfr.errors import OpenLFRError
from openlfr.media.images import load_image
from openlfr.storage.crypto import redact_source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(OpenLFRError):
    """A camera source cannot be opened or read."""


@dataclass
class Frame:
    image: np.ndarray
    index: int  # position in the source, counting frames that were skipped
    captured_at: float  # seconds since the epoch
    captured_mono: float  # time.monotonic() at capture, for latency


def describe(uri: str) -> str:
    if uri.isdigit():
        return "local camera"
    if uri.startswith(STREAM_PREFIXES):
        return "stream"
    path = Path(uri)
    if path.is_dir():
        return "image folder"
    if path.is_file():
        return "video file"
    raise SourceError(f"camera source {redact_source(uri)!r} is neither a camera index, a stream URL, a video file nor a folder")


def probe_source(uri: str, timeout_s: float = 5.0) -> str | None:
    """Whether a camera source can be opened and delivers a frame now: None if so, else why not
    (with any password in the address redacted)."""
    try:
        source = VideoSource(uri, realtime=False, max_retries=0, open_timeout_s=timeout_s)
    except SourceError as exc:
        return str(exc)
    try:
        if source.read() is None:
            return f"{source.kind} {redact_source(uri)} delivered no frame"
    except (SourceError, OSError, ValueError) as exc:
        return f"{source.kind} {redact_source(uri)} could not be read: {exc}"
    finally:
        source.close()
    return None


class VideoSource:
    """Frames from a file, stream or camera.

    ``realtime``: deliver file frames no faster than their frame rate (as a camera would);
    live sources are always real time. ``max_retries``: reconnection attempts per drop before
    giving up (``None``: keep trying, as a deployed camera should).
    """

    def __init__(
        self,
        uri: str,
        realtime: bool = True,
        max_retries: int | None = None,
        backoff: tuple[float, float] = (0.25, 8.0),
        on_event: Callable[[str], None] | None = None,
        open_timeout_s: float = 10.0,
        on_state: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.uri = uri
        #: Told of every change of the source's state: ``up`` (first frame, or reconnected),
        #: ``reconnecting`` (with why), ``failed`` (gave up, with why) and ``ended`` (end of file).
        self.on_state = on_state or (lambda _state, _reason: None)
        self._up = False
        self.kind = describe(uri)
        self.realtime = realtime
        self.max_retries = max_retries
        self.backoff = backoff
        self.on_event = on_event or (lambda _message: None)
        self.open_timeout_s = open_timeout_s
        self.reconnects = 0
        self._index = 0
        self._capture: cv2.VideoCapture | None = None
        self._folder: list[Path] | None = None
        self._clock_start = time.time()
        self._mono_start = time.monotonic()
        #: (width, height) of the frames when the source says so on opening, else None.
        self.frame_size: tuple[int, int] | None = None
        self.fps = 25.0
        self._open(first=True)

    def _open(self, first: bool = False) -> None:
        if self.kind == "image folder":
            self._folder = sorted(p for p in Path(self.uri).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._folder:
                raise SourceError(f"image folder {self.uri} holds no images")
            return
        if self.kind == "stream":
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", f"timeout;{int(self.open_timeout_s * 1e6)}|rw_timeout;5000000")
        target: str | int = int(self.uri) if self.kind == "local camera" else self.uri
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            capture.release()
            if first and self.kind == "video file":
                raise SourceError(f"{redact_source(self.uri)} is not a video OpenCV can decode")
            raise SourceError(f"cannot open {self.kind} {redact_source(self.uri)}")
        fps = capture.get(cv2.CAP_PROP_FPS)
        if fps and 1.0 <= fps <= 240.0:
            self.fps = float(fps)
        width, height = capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)
        if width and height:
            self.frame_size = (int(width), int(height))
        self._capture = capture

    def _reconnect(self) -> bool:
        delay, ceiling = self.backoff
        attempt = 0
        while self.max_retries is None or attempt < self.max_retries:
            attempt += 1
            time.sleep(delay)
            try:
                self._open()
            except SourceError as exc:
                self.on_event(f"reconnect attempt {attempt} failed: {exc}")
                delay = min(delay * 2, ceiling)
                continue
            self.reconnects += 1
            self.on_event(f"reconnected after {attempt} attempt(s)")
            return True
        self.on_event(f"gave up after {attempt} reconnection attempts")
        self.on_state("failed", f"{self.kind} {redact_source(self.uri)} dropped and did not come back after {attempt} attempt(s)")
        return False

    def read(self) -> Frame | None:
        """The next frame, or ``None`` when a file or folder has ended (or a stream gave up)."""
        if self._folder is not None:
            if self._index >= len(self._folder):
                self.on_state("ended", None)
                return None
            image = load_image(self._folder[self._index])
            return self._stamp(image)
        while True:
            assert self._capture is not None
            ok, image = self._capture.read()
            if ok and image is not None:
                return self._stamp(image)
            if self.kind == "video file":
                self.on_state("ended", None)
                return None
            self.on_event(f"{self.kind} {redact_source(self.uri)} dropped; reconnecting")
            self._up = False
            self.on_state("reconnecting", "the stream dropped")
            self._capture.release()
            if not self._reconnect():
                return None

    def _stamp(self, image: np.ndarray) -> Frame:
        if not self._up:
            self._up = True
            self.on_state("up", None)
        index = self._index
        self._index += 1
        if self.kind in ("video file", "image folder"):
            if index == 0:  # a file's camera clock starts with its first frame, not when it was opened
                self._clock_start, self._mono_start = time.time(), time.monotonic()
            offset = index / self.fps
            if self.realtime:
                wait = self._mono_start + offset - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            return Frame(image, index, self._clock_start + offset, self._mono_start + offset)
        return Frame(image, index, time.time(), time.monotonic())

    def frames(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
