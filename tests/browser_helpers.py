"""What the browser tests share: Debian's Chromium (never a downloaded browser) and a real
``openlfr serve`` on a free port for a data directory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("OPENLFR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "e2e"
PASSWORD = "correct horse battery staple"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def browser_or_skip() -> str:
    """The Chromium to drive; skips without one, unless ``OPENLFR_REQUIRE_BROWSER=1`` (CI), when it fails."""
    if CHROMIUM and Path(CHROMIUM).exists():
        return CHROMIUM
    reason = "no Chromium found: install Debian's 'chromium' package or set OPENLFR_CHROMIUM"
    if os.environ.get("OPENLFR_REQUIRE_BROWSER") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A port nothing listens on now, chosen by the OS so parallel runs do not collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(home: Path) -> Iterator[str]:
    """``openlfr serve`` on a free port for the data directory ``home``; stopped afterwards."""
    port = free_port()
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed below
    serve = ["serve", "--home", str(home), "--port", str(port), "--http-cookies"]
    command = [sys.executable, "-c", "from openlfr.cli.main import app; app()", *serve]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60  # an upper bound only: it answers as soon as it is up
    try:
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail(f"openlfr serve did not start: {(home / 'server.log').read_text()}")
        yield url
    finally:
        server.terminate()
        server.wait(20)
        log.close()
