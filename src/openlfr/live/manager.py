"""Live deployments inside the server: start and stop them, fan their alerts out to open consoles.

``openlfr serve`` runs each live deployment in a background thread (the same ``run_deployment``
as ``openlfr live``). Alerts are published on an :class:`AlertBus` that the console's
Server-Sent Events stream listens to, so an officer sees an alert as soon as it is stored. The
operator's view of each camera (faces that raised no alert pixelated) is kept in memory only,
as the newest JPEG, at most a few times a second.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2

from openlfr.core import FaceEngine
from openlfr.live.pipeline import AlertEvent, CameraPipeline
from openlfr.live.runner import LiveReport, open_cameras, run_deployment
from openlfr.media.video import Frame
from openlfr.services.alerts import REPEAT_WINDOW_S
from openlfr.storage import Store

log = logging.getLogger(__name__)

#: How often the operator's view of a camera is re-encoded (seconds): enough to watch, cheap to make.
VIEW_EVERY_S = 0.4


class AlertBus:
    """Thread-safe publish, asyncio subscribe: camera threads publish, SSE streams consume."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        #: Passes typed messages (camera and deployment states) on to the other server processes
        #: (``live/fanout.py``, PostgreSQL); alerts are announced by the transaction that stores them.
        self.relay: Callable[[dict], None] | None = None

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._subscribers.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subscribers = [(loop, q) for loop, q in self._subscribers if q is not queue]

    def publish(self, message: dict, relay: bool = True) -> None:
        """Deliver to this process's streams; ``relay`` also passes a typed message on to other processes."""
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, message)
            except RuntimeError:  # that loop has closed
                self.unsubscribe(queue)
        if relay and self.relay is not None and message.get("type"):
            try:
                self.relay(message)
            except Exception:  # other processes' consoles miss a state change; this one's still got it
                log.exception("could not pass a live message on to the other server processes")


@dataclass
class LiveRun:
    deployment_id: int
    thread: threading.Thread
    stop: threading.Event
    started_mono: float = field(default_factory=time.monotonic)
    views: dict[str, bytes] = field(default_factory=dict)
    view_times: dict[str, float] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    camera_states: dict[str, dict] = field(default_factory=dict)
    report: LiveReport | None = None
    error: str | None = None

    def status(self) -> dict:
        return {
            "deployment_id": self.deployment_id,
            "running": self.thread.is_alive(),
            "seconds": round(time.monotonic() - self.started_mono, 1),
            "cameras": {
                name: {"frames_processed": self.frames.get(name, 0), **self.camera_states.get(name, {})}
                for name in sorted(set(self.frames) | set(self.camera_states))
            },
            "events": self.events[-20:],
            "error": self.error,
            "report": self.report.as_dict() if self.report else None,
        }


class LiveManager:
    def __init__(
        self,
        store: Store,
        engine_factory: Callable[[], FaceEngine],
        bus: AlertBus,
        repeat_window_s: float = REPEAT_WINDOW_S,
        realtime: bool = True,
    ) -> None:
        self.repeat_window_s = repeat_window_s
        #: False: every frame of a file source is processed (tests, evaluations); cameras are always real time.
        self.realtime = realtime
        self.store = store
        self.engine_factory = engine_factory
        self.bus = bus
        self._runs: dict[int, LiveRun] = {}
        self._lock = threading.Lock()

    def start(self, deployment_id: int, alert_payload: Callable[[int], dict]) -> LiveRun:
        """Go live now (the deployment must be authorised); returns at once, cameras run in the background."""
        from openlfr.services import deployments

        with self._lock:
            current = self._runs.get(deployment_id)
            if current and current.thread.is_alive():
                return current
            with self.store.session() as s:  # refuse an unauthorised deployment before loading any model
                deployments.require_startable(deployments.get(s, deployment_id))
            # A camera that cannot be opened refuses the start (SourceError naming it) before any
            # model is loaded or the deployment is shown live; the thread opens them again.
            for _spec, source in open_cameras(self.store, deployment_id, realtime=True):
                source.close()
            engine = self.engine_factory()
            deployments.start(self.store, deployment_id)  # refuses with a clear error before any thread starts
            stop = threading.Event()
            run = LiveRun(deployment_id, threading.Thread(), stop)

            def on_alert(alert_id: int, event: AlertEvent) -> None:
                self.bus.publish(alert_payload(alert_id))

            def on_sighting(alert_id: int, event: AlertEvent) -> None:  # the same alert, with one more sighting
                self.bus.publish(alert_payload(alert_id))

            def on_camera_state(camera: str, state: str, reason: str | None) -> None:
                run.camera_states[camera] = {"state": state, "reason": reason}
                message = {"type": "camera", "deployment": deployment_id, "camera": camera, "state": state, "reason": reason}
                self.bus.publish(message)

            def on_frame(pipeline: CameraPipeline, frame: Frame) -> None:
                run.frames[pipeline.camera] = run.frames.get(pipeline.camera, 0) + 1
                now = time.monotonic()
                if now - run.view_times.get(pipeline.camera, 0.0) >= VIEW_EVERY_S:
                    run.view_times[pipeline.camera] = now
                    view = pipeline.operator_view(frame.image)
                    scale = 960 / max(view.shape[1], 1)
                    if scale < 1:
                        view = cv2.resize(view, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                    ok, jpeg = cv2.imencode(".jpg", view, [cv2.IMWRITE_JPEG_QUALITY, 80])
                    if ok:
                        run.views[pipeline.camera] = jpeg.tobytes()

            def on_event(camera: str, message: str) -> None:
                run.events.append(f"{time.strftime('%H:%M:%S')} {camera}: {message}")

            def body() -> None:
                try:
                    run.report = run_deployment(
                        self.store, engine, deployment_id, on_alert=on_alert, on_frame=on_frame, on_event=on_event, stop=stop,
                        on_sighting=on_sighting, on_camera_state=on_camera_state, repeat_window_s=self.repeat_window_s,
                        realtime=self.realtime,
                    )  # fmt: skip
                except Exception as exc:  # shown on the live status page and the deployment's page
                    run.error = str(exc)
                finally:
                    run.views.clear()  # the operator's view is for the live moment only
                    status = run.report.status if run.report else None
                    self.bus.publish({"type": "deployment", "deployment": deployment_id, "status": status})

            run.thread = threading.Thread(target=body, name=f"deployment-{deployment_id}", daemon=True)
            self._runs[deployment_id] = run
            run.thread.start()
            return run

    def stop(self, deployment_id: int, timeout: float = 30.0) -> LiveRun | None:
        with self._lock:
            run = self._runs.get(deployment_id)
        if run is None:
            return None
        run.stop.set()
        run.thread.join(timeout)
        return run

    def run(self, deployment_id: int) -> LiveRun | None:
        return self._runs.get(deployment_id)

    def status(self) -> list[dict]:
        return [run.status() for run in self._runs.values()]

    def view(self, deployment_id: int, camera: str) -> bytes | None:
        run = self._runs.get(deployment_id)
        return run.views.get(camera) if run else None

    def shutdown(self) -> None:
        for deployment_id in list(self._runs):
            self.stop(deployment_id, timeout=10)
