"""What a force publishes without anyone signing in (PRODUCT.md §1.7).

Before a deployment: where and when, and why (the use case). After: its record with the Met's
published columns. For the location: leaflet and sign text. Every function here builds its output
field by field from a short allow-list, so nothing else about a deployment — its name, officers,
cameras, watchlist or alerts' subjects — can reach the public by accident.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from openlfr import config
from openlfr.errors import NotFoundError
from openlfr.services.common import USE_CASES, utc
from openlfr.services.records import COLUMNS, deployment_record, to_csv
from openlfr.storage import Store
from openlfr.storage.models import Deployment

#: Announced deployments: a planned one is not yet approved, so it is not announced.
ANNOUNCED = ("authorised", "live", "paused", "interrupted", "ended")
#: Deployments the public may read a leaflet for.
PUBLISHED = ("authorised", "live", "paused", "interrupted", "ended", "closed")
#: What the public reads for each announced status: live, paused or ended (results follow on closing).
PUBLIC_STATUS = {"authorised": "planned", "live": "live", "paused": "paused", "interrupted": "paused", "ended": "ended"}

#: Readable headers for the Met's columns, in the same order.
COLUMN_LABELS = {
    "deployment_id": "Deployment",
    "location": "Location",
    "date": "Date",
    "start": "Start",  # pages show times in the force's time zone; the CSV and JSON keep UTC
    "end": "End",
    "duration_minutes": "Duration",  # the pages word it ("4 h 5 min"); the CSV and JSON keep minutes
    "use_case": "Use case",
    "watchlist_size": "Watchlist size",
    "minimum_threshold": "Minimum threshold",
    "threshold_calibration": "Threshold calibration",
    "estimated_fpir": "Estimated false alert rate per face (FPIR)",
    "estimated_fpir_95_interval": "FPIR 95% interval",
    "estimate_method": "How the FPIR was estimated",
    "faces_seen_estimate": "Faces seen (estimate)",
    "total_alerts": "Total alerts",
    "true_alerts_confirmed": "True alerts (confirmed)",
    "true_alerts_unconfirmed": "True alerts (unconfirmed)",
    "false_alerts_confirmed": "False alerts (confirmed)",
    "false_alerts_unconfirmed": "False alerts (unconfirmed)",
    "alerts_not_adjudicated": "Alerts not yet adjudicated",
    "false_alert_rate_percent": "False alert rate (%)",
    "arrests": "Arrests",
    "other_outcomes": "Other outcomes",
    "no_action": "No action",
}

RETENTION = {
    "alert_images": "Images from an alert are kept for up to 31 days, and longer only when they are needed "
    "for an investigation or judicial process.",
    "everyone_else": "If you are not on the watchlist, your face and the biometric data measured from it are "
    "deleted immediately and automatically. They are never stored.",
    "footage": "Recorded CCTV footage of the deployment is kept for up to 31 days.",
}


#: What the leaflet and poster say until the force configures itself (``config.force_name`` / ``force_contact``).
PLACEHOLDER_FORCE = "the police force"
PLACEHOLDER_CONTACT = "the force's data protection officer via its website"


def force_name() -> str:
    return config.force_name() or PLACEHOLDER_FORCE


def contact() -> str:
    return config.force_contact() or PLACEHOLDER_CONTACT


def force_configured() -> bool:
    """Whether the force set its name and contact: staff are warned before printing placeholders."""
    return config.force_name() is not None and config.force_contact() is not None


def _wanted(location: str | None, day: date, where: str | None, date_from: date | None, date_to: date | None) -> bool:
    """Location: case-insensitive substring; dates: inclusive bounds on the deployment's date."""
    if where and where.strip().lower() not in (location or "").lower():
        return False
    if date_from and day < date_from:
        return False
    return not (date_to and day > date_to)


def _announcement(d: Deployment) -> dict:
    start, end = utc(d.planned_start), utc(d.planned_end)
    return {
        "id": d.id,
        "location": d.location_name,
        "latitude": d.latitude,
        "longitude": d.longitude,
        "date": start.date().isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "use_case": USE_CASES.get(d.use_case, d.use_case),
        "status": d.status,
        "public_status": PUBLIC_STATUS.get(d.status, d.status),
    }


def upcoming(store: Store, location: str | None = None, date_from: date | None = None,
             date_to: date | None = None) -> list[dict]:
    """Authorised and live deployments, soonest first: where, when and why — nothing else."""
    with store.session() as s:
        rows = s.scalars(select(Deployment).where(Deployment.status.in_(ANNOUNCED))).all()
        found = [_announcement(d) for d in rows]
    found = [r for r in found if _wanted(r["location"], date.fromisoformat(r["date"]), location, date_from, date_to)]
    return sorted(found, key=lambda r: (r["start"], r["id"]))


def past_records(store: Store, location: str | None = None, date_from: date | None = None,
                 date_to: date | None = None) -> list[dict]:
    """Closed deployments' records, newest first, computed now rather than read from the snapshot
    taken at close, so that outcomes recorded afterwards are counted."""
    with store.session() as s:
        # A plan closed without ever being authorised never ran and was never announced.
        query = select(Deployment).where(Deployment.status == "closed", Deployment.authorised_at.is_not(None))
        rows = s.scalars(query).all()
        records = [deployment_record(s, d) for d in rows]
    records = [{k: r[k] for k in COLUMNS} for r in records]
    records = [r for r in records if _wanted(r["location"], date.fromisoformat(r["date"]), location, date_from, date_to)]
    return sorted(records, key=lambda r: (r["start"], r["deployment_id"]), reverse=True)


def records_csv(rows: list[dict]) -> str:
    return to_csv(rows)


def leaflet(store: Store, deployment_id: int) -> dict:
    """The text of the leaflet and sign for a deployment's location. A deployment never authorised
    was never announced, so it answers as if it did not exist."""
    with store.session() as s:
        d = s.get(Deployment, deployment_id)
        if d is None or d.status not in PUBLISHED or d.authorised_at is None:
            raise NotFoundError(f"no published deployment {deployment_id}")
        facts = _announcement(d)
    facts.update(  # the time window is worded by the page, in the force's time zone
        retention=dict(RETENTION),
        contact=contact(),
        force=force_name(),
    )
    return facts
