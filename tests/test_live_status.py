"""The live pipeline tells the truth about itself: camera states, a deployment that ends with its clip,
sources refused at go-live, and one alert per person when tracks break."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.errors import StoreError
from openlfr.live.runner import run_deployment
from openlfr.media.video import SourceError, probe_source
from openlfr.services import alerts, audit, demo_images, deployments, transparency
from openlfr.storage import Store

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)


def test_a_deployment_whose_clip_ends_is_ended_and_cannot_go_live_again(tmp_path: Path, engine) -> None:
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)
    video = walking_clip(tmp_path / "clip.mp4", [demo_images.grace_hopper()])
    deployment_id = ready_deployment(store, video)
    states: list[tuple[str, str]] = []
    report = run_deployment(store, engine, deployment_id, realtime=False, on_camera_state=lambda c, s, _r: states.append((c, s)))
    assert report.status == deployments.ENDED == "ended"
    assert states == [("cam-1", "up"), ("cam-1", "ended")]
    detail = deployments.deployment_detail(store, deployment_id)
    assert detail["status"] == "ended" and detail["ended_at"] is not None
    assert detail["cameras"][0]["state"] == "ended" and detail["live_state"]["label"] == "ended"
    assert deployments.list_deployments(store)[0]["live_state"]["label"] == "ended"
    (public,) = transparency.upcoming(store)
    assert public["public_status"] == "ended"
    with pytest.raises(StoreError, match="has ended; it can only be closed"):
        run_deployment(store, engine, deployment_id, realtime=False)
    assert [e["action"] for e in audit.search(store, action="deployment.")][:2] == ["deployment.end", "deployment.start"]
    deployments.close(store, deployment_id, "supervisor")  # an ended deployment is closed as usual


def test_a_stopped_deployment_is_paused_and_may_go_live_again(tmp_path: Path, engine) -> None:
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)
    video = walking_clip(tmp_path / "clip.mp4", [demo_images.grace_hopper()])
    deployment_id = ready_deployment(store, video)
    stop = threading.Event()
    stop.set()  # the operator stops it at once
    report = run_deployment(store, engine, deployment_id, realtime=False, stop=stop)
    assert report.status == "paused"
    detail = deployments.deployment_detail(store, deployment_id)
    assert detail["cameras"][0]["state"] == "stopped" and detail["ended_at"] is None
    assert detail["live_state"]["label"] == "paused" and transparency.upcoming(store)[0]["public_status"] == "paused"
    again = run_deployment(store, engine, deployment_id, realtime=False)
    assert again.status == "ended"


def test_going_live_with_a_camera_that_cannot_open_is_refused(tmp_path: Path, engine) -> None:
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)
    deployment_id = ready_deployment(store, tmp_path / "no" / "such" / "file.mp4")
    with pytest.raises(SourceError, match="camera 'cam-1' cannot be opened"):
        run_deployment(store, engine, deployment_id, realtime=False)
    detail = deployments.deployment_detail(store, deployment_id)
    assert detail["status"] == "authorised" and detail["started_at"] is None  # never shown live
    assert detail["cameras"][0]["state"] == "failed" and "file.mp4" in detail["cameras"][0]["reason"]


def test_planning_warns_of_a_camera_that_cannot_open(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    good = walking_clip(tmp_path / "clip.mp4", [demo_images.grace_hopper()])
    now = datetime.now(UTC)
    deployment_id = deployments.plan(
        store, "T", "Street", "crime-hotspot", now, now + timedelta(hours=1), 0.5,
        [deployments.CameraSpec("good", str(good)), deployments.CameraSpec("bad", str(tmp_path / "missing.mp4"))],
        "planner", check_sources=True,
    )  # fmt: skip
    cameras = {c["name"]: c for c in deployments.deployment_detail(store, deployment_id)["cameras"]}
    assert cameras["good"]["state"] is None and cameras["bad"]["state"] == "unreachable"
    assert "missing.mp4" in cameras["bad"]["reason"]
    assert "could not be opened when checked" in deployments.deployment_detail(store, deployment_id)["live_state"]["problem"]
    assert probe_source(str(good)) is None
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"this is not a video")
    assert "not a video" in probe_source(str(not_video))


def _new_alert(deployment_id: int, reference: str, at: datetime, camera: str = "cam-1") -> alerts.NewAlert:
    return alerts.NewAlert(
        deployment_id=deployment_id, camera_name=camera, track_id=1, entry_id=0, subject_reference=reference,
        subject_name="x", subject_category="serious-offence", score=0.8, threshold=0.5, frame_time=at,
        latency_ms=10.0, crop=np.zeros((8, 8, 3), np.uint8), frame=np.zeros((8, 8, 3), np.uint8),
    )  # fmt: skip


def test_repeat_alerts_of_a_subject_merge_into_the_first_within_the_window(tmp_path: Path, engine) -> None:
    store = Store(tmp_path / "home")
    hopper_subject(store, engine)
    hopper_subject(store, engine, reference="GH-2")
    video = walking_clip(tmp_path / "clip.mp4", [demo_images.grace_hopper()])
    deployment_id = ready_deployment(store, video)
    with store.session() as s:
        entry_id = deployments.get(s, deployment_id).watchlist.entries[0].id
    t0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    stored = _new_alert(deployment_id, "GH-1", t0)
    stored.entry_id = entry_id
    first = alerts.record_alert(store, stored)
    # 50 s later on another camera, then 100 s after that (the window runs from the latest sighting).
    assert alerts.merge_repeat(store, _new_alert(deployment_id, "GH-1", t0 + timedelta(seconds=50), "cam-2"), 120) == first
    assert alerts.merge_repeat(store, _new_alert(deployment_id, "GH-1", t0 + timedelta(seconds=150)), 120) == first
    assert alerts.merge_repeat(store, _new_alert(deployment_id, "GH-1", t0 + timedelta(seconds=400)), 120) is None  # later
    assert alerts.merge_repeat(store, _new_alert(deployment_id, "GH-2", t0), 120) is None  # another subject
    assert alerts.merge_repeat(store, _new_alert(deployment_id, "GH-1", t0), 0) is None  # window off
    (row,) = alerts.list_alerts(store, deployment_id)
    assert [(s["camera"], s["score"]) for s in row["sightings"]] == [("cam-2", 0.8), ("cam-1", 0.8)]
    assert len(audit.search(store, action="alert.sighting")) == 2


def test_the_server_takes_its_repeat_window_from_the_environment(tmp_path: Path, engine, monkeypatch) -> None:
    from openlfr.api.app import create_app

    store = Store(tmp_path / "home")
    assert create_app(store=store, engine=engine).state.live.repeat_window_s == alerts.REPEAT_WINDOW_S
    monkeypatch.setenv("OPENLFR_REPEAT_WINDOW_S", "30")
    assert create_app(store=store, engine=engine).state.live.repeat_window_s == 30.0
    monkeypatch.setenv("OPENLFR_REPEAT_WINDOW_S", "soon")
    with pytest.raises(ValueError, match="OPENLFR_REPEAT_WINDOW_S"):
        create_app(store=store, engine=engine)
