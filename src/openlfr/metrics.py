"""Prometheus metrics of a server node: its cameras, the custody search, sign-ins and the audit trail.

Why here, in one module: every figure a force runs its nodes by is defined once, with the labels it
may carry, and the places that already count things (the live pipeline's running totals, the login
and audit services, the custody search) feed it through the small functions below.

**No personal data.** No label carries a face, a template, a name, a subject or custody reference, a
username or an address. The only labels are a deployment's number and a camera's name (both chosen
by the planner), a camera state, a sign-in refusal's reason, a model pack id, the software version
and the node's role. ``tests/test_metrics.py`` scrapes ``/metrics`` after a live run with an alert
and checks exactly that.

**One registry per application.** :class:`Metrics` owns its own :class:`CollectorRegistry`, so two
applications in one process (the tests) never share counters. Services do not know the application:
they name the :class:`~openlfr.storage.Store` they work on, and :func:`bind` ties a store to its
application's metrics. A store with no application (the command line) feeds nothing.

Counters are per process: run several ``openlfr serve`` processes behind a proxy and scrape each one.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

if TYPE_CHECKING:
    from openlfr.live.pipeline import PipelineStats

__all__ = ["CONTENT_TYPE_LATEST", "CameraMeter", "Metrics", "bind", "for_store"]

# The ``*_created`` series double every counter and say nothing an operator needs.
disable_created_metrics()

#: The only labels of the per-camera metrics: which deployment, which camera.
CAMERA_LABELS = ("deployment", "camera")
#: Seconds per frame: from a few milliseconds (a small frame, few faces) to seconds (an overloaded node).
FRAME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: Capture to stored alert: under a second is good; tens of seconds means the officer is too late.
ALERT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SEARCH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric of one application, in its own registry."""

    def __init__(self, role: str = "central", version: str = "") -> None:
        from openlfr.services.deployments import CAMERA_STATES  # here: the services import this module

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Gauge(
            "openlfr_build_info", "Always 1: the software version and the node's role.", ("version", "role"), registry=r
        )
        self.build_info.labels(version, role).set(1)
        # --- cameras (fed by the live runner's CameraWorker through a CameraMeter) ---------------
        self.frames_processed = Counter(
            "openlfr_camera_frames_processed", "Frames run through detection, tracking and matching.", CAMERA_LABELS, registry=r
        )
        self.frames_dropped = Counter(
            "openlfr_camera_frames_dropped",
            "Frames skipped because processing was slower than the camera (dropped, never queued).",
            CAMERA_LABELS,
            registry=r,
        )
        self.detect_seconds = Histogram(
            "openlfr_camera_detect_seconds",
            "Face detection time per processed frame.",
            CAMERA_LABELS,
            buckets=FRAME_BUCKETS,
            registry=r,
        )
        self.template_seconds = Histogram(
            "openlfr_camera_template_seconds",
            "Tracking, templating and matching time per processed frame.",
            CAMERA_LABELS,
            buckets=FRAME_BUCKETS,
            registry=r,
        )
        self.faces_seen = Counter(
            "openlfr_camera_faces_seen",
            "Faces (tracks) seen and let go; a count only, nothing about them is kept.",
            CAMERA_LABELS,
            registry=r,
        )
        self.alerts = Counter("openlfr_camera_alerts", "New alerts raised and stored.", CAMERA_LABELS, registry=r)
        self.sightings = Counter(
            "openlfr_camera_sightings_merged",
            "Repeat sightings merged into an earlier alert of the same subject (no new alert).",
            CAMERA_LABELS,
            registry=r,
        )
        self.alert_latency = Histogram(
            "openlfr_alert_latency_seconds",
            "From the frame's capture to the alert stored (it is sent to the consoles next).",
            CAMERA_LABELS,
            buckets=ALERT_BUCKETS,
            registry=r,
        )
        self.camera_state = Enum(
            "openlfr_camera_state",
            "Each camera's state: 1 for the state it is in, 0 for the others.",
            CAMERA_LABELS,
            states=list(CAMERA_STATES),
            registry=r,
        )
        # --- the van's outbox ---------------------------------------------------------------------
        # Defined now, at 0, so dashboards and alert rules can be written before vans exist: the van's
        # outbox (alerts, outcomes, counts, audit events and deletions waiting for the link to the
        # centre) will set them when the central/van split is built. A centre keeps them at 0.
        self.outbox_depth = Gauge(
            "openlfr_outbox_depth", "Items waiting in the van's outbox for delivery to the centre (0 on a centre).", registry=r
        )
        self.outbox_age = Gauge(
            "openlfr_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox item: how long the centre has not heard of it (0 when empty).",
            registry=r,
        )
        self.outbox_depth.set(0)
        self.outbox_age.set(0)
        # --- retrospective search -----------------------------------------------------------------
        self.search_seconds = Histogram(
            "openlfr_custody_search_seconds",
            "Custody index time of one retrospective search (open, sync with the database, search).",
            buckets=SEARCH_BUCKETS,
            registry=r,
        )
        self.index_size = Gauge(
            "openlfr_custody_index_templates",
            "Templates in the custody search index held by this process, as of its last search.",
            ("pack",),
            registry=r,
        )
        # --- accounts and the audit trail ---------------------------------------------------------
        self.login_failures = Counter(
            "openlfr_login_failures", "Refused sign-ins, by reason (bad-credentials, locked, inactive).", ("reason",), registry=r
        )
        self.lockouts = Counter("openlfr_login_lockouts", "Accounts locked after repeated failed sign-ins.", registry=r)
        self.audit_appends = Counter("openlfr_audit_appends", "Events appended to the audit trail by this process.", registry=r)

    def bind(self, store: object) -> Metrics:
        """Make ``store``'s services feed these metrics (the last application bound to a store wins)."""
        with _lock:
            _bound[store] = self
        return self

    def exposition(self) -> bytes:
        """The text a Prometheus scrape receives."""
        return generate_latest(self.registry)


_lock = threading.Lock()
_bound: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()


def bind(store: object, metrics: Metrics) -> Metrics:
    return metrics.bind(store)


def for_store(store: object) -> Metrics | None:
    """The metrics ``store``'s application scrapes; None when no server runs on it."""
    try:
        return _bound.get(store)
    except TypeError:  # not weak-referenceable: nothing can be bound to it
        return None


# --- what the services call: each is a no-op when no application is bound ---------------------


def login_failed(store: object, reason: str) -> None:
    """A refused sign-in (the reason only: never who tried, nor from where)."""
    m = for_store(store)
    if m is not None:
        m.login_failures.labels(reason).inc()


def account_locked(store: object) -> None:
    """A failed sign-in used up the account's allowance and locked it."""
    m = for_store(store)
    if m is not None:
        m.lockouts.inc()


def audit_appended(store: object) -> None:
    m = for_store(store)
    if m is not None:
        m.audit_appends.inc()


def custody_searched(store: object, seconds: float, pack_id: str, size: int) -> None:
    m = for_store(store)
    if m is not None:
        m.search_seconds.observe(seconds)
        m.index_size.labels(pack_id).set(size)


def camera_state(store: object, deployment_id: int, camera: str, state: str) -> None:
    m = for_store(store)
    if m is not None:
        m.camera_state.labels(str(deployment_id), camera).state(state)


def alert_stored(store: object, deployment_id: int, camera: str, captured_mono: float, merged: bool) -> None:
    """A new alert (or a sighting merged into one) is stored; latency runs from the frame's capture to now."""
    m = for_store(store)
    if m is None:
        return
    labels = (str(deployment_id), camera)
    if merged:
        m.sightings.labels(*labels).inc()
        return
    m.alerts.labels(*labels).inc()
    m.alert_latency.labels(*labels).observe(max(0.0, time.monotonic() - captured_mono))


def camera_meter(store: object, deployment_id: int, camera: str) -> CameraMeter | None:
    m = for_store(store)
    return None if m is None else CameraMeter(m, deployment_id, camera)


class CameraMeter:
    """Feeds one camera's metrics from the running totals its worker and pipeline keep anyway.

    Called by the camera's processing thread after each frame (and once more when it stops), it adds
    what changed since its last call, so the pipeline itself needs no knowledge of Prometheus.
    """

    def __init__(self, metrics: Metrics, deployment_id: int, camera: str) -> None:
        labels = (str(deployment_id), camera)
        self._processed = metrics.frames_processed.labels(*labels)
        self._dropped = metrics.frames_dropped.labels(*labels)
        self._faces = metrics.faces_seen.labels(*labels)
        self._detect = metrics.detect_seconds.labels(*labels)
        self._template = metrics.template_seconds.labels(*labels)
        metrics.alerts.labels(*labels)  # every camera's series exist from the start, at 0
        metrics.sightings.labels(*labels)
        self._last_processed = self._last_dropped = self._last_faces = self._last_frames = 0
        self._last_detect_ms = self._last_template_ms = 0.0

    def update(self, frames_processed: int, frames_dropped: int, stats: PipelineStats) -> None:
        if frames_processed > self._last_processed:
            self._processed.inc(frames_processed - self._last_processed)
            self._last_processed = frames_processed
        if frames_dropped > self._last_dropped:
            self._dropped.inc(frames_dropped - self._last_dropped)
            self._last_dropped = frames_dropped
        if stats.faces_seen > self._last_faces:
            self._faces.inc(stats.faces_seen - self._last_faces)
            self._last_faces = stats.faces_seen
        frames = stats.frames - self._last_frames
        if frames > 0:  # normally one frame per call: its own times
            detect = (stats.detect_ms - self._last_detect_ms) / frames / 1000.0
            template = (stats.template_ms - self._last_template_ms) / frames / 1000.0
            for _ in range(frames):
                self._detect.observe(detect)
                self._template.observe(template)
            self._last_frames, self._last_detect_ms, self._last_template_ms = stats.frames, stats.detect_ms, stats.template_ms
