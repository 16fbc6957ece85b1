"""Retention: the one place where stored biometric data is deleted because its time is up.

Rules (periods configurable, defaults from PRODUCT.md §1.6):

- alert images (camera crop, frame, watchlist copy): deleted 31 days after the alert, unless a
  supervisor has placed the alert under legal hold; the alert row (who, when, score, outcome)
  stays for the deployment record;
- recorded footage segments: deleted 31 days after they end;
- watchlists of closed deployments: deleted immediately (closing also does this; this catches
  any left by a crash).

Each deletion is written to the deletion log. Running the job twice deletes nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from openlfr.services import audit
from openlfr.services.common import now_utc, utc
from openlfr.services.deployments import delete_watchlist
from openlfr.storage import Store
from openlfr.storage.models import Alert, DeletionLog, Deployment, FootageSegment


@dataclass(frozen=True)
class RetentionPolicy:
    alert_images: timedelta = timedelta(days=31)
    footage: timedelta = timedelta(days=31)


@dataclass
class RetentionReport:
    alert_images_deleted: list[int] = field(default_factory=list)
    alerts_held: list[int] = field(default_factory=list)
    footage_deleted: list[int] = field(default_factory=list)
    watchlists_deleted: list[int] = field(default_factory=list)
    rfr_searches_deleted: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def run(store: Store, policy: RetentionPolicy | None = None, now: datetime | None = None) -> RetentionReport:
    policy = policy or RetentionPolicy()
    now = now or now_utc()
    report = RetentionReport()
    deleted: list[tuple[str, str, int, int, str]] = []  # (kind, record type, id, files, reason), audited after commit
    with store.session() as s:
        due = s.scalars(
            select(Alert).where(Alert.images_deleted_at.is_(None), Alert.created_at <= now - policy.alert_images)
        ).all()
        for alert in due:
            if alert.legal_hold:
                report.alerts_held.append(alert.id)
                continue
            files = [f for f in (alert.probe_file, alert.frame_file, alert.reference_file) if f]
            alert.probe_file = alert.frame_file = alert.reference_file = None
            alert.images_deleted_at = now
            s.add(
                DeletionLog(
                    at=now,
                    kind="alert-images",
                    record_id=alert.id,
                    files=len(files),
                    reason=f"older than {policy.alert_images.days} days, no legal hold",
                )
            )
            why = f"older than {policy.alert_images.days} days, no legal hold"
            deleted.append(("alert-images", "alert", alert.id, len(files), why))
            s.flush()
            for f in files:
                store.delete_blob(f)
            report.alert_images_deleted.append(alert.id)
        segments = s.scalars(
            select(FootageSegment).where(FootageSegment.deleted_at.is_(None), FootageSegment.ended_at <= now - policy.footage)
        ).all()
        for segment in segments:
            if segment.file:
                store.delete_blob(segment.file)
            segment.file = None
            segment.deleted_at = now
            s.add(
                DeletionLog(
                    at=now,
                    kind="footage",
                    record_id=segment.id,
                    files=1,
                    reason=f"older than {policy.footage.days} days",
                )
            )
            deleted.append(("footage", "footage", segment.id, 1, f"older than {policy.footage.days} days"))
            report.footage_deleted.append(segment.id)
        for deployment in s.scalars(select(Deployment).where(Deployment.status == "closed")):
            if deployment.watchlist is not None:
                reason = "deployment closed (retention sweep)"
                files = delete_watchlist(s, store, deployment, reason)
                deleted.append(("watchlist", "watchlist", deployment.id, files, reason))
                report.watchlists_deleted.append(deployment.id)
    from openlfr.services.rfr import delete_expired  # retrospective searches past their retention date

    report.rfr_searches_deleted = delete_expired(store, now=now)
    for kind, record_type, record_id, files, reason in deleted:
        details = {"kind": kind, "files": files, "reason": reason}
        audit.record(store, "retention.delete", record_type, record_id, details, actor="system")
    if deleted:
        audit.record(
            store,
            "retention.run",
            details={
                "alert_images_deleted": len(report.alert_images_deleted),
                "footage_deleted": len(report.footage_deleted),
                "watchlists_deleted": len(report.watchlists_deleted),
                "alerts_held": len(report.alerts_held),
                "alert_days": policy.alert_images.days,
                "footage_days": policy.footage.days,
            },
            actor="system",
        )
    return report


def deletion_log(store: Store, limit: int = 100) -> list[dict]:
    with store.session() as s:
        return [
            {"at": utc(d.at).isoformat(), "kind": d.kind, "record": d.record_id, "files": d.files, "reason": d.reason}
            for d in s.scalars(select(DeletionLog).order_by(DeletionLog.id.desc()).limit(limit))
        ]
