"""The published record of a deployment, with the columns of the Met's deployment record.

Definitions (stated so the figures can be checked):

- *faces seen (estimate)*: faces followed by the tracker across all cameras; one person who
  leaves and re-enters view counts twice, hence "estimate";
- *true alert*: the officer judged the camera face to be the watchlisted person; *confirmed* when
  an engagement established it (engaged — confirmed, or arrest), *unconfirmed* when the officer
  judged it from the images without engaging;
- *false alert*: likewise, judged not to be the person; confirmed by an engagement
  (engaged — not the person) or unconfirmed;
- *false alert rate*: false alerts divided by faces seen, as a percentage;
- alerts not yet adjudicated are counted as such and in neither class.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from openlfr.errors import NotFoundError
from openlfr.services.common import CONFIRMED, USE_CASES, utc
from openlfr.storage.models import Alert, Deployment
from openlfr.wording import duration_in_words, format_time, rate_in_words

COLUMNS = [
    "deployment_id",
    "location",
    "date",
    "start",
    "end",
    "duration_minutes",
    "use_case",
    "watchlist_size",
    "minimum_threshold",
    "threshold_calibration",
    "estimated_fpir",
    "estimated_fpir_95_interval",
    "estimate_method",
    "faces_seen_estimate",
    "total_alerts",
    "true_alerts_confirmed",
    "true_alerts_unconfirmed",
    "false_alerts_confirmed",
    "false_alerts_unconfirmed",
    "alerts_not_adjudicated",
    "false_alert_rate_percent",
    "arrests",
    "other_outcomes",
    "no_action",
]


def deployment_record(session: Session, deployment: Deployment) -> dict:
    alerts = session.scalars(select(Alert).where(Alert.deployment_id == deployment.id)).all()
    start = utc(deployment.started_at or deployment.planned_start)
    end = utc(deployment.ended_at or deployment.planned_end)

    def count(judged: str, confirmed: bool) -> int:
        return sum(1 for a in alerts if a.adjudication == judged and (a.outcome in CONFIRMED) == confirmed)

    false_alerts = count("no-match", True) + count("no-match", False)
    faces = deployment.faces_seen
    return {
        "deployment_id": deployment.id,
        "location": deployment.location_name,
        "date": start.date().isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration_minutes": round((end - start).total_seconds() / 60, 1),
        "use_case": USE_CASES.get(deployment.use_case, deployment.use_case),
        "watchlist_size": deployment.watchlist_size or 0,
        "minimum_threshold": deployment.threshold,
        "threshold_calibration": (deployment.calibration_reference or "uncalibrated")
        + (" (threshold set by an audited override)" if deployment.threshold_override else ""),
        "estimated_fpir": deployment.estimated_fpir,
        "estimated_fpir_95_interval": (
            f"{deployment.estimated_fpir_low:.2g} to {deployment.estimated_fpir_high:.2g}"
            if deployment.estimated_fpir_low is not None and deployment.estimated_fpir_high is not None
            else None
        ),
        "estimate_method": deployment.estimate_method,
        "faces_seen_estimate": faces,
        "total_alerts": len(alerts),
        "true_alerts_confirmed": count("match", True),
        "true_alerts_unconfirmed": count("match", False),
        "false_alerts_confirmed": count("no-match", True),
        "false_alerts_unconfirmed": count("no-match", False),
        "alerts_not_adjudicated": sum(1 for a in alerts if a.outcome is None),
        "false_alert_rate_percent": round(100.0 * false_alerts / faces, 5) if faces else 0.0,
        "arrests": sum(1 for a in alerts if a.outcome == "arrest"),
        "other_outcomes": sum(1 for a in alerts if a.outcome in ("engaged-confirmed", "other")),
        "no_action": sum(1 for a in alerts if a.outcome in ("no-action", "engaged-not-person")),
    }


def record_for(session: Session, deployment_id: int) -> dict:
    """The record as it stands now: outcomes recorded after closing count too (the snapshot taken at
    close stays in ``Deployment.record``)."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFoundError(f"deployment {deployment_id} does not exist")
    return deployment_record(session, deployment)


def to_csv(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: r.get(k) for k in COLUMNS})
    return buffer.getvalue()


def _fpir_interval_in_words(interval: str | None) -> str:
    """The published interval ("8.1e-06 to 8.3e-05") as odds: "about 1 in 120,000 to about 1 in 12,000"."""
    try:
        low, high = (float(x) for x in (interval or "").split(" to "))
    except ValueError:
        return ""
    return f"; 95% interval {rate_in_words(high)} to {rate_in_words(low)}"


def record_in_words(record: dict, tz: tzinfo | str | None = None) -> list[tuple[str, str]]:
    """The record as an officer reads it: (label, value) rows with times in ``tz`` and rates as odds.

    The published columns (JSON, CSV) stay as they are, for the public and for analysis; this is for
    people reading a screen, where ``2.57e-05`` and ``other outcomes 1`` for a confirmed engagement mislead.
    """
    start, end = (datetime.fromisoformat(record[k]) for k in ("start", "end"))
    until = format_time(end, tz)
    if format_time(start, tz).split(" ")[:3] == until.split(" ")[:3]:
        until = until.split(" ")[-1]  # same day: the time alone
    calibration = record.get("threshold_calibration") or "uncalibrated"
    calibrated = "not calibrated" if calibration.startswith("uncalibrated") else "calibrated"
    if "override" in calibration:
        calibrated += ", set by an audited override"
    fpir = record.get("estimated_fpir")
    expected = "not estimated (no calibration)"
    if fpir is not None:
        expected = f"{rate_in_words(fpir)} faces seen{_fpir_interval_in_words(record.get('estimated_fpir_95_interval'))}"
    faces = record.get("faces_seen_estimate") or 0
    false_alerts = record["false_alerts_confirmed"] + record["false_alerts_unconfirmed"]
    false_rate = f"{rate_in_words(false_alerts / faces)} faces seen" if false_alerts and faces else "none"
    people = record.get("watchlist_size") or 0

    def judged(kind: str) -> str:
        confirmed, unconfirmed = record[f"{kind}_alerts_confirmed"], record[f"{kind}_alerts_unconfirmed"]
        return f"{confirmed} confirmed by engaging the person, {unconfirmed} judged from the images only"

    return [
        ("Where", str(record["location"])),
        ("When", f"{format_time(start, tz)} to {until} ({duration_in_words(record['duration_minutes'] * 60)})"),
        ("Why", str(record["use_case"])),
        ("Watchlist", f"{people} {'person' if people == 1 else 'people'}"),
        ("Alert threshold", f"{record['minimum_threshold']} ({calibrated})"),
        ("Expected false alerts", expected),
        ("Faces seen (estimate)", str(faces)),
        ("Alerts", str(record["total_alerts"])),
        ("True alerts", judged("true")),
        ("False alerts", judged("false")),
        ("Awaiting a decision", str(record["alerts_not_adjudicated"])),
        ("False alert rate", false_rate),
        (
            "Outcomes",
            f"{record['arrests']} arrest(s), {record['other_outcomes']} engaged without arrest or other action, "
            f"{record['no_action']} no action (including engaged: not the person)",
        ),
    ]
