"""Running a live deployment: one worker thread per camera, alerts stored as they happen.

Each camera has a *grabber* thread that reads frames as the camera delivers them and keeps only
the newest, and a *processor* that takes the newest frame whenever it is free. When processing is
slower than the camera, frames in between are dropped (and counted) rather than queued, so the
pipeline never falls behind real time. Threads suffice: ONNX Runtime and OpenCV release the GIL.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from openlfr.core import FaceEngine
from openlfr.errors import StoreError
from openlfr.live.pipeline import AlertEvent, CameraPipeline, PipelineConfig, Watchlist, WorkerStats
from openlfr.live.recorder import SegmentRecorder
from openlfr.media.video import Frame, SourceError, VideoSource
from openlfr.metrics import CameraMeter, alert_stored, camera_meter
from openlfr.services import deployments
from openlfr.services.alerts import REPEAT_WINDOW_S, NewAlert, merge_repeat, record_alert
from openlfr.storage import Store
from openlfr.storage.store import private_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


class LatestFrame:
    """A one-frame mailbox: the grabber overwrites, the processor takes; overwritten frames are dropped."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._ended = False
        self._cond = threading.Condition()
        self.overwritten = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.overwritten += 1
            self._frame = frame
            self._cond.notify()

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify()

    def take(self, timeout: float = 1.0) -> Frame | None:
        """The newest frame; None when the source has ended and nothing is left."""
        with self._cond:
            while self._frame is None and not self._ended:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame


class CameraWorker:
    def __init__(
        self,
        source: VideoSource,
        pipeline: CameraPipeline,
        stop: threading.Event,
        realtime: bool = True,
        on_frame: Callable[[CameraPipeline, Frame], None] | None = None,
        recorder: SegmentRecorder | None = None,
        drop_frame: Callable[[int], bool] | None = None,
        meter: CameraMeter | None = None,
    ) -> None:
        if drop_frame is not None and realtime:
            raise ValueError("drop_frame drops frames deterministically; real time drops them as the CPU dictates")
        #: Outside real time, frames (by index) to skip and count as dropped: a busy machine's drops,
        #: made deterministic for tests and evaluations.
        self.drop_frame = drop_frame
        self._skipped = 0
        self.source = source
        self.recorder = recorder
        self.pipeline = pipeline
        self.stop = stop
        self.realtime = realtime
        self.on_frame = on_frame
        #: Feeds the server's /metrics from this camera's running totals (None outside a server).
        self.meter = meter
        self.stats = WorkerStats(camera=pipeline.camera)
        self.error: BaseException | None = None
        self._mailbox = LatestFrame()
        self._threads: list[threading.Thread] = []

    def _grab(self) -> None:
        try:
            while not self.stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.stats.frames_read += 1
                if self.recorder:
                    self.recorder.write(frame)
                self._mailbox.put(frame)
        except BaseException as exc:  # reported by the runner
            self.error = exc
        finally:
            self._mailbox.end()

    def _process(self) -> None:
        try:
            while not self.stop.is_set():
                if self.realtime:
                    frame = self._mailbox.take()
                else:
                    frame = self.source.read()
                    if frame is not None:
                        self.stats.frames_read += 1
                        if self.recorder:
                            self.recorder.write(frame)
                        if self.drop_frame is not None and self.drop_frame(frame.index):
                            self._skipped += 1
                            continue
                if frame is None:
                    break
                self.pipeline.process(frame)
                self.stats.frames_processed += 1
                if self.meter:
                    self.meter.update(self.stats.frames_processed, self._mailbox.overwritten + self._skipped, self.pipeline.stats)
                if self.on_frame:
                    self.on_frame(self.pipeline, frame)
        except BaseException as exc:
            self.error = exc
        finally:
            self.pipeline.finish()
            if self.recorder:
                self.recorder.close_segment()
            self.stats.frames_dropped = self._mailbox.overwritten + self._skipped
            if self.meter:  # the faces of tracks flushed at the end, the last drops
                self.meter.update(self.stats.frames_processed, self.stats.frames_dropped, self.pipeline.stats)
            self.stats.reconnects = self.source.reconnects
            self.stats.ended_mono = time.monotonic()

    def start(self) -> None:
        if self.source.frame_size:
            self.pipeline.warm_up(self.source.frame_size)  # before the camera's clock starts (first read)
        if self.realtime:
            self._threads.append(threading.Thread(target=self._grab, name=f"grab-{self.pipeline.camera}", daemon=True))
        self._threads.append(threading.Thread(target=self._process, name=f"proc-{self.pipeline.camera}", daemon=True))
        for t in self._threads:
            t.start()

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def close(self) -> None:
        self.source.close()


@dataclass
class LiveReport:
    deployment_id: int
    cameras: list[dict] = field(default_factory=list)
    alert_ids: list[int] = field(default_factory=list)
    faces_seen: int = 0
    #: Further sightings merged into an earlier alert of the same subject (see ``repeat_window_s``).
    sightings: int = 0
    #: The deployment's status once its cameras stopped: ``ended`` or ``paused``.
    status: str | None = None
    #: The score N of M views had to reach (the pack's track calibration; None: the deployment's threshold).
    track_threshold: float | None = None

    def as_dict(self) -> dict:
        return {
            "deployment_id": self.deployment_id,
            "status": self.status,
            "faces_seen": self.faces_seen,
            "alerts": self.alert_ids,
            "sightings_merged": self.sightings,
            "track_threshold": self.track_threshold,
            "cameras": self.cameras,
        }


def track_threshold(pack_id: str, threshold: float, confirm_n: int, confirm_m: int) -> float | None:
    """The score a track's views must reach for the track to raise false alerts no more often than one
    photograph at the deployment's threshold (:func:`openlfr.calibration.track_threshold`), from the
    pack's shipped track calibration; None when there is none for this pack and N/M."""
    from openlfr import calibration

    return calibration.track_threshold(calibration.shipped_tracks(pack_id), confirm_n, confirm_m, threshold)


def _retention_loop(store: Store, stop: threading.Event, every_s: float, on_event: Callable[[str, str], None] | None) -> None:
    """Retention runs at start and then on a schedule for as long as the deployment is live."""
    from openlfr.services import retention

    while not stop.is_set():
        report = retention.run(store)
        deleted = len(report.alert_images_deleted) + len(report.footage_deleted) + len(report.watchlists_deleted)
        if deleted and on_event:
            on_event("retention", f"deleted {deleted} item(s) past their retention period")
        stop.wait(every_s)


def frozen_watchlist(store: Store, deployment_id: int) -> tuple[Watchlist, str]:
    wl = deployments.load_watchlist(store, deployment_id)
    return Watchlist.build(wl.templates, wl.references, wl.names, wl.categories, wl.entry_ids), wl.pack_id


@contextmanager
def worker_lock(store: Store, deployment_id: int) -> Iterator[None]:
    """Held (``flock``) while a process runs a deployment's cameras; the OS drops it when the process
    dies, so a later start can tell a running deployment from one a crash left ``live``."""
    if fcntl is None:  # pragma: no cover - no flock: every live deployment counts as running
        yield
        return
    folder = private_dir(store.home / "live")
    fd = os.open(folder / f"deployment-{deployment_id}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StoreError(f"deployment {deployment_id} is already running in another process") from exc
        yield
    finally:
        os.close(fd)  # closing releases the lock


def worker_running(store: Store, deployment_id: int) -> bool:
    """Whether some process (this one included) holds the deployment's worker lock."""
    try:
        with worker_lock(store, deployment_id):
            return fcntl is None
    except StoreError:
        return True


def recover_interrupted(store: Store) -> list[int]:
    """At start-up: mark deployments left ``live`` with no worker as ``interrupted`` (audited). At a
    centre, a deployment packaged for a van runs there: its status is the van's, not a crash's."""
    from openlfr.services.packages import runs_on_van

    return deployments.mark_interrupted(store, lambda d: worker_running(store, d) or runs_on_van(store, d) is not None)


def run_deployment(
    store: Store,
    engine: FaceEngine,
    deployment_id: int,
    *args: Any,
    **kwargs: Any,
) -> LiveReport:
    """Take an authorised deployment live and run its cameras until their sources end, the planned
    end passes, ``max_seconds`` elapse, the caller interrupts (Ctrl-C) or sets ``stop``.

    Holds the deployment's worker lock throughout (see :func:`worker_lock`); arguments as
    :func:`_run_deployment`.
    """
    with worker_lock(store, deployment_id):
        return _run_deployment(store, engine, deployment_id, *args, **kwargs)


def open_cameras(
    store: Store,
    deployment_id: int,
    realtime: bool,
    on_event: Callable[[str, str], None] | None = None,
    on_state: Callable[[str, str, str | None], None] | None = None,
) -> list[tuple[deployments.CameraSpec, VideoSource]]:
    """Open every camera's source, or none: a source that cannot be opened is recorded as ``failed``
    with its reason and refused with a :class:`SourceError` that names the camera."""
    opened: list[tuple[deployments.CameraSpec, VideoSource]] = []
    try:
        for spec in deployments.camera_sources(store, deployment_id):
            try:
                source = VideoSource(
                    spec.source,
                    realtime=realtime,
                    on_event=(lambda msg, cam=spec.name: on_event(cam, msg)) if on_event else None,
                    on_state=(lambda state, why, cam=spec.name: on_state(cam, state, why)) if on_state else None,
                )
            except SourceError as exc:
                deployments.set_camera_state(store, deployment_id, spec.name, "failed", str(exc))
                raise SourceError(f"camera {spec.name!r} cannot be opened, so the deployment cannot go live: {exc}") from exc
            opened.append((spec, source))
    except BaseException:
        for _spec, source in opened:
            source.close()
        raise
    return opened


def _run_deployment(
    store: Store,
    engine: FaceEngine,
    deployment_id: int,
    realtime: bool = True,
    max_seconds: float | None = None,
    on_alert: Callable[[int, AlertEvent], None] | None = None,
    on_event: Callable[[str, str], None] | None = None,
    on_frame: Callable[[CameraPipeline, Frame], None] | None = None,
    now: datetime | None = None,
    segment_seconds: float = 60.0,
    pool_templates: bool = False,
    retention_every_s: float | None = 3600.0,
    stop: threading.Event | None = None,
    repeat_window_s: float = REPEAT_WINDOW_S,
    on_sighting: Callable[[int, AlertEvent], None] | None = None,
    on_camera_state: Callable[[str, str, str | None], None] | None = None,
    drop_frame: Callable[[int], bool] | None = None,
) -> LiveReport:
    """Take an authorised deployment live and run its cameras until their sources end, the planned
    end passes, ``max_seconds`` elapse, the caller interrupts (Ctrl-C) or sets ``stop``.

    Every camera's source is opened first: one that cannot be opened refuses the whole start and
    the deployment does not go live. A further alert of a subject already alerted on this
    deployment within ``repeat_window_s`` is merged into the first as a sighting
    (``on_sighting``) rather than raising a new alert.
    """
    with store.session() as s:  # refuse a deployment that may not go live before opening any camera
        deployment = deployments.get(s, deployment_id)
        deployments.require_startable(deployment)
    from openlfr.services.packages import runs_on_van

    if (van := runs_on_van(store, deployment_id)) is not None:
        raise StoreError(f"deployment {deployment_id} was packaged for van {van!r}: it goes live there, not here")
    watchlist, pack_id = frozen_watchlist(store, deployment_id)
    if pack_id != engine.pack_id:
        raise StoreError(f"the watchlist holds {pack_id} templates; this engine makes {engine.pack_id}")
    camera_states: dict[str, str] = {}

    def camera_state(camera: str, state: str, reason: str | None) -> None:
        camera_states[camera] = state
        deployments.set_camera_state(store, deployment_id, camera, state, reason)
        if on_event and state in ("failed", "ended"):
            on_event(camera, state + (f": {reason}" if reason else ""))
        if on_camera_state:
            on_camera_state(camera, state, reason)

    cameras = open_cameras(store, deployment_id, realtime, on_event, camera_state)
    try:
        deployments.start(store, deployment_id, now=now)
    except BaseException:
        for _spec, source in cameras:
            source.close()
        raise
    with store.session() as s:
        deployment = deployments.get(s, deployment_id)
        config = PipelineConfig(
            deployment.threshold, deployment.confirm_n, deployment.confirm_m, pool_templates=pool_templates,
            async_second_opinion=realtime,  # in real time a camera must not stall; otherwise deterministic
            track_threshold=track_threshold(engine.pack_id, deployment.threshold, deployment.confirm_n, deployment.confirm_m),
        )  # fmt: skip
        planned_end = deployments.utc(deployment.planned_end)
    report = LiveReport(deployment_id, track_threshold=config.track_threshold)
    lock = threading.Lock()
    latencies: dict[str, list[float]] = {}

    def store_alert(event: AlertEvent) -> None:
        alert = NewAlert(
            deployment_id=deployment_id,
            camera_name=event.camera,
            track_id=event.track_id,
            entry_id=event.entry_id,
            subject_reference=event.reference,
            subject_name=event.name,
            subject_category=event.category,
            score=event.score,
            threshold=config.threshold,
            frame_time=datetime.fromtimestamp(event.frame.captured_at, UTC),
            latency_ms=event.latency_ms,
            crop=event.crop,
            frame=event.view,
        )
        with lock:  # one camera at a time, so two cameras seeing one person raise one alert
            merged = merge_repeat(store, alert, repeat_window_s)
            alert_id = merged if merged is not None else record_alert(store, alert)
            alert_stored(store, deployment_id, event.camera, event.frame.captured_mono, merged is not None)
            if merged is not None:
                report.sightings += 1
            else:
                report.alert_ids.append(alert_id)
                latencies.setdefault(event.camera, []).append(event.latency_ms)
        if merged is not None:
            if on_sighting:
                on_sighting(alert_id, event)
        elif on_alert:
            on_alert(alert_id, event)

    stop = stop or threading.Event()
    workers = []
    for spec, source in cameras:
        camera_config = config if spec.min_face_px is None else replace(config, smallest_face_px=spec.min_face_px)
        pipeline = CameraPipeline(spec.name, engine, watchlist, camera_config, store_alert)
        recorder = SegmentRecorder(store, deployment_id, spec.name, source.fps, segment_seconds) if spec.record else None
        workers.append(
            CameraWorker(
                source,
                pipeline,
                stop,
                realtime=realtime,
                on_frame=on_frame,
                recorder=recorder,
                drop_frame=drop_frame,
                meter=camera_meter(store, deployment_id, spec.name),
            )
        )
    started = time.monotonic()
    for w in workers:
        w.start()
    retention_thread = None
    if retention_every_s:
        retention_thread = threading.Thread(
            target=_retention_loop, args=(store, stop, retention_every_s, on_event), name="retention", daemon=True
        )
        retention_thread.start()
    try:
        while not all(w.join(timeout=0.2) for w in workers):
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                stop.set()
            if now is None and datetime.now(UTC) >= planned_end:
                stop.set()
    except KeyboardInterrupt:
        stop.set()
        for w in workers:
            w.join()
    finally:
        stop.set()
        for w in workers:
            w.close()
        if retention_thread is not None:
            retention_thread.join()
        for w in workers:
            if w.error is not None:
                camera_state(w.pipeline.camera, "failed", f"{type(w.error).__name__}: {w.error}")
        sources_ended = all(camera_states.get(w.pipeline.camera) == "ended" for w in workers)
        report.status = deployments.finish_run(store, deployment_id, sources_ended, now=now)
    for w in workers:
        w.stats.latencies_ms = latencies.get(w.pipeline.camera, [])
    errors = [w.error for w in workers if w.error is not None]
    with store.session() as s:
        deployment = deployments.get(s, deployment_id)
        for w in workers:
            deployment.faces_seen += w.pipeline.stats.faces_seen
            deployment.frames_processed += w.stats.frames_processed
            deployment.frames_dropped += w.stats.frames_dropped
    for w in workers:
        report.cameras.append(w.stats.summary(w.pipeline.stats))
        report.faces_seen += w.pipeline.stats.faces_seen
    if errors:
        raise errors[0]
    return report
