"""What a van must tell the centre, and how the centre takes it in.

**The van's outbox.** Every audited action on a van — an alert, a sighting, an outcome, a legal hold,
a deletion, the deployment starting, ending and closing, a package refused, an officer viewing an
image — becomes one outbox item, in the *same transaction* as its audit event (:func:`_on_audit`,
an :func:`audit.add_listener` hook). Items are numbered per stream from 1: a deployment's stream is
named by its package id, everything else goes to the ``van`` stream. An item carries the audit event
and the state, read from the rows, of what it concerns: the alert (all but its images, which are read
and attached when it is sent) and the deployment (status, times, faces seen, whether the van still
holds its watchlist, and once closed its record). Because each item carries state rather than a
difference, applying a stream's items in order leaves the centre exactly where the van is.

Two passes cover what the hook cannot: :func:`catch_up` queues audit events appended by a process
that never loaded this module, and :func:`reconcile` reports rows whose state no item carries yet —
a crash between a change and its audit event, or the faces-seen counts a live run writes after its
last event.

**Delivery** (:func:`sync_once`, and :class:`SyncLoop` in the van's server): mutually authenticated
HTTPS to the centre's sync listener. The van asks which sequence number of each stream the centre
holds and sends what follows, in order, in batches; the centre stores each item keyed by (van,
stream, seq), ignores an item it already holds (after checking it is the same), refuses a gap, and
answers with what it now holds. A connection dropped anywhere — before, during or after the centre
applied a batch — costs only a resend.

**The centre's intake** (:func:`receive`): each item is stored and applied in one transaction —
alerts created or updated (with the centre's own encrypted copies of their images), the deployment's
status, times and counts mirrored, the van's deletion of its watchlist logged, and at the close the
centre's deployment closed, its own watchlist copy deleted and its record produced from what the
van sent, which equals the van's record.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from openlfr.errors import OpenLFRError
from openlfr.services import audit, vans
from openlfr.services.common import now_utc, utc
from openlfr.services.records import deployment_record
from openlfr.storage import Store
from openlfr.storage.models import Alert, AuditEvent, DeletionLog, Deployment, FootageSegment
from openlfr.storage.sync_models import (
    VAN_STREAM,
    DeploymentPackage,
    ImportedPackage,
    OutboxItem,
    SyncedAlert,
    SyncItem,
    Van,
    VanIdentity,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

#: Names the intake's lock among PostgreSQL's advisory locks ("olfrsync").
PG_INTAKE_LOCK_ID = 0x6F6C6672_73796E63
#: A batch stops growing past either limit (at least one item is always sent).
BATCH_ITEMS, BATCH_BYTES = 50, 4_000_000
#: Alert columns whose files travel with an alert, by the name the wire uses.
IMAGE_COLUMNS = {"probe": "probe_file", "frame": "frame_file", "reference": "reference_file"}


class SyncError(OpenLFRError):
    """Delivery failed (no link, the centre refused); the items stay queued for the next pass."""


class SyncRefused(OpenLFRError):
    """The centre refused a van's items: not its stream, or an item that contradicts one it holds."""


def digest(payload: dict) -> str:
    """SHA-256 of an item's canonical payload: a resent item must have the same."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- The state an item carries ----------------------------------------------------------------------


def alert_state(a: Alert) -> dict:
    """Everything the centre keeps of an alert, images aside."""
    return {
        "id": a.id,
        "camera": a.camera_name,
        "track": a.track_id,
        "subject_reference": a.subject_reference,
        "subject_name": a.subject_name,
        "subject_category": a.subject_category,
        "score": a.score,
        "threshold": a.threshold,
        "frame_time": _iso(a.frame_time),
        "created_at": _iso(a.created_at),
        "latency_ms": a.latency_ms,
        "outcome": a.outcome,
        "adjudication": a.adjudication,
        "outcome_by": a.outcome_by,
        "outcome_at": _iso(a.outcome_at),
        "outcome_note": a.outcome_note,
        "legal_hold": a.legal_hold,
        "hold_reason": a.hold_reason,
        "hold_by": a.hold_by,
        "hold_at": _iso(a.hold_at),
        "sightings": list(a.sightings or []),
        "images_deleted_at": _iso(a.images_deleted_at),
    }


def deployment_state(d: Deployment) -> dict:
    """The deployment as it runs on the van: what the centre mirrors and, at the close, publishes."""
    return {
        "status": d.status,
        "started_at": _iso(d.started_at),
        "ended_at": _iso(d.ended_at),
        "closed_at": _iso(d.closed_at),
        "faces_seen": d.faces_seen,
        "frames_processed": d.frames_processed,
        "frames_dropped": d.frames_dropped,
        "watchlist_held": d.watchlist is not None,
        "record": d.record if d.status == "closed" else None,
    }


def _event_fields(e: AuditEvent) -> dict:
    return {
        "seq": e.seq,
        "at": _iso(e.at),
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "record_type": e.record_type,
        "record_id": e.record_id,
        "source": e.source,
        "details": e.details or {},
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def _deployment_of(s: Session, e: AuditEvent) -> int | None:
    """Which deployment an event concerns, from its record (an alert's or a footage segment's deployment)."""
    try:
        record_id = int(e.record_id) if e.record_id is not None else None
    except ValueError:
        return None
    if record_id is None:
        return None
    if e.record_type in ("deployment", "watchlist"):
        return record_id
    if e.record_type == "alert":
        return s.scalar(select(Alert.deployment_id).where(Alert.id == record_id))
    if e.record_type == "footage":
        return s.scalar(select(FootageSegment.deployment_id).where(FootageSegment.id == record_id))
    return None


# --- On a van: queueing ----------------------------------------------------------------------------


def _enqueue(s: Session, e: AuditEvent) -> None:
    payload: dict = {"event": _event_fields(e)}
    stream = VAN_STREAM
    deployment_id = _deployment_of(s, e)
    if deployment_id is not None:
        package = s.scalar(select(ImportedPackage.package_id).where(ImportedPackage.deployment_id == deployment_id))
        deployment = s.get(Deployment, deployment_id)
        if package is not None and deployment is not None:
            stream = package
            payload["deployment"] = deployment_state(deployment)
            if e.record_type == "alert" and (alert := s.get(Alert, int(e.record_id))) is not None:
                payload["alert"] = alert_state(alert)
    seq = (s.scalar(select(func.max(OutboxItem.seq)).where(OutboxItem.stream == stream)) or 0) + 1
    s.add(OutboxItem(stream=stream, seq=seq, action=e.action, audit_seq=e.seq, payload=payload))


def _catch_up(s: Session, identity: VanIdentity, upto: int) -> int:
    """Queue every event after the cursor up to ``upto`` (in this transaction); returns how many."""
    if identity.audit_cursor >= upto:
        return 0
    events = s.scalars(
        select(AuditEvent).where(AuditEvent.seq > identity.audit_cursor, AuditEvent.seq <= upto).order_by(AuditEvent.seq)
    ).all()
    for e in events:
        _enqueue(s, e)
    identity.audit_cursor = upto
    return len(events)


def _on_audit(s: Session, _store: Store, event: AuditEvent) -> None:
    """The audit hook: on a van, queue this event (and any a process without the hook appended before it)."""
    identity = s.get(VanIdentity, 1)
    if identity is not None:
        s.flush()
        _catch_up(s, identity, event.seq)


audit.add_listener(_on_audit)


def catch_up(store: Store) -> int:
    """Queue audit events no hook queued (appended by a process that never imported this module)."""
    with audit.trail_locked(store) as s:
        identity = s.get(VanIdentity, 1)
        if identity is None:
            return 0
        return _catch_up(s, identity, s.scalar(select(func.max(AuditEvent.seq))) or 0)


def reconcile(store: Store) -> int:
    """Report, through an audit event (and so an item), every alert and deployment whose present state
    the newest item about it does not carry. Returns how many were reported."""
    catch_up(store)
    todo: list[tuple[str, str, int, dict]] = []
    with store.session() as s:
        for package in s.scalars(select(ImportedPackage).order_by(ImportedPackage.id)):
            alerts: dict[int, dict] = {}
            last_deployment: dict | None = None
            for payload in s.scalars(
                select(OutboxItem.payload).where(OutboxItem.stream == package.package_id).order_by(OutboxItem.seq)
            ):
                if "alert" in payload:
                    alerts[payload["alert"]["id"]] = payload["alert"]
                last_deployment = payload.get("deployment", last_deployment)
            for alert in s.scalars(select(Alert).where(Alert.deployment_id == package.deployment_id).order_by(Alert.id)):
                if alerts.get(alert.id) != alert_state(alert):
                    todo.append(("outbox.reconcile", "alert", alert.id, {"reason": "state not yet reported"}))
            deployment = s.get(Deployment, package.deployment_id)
            state = deployment_state(deployment)
            if last_deployment != state:
                counts = ("faces_seen", "frames_processed", "frames_dropped")
                routine = last_deployment is not None and {k for k in state if state[k] != last_deployment.get(k)} <= set(counts)
                details = {k: state[k] for k in counts} if routine else {"reason": "state not yet reported"}
                todo.append(("deployment.counts" if routine else "outbox.reconcile", "deployment", deployment.id, details))
    for action, record_type, record_id, details in todo:
        audit.record(store, action, record_type, record_id, details, actor="system")
    return len(todo)


@dataclass
class StreamStatus:
    stream: str
    items: int
    acked: int
    pending: int


def outbox_status(store: Store) -> list[StreamStatus]:
    with store.session() as s:
        rows = s.execute(
            select(OutboxItem.stream, func.count(), func.count(OutboxItem.acked_at))
            .group_by(OutboxItem.stream)
            .order_by(OutboxItem.stream)
        ).all()
    return [StreamStatus(stream, total, acked, total - acked) for stream, total, acked in rows]


def backlog(store: Store, now: datetime | None = None) -> tuple[int, float]:
    """(items not yet acknowledged by the centre, age in seconds of the oldest): for metrics and status."""
    with store.session() as s:
        count, oldest = s.execute(
            select(func.count(), func.min(OutboxItem.created_at)).where(OutboxItem.acked_at.is_(None))
        ).one()
    age = ((now or now_utc()) - utc(oldest)).total_seconds() if oldest is not None else 0.0
    return count, max(age, 0.0)


def _mark_acked(store: Store, stream: str, acked: int) -> None:
    with store.session() as s:
        s.execute(
            update(OutboxItem)
            .where(OutboxItem.stream == stream, OutboxItem.seq <= acked, OutboxItem.acked_at.is_(None))
            .values(acked_at=now_utc())
        )


def _wire(store: Store, s: Session, item: OutboxItem) -> dict:
    """An item as sent: its payload, its digest and, for an alert's first report, the alert's images."""
    wire = {"seq": item.seq, "action": item.action, "payload": item.payload, "digest": digest(item.payload)}
    from openlfr.services.alerts import alert_context

    state = item.payload.get("alert")
    if state and item.action in ("alert.create", "outbox.reconcile"):
        alert = s.get(Alert, state["id"])
        if alert is not None and alert.images_deleted_at is None:
            images = {}
            for kind, column in IMAGE_COLUMNS.items():
                relative = getattr(alert, column)
                if relative:
                    try:
                        images[kind] = base64.b64encode(store.read_blob(relative, alert_context(alert.id, column))).decode()
                    except FileNotFoundError:
                        log.warning("alert %s: %s file missing; sent without it", alert.id, kind)
            wire["images"] = images
    return wire


def _pending(store: Store, stream: str, after: int) -> list[dict]:
    batch: list[dict] = []
    size = 0
    with store.session() as s:
        rows = s.scalars(
            select(OutboxItem)
            .where(OutboxItem.stream == stream, OutboxItem.seq > after)
            .order_by(OutboxItem.seq)
            .limit(BATCH_ITEMS)
        ).all()
        for item in rows:
            wire = _wire(store, s, item)
            size += len(json.dumps(wire))
            if batch and size > BATCH_BYTES:
                break
            batch.append(wire)
    return batch


@dataclass
class SyncReport:
    centre: str
    sent: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    pending: int = 0

    def as_dict(self) -> dict:
        return {"centre": self.centre, "sent": self.sent, "acked": self.acked, "pending": self.pending}


def _tls_context(store: Store, ca_pem: str, keys: str | os.PathLike[str] | None) -> ssl.SSLContext:
    """Trust only the centre's own CA (pinned at enrolment) and present this van's client certificate."""
    context = ssl.create_default_context(cadata=ca_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = vans.van_tls_files(store, keys)
    context.load_cert_chain(cert, key)
    return context


def sync_once(
    store: Store, keys: str | os.PathLike[str] | None = None, url: str | None = None, timeout_s: float = 20.0
) -> SyncReport:
    """One delivery pass: send every stream's items after the centre's acknowledged seq, in order."""
    import httpx

    me = vans.require_enrolled(store)
    base = (url or me.centre_url or "").rstrip("/")
    if not base:
        raise SyncError("no centre address: enrol with --centre-url or pass --url")
    reconcile(store)
    report = SyncReport(base)
    context = _tls_context(store, me.ca_certificate or "", keys)
    try:
        with httpx.Client(base_url=base, verify=context, timeout=timeout_s) as client:
            held = _answer(client.get("/sync/v1/state"), "state")["streams"]
            with store.session() as s:
                streams = s.execute(select(OutboxItem.stream, func.max(OutboxItem.seq)).group_by(OutboxItem.stream)).all()
            for stream, newest in streams:
                acked = int(held.get(stream, 0))
                if acked > newest:
                    raise SyncError(
                        f"the centre holds {acked} items of stream {stream} but this van has only {newest}: "
                        "was the van restored from an old backup? Nothing was sent for this stream"
                    )
                _mark_acked(store, stream, acked)
                gaps = 0
                while batch := _pending(store, stream, acked):
                    response = client.post("/sync/v1/items", json={"stream": stream, "items": batch})
                    answer = _answer(response, f"items {batch[0]['seq']}..{batch[-1]['seq']} of stream {stream}", gap_ok=True)
                    if answer.get("gap"):  # the centre holds less than it said: resend from what it holds, once
                        gaps += 1
                        if gaps > 1:
                            raise SyncError(f"the centre keeps reporting a gap in stream {stream} (holds {answer['acked']})")
                    elif answer["acked"] <= acked:
                        raise SyncError(f"the centre took nothing of stream {stream} (holds {answer['acked']})")
                    report.sent += max(0, answer["acked"] - acked)
                    acked = answer["acked"]
                    _mark_acked(store, stream, acked)
                report.acked[stream] = acked
    except httpx.HTTPError as exc:
        raise SyncError(f"the centre at {base} cannot be reached or dropped the connection ({type(exc).__name__}: {exc}); "
                        "everything stays queued for the next pass") from exc  # fmt: skip
    finally:
        report.pending = backlog(store)[0]
    return report


def _answer(response: httpx.Response, what: str, gap_ok: bool = False) -> dict:
    """The centre's JSON answer, or a :class:`SyncError` saying what it refused and why."""
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:200]}
    if response.status_code == 200 or (gap_ok and response.status_code == 409 and "acked" in body):
        return body
    raise SyncError(f"the centre refused {what}: {response.status_code} {body.get('detail', body)}")


class SyncLoop:
    """Delivers the outbox every ``every_s`` seconds while the van's server runs; failures (no link)
    are retried, never fatal, and reported once each until delivery works again (hours without a
    link should not fill the log)."""

    def __init__(
        self,
        store: Store,
        every_s: float = 30.0,
        keys: str | os.PathLike[str] | None = None,
        report: Callable[[Exception], None] | None = None,
    ) -> None:
        self.store, self.every_s, self.keys = store, every_s, keys
        self.report = report or (lambda exc: log.warning("outbox delivery failed: %s", exc))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: SyncReport | None = None
        self._failing: str | None = None

    def run_once(self) -> SyncReport | None:
        try:
            self.last = sync_once(self.store, self.keys)
        except Exception as exc:  # no link, a centre restarting: tried again next tick
            if str(exc) != self._failing:
                self._failing = str(exc)
                self.report(exc)
            return None
        if self._failing is not None:
            self._failing = None
            log.warning("outbox delivered again to %s", self.last.centre)
        return self.last

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.every_s):
                return

    def start(self) -> None:
        from openlfr import metrics

        if (meter := metrics.for_store(self.store)) is not None:  # read at each scrape: always current
            meter.outbox_depth.set_function(lambda: backlog(self.store)[0])
            meter.outbox_age.set_function(lambda: backlog(self.store)[1])
        self._thread = threading.Thread(target=self._loop, name="outbox-delivery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


# --- At the centre: the intake ----------------------------------------------------------------------


def _van_id(store: Store, van_name: str) -> int:
    with store.session() as s:
        van = s.scalar(select(Van).where(Van.name == van_name))
        if van is None or van.revoked_at is not None:
            raise SyncRefused(f"van {van_name!r} is not registered or was revoked")
        return van.id


def centre_state(store: Store, van_name: str) -> dict[str, int]:
    """The newest seq the centre holds of each of this van's streams."""
    van_id = _van_id(store, van_name)
    with store.session() as s:
        rows = s.execute(
            select(SyncItem.stream, func.max(SyncItem.seq)).where(SyncItem.van_id == van_id).group_by(SyncItem.stream)
        )
        return {stream: seq for stream, seq in rows}


def _lock_intake(s: Session) -> None:
    """One writer applies items at a time (two deliveries from one van may overlap)."""
    dialect = s.get_bind().dialect.name
    if dialect == "sqlite":
        s.execute(text("BEGIN IMMEDIATE"))
    elif dialect == "postgresql":
        s.execute(select(func.pg_advisory_xact_lock(PG_INTAKE_LOCK_ID)))


@dataclass
class _Followups:
    """Audit events to append once an item's transaction has committed."""

    events: list[tuple[str, str | None, object, dict, str, str]] = field(default_factory=list)

    def add(self, action: str, record_type: str | None, record_id: object, details: dict, actor: str, source: str) -> None:
        self.events.append((action, record_type, record_id, details, actor, source))


def receive(store: Store, van_name: str, stream: str, items: list[dict]) -> dict:
    """Store and apply a van's items of one stream, in order. Returns ``{"acked": N, ...}``; ``gap``
    is set when an item after the next expected one arrived (nothing after the gap is taken)."""
    van_id = _van_id(store, van_name)
    deployment_id: int | None = None
    if stream != VAN_STREAM:
        with store.session() as s:
            package = s.scalar(select(DeploymentPackage).where(DeploymentPackage.package_id == stream))
            if package is None or package.van_id != van_id:
                raise SyncRefused(f"stream {stream!r} is not a deployment package issued to van {van_name!r}")
            deployment_id = package.deployment_id
    new = repeats = 0
    gap = False
    acked = centre_state(store, van_name).get(stream, 0)
    for item in sorted(items, key=lambda i: int(i["seq"])):
        later = _Followups()
        outcome, acked = _apply(store, van_id, van_name, stream, deployment_id, item, later)
        for action, record_type, record_id, details, actor, source in later.events:
            audit.record(store, action, record_type, record_id, details, actor=actor, source=source)
        if outcome == "gap":
            gap = True
            break
        new += outcome == "new"
        repeats += outcome == "repeat"
    if new or repeats or gap:
        audit.record(
            store, "sync.receive", "van", van_name,
            {"stream": stream, "new": new, "repeats": repeats, "gap": gap, "acked": acked}, actor=f"van:{van_name}",
        )  # fmt: skip
    return {"acked": acked, "new": new, "repeats": repeats, "gap": gap}


def _apply(
    store: Store, van_id: int, van_name: str, stream: str, deployment_id: int | None, item: dict, later: _Followups
) -> tuple[str, int]:
    """Store one item and apply it, in one transaction: ``new``, ``repeat`` (held already, identical) or ``gap``."""
    seq, payload = int(item["seq"]), item["payload"]
    received = digest(payload)
    if item.get("digest") not in (None, received):
        raise SyncRefused(f"item {seq} of stream {stream} arrived damaged (its digest does not match)")
    written: list[str] = []
    try:
        with store.session() as s:
            _lock_intake(s)
            last = s.scalar(select(func.max(SyncItem.seq)).where(SyncItem.van_id == van_id, SyncItem.stream == stream)) or 0
            if seq <= last:
                held = s.scalar(
                    select(SyncItem.digest).where(SyncItem.van_id == van_id, SyncItem.stream == stream, SyncItem.seq == seq)
                )
                if held != received:
                    raise SyncRefused(f"item {seq} of stream {stream} differs from the one received before")
                return "repeat", last
            if seq != last + 1:
                return "gap", last
            s.add(
                SyncItem(
                    van_id=van_id,
                    stream=stream,
                    seq=seq,
                    action=str(item.get("action", ""))[:60],
                    digest=received,
                    payload=payload,
                )
            )
            if deployment_id is not None:
                if "alert" in payload:
                    _apply_alert(s, store, van_id, deployment_id, payload["alert"], item.get("images") or {}, written)
                if "deployment" in payload:
                    _apply_deployment(s, store, van_name, deployment_id, payload["deployment"], payload["event"], later)
            return "new", seq
    except BaseException:
        for f in written:
            store.delete_blob(f)
        raise


_ALERT_MUTABLE = ("outcome", "adjudication", "outcome_by", "outcome_note", "legal_hold", "hold_reason", "hold_by")


def _apply_alert(s: Session, store: Store, van_id: int, deployment_id: int, a: dict, images: dict, written: list[str]) -> None:
    from openlfr.services.alerts import alert_context

    link = s.scalar(select(SyncedAlert).where(SyncedAlert.van_id == van_id, SyncedAlert.van_alert_id == a["id"]))
    row = s.get(Alert, link.alert_id) if link is not None else None
    if row is None:
        row = Alert(
            deployment_id=deployment_id, camera_name=a["camera"], track_id=a["track"], subject_reference=a["subject_reference"],
            subject_name=a["subject_name"], subject_category=a["subject_category"], score=a["score"],
            threshold=a["threshold"], frame_time=_when(a["frame_time"]), created_at=_when(a["created_at"]),
            latency_ms=a["latency_ms"],
        )  # fmt: skip
        s.add(row)
        s.flush()
        s.add(SyncedAlert(van_id=van_id, van_alert_id=a["id"], alert_id=row.id))
    for name in _ALERT_MUTABLE:
        setattr(row, name, a[name])
    row.outcome_at, row.hold_at = _when(a["outcome_at"]), _when(a["hold_at"])
    row.sightings = list(a["sightings"]) or None
    if row.probe_file is None and row.images_deleted_at is None:
        for kind, column in IMAGE_COLUMNS.items():
            if kind in images:
                relative = store.write_blob("alerts", base64.b64decode(images[kind]), alert_context(row.id, column))
                written.append(relative)
                setattr(row, column, relative)
        if row.probe_file is None and a["images_deleted_at"]:
            row.images_deleted_at = _when(a["images_deleted_at"])  # deleted on the van before they could travel


def _apply_deployment(
    s: Session, store: Store, van_name: str, deployment_id: int, state: dict, event: dict, later: _Followups
) -> None:
    from openlfr.services.deployments import delete_watchlist

    d = s.get(Deployment, deployment_id)
    if d is None or d.status == "closed":
        return  # closed: its record is published; only its alerts (late outcomes, holds) still change
    actor, source = str(event.get("actor") or "system"), f"van:{van_name}"
    d.started_at, d.ended_at = _when(state["started_at"]), _when(state["ended_at"])
    d.faces_seen, d.frames_processed, d.frames_dropped = state["faces_seen"], state["frames_processed"], state["frames_dropped"]
    logged = s.scalar(select(DeletionLog.id).where(DeletionLog.kind == "van-watchlist", DeletionLog.record_id == deployment_id))
    if not state["watchlist_held"] and logged is None:
        files = int((event.get("details") or {}).get("files", 0)) if event.get("action") == "watchlist.delete" else 0
        reason = f"van {van_name} deleted its copy of deployment {deployment_id}'s watchlist"
        s.add(DeletionLog(kind="van-watchlist", record_id=deployment_id, files=files, reason=reason))
        later.add("van.watchlist_delete", "watchlist", deployment_id, {"van": van_name, "files": files}, actor, source)
    if state["status"] != "closed":
        d.status = state["status"]
        return
    d.closed_at = _when(state["closed_at"])
    d.status = "closed"
    had_watchlist = d.watchlist is not None
    reason = f"deployment {deployment_id} closed on van {van_name}"
    files = delete_watchlist(s, store, d, reason)
    s.flush()
    d.record = deployment_record(s, d)
    matches = d.record == state.get("record")
    if not matches:
        log.error(
            "deployment %s: the centre's record differs from van %s's: %s vs %s",
            deployment_id,
            van_name,
            d.record,
            state.get("record"),
        )
    if had_watchlist:
        later.add("watchlist.delete", "watchlist", deployment_id, {"reason": reason, "files": files}, actor, source)
    later.add(
        "deployment.close", "deployment", deployment_id,
        {"closed_at": state["closed_at"], "van": van_name, "record_matches_van": matches}, actor, source,
    )  # fmt: skip


def intake_status(store: Store) -> list[dict]:
    """Per van and stream: the items the centre holds and when the last arrived."""
    with store.session() as s:
        rows = s.execute(
            select(Van.name, SyncItem.stream, func.max(SyncItem.seq), func.max(SyncItem.received_at))
            .join(Van)
            .group_by(Van.name, SyncItem.stream)
            .order_by(Van.name, SyncItem.stream)
        ).all()
    return [{"van": v, "stream": st, "held": seq, "last_received": _iso(at)} for v, st, seq, at in rows]
