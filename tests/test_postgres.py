"""Several server processes on one PostgreSQL, as a force's central server runs: real ``openlfr serve``
processes, real HTTP. The audit chain stays one chain when four of them append at once, and a console
connected to one process sees an alert raised in another (LISTEN/NOTIFY).

PostgreSQL only (``OPENLFR_TEST_POSTGRES_URL``, tests/pg.py): on SQLite there is one server process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from browser_helpers import free_port
from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.cli.main import app
from openlfr.live import fanout
from openlfr.live.manager import AlertBus
from openlfr.live.runner import run_deployment
from openlfr.services import alerts, audit, demo_images, users
from openlfr.storage import Store, notify
from openlfr.storage.crypto import ENV_KEY

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)

PASSWORD = "a long enough test password"
SERVERS, PER_SERVER, CLIENTS_PER_SERVER = 4, 500, 2


def _openlfr() -> list[str]:
    found = Path(sys.executable).with_name("openlfr")
    return [str(found)] if found.exists() else [shutil.which("openlfr") or "openlfr"]


@contextmanager
def serving(homes: list[Path], env: dict[str, str], log_dir: Path) -> Iterator[list[str]]:
    """``openlfr serve`` on each home (one process each, all on the test's database); yields their URLs."""
    procs, urls = [], []
    try:
        for i, home in enumerate(homes):
            port = free_port()
            with (log_dir / f"serve-{i}.log").open("w") as out:
                command = [*_openlfr(), "serve", "--home", str(home), "--host", "127.0.0.1", "--port", str(port)]
                procs.append(subprocess.Popen([*command, "--pack", "yunet-sface"], env=env, stdout=out, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 180  # a deadline for failing, not a timing: the loop waits for each to answer
        for i, (proc, url) in enumerate(zip(procs, urls, strict=True)):
            while True:
                assert proc.poll() is None, (log_dir / f"serve-{i}.log").read_text()[-3000:]
                try:
                    if httpx.get(f"{url}/api/v1/public/deployments", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"openlfr serve {i} did not start"
                time.sleep(0.1)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_four_server_processes_appending_at_once_keep_one_audit_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """4 × 500 audited requests at once, each process with its own data folder: only the lock in the
    database orders the appends (the lock file of a data folder does not reach across them)."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    monkeypatch.setenv(ENV_KEY, key)  # the servers share the data key, so they share the chain's key
    homes = [tmp_path / f"home-{i}" for i in range(SERVERS)]
    store = Store(homes[0])
    auditor = users.create_user(store, "auditor", "Auditor", "auditor", PASSWORD, "test")
    token = users.create_token(store, auditor.id, "load", created_by="test")
    before = audit.count(store)

    with serving(homes, dict(os.environ), tmp_path) as urls:

        def hammer(url: str) -> list[int]:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
                requests = range(PER_SERVER // CLIENTS_PER_SERVER)
                return [client.get("/api/v1/audit", params={"limit": 1}).status_code for _ in requests]

        with ThreadPoolExecutor(SERVERS * CLIENTS_PER_SERVER) as pool:
            statuses = [s for batch in pool.map(hammer, urls * CLIENTS_PER_SERVER) for s in batch]
    assert statuses == [200] * (SERVERS * PER_SERVER)

    searches = [e for e in audit.search(store, action="audit.search", limit=10_000) if e["action"] == "audit.search"]
    assert len(searches) == SERVERS * PER_SERVER
    assert audit.count(store) == before + SERVERS * PER_SERVER
    result = audit.verify(store)
    assert result.ok and result.checked == before + SERVERS * PER_SERVER, result
    verified = CliRunner().invoke(app, ["audit", "verify", "--home", str(homes[-1])], env={"COLUMNS": "200"})
    assert verified.exit_code == 0, verified.output
    store.close()


def _listening(store: Store) -> int:
    """Server processes whose live listener is connected and listening (PostgreSQL's own view)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = :name AND query ILIKE 'LISTEN%'"
    )
    with store.engine.connect() as c:
        return int(c.execute(text(query), {"name": notify.APPLICATION_NAME}).scalar() or 0)


def test_console_on_one_server_process_sees_an_alert_raised_in_another(tmp_path: Path, engine) -> None:
    """Process B (``openlfr serve``) holds an officer's console stream; the deployment runs in process A
    (this test, as ``openlfr live`` would): the alert arrives on B's stream."""
    home = tmp_path / "home"
    store = Store(home)
    officer = users.create_user(store, "officer", "Officer", "reviewing_officer", PASSWORD, "test")
    token = users.create_token(store, officer.id, "console", created_by="test")
    hopper_subject(store, engine)
    deployment_id = ready_deployment(store, walking_clip(tmp_path / "clip.mp4", [demo_images.grace_hopper()], seconds=1.5))

    with serving([home], dict(os.environ), tmp_path) as (url,):
        deadline = time.monotonic() + 120
        while _listening(store) < 1:  # B's listener is connected: nothing it is sent from now on is lost
            assert time.monotonic() < deadline, "the server's live listener never connected"
            time.sleep(0.05)
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.stream("GET", f"{url}/api/v1/alerts/stream", headers=headers, timeout=120) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"  # B's console is subscribed to its bus
            run_deployment(store, engine, deployment_id, realtime=False, retention_every_s=None)  # process A
            (raised,) = alerts.list_alerts(store, deployment_id)
            event = None
            for line in lines:
                if line == "event: alert":
                    event = line
                elif event and line.startswith("data: "):
                    message = json.loads(line[len("data: ") :])
                    break
    assert message["id"] == raised["id"] and message["subject"] == "GH-1" and message["deployment"] == deployment_id
    assert message["reason"] == "test subject"  # B built the console's payload from the database
    store.close()


def test_camera_states_reach_a_bus_on_another_store(tmp_path: Path) -> None:
    """Typed messages (camera and deployment states) go to the other processes through the bus's relay."""
    first, second = Store(tmp_path / "home"), Store(tmp_path / "home")
    bus_a, bus_b = AlertBus(), AlertBus()
    sender = fanout.start(first, bus_a)
    receiver = notify.Listener(second.engine, lambda m: bus_b.publish(m.get("message") or m, relay=False), include_own=True)
    receiver.start()
    try:
        assert receiver.listening.wait(60)

        async def exchange() -> dict:
            queue = bus_b.subscribe()
            bus_a.publish({"type": "camera", "deployment": 1, "camera": "north", "state": "up", "reason": None})
            return await asyncio.wait_for(queue.get(), 60)

        assert asyncio.run(exchange()) == {"type": "camera", "deployment": 1, "camera": "north", "state": "up", "reason": None}
    finally:
        receiver.stop()
        if sender is not None:
            sender.stop()
        first.close()
        second.close()
