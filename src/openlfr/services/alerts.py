"""Alerts and what officers decided about them.

An alert stores, encrypted, the camera's face crop, the frame, and a copy of the watchlist image
it matched, so that an officer can compare the two and the decision can be reviewed later. Every
decision names who made it and when. The system never acts on its own: an alert is a prompt for a
person to look.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import numpy as np
from sqlalchemy import select

from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.services import audit
from openlfr.services.common import CONFIRMED, OUTCOMES, now_utc, utc, watchlist_image_context
from openlfr.services.subjects import CATEGORIES, SUBJECTS_GALLERY
from openlfr.storage import Store, notify
from openlfr.storage.crypto import record_context
from openlfr.storage.models import Alert, Gallery, Person, SubjectDetails, WatchlistEntry

ALERT_CONTEXT = "alert-image"


def alert_context(alert_id: int | None, column: str) -> str:
    """Associated data of alert ``alert_id``'s file in ``column`` (probe_file, frame_file, reference_file)."""
    return record_context(ALERT_CONTEXT, "alerts", alert_id, column)


@dataclass
class NewAlert:
    deployment_id: int
    camera_name: str
    track_id: int
    entry_id: int
    subject_reference: str
    subject_name: str
    subject_category: str
    score: float
    threshold: float
    frame_time: datetime
    latency_ms: float
    crop: np.ndarray
    frame: np.ndarray


def _jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OpenLFRError("could not encode alert image")
    return data.tobytes()


def record_alert(store: Store, alert: NewAlert) -> int:
    """Store an alert with its encrypted images; returns its id."""
    written: list[str] = []
    try:
        with store.session() as s:
            entry = s.get(WatchlistEntry, alert.entry_id)
            if entry is None:
                raise StoreError("the watchlist entry for this alert no longer exists (deployment closed?)")
            reference = store.read_blob(entry.image_file, watchlist_image_context(entry.id))
            row = Alert(
                deployment_id=alert.deployment_id,
                camera_name=alert.camera_name,
                track_id=alert.track_id,
                subject_reference=alert.subject_reference,
                subject_name=alert.subject_name,
                subject_category=alert.subject_category,
                score=alert.score,
                threshold=alert.threshold,
                frame_time=alert.frame_time,
                latency_ms=alert.latency_ms,
            )
            s.add(row)
            s.flush()  # the files are sealed to the alert's id
            for column, data in (
                ("reference_file", reference),
                ("probe_file", _jpeg(alert.crop)),
                ("frame_file", _jpeg(alert.frame, 85)),
            ):
                relative = store.write_blob("alerts", data, alert_context(row.id, column))
                written.append(relative)
                setattr(row, column, relative)
            s.flush()
            alert_id = row.id
            notify.notify_in(s, {"alert": alert_id})  # other server processes' consoles, at commit (PostgreSQL)
    except BaseException:
        for f in written:
            store.delete_blob(f)
        raise
    audit.record(
        store,
        "alert.create",
        "alert",
        alert_id,
        {
            "deployment": alert.deployment_id,
            "camera": alert.camera_name,
            "track": alert.track_id,
            "subject": alert.subject_reference,
            "score": round(float(alert.score), 4),
        },
        actor="system",
    )
    return alert_id


#: Default time (seconds) within which a further alert of the same subject on the same deployment is
#: merged into the first as a sighting (``openlfr live --repeat-window``). A walk-by pass lasts well
#: under a minute; two minutes also covers a person lingering or coming back at once.
REPEAT_WINDOW_S = 120.0


def merge_repeat(store: Store, alert: NewAlert, window_s: float = REPEAT_WINDOW_S) -> int | None:
    """Add ``alert`` as a further sighting to the deployment's alert of the same subject whose
    latest sighting is within ``window_s`` before it, and return that alert's id; None when there is
    none (the caller then records a new alert).

    A track that breaks (dropped frames, an occlusion) starts a new track, and each track may alert:
    without this one person walking past raised several alerts. No image of the sighting is kept.
    """
    if window_s <= 0:
        return None
    when = utc(alert.frame_time)
    with store.session() as s:
        candidates = s.scalars(
            select(Alert)
            .where(Alert.deployment_id == alert.deployment_id, Alert.subject_reference == alert.subject_reference)
            .order_by(Alert.id.desc())
            .limit(20)
        )
        for row in candidates:
            sightings = list(row.sightings or [])
            last = max([utc(row.frame_time)] + [datetime.fromisoformat(x["time"]) for x in sightings])
            if abs((when - last).total_seconds()) <= window_s:  # cameras' clocks may differ slightly
                sightings.append(
                    {"time": when.isoformat(), "camera": alert.camera_name, "score": round(float(alert.score), 4)}
                )
                row.sightings = sightings
                alert_id = row.id
                break
        else:
            return None
        notify.notify_in(s, {"alert": alert_id})
    audit.record(
        store, "alert.sighting", "alert", alert_id,
        {"camera": alert.camera_name, "track": alert.track_id, "score": round(float(alert.score), 4)}, actor="system",
    )  # fmt: skip
    return alert_id


def alert_summary(a: Alert) -> dict:
    return {
        "id": a.id,
        "deployment": a.deployment_id,
        "camera": a.camera_name,
        "track": a.track_id,
        "subject": a.subject_reference,
        "name": a.subject_name,
        "category": a.subject_category,
        "score": round(a.score, 4),
        "threshold": a.threshold,
        "time": utc(a.frame_time).isoformat(),
        "latency_ms": round(a.latency_ms, 1),
        "outcome": a.outcome,
        "adjudication": a.adjudication,
        "outcome_by": a.outcome_by,
        "legal_hold": a.legal_hold,
        "images_deleted": a.images_deleted_at is not None,
        "sightings": list(a.sightings or []),
    }


def list_alerts(store: Store, deployment_id: int | None = None, pending_only: bool = False) -> list[dict]:
    with store.session() as s:
        query = select(Alert).order_by(Alert.id)
        if deployment_id is not None:
            query = query.where(Alert.deployment_id == deployment_id)
        if pending_only:
            query = query.where(Alert.outcome.is_(None))
        return [alert_summary(a) for a in s.scalars(query)]


def _get(s, alert_id: int) -> Alert:
    alert = s.get(Alert, alert_id)
    if alert is None:
        raise NotFoundError(f"alert {alert_id} does not exist")
    return alert


def comparison_image(store: Store, alert_id: int) -> np.ndarray:
    """The camera crop beside the watchlist image, as an officer sees them, for display or export."""
    with store.session() as s:
        alert = _get(s, alert_id)
        if alert.images_deleted_at is not None:
            raise StoreError(f"alert {alert_id}'s images were deleted under the retention rules")
        probe = cv2.imdecode(np.frombuffer(store.read_blob(alert.probe_file, alert_context(alert.id, "probe_file")), np.uint8), 1)
        ref = cv2.imdecode(
            np.frombuffer(store.read_blob(alert.reference_file, alert_context(alert.id, "reference_file")), np.uint8), 1
        )
    audit.record(store, "alert.view_images", "alert", alert_id, {"images": ["probe", "reference"], "view": "comparison"})
    height = 320
    tiles = [cv2.resize(im, (round(im.shape[1] * height / im.shape[0]), height)) for im in (probe, ref)]
    gap = np.full((height, 16, 3), 255, np.uint8)
    return np.hstack([tiles[0], gap, tiles[1]])


def alert_images(store: Store, alert_id: int) -> dict[str, bytes]:
    """The alert's decrypted JPEGs (camera crop, frame, watchlist copy) for a reviewer to look at.

    Viewing biometric data is audited; images deleted under retention are refused, not faked.
    """
    names = {"probe": "camera crop", "frame": "frame", "reference": "watchlist image"}
    with store.session() as s:
        alert = _get(s, alert_id)
        if alert.images_deleted_at is not None:
            raise StoreError(f"alert {alert_id}'s images were deleted under the retention rules")
        files = {"probe": alert.probe_file, "frame": alert.frame_file, "reference": alert.reference_file}
        images = {}
        for kind, file in files.items():
            if file is None:
                continue
            try:
                images[kind] = store.read_blob(file, alert_context(alert.id, f"{kind}_file"))
            except FileNotFoundError as exc:
                raise StoreError(f"alert {alert_id}'s {names[kind]} file is missing from the data directory") from exc
    audit.record(store, "alert.view_images", "alert", alert_id, {"images": sorted(images), "view": "images"})
    return images


def record_outcome(
    store: Store,
    alert_id: int,
    outcome: str,
    by: str,
    adjudication: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> dict:
    """Record what the officer decided. For outcomes that do not settle it (no action, other),
    the officer's judgement from comparing the images ("match"/"no-match") is required."""
    if outcome not in OUTCOMES:
        raise OpenLFRError(f"unknown outcome {outcome!r}; choose one of {', '.join(OUTCOMES)}")
    if outcome in CONFIRMED:
        if adjudication not in (None, CONFIRMED[outcome]):
            raise OpenLFRError(f"outcome {outcome} means {CONFIRMED[outcome]}, not {adjudication}")
        adjudication = CONFIRMED[outcome]
    elif adjudication not in ("match", "no-match"):
        raise OpenLFRError(f"outcome {outcome} needs the officer's judgement: --judged match or --judged no-match")
    if not by.strip():
        raise OpenLFRError("an outcome must name the officer who recorded it")
    with store.session() as s:
        alert = _get(s, alert_id)
        if alert.outcome is not None:
            raise StoreError(f"alert {alert_id} already has outcome {alert.outcome} recorded by {alert.outcome_by}")
        alert.outcome = outcome
        alert.adjudication = adjudication
        alert.outcome_by = by
        alert.outcome_at = now or now_utc()
        alert.outcome_note = note
        result = alert_summary(alert)
    audit.record(store, "alert.outcome", "alert", alert_id, {"outcome": outcome, "adjudication": adjudication}, actor=by)
    result["legal_hold_prompt"] = outcome == "arrest" and not result["legal_hold"]
    return result


def set_legal_hold(store: Store, alert_id: int, supervisor: str, reason: str, now: datetime | None = None) -> None:
    """Keep an alert's images beyond 31 days until the investigation or judicial process concludes."""
    if not reason.strip():
        raise OpenLFRError("a legal hold needs a reason (the investigation or case it is kept for)")
    with store.session() as s:
        alert = _get(s, alert_id)
        if alert.images_deleted_at is not None:
            raise StoreError(f"alert {alert_id}'s images were already deleted; nothing to hold")
        alert.legal_hold = True
        alert.hold_reason = reason
        alert.hold_by = supervisor
        alert.hold_at = now or now_utc()
    audit.record(store, "alert.hold", "alert", alert_id, {"reason": reason}, actor=supervisor)


def lift_legal_hold(store: Store, alert_id: int, supervisor: str, reason: str, now: datetime | None = None) -> None:
    """End a hold (the process concluded); the normal retention period applies again at once."""
    if not reason.strip():
        raise OpenLFRError("lifting a legal hold needs a reason")
    with store.session() as s:
        alert = _get(s, alert_id)
        if not alert.legal_hold:
            raise StoreError(f"alert {alert_id} is not under a legal hold")
        alert.legal_hold = False
        alert.hold_reason = f"lifted by {supervisor} at {(now or now_utc()).isoformat()}: {reason}"
        alert.hold_by = supervisor
        alert.hold_at = now or now_utc()
    audit.record(store, "alert.release", "alert", alert_id, {"reason": reason}, actor=supervisor)


def alert_payload(store: Store, alert_id: int) -> dict:
    """What a console shows for an alert, the same to the API, the pages and the live stream.

    ``captured_at_ms`` lets the browser measure latency; the reason and category label come from
    the subject's current details (the deployment's own copy is deleted when it closes).
    """
    with store.session() as s:
        alert = _get(s, alert_id)
        summary = alert_summary(alert)
        summary["captured_at_ms"] = round(utc(alert.frame_time).astimezone(UTC).timestamp() * 1000, 1)
        summary["reason"] = _subject_reason(s, alert.subject_reference)
        summary["category_label"] = CATEGORIES.get(alert.subject_category, alert.subject_category)
        return summary


def _subject_reason(s, reference: str) -> str | None:
    """Why the subject is sought, from their current details (None once they were removed)."""
    row = s.execute(
        select(SubjectDetails.reason)
        .join(Person, Person.id == SubjectDetails.person_id)
        .join(Gallery, Gallery.id == Person.gallery_id)
        .where(Gallery.name == SUBJECTS_GALLERY, Person.reference == reference)
    ).first()
    return row[0] if row else None
