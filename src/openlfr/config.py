"""Where OpenLFR keeps its data, resolved the same way by every interface."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "OPENLFR_HOME"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: an explicit path, else ``$OPENLFR_HOME``, else ``~/.openlfr``."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".openlfr"
