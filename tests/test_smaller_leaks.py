"""Issue 12, finding 10: camera passwords, the audited source address, a deployment a crash left
live, a killed custody import, and the data folder's permissions."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from openlfr.api.app import create_app
from openlfr.services import audit, custody, demo_images, deployments, users
from openlfr.storage import Store
from openlfr.storage.models import CustodyImport, Deployment

SECRET_URL = "rtsp://admin:s3cret-pw@10.1.2.3:554/live?channel=1&token=tok-9"
REDACTED_URL = "rtsp://admin:***@10.1.2.3:554/live?channel=1&token=***"
PASSWORD = "a long enough test password"
START = datetime.now(UTC) + timedelta(hours=2)


def _plan(store: Store, source: str = SECRET_URL) -> int:
    return deployments.plan(
        store, "Match day", "Station Road", "protective-security", START, START + timedelta(hours=4), 0.5,
        [deployments.CameraSpec("north", source)], "planner",
    )  # fmt: skip


def _database_text(store: Store) -> str:
    """Every camera row as the database holds it (what a reader of the data folder sees)."""
    with sqlite3.connect(store.home / "openlfr.db") as db:
        return repr(db.execute("SELECT * FROM cameras").fetchall())


def _events(store: Store, action: str) -> list[dict]:
    return [e for e in audit.search(store, limit=1000) if e["action"] == action]


# --- a. camera addresses ----------------------------------------------------------------------------


def test_camera_passwords_are_encrypted_at_rest_and_redacted_everywhere_shown(store: Store, engine) -> None:
    deployment_id = _plan(store)
    deployments.add_camera(store, deployment_id, deployments.CameraSpec("south", "rtsp://u:other-pw@cam.invalid/s"), "planner")
    raw = _database_text(store)
    assert "s3cret-pw" not in raw and "tok-9" not in raw and "other-pw" not in raw
    cameras = deployments.deployment_detail(store, deployment_id)["cameras"]
    assert [c["source"] for c in cameras] == [REDACTED_URL, "rtsp://u:***@cam.invalid/s"]
    # only the live runner gets the address in full
    assert [c.source for c in deployments.camera_sources(store, deployment_id)] == [SECRET_URL, "rtsp://u:other-pw@cam.invalid/s"]

    admin = users.create_user(store, "admin", "Admin", "administrator", PASSWORD, "test")
    auditor = users.create_user(store, "aud", "Aud", "auditor", PASSWORD, "test")
    client = TestClient(create_app(store=store, engine=engine, secure_cookies=False))
    for account in (admin, auditor):
        headers = {"Authorization": f"Bearer {users.create_token(store, account.id, 'leak', days=1)}"}
        for path in (f"/api/v1/deployments/{deployment_id}", "/api/v1/deployments", "/api/v1/records"):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            assert "s3cret-pw" not in response.text and "other-pw" not in response.text
    assert "s3cret-pw" not in repr(audit.search(store, limit=1000))


def test_migration_0007_encrypts_existing_camera_addresses(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    home = tmp_path / "home"
    store = Store(home)
    deployment_id = _plan(store)
    config = Config()
    config.set_main_option("script_location", str(Path(deployments.__file__).parent.parent / "storage" / "migrations"))
    with store.engine.begin() as connection:  # back to 0006: the address as an older version stored it
        config.attributes.update(connection=connection, cipher=store.cipher)
        command.downgrade(config, "0006")
    assert "s3cret-pw" in _database_text(store)
    store.close()

    reopened = Store(home)  # migrates to head
    try:
        assert "s3cret-pw" not in _database_text(reopened)
        assert deployments.deployment_detail(reopened, deployment_id)["cameras"][0]["source"] == REDACTED_URL
        assert deployments.camera_sources(reopened, deployment_id)[0].source == SECRET_URL
    finally:
        reopened.close()


# --- b. X-Forwarded-For ------------------------------------------------------------------------------


def _request(peer: str, forwarded: str | None, proxies: str):
    from starlette.requests import Request

    from openlfr.api.security import parse_trusted_proxies

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    app = SimpleNamespace(state=SimpleNamespace(trusted_proxies=parse_trusted_proxies(proxies)))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "client": (peer, 1234), "app": app})


def test_forwarded_for_is_believed_only_from_configured_proxies() -> None:
    from openlfr.api.security import client_source

    assert client_source(_request("198.51.100.7", "203.0.113.9", "")) == "198.51.100.7"  # default: trust none
    assert client_source(_request("127.0.0.1", "203.0.113.9", "")) == "127.0.0.1"
    assert client_source(_request("198.51.100.7", "203.0.113.9", "10.0.0.0/8")) == "198.51.100.7"  # not our proxy
    assert client_source(_request("10.0.0.5", "203.0.113.9", "127.0.0.1,10.0.0.0/8")) == "203.0.113.9"
    # a client's own "X-Forwarded-For: 1.2.3.4" is to the left of what our proxies appended
    assert client_source(_request("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.0.0.6", "10.0.0.0/8")) == "203.0.113.9"
    assert client_source(_request("10.0.0.5", "not-an-address", "10.0.0.0/8")) == "10.0.0.5"


def test_serve_turns_off_uvicorns_own_forwarded_header_handling(tmp_path: Path, monkeypatch) -> None:
    import uvicorn

    from openlfr.cli.main import app

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda application, **kwargs: calls.append(kwargs | {"app": application}))
    result = CliRunner().invoke(app, ["serve", "--home", str(tmp_path / "home"), "--trusted-proxies", "10.0.0.0/8"])
    assert result.exit_code == 0, result.output
    assert calls and calls[0]["proxy_headers"] is False
    assert [str(n) for n in calls[0]["app"].state.trusted_proxies] == ["10.0.0.0/8"]
    bad = CliRunner().invoke(app, ["serve", "--home", str(tmp_path / "home"), "--trusted-proxies", "nonsense"])
    assert bad.exit_code != 0


# --- d. a deployment a crash left live ------------------------------------------------------------------


def _force_live(store: Store, deployment_id: int) -> None:
    with store.session() as s:
        s.get_one(Deployment, deployment_id).status = "live"


def test_a_deployment_left_live_by_a_crash_is_marked_interrupted_at_start(store: Store, engine) -> None:
    from openlfr.live.runner import worker_lock

    crashed, running = _plan(store), _plan(store, "0")
    _force_live(store, crashed)
    _force_live(store, running)
    with worker_lock(store, running):  # another process is running this one's cameras
        client = TestClient(create_app(store=store, engine=engine, secure_cookies=False))
        assert deployments.deployment_detail(store, crashed)["status"] == "interrupted"
        assert deployments.deployment_detail(store, running)["status"] == "live"
    (event,) = _events(store, "deployment.interrupted")
    assert event["record_id"] == str(crashed) and event["actor"] == "system"
    announced = {r["id"]: r["status"] for r in client.get("/api/v1/public/deployments").json()}
    assert announced[crashed] == "interrupted"
    assert "interrupted" in client.get("/public").text
    deployments.close(store, crashed, "planner")  # an interrupted deployment can still be closed
    assert deployments.deployment_detail(store, crashed)["status"] == "closed"


# --- e. a killed custody import ----------------------------------------------------------------------------


def test_a_killed_import_is_audited_when_found(store: Store, engine, tmp_path: Path) -> None:
    root = tmp_path / "custody"
    (root / "C-1").mkdir(parents=True)
    (root / "C-1" / "hopper.jpg").write_bytes(demo_images.grace_hopper_path().read_bytes())
    with store.session() as s:  # what a killed process leaves: a run still marked running
        s.add(CustodyImport(source=str(root.resolve()), started_by="officer-1", status="running", total=1))
    report = custody.import_custody(store, engine, root, "officer-2", workers=1)
    assert report.resumed and report.status == "completed"
    (event,) = _events(store, "custody.import_interrupted")
    assert event["record_id"] == str(report.import_id) and event["details"]["started_by"] == "officer-1"
    custody.import_custody(store, engine, root, "officer-2", workers=1)  # a finished run is not reported again
    assert len(_events(store, "custody.import_interrupted")) == 1
    with store.session() as s:
        assert s.scalars(select(CustodyImport.status)).all() == ["completed", "completed"]


# --- f. the data folder's permissions ----------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_folder_and_files_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        home = tmp_path / "home"
        store = Store(home)
        blob = store.write_blob("images", b"face", "test")
        store.close()
    finally:
        os.umask(old)
    assert _mode(home) == 0o700
    assert _mode(home / "keys") == 0o700 and _mode(home / "keys" / "data.key") == 0o600
    assert _mode(home / "openlfr.db") == 0o600
    assert _mode(home / "images") == 0o700 and _mode(home / blob) == 0o600
    for extra in ("openlfr.db-wal", "openlfr.db-shm"):
        if (home / extra).exists():
            assert _mode(home / extra) == 0o600

    home.chmod(0o755)  # a folder an older version created is tightened when opened
    (home / "openlfr.db").chmod(0o644)
    Store(home).close()
    assert _mode(home) == 0o700 and _mode(home / "openlfr.db") == 0o600
