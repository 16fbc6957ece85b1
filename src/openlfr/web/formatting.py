"""How every page words a time, a rate or a duration: one set of Jinja filters, in the force's time zone.

The store and the API keep UTC ISO timestamps; officers read "30 Nov 2026 14:05:09" on their own
clock, odds ("about 1 in 39,000") rather than ``2.57e-05``, and "5 days 23 h" rather than seconds.
The wording itself lives in :mod:`openlfr.wording` (shared with the command line); this module only
turns what templates hold (ISO strings, ``None``) into its arguments and registers the filters.
Form fields of type ``datetime-local`` are filled and read in the same zone, so what an officer
types is what the pages show back.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from openlfr import config, wording

#: Shown where a value is missing: an empty cell reads as a rendering fault.
MISSING = "—"
_INTERVAL = re.compile(r"^\s*([0-9.eE+-]+)\s+to\s+([0-9.eE+-]+)\s*$")


def zone() -> tzinfo:
    return config.time_zone()


def zone_name() -> str:
    return str(config.time_zone())


def moment(value: Any) -> datetime | None:
    """A datetime from what a template holds: a datetime, an ISO string, or nothing. Naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        found = value
    elif isinstance(value, date):
        found = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        try:
            found = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def when(value: Any) -> str:
    """A moment as "30 Nov 2026 14:05:09" in the force's time zone; unreadable text is shown as it is."""
    found = moment(value)
    if found is None:
        return MISSING if value in (None, "") else str(value)
    return wording.format_time(found, zone())


def when_minute(value: Any) -> str:
    """A planned time ("30 Nov 2026 14:00"): the same format without the seconds nobody planned."""
    text = when(value)
    return text[:-3] if moment(value) is not None else text


def day(value: Any) -> str:
    """A calendar day as "30 Nov 2026". A plain date (review date, expiry) is not moved between zones."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, date) and not isinstance(value, datetime):
        found: date = value
    elif isinstance(value, str) and len(value.strip()) == 10:
        try:
            found = date.fromisoformat(value.strip())
        except ValueError:
            return value
    else:
        stamp = moment(value)
        if stamp is None:
            return str(value)
        found = stamp.astimezone(zone()).date()
    return wording.format_time(datetime(found.year, found.month, found.day, tzinfo=UTC), UTC).rsplit(" ", 1)[0]


def window(start: Any, end: Any) -> str:
    """A planned window: "30 Nov 2026 14:00 to 18:00", or with the end's date when it is another day."""
    first, last = moment(start), moment(end)
    if first is None or last is None:
        return f"{when_minute(start)} to {when_minute(end)}"
    local_first, local_last = first.astimezone(zone()), last.astimezone(zone())
    tail = when_minute(last)
    return f"{when_minute(first)} to {tail if local_first.date() != local_last.date() else tail[-5:]}"


def rate(value: Any) -> str:
    """An FPIR or other per-face rate in words ("about 1 in 39,000")."""
    if value is None or value == "":
        return MISSING
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number) or number < 0:
        return MISSING
    return wording.rate_in_words(number)


def rate_interval(value: Any) -> str:
    """A rate interval ("2.6e-05 to 4.1e-05", as the record holds it) in words, rarer end first."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = value
    else:
        matched = _INTERVAL.match(str(value))
        if not matched:
            return str(value)
        low, high = matched.groups()
    first, second = rate(low), rate(high)
    return f"{first} to {second.removeprefix('about ')}"


def duration(seconds: Any) -> str:
    """Seconds (or a timedelta) as "5 days 23 h"."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if seconds is None or seconds == "":
        return MISSING
    try:
        return wording.duration_in_words(max(0.0, float(seconds)))
    except (TypeError, ValueError):
        return str(seconds)


def minutes(value: Any) -> str:
    """A duration the record keeps in minutes, in words."""
    try:
        return duration(float(value) * 60)
    except (TypeError, ValueError):
        return MISSING if value in (None, "") else str(value)


def until(value: Any, now: datetime | None = None) -> str:
    """How long until a moment: "in 5 days 23 h", or "overdue by 2 h" once it has passed."""
    found = moment(value)
    if found is None:
        return MISSING
    left = (found - (now or datetime.now(UTC))).total_seconds()
    return f"in {duration(left)}" if left >= 0 else f"overdue by {duration(-left)}"


def input_value(value: Any) -> str:
    """A moment as a ``datetime-local`` field's value ("2026-11-30T14:05") in the force's time zone."""
    found = moment(value)
    return found.astimezone(zone()).strftime("%Y-%m-%dT%H:%M") if found else ""


def from_input(text: str) -> datetime:
    """A ``datetime-local`` value (or a plain date) typed in the force's time zone, as UTC.

    Raises ValueError for text that is not a date and time. An offset typed explicitly is respected.
    """
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone())
    return parsed.astimezone(UTC)


#: A camera's state as an officer reads it.
CAMERA_STATES = {
    None: "not started",
    "unreachable": "could not be opened when checked",
    "connecting": "connecting",
    "up": "up",
    "reconnecting": "reconnecting",
    "failed": "failed",
    "ended": "ended (its video ended)",
    "stopped": "stopped",
}


def camera_state(camera: dict) -> str:
    """"up since 14:05:09", "failed at 14:07:12: cannot open stream …" — state, since when, why."""
    words = CAMERA_STATES.get(camera.get("state"), str(camera.get("state")))
    if camera.get("state_at") and camera.get("state"):
        words += (" since " if camera["state"] in ("up", "connecting", "reconnecting") else " at ") + when(camera["state_at"])
    if camera.get("reason"):
        words += f": {camera['reason']}"
    return words


#: Registered on the pages' Jinja environment (:mod:`openlfr.web.render`).
FILTERS = {
    "when": when,
    "when_minute": when_minute,
    "day": day,
    "rate": rate,
    "rate_interval": rate_interval,
    "duration": duration,
    "minutes": minutes,
    "until": until,
    "input_value": input_value,
    "camera_state": camera_state,
}
#: Functions templates call directly.
GLOBALS = {"window": window, "zone_name": zone_name}
