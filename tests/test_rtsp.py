"""Cameras over RTSP, against a real RTSP server: police cameras speak RTSP, and a stream that drops must
come back without restarting the deployment.

The server is GStreamer's (``tests/rtsp_server.py``, run by the system's Python), streaming a walk-past
clip as H.264 in a loop. Without GStreamer's RTSP server these tests skip with the Debian packages to
install, unless ``OPENLFR_REQUIRE_RTSP=1`` (set by ``.ci/run``), when they fail. Every wait is on an
event the code under test reports; the timeouts are upper bounds only, so a busy machine still passes.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from browser_helpers import free_port
from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.live.runner import run_deployment
from openlfr.media.video import Frame, SourceError, VideoSource
from openlfr.services import demo_images, deployments
from openlfr.storage import Store

SYSTEM_PYTHON = "/usr/bin/python3"  # GStreamer's bindings are Debian's, not the virtual environment's
SERVER = Path(__file__).resolve().parent / "rtsp_server.py"
PACKAGES = "python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly"
FPS = 10
CLIP_SECONDS = 4.0
#: Upper bound on any one wait (server start, a state change, an alert); never a pacing sleep.
PATIENCE_S = 60.0


def _rtsp_missing() -> str | None:
    """Why the RTSP server cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).is_file():
        return f"no {SYSTEM_PYTHON}"
    try:
        check = subprocess.run([SYSTEM_PYTHON, str(SERVER), "--check"], capture_output=True, text=True, timeout=PATIENCE_S)
    except subprocess.TimeoutExpired:
        return f"{SERVER.name} --check did not answer"
    if check.returncode == 0:
        return None
    return (check.stdout + check.stderr).strip() or f"{SERVER.name} --check exited {check.returncode}"


@pytest.fixture(scope="module")
def rtsp_ready() -> None:
    """Skip (or, with OPENLFR_REQUIRE_RTSP=1, fail) when GStreamer's RTSP server is not installed."""
    problem = _rtsp_missing()
    if problem is None:
        return
    reason = f"no RTSP server for the tests: {problem}; on Debian: sudo apt-get install {PACKAGES}"
    if os.environ.get("OPENLFR_REQUIRE_RTSP") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def hopper_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Grace Hopper walking across a 640×360 street at 10 fps (walking_clip), as the JPEG frames the server loops."""
    folder = tmp_path_factory.mktemp("rtsp-clip")
    clip = walking_clip(folder / "clip.mp4", [demo_images.grace_hopper()], seconds=CLIP_SECONDS, fps=FPS, size=(640, 360),
                        face_width=120)  # fmt: skip
    frames = folder / "frames"
    frames.mkdir()
    capture = cv2.VideoCapture(str(clip))
    count = 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        cv2.imwrite(str(frames / f"{count:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        count += 1
    capture.release()
    assert count == round(CLIP_SECONDS * FPS)
    return frames


class RTSPCamera:
    """GStreamer's RTSP server in a subprocess, on a fixed port so it can be killed and started again there."""

    def __init__(self, frames: Path, log: Path) -> None:
        self.frames = frames
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/camera"
        self.log = log
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start the server and wait until it says it listens."""
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                [SYSTEM_PYTHON, str(SERVER), "--frames", str(self.frames), "--port", str(self.port), "--fps", str(FPS)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            ready = selector.select(PATIENCE_S)
        line = self.process.stdout.readline() if ready else ""
        if line.strip() != f"READY {self.url}":
            self.kill()
            pytest.fail(f"the RTSP server did not start: {line!r}; its log: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a camera losing power or its network would drop."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(PATIENCE_S)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None


@pytest.fixture
def camera(rtsp_ready: None, hopper_frames: Path, tmp_path: Path) -> Iterator[RTSPCamera]:
    """A running RTSP camera serving Hopper's walk-past, killed after the test whatever happened."""
    server = RTSPCamera(hopper_frames, tmp_path / "rtsp-server.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_frames_from_an_rtsp_camera(camera: RTSPCamera) -> None:
    """An rtsp:// address is a stream: frames arrive decoded at the camera's size and the source reports ``up``."""
    states: list[tuple[str, str | None]] = []
    source = VideoSource(camera.url, max_retries=0, on_state=lambda state, why: states.append((state, why)))
    try:
        assert source.kind == "stream"
        frames = [source.read() for _ in range(15)]
    finally:
        source.close()
    assert all(f is not None and f.image.shape == (360, 640, 3) for f in frames)
    assert [f.index for f in frames if f is not None] == list(range(15))
    # Decoded whole: each frame is one the camera served, up to H.264's loss (a smeared or grey frame is not).
    served = [cv2.imread(str(p)) for p in sorted(camera.frames.glob("*.jpg"))]
    assert all(min(float(cv2.absdiff(f.image, s).mean()) for s in served) < 3.0 for f in frames if f is not None)
    assert states == [("up", None)]
    assert source.reconnects == 0


def test_rtsp_camera_that_drops_is_reconnected(camera: RTSPCamera) -> None:
    """The server is killed mid-stream and started again on the same port: the same source reports the drop,
    its failed reconnection attempts and ``reconnecting``, then ``up`` again, and frames flow on."""
    states: list[str] = []
    events: list[str] = []
    up = [threading.Event(), threading.Event()]  # first connection, and after the reconnection
    reconnecting, attempt_failed, done = threading.Event(), threading.Event(), threading.Event()
    frames: list[Frame] = []
    after_reconnection: list[Frame] = []

    def on_state(state: str, _why: str | None) -> None:
        states.append(state)
        if state == "up":
            up[1 if reconnecting.is_set() else 0].set()
        elif state == "reconnecting":
            reconnecting.set()

    def on_event(message: str) -> None:
        events.append(message)
        if "reconnect attempt" in message and "failed" in message:
            attempt_failed.set()

    # Enough retries (backing off to 1 s) to outlast a slow restart; bounded so a broken reconnection ends the reader.
    source = VideoSource(camera.url, max_retries=30, backoff=(0.1, 1.0), on_event=on_event, on_state=on_state)

    def reader() -> None:
        """Reads as a camera worker does, blocking inside read() while the source reconnects."""
        try:
            while (frame := source.read()) is not None:
                frames.append(frame)
                if up[1].is_set():
                    after_reconnection.append(frame)
                    if len(after_reconnection) >= 10:
                        return
        finally:
            done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert up[0].wait(PATIENCE_S), f"no frame from the RTSP camera; events: {events}"
        camera.kill()
        assert reconnecting.wait(PATIENCE_S), f"the drop was not noticed; states {states}, events {events}"
        assert attempt_failed.wait(PATIENCE_S), f"no failed reconnection attempt reported; events: {events}"
        camera.start()
        assert done.wait(PATIENCE_S), f"frames did not flow again; states {states}, events {events}"
    finally:
        camera.kill()  # a reader still blocked in read() gives up after its retries
        thread.join(PATIENCE_S)
        source.close()
    assert states == ["up", "reconnecting", "up"]
    assert source.reconnects == 1
    assert any("dropped; reconnecting" in e for e in events)
    assert any("reconnect attempt 1 failed" in e for e in events)
    assert any(e.startswith("reconnected after") for e in events)
    assert len(after_reconnection) == 10 and all(f.image.shape == (360, 640, 3) for f in after_reconnection)
    indices = [f.index for f in frames]
    assert indices == list(range(len(frames)))  # one source, numbering carried on across the reconnection


@pytest.mark.slow
def test_deployment_over_rtsp_alerts_the_watchlisted_person(camera: RTSPCamera, tmp_path: Path, engine) -> None:
    """A whole deployment with an rtsp:// camera, in real time as a live camera runs: Grace Hopper walks past
    the camera and is alerted, and the camera shows ``up`` in the deployment's detail while it runs."""
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)
    deployment_id = ready_deployment(store, camera.url)  # type: ignore[arg-type]  # a camera source is any address
    stop = threading.Event()
    alerted: list[str] = []
    detail_while_live: list[dict] = []
    states: list[str] = []
    passes = 5  # upper bound: the clip served this many times without an alert fails the test

    def on_alert(_alert_id: int, event) -> None:
        alerted.append(event.reference)
        detail_while_live.append(deployments.deployment_detail(store, deployment_id))
        stop.set()

    def on_frame(_pipeline, frame: Frame) -> None:
        if frame.index >= passes * CLIP_SECONDS * FPS:
            stop.set()

    timer = threading.Timer(PATIENCE_S * 3, stop.set)  # last resort, should the stream stall
    timer.start()
    try:
        report = run_deployment(
            store,
            engine,
            deployment_id,
            realtime=True,
            stop=stop,
            on_alert=on_alert,
            on_frame=on_frame,
            on_camera_state=lambda _camera, state, _why: states.append(state),
            retention_every_s=None,
        )
    finally:
        timer.cancel()
    assert alerted == ["GH-1"], f"no alert in {passes} passes; report: {report.as_dict()}"
    (live,) = detail_while_live
    assert live["status"] == "live"
    assert [(c["name"], c["state"]) for c in live["cameras"]] == [("cam-1", "up")]
    assert states[0] == "up" and "failed" not in states
    assert report.cameras[0]["frames_processed"] > 0
    assert report.status == "paused"  # stopped by the operator, not ended: a live camera has no end
    (cam,) = deployments.deployment_detail(store, deployment_id)["cameras"]
    assert cam["state"] == "stopped"


def test_going_live_with_an_rtsp_camera_that_is_down_is_refused(tmp_path: Path, engine) -> None:
    """No RTSP server answers at the camera's address: going live is refused with an error naming the camera,
    the camera is recorded as failed, and the deployment stays authorised. (Needs no GStreamer.)"""
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)
    url = f"rtsp://127.0.0.1:{free_port()}/camera"
    deployment_id = ready_deployment(store, url)  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="camera 'cam-1'"):
        run_deployment(store, engine, deployment_id, realtime=True, retention_every_s=None)
    detail = deployments.deployment_detail(store, deployment_id)
    assert detail["status"] == "authorised"
    (cam,) = detail["cameras"]
    assert cam["state"] == "failed" and cam["reason"]
