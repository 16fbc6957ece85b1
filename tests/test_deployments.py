"""The rules of a deployment's life: watchlist timing and freezing, authorisation, subjects' lawful details."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from lfr_helpers import hopper_subject
from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.services import demo_images, deployments
from openlfr.services.subjects import SubjectInfo, add_subject, list_subjects
from openlfr.storage import Store

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def info(**overrides) -> SubjectInfo:
    base = dict(
        reference="S-1",
        name="Grace Hopper",
        category="serious-violence",
        reason="wanted for a test",
        image_source="custody image",
        lawful_basis="PACE s.64A",
        added_by="officer-a",
        review_date=date(2027, 1, 1),
    )
    return SubjectInfo(**(base | overrides))


def planned(store: Store, start: datetime = NOW + timedelta(hours=2), hours: float = 4) -> int:
    return deployments.plan(
        store,
        "Match day",
        "Station Road",
        "protective-security",
        start,
        start + timedelta(hours=hours),
        0.5,
        [deployments.CameraSpec("north", "rtsp://camera.invalid/stream")],
        "planner",
    )


def test_subject_details_are_required(store: Store, engine) -> None:
    with pytest.raises(OpenLFRError, match="needs a lawful basis"):
        add_subject(store, engine, info(lawful_basis=" "), [demo_images.grace_hopper_path()], today=NOW.date())
    with pytest.raises(OpenLFRError, match="unknown category 'shoplifting'"):
        add_subject(store, engine, info(category="shoplifting"), [demo_images.grace_hopper_path()], today=NOW.date())
    with pytest.raises(OpenLFRError, match="review date 2026-01-01 is already past"):
        add_subject(store, engine, info(review_date=date(2026, 1, 1)), [demo_images.grace_hopper_path()], today=NOW.date())
    assert list_subjects(store) == []


def test_under_18s_only_as_missing_or_vulnerable_with_justification(store: Store, engine) -> None:
    child = dict(date_of_birth=date(2012, 5, 1))
    with pytest.raises(OpenLFRError, match="under-18s may only be included as missing or vulnerable"):
        add_subject(store, engine, info(**child), [demo_images.grace_hopper_path()], today=NOW.date())
    with pytest.raises(OpenLFRError, match="explicit justification"):
        add_subject(store, engine, info(category="missing-person", **child), [demo_images.grace_hopper_path()], today=NOW.date())
    add_subject(
        store,
        engine,
        info(category="missing-person", under_18_justification="at risk of exploitation", **child),
        [demo_images.grace_hopper_path()],
        today=NOW.date(),
    )
    (row,) = list_subjects(store)
    assert row["under_18"] is True and row["category"] == "missing-person"


def test_plan_validates(store: Store) -> None:
    cams = [deployments.CameraSpec("a", "0")]
    with pytest.raises(OpenLFRError, match="unknown use case"):
        deployments.plan(store, "x", "y", "mass-surveillance", NOW, NOW + timedelta(hours=1), 0.5, cams, "p")
    with pytest.raises(OpenLFRError, match="must end after it starts"):
        deployments.plan(store, "x", "y", "crime-hotspot", NOW, NOW, 0.5, cams, "p")
    with pytest.raises(OpenLFRError, match="at least one camera"):
        deployments.plan(store, "x", "y", "crime-hotspot", NOW, NOW + timedelta(hours=1), 0.5, [], "p")
    with pytest.raises(OpenLFRError, match="at most 24 hours"):
        deployments.plan(store, "x", "y", "crime-hotspot", NOW, NOW + timedelta(days=2), 0.5, cams, "p")


def test_watchlist_no_more_than_24_hours_before_start(store: Store, engine) -> None:
    hopper_subject(store, engine, "S-1")
    deployment_id = planned(store, start=NOW + timedelta(hours=30))
    with pytest.raises(StoreError, match="no more than 24 hours before"):
        deployments.build_watchlist(store, deployment_id, None, "planner", now=NOW)
    assert deployments.build_watchlist(store, deployment_id, None, "planner", now=NOW + timedelta(hours=7)) == 1


def test_no_deployment_goes_live_without_approval_and_authorisation(store: Store, engine) -> None:
    hopper_subject(store, engine, "S-1")
    deployment_id = planned(store)
    with pytest.raises(StoreError, match="must be authorised to go live"):
        deployments.start(store, deployment_id, now=NOW)
    with pytest.raises(StoreError, match="built and approved before the deployment is authorised"):
        deployments.authorise(store, deployment_id, "supervisor", "necessary", now=NOW)
    deployments.build_watchlist(store, deployment_id, ["S-1"], "planner", now=NOW)
    with pytest.raises(StoreError, match="built and approved"):
        deployments.authorise(store, deployment_id, "supervisor", "necessary", now=NOW)
    deployments.approve_watchlist(store, deployment_id, "supervisor", now=NOW)
    with pytest.raises(StoreError, match="frozen"):
        deployments.build_watchlist(store, deployment_id, ["S-1"], "planner", now=NOW)
    with pytest.raises(StoreError, match="must not be the officer who planned"):
        deployments.authorise(store, deployment_id, "Planner", "necessary", now=NOW)
    with pytest.raises(OpenLFRError, match="needs a note"):
        deployments.authorise(store, deployment_id, "supervisor", " ", now=NOW)
    deployments.authorise(store, deployment_id, "supervisor", "necessary and proportionate", now=NOW)
    with pytest.raises(StoreError, match="planned to start at"):
        deployments.start(store, deployment_id, now=NOW)
    deployments.start(store, deployment_id, now=NOW + timedelta(hours=2))
    assert deployments.list_deployments(store)[0]["status"] == "live"


def test_expired_subject_refused_and_unknown_ids(store: Store, engine) -> None:
    hopper_subject(store, engine, "S-1")
    deployment_id = planned(store, start=NOW + timedelta(days=60))
    with pytest.raises(StoreError, match="review date passed for S-1"):
        deployments.build_watchlist(store, deployment_id, ["S-1"], "planner", now=NOW + timedelta(days=59, hours=12))
    with pytest.raises(NotFoundError, match="no watchlist subject with reference 'S-9'"):
        deployments.build_watchlist(store, planned(store), ["S-9"], "planner", now=NOW)
    with pytest.raises(NotFoundError, match="deployment 999 does not exist"):
        deployments.approve_watchlist(store, 999, "supervisor")


def test_watchlist_is_a_frozen_copy_deleted_when_the_deployment_closes(store: Store, engine, tmp_path: Path) -> None:
    hopper_subject(store, engine, "S-1")
    deployment_id = planned(store)
    deployments.build_watchlist(store, deployment_id, None, "planner", now=NOW)
    copies = list((store.home / "watchlists").iterdir())
    assert len(copies) == 1
    deployments.close(store, deployment_id, "supervisor", now=NOW + timedelta(hours=3))
    assert list((store.home / "watchlists").iterdir()) == []
    from openlfr.services.retention import deletion_log

    (entry,) = deletion_log(store)
    assert entry["kind"] == "watchlist" and entry["files"] == 1
    # The subjects themselves stay in the subject pool for future deployments.
    assert len(list_subjects(store)) == 1
    with pytest.raises(StoreError, match="is closed"):
        deployments.start(store, deployment_id)


def test_the_list_of_deployments_takes_two_queries_however_many_there_are(store: Store) -> None:
    """On a database server every query is a round trip: the list loads all cameras in one query, not one per deployment."""
    from sqlalchemy import event

    cameras = [deployments.CameraSpec("north", "rtsp://north.invalid/s"), deployments.CameraSpec("south", "rtsp://south.invalid/s")]
    for i in range(6):
        deployments.plan(store, f"D{i}", "Street", "crime-hotspot", NOW, NOW + timedelta(hours=2), 0.45, cameras, "planner")
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        listed = deployments.list_deployments(store)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert [d["cameras"] for d in listed] == [["north", "south"]] * 6
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2, statements
