"""The audit trail: every change, removal or insertion is detected, appends are safe under concurrency,
every service records who did what, nothing biometric is written to it, and the CLI verifies, searches and exports."""

from __future__ import annotations

import base64
import csv
import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.cli.main import app
from openlfr.errors import StoreError
from openlfr.live.runner import run_deployment
from openlfr.services import alerts, audit, demo_images, deployments, retention
from openlfr.services.gallery import enrol, identify, template_context
from openlfr.storage import Store
from openlfr.storage.models import ReferenceImage

runner = CliRunner()


def cli(home: Path, *args: object):
    return runner.invoke(app, [str(a) for a in args] + ["--home", str(home)], env={"COLUMNS": "200"})


def append(store: Store, n: int) -> None:
    for i in range(n):
        audit.record(store, "test.event", "thing", i, {"i": i, "note": f"event {i}"}, actor=f"officer-{i % 3}")


def execute(store: Store, sql: str, **params: object) -> None:
    """Tamper with the database directly, as someone with write access but not the key could."""
    with store.engine.begin() as connection:
        connection.execute(text(sql), params)


# --- the chain holds, and says so ---------------------------------------------------------------


def test_many_events_verify(store: Store) -> None:
    append(store, 60)
    result = audit.verify(store)
    assert result.ok and result.checked == 60 and result.first_broken_seq is None
    assert audit.count(store) == 60
    assert [e["seq"] for e in audit.search(store, limit=5)] == [60, 59, 58, 57, 56]


def test_empty_trail_is_intact(store: Store) -> None:
    assert audit.verify(store).ok and audit.verify(store).checked == 0


def test_cli_verify_intact(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    append(store, 12)
    store.close()
    r = cli(home, "audit", "verify")
    assert r.exit_code == 0, r.output
    assert "audit trail intact: 12 events" in r.stdout
    r = cli(home, "audit", "verify", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"ok": True, "checked": 12, "first_broken_seq": None, "problem": None}


# --- tampering is detected, at the right event ---------------------------------------------------


def test_modified_actor_is_detected(store: Store) -> None:
    append(store, 6)
    execute(store, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3")
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "event 3" in result.problem
    assert result.checked == 2


def test_modified_details_are_detected(store: Store) -> None:
    append(store, 6)
    execute(store, "UPDATE audit_events SET details = :d WHERE seq = 3", d=json.dumps({"i": 99, "note": "event 2"}))
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "modified" in result.problem


def test_deleted_row_is_detected(store: Store) -> None:
    append(store, 6)
    execute(store, "DELETE FROM audit_events WHERE seq = 3")
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "missing" in result.problem


def test_deleted_row_with_renumbering_is_detected(store: Store) -> None:
    """Closing the gap after a deletion does not help: the next row no longer follows its predecessor."""
    append(store, 6)
    execute(store, "DELETE FROM audit_events WHERE seq = 3")
    execute(store, "UPDATE audit_events SET seq = -(seq - 1) WHERE seq > 3")
    execute(store, "UPDATE audit_events SET seq = -seq WHERE seq < 0")
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3


def test_inserted_row_is_detected(store: Store) -> None:
    append(store, 6)
    with store.engine.connect() as connection:
        second = connection.execute(text("SELECT at, hash FROM audit_events WHERE seq = 2")).one()
    # Make room at seq 3 (in two steps: seq is unique), then forge an event that claims to follow event 2.
    execute(store, "UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= 3")
    execute(store, "UPDATE audit_events SET seq = -seq WHERE seq < 0")
    execute(
        store,
        "INSERT INTO audit_events (seq, at, actor, role, action, record_type, record_id, source, details, prev_hash, hash) "
        "VALUES (3, :at, 'pc-forger', NULL, 'alert.outcome', 'alert', '1', NULL, :details, :prev, :hash)",
        at=second.at,
        details=json.dumps({"outcome": "no-action"}),
        prev=second.hash,
        hash="ab" * 32,
    )
    assert audit.count(store) == 7
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "event 3" in result.problem


def test_rows_cut_off_the_end_are_detected_by_the_anchor(store: Store) -> None:
    append(store, 6)
    execute(store, "DELETE FROM audit_events WHERE seq > 4")
    result = audit.verify(store)
    assert not result.ok and result.checked == 4
    assert result.first_broken_seq == 5 and "cut short" in result.problem


def test_altered_or_missing_anchor_is_detected(store: Store) -> None:
    append(store, 3)
    anchor = store.home / audit.ANCHOR_FILE
    _seq, head, mac = anchor.read_text().split()
    anchor.write_text(f"2 {head} {mac}\n")
    assert not audit.verify(store).ok and "altered" in audit.verify(store).problem
    anchor.unlink()
    assert not audit.verify(store).ok and "missing" in audit.verify(store).problem


def test_cli_verify_names_the_broken_event(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    append(store, 5)
    execute(store, "UPDATE audit_events SET record_id = '999' WHERE seq = 3")
    store.close()
    r = cli(home, "audit", "verify")
    assert r.exit_code == 1
    assert "BROKEN" in r.output and "seq 3" in r.output and "event 3" in r.output
    r = cli(home, "audit", "verify", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["first_broken_seq"] == 3


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_appends_keep_one_contiguous_chain(store: Store) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                audit.record(store, "test.concurrent", "thing", f"{n}-{i}", {"writer": n, "i": i}, actor=f"writer-{n}")
        except BaseException as exc:  # surfaced below, not swallowed by the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = audit.search(store, limit=1000)
    assert sorted(e["seq"] for e in events) == list(range(1, 101))
    assert {e["actor"] for e in events} == {f"writer-{n}" for n in range(4)}
    assert audit.verify(store).ok and audit.verify(store).checked == 100


def test_concurrent_appends_from_separate_stores(tmp_path: Path) -> None:
    """Two open stores on one data directory (as two interfaces would be) still make one chain."""
    first, second = Store(tmp_path / "home"), Store(tmp_path / "home")
    threads = [threading.Thread(target=append, args=(s, 20)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = audit.verify(first)
    assert result.ok and result.checked == 40
    first.close()
    second.close()


# --- every service records who did what -------------------------------------------------------------


def plain(value: object, depth: int = 0) -> bool:
    """Small JSON made of scalars: no room for an image, a template or any other blob."""
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= 300
    if isinstance(value, list) and depth < 2:
        return len(value) <= 20 and all(plain(v, depth + 1) for v in value)
    if isinstance(value, dict) and depth < 2:
        return len(value) <= 20 and all(isinstance(k, str) and plain(v, depth + 1) for k, v in value.items())
    return False


def one(store: Store, action: str) -> dict:
    """The single event with exactly this action (search matches prefixes)."""
    matches = [e for e in audit.search(store, action=action, limit=1000) if e["action"] == action]
    assert len(matches) == 1, (action, matches)
    return matches[0]


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory, engine) -> dict:
    """A whole deployment from subject to retention, with the alert's images viewed along the way."""
    root = tmp_path_factory.mktemp("audited")
    store = Store(root / "home")
    hopper_subject(store, engine)
    video = walking_clip(root / "clip.mp4", [demo_images.grace_hopper()], seconds=2.0)
    deployment_id = ready_deployment(store, video)
    run_deployment(store, engine, deployment_id, realtime=False, retention_every_s=None)
    (alert,) = alerts.list_alerts(store, deployment_id)
    with audit.acting_as("pc-viewer", role="officer", source="test-console"):
        images = alerts.alert_images(store, alert["id"])
        alerts.comparison_image(store, alert["id"])
    alerts.record_outcome(store, alert["id"], "arrest", "pc-d")
    alerts.set_legal_hold(store, alert["id"], "sgt-b", "case 7")
    alerts.lift_legal_hold(store, alert["id"], "sgt-b", "case concluded")
    deployments.close(store, deployment_id, "supt-c")
    later = datetime.now(UTC) + timedelta(days=32)
    report = retention.run(store, now=later)
    after_first_run = audit.count(store)
    again = retention.run(store, now=later)
    with store.session() as s:
        image = s.scalars(select(ReferenceImage)).first()
        template = store.cipher.decrypt(image.template, template_context(image.pack_id))
    yield {
        "store": store,
        "deployment": deployment_id,
        "alert": alert["id"],
        "images": images,
        "report": report,
        "again": again,
        "count_after_first_run": after_first_run,
        "template": template,
    }
    store.close()


def test_lifecycle_is_audited_with_actors_and_records(lifecycle: dict) -> None:
    store, deployment, alert = lifecycle["store"], str(lifecycle["deployment"]), str(lifecycle["alert"])
    added = one(store, "subject.add")
    assert added["actor"] == "officer-a" and added["record_type"] == "subject" and added["record_id"] == "GH-1"
    enrolled = one(store, "gallery.enrol")
    assert enrolled["actor"] == "officer-a" and enrolled["record_id"] == "GH-1"
    assert enrolled["details"]["gallery"] == "watchlist-subjects" and enrolled["details"]["images_added"] == 1
    expected = {
        "deployment.plan": ("planner", "deployment"),
        "watchlist.build": ("planner", "watchlist"),
        "watchlist.approve": ("supervisor", "watchlist"),
        "deployment.authorise": ("supervisor", "deployment"),
        "deployment.start": ("system", "deployment"),
        "watchlist.delete": ("supt-c", "watchlist"),
        "deployment.close": ("supt-c", "deployment"),
    }
    for action, (actor, record_type) in expected.items():
        event = one(store, action)
        assert (event["actor"], event["record_type"], event["record_id"]) == (actor, record_type, deployment), action
    assert one(store, "watchlist.build")["details"]["subjects"] == 1
    assert one(store, "deployment.authorise")["details"]["note"] == "necessary and proportionate for the test"
    assert "closed by supt-c" in one(store, "watchlist.delete")["details"]["reason"]

    created = one(store, "alert.create")
    assert created["actor"] == "system" and created["record_id"] == alert
    assert created["details"]["subject"] == "GH-1" and created["details"]["deployment"] == int(deployment)
    assert created["details"]["camera"] == "cam-1" and created["details"]["score"] >= 0.45
    views = audit.search(store, action="alert.view_images", record_id=alert)
    assert len(views) == 2
    assert {(v["actor"], v["role"], v["source"]) for v in views} == {("pc-viewer", "officer", "test-console")}
    assert sorted(v["details"]["view"] for v in views) == ["comparison", "images"]
    outcome = one(store, "alert.outcome")
    assert outcome["actor"] == "pc-d" and outcome["record_id"] == alert
    assert outcome["details"] == {"outcome": "arrest", "adjudication": "match"}
    assert one(store, "alert.hold")["actor"] == "sgt-b" and one(store, "alert.hold")["details"]["reason"] == "case 7"
    assert one(store, "alert.release")["actor"] == "sgt-b"

    deleted = one(store, "retention.delete")
    assert deleted["actor"] == "system" and deleted["record_type"] == "alert" and deleted["record_id"] == alert
    assert deleted["details"]["kind"] == "alert-images" and deleted["details"]["files"] == 3
    summary = one(store, "retention.run")
    assert summary["actor"] == "system" and summary["details"]["alert_images_deleted"] == 1

    # Order follows the life cycle.
    order = [e["action"] for e in reversed(audit.search(store, limit=1000))]
    for before, after in [
        ("subject.add", "deployment.plan"),
        ("deployment.authorise", "deployment.start"),
        ("deployment.start", "alert.create"),
        ("alert.outcome", "deployment.close"),
        ("deployment.close", "retention.delete"),
    ]:
        assert order.index(before) < order.index(after)
    assert audit.verify(store).ok


def test_alert_images_returns_the_jpegs_until_retention_deletes_them(lifecycle: dict) -> None:
    images = lifecycle["images"]
    assert set(images) == {"probe", "frame", "reference"}
    assert all(data[:3] == b"\xff\xd8\xff" for data in images.values())  # decrypted JPEGs
    assert lifecycle["report"].alert_images_deleted == [lifecycle["alert"]]
    views_before = len(audit.search(lifecycle["store"], action="alert.view_images"))
    with pytest.raises(StoreError, match="deleted under the retention rules"):
        alerts.alert_images(lifecycle["store"], lifecycle["alert"])
    assert len(audit.search(lifecycle["store"], action="alert.view_images")) == views_before  # nothing was shown


def test_a_retention_run_that_deletes_nothing_records_nothing(lifecycle: dict) -> None:
    again = lifecycle["again"]
    assert again.alert_images_deleted == again.footage_deleted == again.watchlists_deleted == []
    assert len(audit.search(lifecycle["store"], action="retention.run")) == 1
    assert audit.count(lifecycle["store"]) >= lifecycle["count_after_first_run"]
    assert not any(
        e["seq"] > lifecycle["count_after_first_run"] and e["action"].startswith("retention.")
        for e in audit.search(lifecycle["store"], limit=1000)
    )


def test_no_biometric_data_in_the_trail(lifecycle: dict) -> None:
    store = lifecycle["store"]
    events = audit.search(store, limit=1000)
    assert events and all(plain(e["details"]) for e in events)
    dump = json.dumps(events).encode()
    template = lifecycle["template"]
    assert len(template) >= 64
    forms = [template, template.hex().encode(), base64.b64encode(template)]
    for form in forms:
        for start in range(0, len(form) - 16, 16):
            assert form[start : start + 16] not in dump
    for image in lifecycle["images"].values():
        assert image[100:132] not in dump and base64.b64encode(image[99:147]) not in dump


def test_identify_is_audited_without_the_probe(store: Store, engine) -> None:
    with audit.acting_as("analyst-e", role="analyst", source="test"):
        enrol(store, engine, "P-1", "Grace Hopper", [demo_images.grace_hopper_path()])
        results = identify(store, engine, demo_images.grace_hopper())
    assert len(results) == 1 and results[0].candidates[0].reference == "P-1"
    event = one(store, "gallery.identify")
    assert event["actor"] == "analyst-e" and event["role"] == "analyst" and event["record_id"] == "default"
    assert set(event["details"]) == {"gallery", "faces", "candidates", "threshold", "top_k"}
    assert event["details"]["faces"] == 1 and event["details"]["candidates"] == 1
    enrolled = one(store, "gallery.enrol")
    assert enrolled["actor"] == "analyst-e" and enrolled["record_type"] == "person" and enrolled["record_id"] == "P-1"
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert identify(store, engine, blank) == []
    searches = audit.search(store, action="gallery.identify")
    assert len(searches) == 2 and searches[0]["details"]["faces"] == 0


# --- the CLI: search and export -----------------------------------------------------------------------


@pytest.fixture
def trail_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    store = Store(home)
    audit.record(store, "deployment.plan", "deployment", 7, {"name": "x"}, actor="pc-a")
    audit.record(store, "deployment.authorise", "deployment", 7, {"note": "y"}, actor="supt-c")
    audit.record(store, "alert.create", "alert", 1, {"deployment": 7}, actor="system")
    with audit.acting_as("pc-a", role="officer", source="127.0.0.1"):
        audit.record(store, "alert.outcome", "alert", 1, {"outcome": "arrest"})
        audit.record(store, "alert.view_images", "alert", 1, {"images": ["probe"]})
    audit.record(store, "deployment.plan", "deployment", 8, {"name": "z"}, actor="pc-b")
    store.close()
    return home


def search_json(home: Path, *args: object) -> list[dict]:
    r = cli(home, "audit", "search", "--json", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_cli_search_filters(trail_home: Path) -> None:
    assert [e["seq"] for e in search_json(trail_home)] == [6, 5, 4, 3, 2, 1]
    assert {e["seq"] for e in search_json(trail_home, "--actor", "pc-a")} == {1, 4, 5}
    assert [e["action"] for e in search_json(trail_home, "--action", "alert.")] == [
        "alert.view_images",
        "alert.outcome",
        "alert.create",
    ]
    assert [e["seq"] for e in search_json(trail_home, "--record-type", "deployment", "--record-id", "7")] == [2, 1]
    assert [e["seq"] for e in search_json(trail_home, "--limit", "2")] == [6, 5]
    today = datetime.now(UTC).date()
    assert len(search_json(trail_home, "--since", today.isoformat(), "--until", today.isoformat())) == 6
    assert search_json(trail_home, "--since", (datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert search_json(trail_home, "--until", (today - timedelta(days=1)).isoformat()) == []
    # A time with an offset means that moment, whatever the zone.
    an_hour_ago_in_paris = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=1)))
    assert len(search_json(trail_home, "--since", an_hour_ago_in_paris.isoformat())) == 6
    event = search_json(trail_home, "--action", "alert.outcome")[0]
    assert (event["actor"], event["role"], event["source"]) == ("pc-a", "officer", "127.0.0.1")


def test_cli_search_table_and_bad_input(trail_home: Path) -> None:
    r = cli(trail_home, "audit", "search", "--actor", "supt-c")
    assert r.exit_code == 0, r.output
    for text_ in ("seq", "actor", "action", "record", "source", "supt-c", "deployment.authorise", "deployment 7"):
        assert text_ in r.stdout
    assert "pc-b" not in r.stdout
    r = cli(trail_home, "audit", "search", "--since", "last tuesday")
    assert r.exit_code == 2 and "--since 'last tuesday' is not a time" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli(trail_home, "audit", "search", "--since", "2026-01-02", "--until", "2026-01-01")
    assert r.exit_code == 2 and "before --since" in r.stderr


def test_cli_export_csv_is_filtered_and_itself_audited(trail_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "alerts.csv"
    r = cli(trail_home, "audit", "export", "--out", out, "--action", "alert.", "--by", "auditor-f")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert [int(row["seq"]) for row in rows] == [3, 4, 5]  # oldest first
    assert json.loads(rows[1]["details"]) == {"outcome": "arrest"} and rows[1]["role"] == "officer"
    (export,) = search_json(trail_home, "--action", "audit.export")
    assert export["seq"] == 7 and export["actor"] == "auditor-f" and export["source"] == "cli"
    assert export["details"] == {"format": "csv", "events": 3, "file": str(out), "filters": {"action": "alert."}}
    assert cli(trail_home, "audit", "verify").exit_code == 0


def test_cli_export_json_everything(trail_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "trail.json"
    r = cli(trail_home, "audit", "export", "--out", out, "--format", "json", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["events"] == 6 and summary["export_event"] == 7
    events = json.loads(out.read_text())
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6] and all(len(e["hash"]) == 64 for e in events)
    exported = search_json(trail_home, "--action", "audit.export")[0]
    assert exported["actor"] and exported["details"]["format"] == "json" and exported["details"]["filters"] == {}


def test_cli_export_bad_input(trail_home: Path, tmp_path: Path) -> None:
    r = cli(trail_home, "audit", "export", "--out", tmp_path / "x.xml", "--format", "xml")
    assert r.exit_code == 2 and "choose csv or json" in r.stderr
    r = cli(trail_home, "audit", "export", "--out", tmp_path / "missing" / "x.csv")
    assert r.exit_code == 2 and "cannot write" in r.stderr
    r = cli(trail_home, "audit", "export", "--out", tmp_path / "x.csv", "--until", "soon")
    assert r.exit_code == 2 and "--until 'soon'" in r.stderr
    assert search_json(trail_home, "--action", "audit.export") == []  # nothing exported, nothing recorded
