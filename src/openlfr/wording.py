"""Numbers and times in the words an officer reads.

Pure functions with no dependencies beyond the standard library, so the CLI, the
web pages (as Jinja filters) and the API all word the same value the same way.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _round_significant(value: float, digits: int = 2) -> int:
    """Round to `digits` significant figures: 38,911 reads as 39,000, not a false precision."""
    if value < 100:
        return max(1, round(value))
    magnitude = 10 ** (math.floor(math.log10(value)) - digits + 1)
    return int(round(value / magnitude) * magnitude)


def rate_in_words(rate: float) -> str:
    """A rate such as an FPIR of 2.57e-05 as "about 1 in 39,000" (0 as "none").

    Officers and the public read odds, not scientific notation.
    """
    if rate is None or math.isnan(rate) or rate < 0:
        raise ValueError(f"a rate must be a number from 0 to 1, not {rate!r}")
    if rate == 0:
        return "none"
    if rate >= 1:
        return "every time"
    return f"about 1 in {_round_significant(1 / rate):,}"


def duration_in_words(seconds: float) -> str:
    """A duration as its two largest units: "5 days 23 h", "2 h 5 min", "3 min 20 s", "45 s".

    A retention period or a time to review is read at a glance; a count of seconds is not.
    """
    if seconds is None or math.isnan(seconds) or seconds < 0:
        raise ValueError(f"a duration must be zero or more seconds, not {seconds!r}")
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        first = f"{days} day" if days == 1 else f"{days} days"
        return f"{first} {hours} h" if hours else first
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def format_time(dt: datetime | None, tz: tzinfo | str | None = None) -> str:
    """A moment as "30 Nov 2026 14:05:09" in the force's time zone (default UTC).

    One format everywhere: no microseconds, no ISO "T", month as a word so that
    day and month cannot be confused. Naive datetimes are UTC, as the store keeps
    them. None reads as an empty string so templates can pass optional times.
    """
    if dt is None:
        return ""
    zone = ZoneInfo(tz) if isinstance(tz, str) else (tz or UTC)
    aware = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    local = aware.astimezone(zone)
    return f"{local.day} {_MONTHS[local.month - 1]} {local.year} {local:%H:%M:%S}"
