"""Vocabulary and helpers shared by the deployment, alert and record services.

They live here, below all three, so that ``deployments`` → ``records`` is the only dependency
between those modules and none of them imports another to reach a constant (which made them
import each other in a circle). Nothing here touches the database.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: Why a deployment is made; the keys are stored, the labels are published.
USE_CASES = {
    "crime-hotspot": "Crime hotspot",
    "protective-security": "Protective security at an event or critical national infrastructure",
    "locate-person": "Intelligence about where a wanted or missing person may be",
}

#: What an officer may record after an alert.
OUTCOMES = {
    "no-action": "No action taken",
    "engaged-not-person": "Engaged: not the person",
    "engaged-confirmed": "Engaged: confirmed to be the person",
    "arrest": "Arrest",
    "other": "Other action",
}
#: Outcomes that establish whether the alert was right without needing the officer's judgement.
CONFIRMED = {"engaged-not-person": "no-match", "engaged-confirmed": "match", "arrest": "match"}

#: Encryption context of a deployment's frozen watchlist images (written by deployments, read by alerts).
WATCHLIST_CONTEXT = "watchlist-image"


def watchlist_image_context(entry_id: int | None) -> str:
    """Associated data of watchlist entry ``entry_id``'s encrypted image copy."""
    from openlfr.storage.crypto import record_context

    return record_context(WATCHLIST_CONTEXT, "watchlist_entries", entry_id, "image_file")


def watchlist_template_context(pack_id: str, entry_id: int | None) -> str:
    """Associated data of watchlist entry ``entry_id``'s encrypted template (of model pack ``pack_id``)."""
    from openlfr.storage.crypto import record_context

    return record_context(f"template:{pack_id}", "watchlist_entries", entry_id, "template")


def utc(value: datetime) -> datetime:
    """Treat naive datetimes as UTC (SQLite returns them naive)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)
