"""/metrics, /healthz and /readyz: the camera figures move during a live run inside the server, no
label names anybody, the services' counters count, and /readyz fails naming the check that failed."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import cv2
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text

from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.api.app import create_app
from openlfr.metrics import Metrics
from openlfr.services import audit, demo_images, rfr, users
from openlfr.storage import Store
from rfr_helpers import seed_custody

PASSWORD = "a long enough test password"
#: Every label any metric may carry. A face, template, name or subject reference has no label to go in.
ALLOWED_LABELS = {"deployment", "camera", "openlfr_camera_state", "reason", "pack", "version", "role", "le"}
WAIT_S = 300  # a bound on waiting for an event, so a broken run fails instead of hanging; never a pause


@pytest.fixture(autouse=True)
def _no_configured_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The readiness checks read these; the machine running the tests must not decide the outcome."""
    for name in ("OPENLFR_KEY", "OPENLFR_AUDIT_KEY", "OPENLFR_AUDIT_CHECKPOINTS", "OPENLFR_METRICS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def samples(exposition: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(exposition) for s in family.samples]


def value(exposition: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` whose labels include ``labels``; None when there is none."""
    found = [v for n, lab, v in samples(exposition) if n == name and labels.items() <= lab.items()]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


class GatedEngine:
    """The real engine, except that detection of the frames numbered in ``pauses`` waits for the test:
    the run stands still at a known frame while /metrics is scraped, so the counts are exact."""

    def __init__(self, engine, pauses: tuple[int, ...]) -> None:
        self._engine = engine
        self._calls = 0
        self.reached = {n: threading.Event() for n in pauses}
        self.release = {n: threading.Event() for n in pauses}

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def detect(self, image, *args, **kwargs):
        if not image.any():  # the pipeline's warm-up on a blank frame, before the camera starts
            return self._engine.detect(image, *args, **kwargs)
        self._calls += 1  # one processing thread per camera, one camera: no race
        if self._calls in self.reached:
            self.reached[self._calls].set()
            self.release[self._calls].wait(WAIT_S)
        return self._engine.detect(image, *args, **kwargs)

    def open_all(self) -> None:
        for event in self.release.values():
            event.set()


def test_camera_figures_move_during_a_live_run_in_the_server_and_name_nobody(tmp_path: Path, engine) -> None:
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)  # Grace Hopper, reference GH-1
    video = walking_clip(tmp_path / "clip.mp4", [demo_images.grace_hopper(), demo_images.eileen_collins()])
    deployment_id = ready_deployment(store, video)
    users.create_user(store, "olive", "Olive Operator", "operator", PASSWORD, "test")
    token = users.create_token(store, users.get_user_by_username(store, "olive")["id"], "test", days=1)
    gated = GatedEngine(engine, pauses=(10, 40))
    app = create_app(store=store, engine=gated, secure_cookies=False)
    app.state.live.realtime = False  # every frame of the 75, so the counts are exact on any machine
    labels = {"deployment": str(deployment_id), "camera": "cam-1"}
    try:
        with TestClient(app) as client:
            started = client.post(f"/api/v1/deployments/{deployment_id}/start", headers={"Authorization": f"Bearer {token}"})
            assert started.status_code == 200, started.text
            assert gated.reached[10].wait(WAIT_S), "the run never reached frame 10"
            first = client.get("/metrics")  # the run stands at frame 10: 9 frames are done
            gated.release[10].set()
            assert gated.reached[40].wait(WAIT_S), "the run never reached frame 40"
            second = client.get("/metrics").text
            gated.release[40].set()
            run = app.state.live.run(deployment_id)
            run.thread.join(WAIT_S)
            assert not run.thread.is_alive() and run.error is None, run.error
            final = client.get("/metrics").text
    finally:
        gated.open_all()
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain")
    first = first.text

    # The camera's figures move while it runs.
    assert value(first, "openlfr_camera_frames_processed_total", **labels) == 9
    assert value(second, "openlfr_camera_frames_processed_total", **labels) == 39
    assert value(second, "openlfr_camera_detect_seconds_count", **labels) == 39
    assert value(second, "openlfr_camera_template_seconds_count", **labels) == 39
    assert value(first, "openlfr_camera_state", **labels, openlfr_camera_state="up") == 1
    assert value(first, "openlfr_camera_state", **labels, openlfr_camera_state="ended") == 0
    # And at the end: every frame, none dropped, both faces counted, one alert with its latency.
    assert value(final, "openlfr_camera_frames_processed_total", **labels) == 75
    assert value(final, "openlfr_camera_frames_dropped_total", **labels) == 0
    assert value(final, "openlfr_camera_faces_seen_total", **labels) == 2
    assert value(final, "openlfr_camera_alerts_total", **labels) == 1
    assert value(final, "openlfr_alert_latency_seconds_count", **labels) == 1
    assert value(final, "openlfr_camera_state", **labels, openlfr_camera_state="ended") == 1
    assert value(final, "openlfr_audit_appends_total") >= 1  # going live and the alert are audited
    assert value(final, "openlfr_outbox_depth") == 0 and value(final, "openlfr_outbox_oldest_age_seconds") == 0

    # No label carries a face, template, name or subject reference: only the allowed labels exist,
    # and neither the alerted person's reference nor any part of her name appears anywhere.
    used = {key for _name, lab, _v in samples(final) for key in lab}
    assert used <= ALLOWED_LABELS, f"unexpected labels: {used - ALLOWED_LABELS}"
    lowered = final.lower()
    for secret in ("gh-1", "grace", "hopper", "eileen", "collins", "olive"):
        assert secret not in lowered, f"{secret!r} appears in /metrics"


@pytest.mark.both_databases
def test_sign_in_failures_lockouts_and_audit_appends_are_counted(store: Store, engine) -> None:
    app = create_app(store=store, engine=engine, secure_cookies=False)
    users.create_user(store, "lockme", "Lock Me", "operator", PASSWORD, "test")
    with TestClient(app) as client:
        before_audit = value(client.get("/metrics").text, "openlfr_audit_appends_total")
        events_before = audit.count(store)
        for _ in range(users.MAX_FAILED_LOGINS):
            bad = client.post("/api/v1/auth/token", json={"username": "lockme", "password": "wrong password!"})
            assert bad.status_code == 401
        locked = client.post("/api/v1/auth/token", json={"username": "lockme", "password": PASSWORD})
        assert locked.status_code == 401
        scraped = client.get("/metrics").text
    assert value(scraped, "openlfr_login_failures_total", reason="bad-credentials") == users.MAX_FAILED_LOGINS
    assert value(scraped, "openlfr_login_failures_total", reason="locked") == 1
    assert value(scraped, "openlfr_login_lockouts_total") == 1
    assert value(scraped, "openlfr_audit_appends_total") - before_audit == audit.count(store) - events_before
    assert "lockme" not in scraped.lower()


def test_custody_search_latency_and_index_size(store: Store, engine) -> None:
    metrics = Metrics().bind(store)
    seed_custody(store, engine, fillers=30)
    data = cv2.imencode(".jpg", demo_images.grace_hopper())[1].tobytes()
    rfr.start_search(store, engine, data, "still.jpg", "CASE-1", "robbery on 3 May; necessary to identify", "exa")
    exposition = metrics.exposition().decode()
    assert value(exposition, "openlfr_custody_search_seconds_count") == 1
    assert value(exposition, "openlfr_custody_index_templates", pack=engine.pack_id) == 32
    assert "C-HOPPER" not in exposition


def test_registries_are_per_application(tmp_path: Path, engine) -> None:
    """Two servers in one process count apart: a sign-in refused by one is not counted by the other."""
    one, two = Store(tmp_path / "one"), Store(tmp_path / "two")
    app_one = create_app(store=one, engine=engine)
    app_two = create_app(store=two, engine=engine)
    with TestClient(app_one) as client:
        assert client.post("/api/v1/auth/token", json={"username": "nobody", "password": "x" * 12}).status_code == 401
    assert value(app_one.state.metrics.exposition().decode(), "openlfr_login_failures_total", reason="bad-credentials") == 1
    assert value(app_two.state.metrics.exposition().decode(), "openlfr_login_failures_total", reason="bad-credentials") is None


def test_metrics_token_when_configured(store: Store, engine, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(store=store, engine=engine)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 200  # no token configured: the internal interface guards it
        monkeypatch.setenv("OPENLFR_METRICS_TOKEN", "scrape-token-0123456789")
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0123456789"})
        assert ok.status_code == 200 and "openlfr_build_info" in ok.text
        assert client.get("/healthz").status_code == 200  # the probes need no token
        assert client.get("/readyz").status_code == 200


# --- /healthz and /readyz ---------------------------------------------------------------------------


def readyz(app) -> tuple[int, dict]:
    with TestClient(app) as client:
        response = client.get("/readyz")
    return response.status_code, response.json()


@pytest.mark.both_databases
def test_healthz_and_readyz_on_a_good_node(store: Store, engine) -> None:
    app = create_app(store=store, engine=engine)
    with TestClient(app) as client:
        assert client.get("/healthz").json() == {"status": "alive", "role": "central", "version": app.version}
    status, body = readyz(app)
    assert status == 200 and body["status"] == "ready" and body["failed"] == []
    assert set(body["checks"]) == {"store", "data_key", "audit_key", "models"}
    assert all(check["ok"] for check in body["checks"].values())
    assert str(store.home) not in str(body)  # no file-system path for an unauthenticated caller


def test_readyz_fails_when_the_database_file_is_missing(store: Store, engine) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the database file is SQLite's")
    app = create_app(store=store, engine=engine)
    store.engine.dispose()
    Path(store.engine.url.database).unlink()
    status, body = readyz(app)
    assert status == 503 and body["failed"] == ["store"]
    assert "missing" in body["checks"]["store"]["detail"]
    assert not Path(store.engine.url.database).exists()  # the check did not create an empty one


def test_readyz_fails_when_the_database_is_unreachable(store: Store, engine, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(store=store, engine=engine)
    # Nothing listens on port 1: the connection is refused at once.
    unreachable = create_engine("postgresql+psycopg://openlfr@127.0.0.1:1/openlfr", connect_args={"connect_timeout": 10})
    monkeypatch.setattr(store, "engine", unreachable)
    status, body = readyz(app)
    assert status == 503 and body["failed"] == ["store"]
    assert "cannot be reached" in body["checks"]["store"]["detail"]


@pytest.mark.both_databases
def test_readyz_fails_when_the_schema_is_not_migrated(store: Store, engine) -> None:
    app = create_app(store=store, engine=engine)
    with store.engine.begin() as connection:
        head = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        status, body = readyz(app)
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert status == 503 and body["failed"] == ["store"]
    assert "not migrated" in body["checks"]["store"]["detail"]


@pytest.mark.both_databases
def test_readyz_fails_when_the_data_key_is_missing_or_another(store: Store, engine) -> None:
    app = create_app(store=store, engine=engine)
    key_file = store.home / "keys" / "data.key"
    original = key_file.read_bytes()
    key_file.unlink()
    status, body = readyz(app)
    assert status == 503 and body["failed"] == ["data_key"]
    assert "missing" in body["checks"]["data_key"]["detail"]
    assert not key_file.exists()  # the check never creates a key
    key_file.write_bytes(base64.urlsafe_b64encode(os.urandom(32)) + b"\n")
    status, body = readyz(app)
    assert status == 503 and body["failed"] == ["data_key"]
    assert "not the key" in body["checks"]["data_key"]["detail"]
    key_file.write_bytes(original)
    assert readyz(app)[0] == 200


def test_readyz_fails_when_the_audit_key_is_missing(store: Store, engine, tmp_path: Path, monkeypatch) -> None:
    key = tmp_path / "outside" / "audit-signing.key"
    monkeypatch.setenv("OPENLFR_AUDIT_KEY", str(key))
    app = create_app(store=store, engine=engine)
    status, body = readyz(app)
    assert status == 503 and body["failed"] == ["audit_key"]
    audit.init_key(store.home, key)
    status, body = readyz(app)
    assert status == 200 and body["checks"]["audit_key"]["ok"]


def test_readyz_requires_the_audit_key_when_checkpoints_are_configured(store: Store, engine, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # the default key place: empty
    assert readyz(create_app(store=store, engine=engine))[0] == 200
    status, body = readyz(create_app(store=store, engine=engine, audit_checkpoints=tmp_path / "checkpoints"))
    assert status == 503 and body["failed"] == ["audit_key"]


def test_readyz_fails_when_model_files_are_missing(store: Store, tmp_path: Path) -> None:
    app = create_app(store=store, pack=str(tmp_path / "no-such-pack"))  # no engine given: the pack's files are checked
    status, body = readyz(app)
    assert status == 503 and body["failed"] == ["models"]


def test_a_van_without_a_deployment_package_is_not_ready(store: Store, engine) -> None:
    app = create_app(store=store, engine=engine, role="van")
    status, body = readyz(app)
    assert status == 503 and body["role"] == "van" and body["failed"] == ["deployment_package"]
    assert "not a van" in body["checks"]["deployment_package"]["detail"]
    assert 'role="van"' in app.state.metrics.exposition().decode()
    with pytest.raises(ValueError, match="role"):
        create_app(store=store, engine=engine, role="truck")
