"""Retention: alert images after 31 days unless held, footage after 31 days, watchlists at once; idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import pg
from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.errors import StoreError
from openlfr.live.runner import run_deployment
from openlfr.services import alerts, demo_images, deployments, retention
from openlfr.storage import Store
from openlfr.storage.models import Alert, FootageSegment

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)


@pytest.fixture(scope="module")
def alerted_home(tmp_path_factory: pytest.TempPathFactory, engine, module_database: str) -> Path:
    """A store with one closed deployment and one real alert, built once and copied per test."""
    root = tmp_path_factory.mktemp("alerted")
    store = Store(root / "home")
    hopper_subject(store, engine)
    video = walking_clip(root / "clip.mp4", [demo_images.grace_hopper()], seconds=2.0)
    deployment_id = ready_deployment(store, video)
    run_deployment(store, engine, deployment_id, realtime=False)
    deployments.close(store, deployment_id, "supervisor")
    store.close()
    return root / "home"


@pytest.fixture
def store(alerted_home: Path, tmp_path: Path) -> Store:
    import shutil

    shutil.copytree(alerted_home, tmp_path / "home")
    with pg.own_copy():  # on PostgreSQL the database is copied too
        s = Store(tmp_path / "home")
        yield s
        s.close()


def alert_files(store: Store) -> list[Path]:
    return sorted((store.home / "alerts").iterdir())


def only_alert(store: Store) -> dict:
    (alert,) = alerts.list_alerts(store)
    return alert


def test_alert_images_kept_31_days_then_deleted_and_logged(store: Store) -> None:
    alert = only_alert(store)
    assert len(alert_files(store)) == 3  # camera crop, frame, copy of the watchlist image
    soon = datetime.now(UTC) + timedelta(days=30)
    assert retention.run(store, now=soon).alert_images_deleted == []
    assert len(alert_files(store)) == 3
    later = datetime.now(UTC) + timedelta(days=31, minutes=1)
    report = retention.run(store, now=later)
    assert report.alert_images_deleted == [alert["id"]]
    assert alert_files(store) == []
    kept = only_alert(store)
    assert kept["images_deleted"] and kept["subject"] == "GH-1"  # the record of the alert stays
    with pytest.raises(StoreError, match="deleted under the retention rules"):
        alerts.comparison_image(store, alert["id"])
    log = retention.deletion_log(store)
    assert log[0]["kind"] == "alert-images" and log[0]["files"] == 3 and log[0]["record"] == alert["id"]
    # Running again deletes nothing more and logs nothing more.
    again = retention.run(store, now=later + timedelta(days=1))
    assert again.alert_images_deleted == [] and len(retention.deletion_log(store)) == len(log)


def test_legal_hold_keeps_images_until_lifted(store: Store) -> None:
    alert = only_alert(store)
    alerts.set_legal_hold(store, alert["id"], "sgt-b", "investigation 42/2026")
    far = datetime.now(UTC) + timedelta(days=400)
    report = retention.run(store, now=far)
    assert report.alerts_held == [alert["id"]] and report.alert_images_deleted == []
    assert len(alert_files(store)) == 3
    alerts.lift_legal_hold(store, alert["id"], "sgt-b", "case concluded")
    assert retention.run(store, now=far).alert_images_deleted == [alert["id"]]
    assert alert_files(store) == []
    with pytest.raises(StoreError, match="already deleted"):
        alerts.set_legal_hold(store, alert["id"], "sgt-b", "too late")


def test_hold_needs_a_reason_and_outcomes_are_final(store: Store) -> None:
    alert = only_alert(store)
    with pytest.raises(Exception, match="needs a reason"):
        alerts.set_legal_hold(store, alert["id"], "sgt-b", "")
    with pytest.raises(Exception, match="needs the officer's judgement"):
        alerts.record_outcome(store, alert["id"], "no-action", "pc-c")
    alerts.record_outcome(store, alert["id"], "no-action", "pc-c", adjudication="no-match")
    with pytest.raises(StoreError, match="already has outcome no-action"):
        alerts.record_outcome(store, alert["id"], "arrest", "pc-d")


def test_footage_deleted_after_31_days(store: Store) -> None:
    now = datetime.now(UTC)
    files = [store.write_blob("footage", b"segment", "footage") for _ in range(2)]
    with store.session() as s:
        for i, f in enumerate(files):
            s.add(
                FootageSegment(
                    deployment_id=1,
                    camera_name="cam-1",
                    file=f,
                    frames=25,
                    started_at=now - timedelta(days=40 - i * 20, minutes=1),
                    ended_at=now - timedelta(days=40 - i * 20),
                )
            )
    report = retention.run(store, now=now)
    assert len(report.footage_deleted) == 1
    assert not (store.home / files[0]).exists() and (store.home / files[1]).exists()
    assert retention.run(store, now=now).footage_deleted == []


def test_periods_are_configurable(store: Store) -> None:
    policy = retention.RetentionPolicy(alert_images=timedelta(days=7))
    report = retention.run(store, policy, now=datetime.now(UTC) + timedelta(days=8))
    assert len(report.alert_images_deleted) == 1


def test_alert_rows_keep_no_images_after_deletion(store: Store) -> None:
    retention.run(store, now=datetime.now(UTC) + timedelta(days=32))
    with store.session() as s:
        (row,) = s.query(Alert).all()
        assert row.probe_file is None and row.frame_file is None and row.reference_file is None


def test_retention_also_runs_inside_a_live_deployment(tmp_path: Path, engine) -> None:
    """A live deployment runs the retention job on a schedule: an old alert's images go while it runs."""
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)
    first = ready_deployment(store, walking_clip(tmp_path / "a.mp4", [demo_images.grace_hopper()], seconds=1.5))
    run_deployment(store, engine, first, realtime=False, retention_every_s=None)
    with store.session() as s:
        (alert,) = s.query(Alert).all()
        alert.created_at = datetime.now(UTC) - timedelta(days=40)
    events: list[str] = []
    second = ready_deployment(store, walking_clip(tmp_path / "b.mp4", [demo_images.eileen_collins()], seconds=1.0))
    run_deployment(store, engine, second, realtime=False, retention_every_s=60, on_event=lambda c, m: events.append(m))
    assert only_alert(store)["images_deleted"]
    assert any("retention" in m or "deleted" in m for m in events)
