"""Configuration read from the environment: where OpenLFR keeps its data, and the force's time zone, name and contact."""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_HOME = "OPENLFR_HOME"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: an explicit path, else ``$OPENLFR_HOME``, else ``~/.openlfr``."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".openlfr"


# --- The force: its time zone, name and contact, as every page and printed sign shows them ---------

ENV_TIME_ZONE = "OPENLFR_TIME_ZONE"
#: Officers read times on the clock they live by, not UTC; the store keeps UTC regardless.
DEFAULT_TIME_ZONE = "Europe/London"
ENV_FORCE_NAME = "OPENLFR_FORCE_NAME"
ENV_FORCE_CONTACT = "OPENLFR_FORCE_CONTACT"
#: Read when ``OPENLFR_FORCE_CONTACT`` is unset: the name earlier releases documented.
ENV_CONTACT_LEGACY = "OPENLFR_CONTACT"


def time_zone() -> ZoneInfo:
    """The force's time zone (``$OPENLFR_TIME_ZONE``, an IANA name, default Europe/London).

    A misspelt zone fails loudly: showing officers UTC as if it were local time would mislead them.
    """
    name = os.environ.get(ENV_TIME_ZONE, "").strip() or DEFAULT_TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{ENV_TIME_ZONE}={name!r} is not a time zone (use an IANA name such as Europe/London)") from None


def force_name() -> str | None:
    """The force's name for the leaflet and poster (``$OPENLFR_FORCE_NAME``); None when not configured."""
    return os.environ.get(ENV_FORCE_NAME, "").strip() or None


def force_contact() -> str | None:
    """Who the public may contact (``$OPENLFR_FORCE_CONTACT``, else ``$OPENLFR_CONTACT``); None when not configured."""
    return (os.environ.get(ENV_FORCE_CONTACT, "").strip() or os.environ.get(ENV_CONTACT_LEGACY, "").strip()) or None


# --- Live alerts ------------------------------------------------------------------------------------

ENV_REPEAT_WINDOW = "OPENLFR_REPEAT_WINDOW_S"


def repeat_window_s(default: float) -> float:
    """Seconds within which a subject's further alerts on a deployment merge into the first
    (``$OPENLFR_REPEAT_WINDOW_S`` for ``openlfr serve``; ``openlfr live --repeat-window``); 0: never."""
    text = os.environ.get(ENV_REPEAT_WINDOW, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{ENV_REPEAT_WINDOW}={text!r} is not a number of seconds") from None
    if not 0 <= value <= 24 * 3600:
        raise ValueError(f"{ENV_REPEAT_WINDOW}={text!r} must be between 0 and 86400 seconds")
    return value
