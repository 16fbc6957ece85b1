"""The public transparency site: open to anyone, announces only authorised deployments, publishes
current records with the Met's columns, and shows nothing about the people on a watchlist, the
officers or the cameras — and no image of anyone."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openlfr.api.app import create_app
from openlfr.live.runner import worker_lock
from openlfr.services import alerts, demo_images, deployments
from openlfr.services.records import COLUMNS
from openlfr.services.subjects import SubjectInfo, add_subject
from openlfr.storage import Store
from openlfr.storage.models import WatchlistEntry

# Distinctive strings that must never appear on the public site.
SUBJECT_NAME = "Zebedee Quillfeather"
SUBJECT_REF = "ZQ-48213"
SUBJECT_ADDER = "dc-marrowby-31"
PLANNER = "pc-hawthorne-77"
AUTHORISER = "supt-vexley-12"
CLOSER = "insp-orrin-58"
DECIDER = "pc-tallowick-90"
OP_NAME = "Operation Nightjar"
NOTE = "intelligence report 5521-K on the market"
CAMERA_SOURCE = "/srv/secret-feeds/north-gate-cam.mp4"
STREAM_SOURCE = "rtsp://10.9.8.7:554/stream-gamma"
PAST_DAY = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


@dataclass
class World:
    store: Store
    closed: int  # closed, with three alerts still to be decided
    upcoming: int  # authorised, starts in an hour
    live: int  # live now
    planned: int  # planned only: not announced
    cancelled: int  # planned, then closed without ever being authorised
    alerts: list[int]


def plan(store: Store, location: str, start: datetime, hours: float = 4.0) -> int:
    return deployments.plan(
        store, OP_NAME, location, "crime-hotspot", start, start + timedelta(hours=hours), 0.45,
        [deployments.CameraSpec("north-gate", CAMERA_SOURCE), deployments.CameraSpec("south-gate", STREAM_SOURCE)],
        PLANNER, latitude=51.5, longitude=-0.12,
    )


def authorised(store: Store, location: str, start: datetime, now: datetime | None = None) -> int:
    deployment_id = plan(store, location, start)
    deployments.build_watchlist(store, deployment_id, None, PLANNER, now=now)
    deployments.approve_watchlist(store, deployment_id, AUTHORISER, now=now)
    deployments.authorise(store, deployment_id, AUTHORISER, NOTE, now=now)
    return deployment_id


def fake_alert(store: Store, deployment_id: int, track: int) -> int:
    """An alert as the live pipeline stores one (real encrypted JPEGs), without running video."""
    with store.session() as s:
        entry = s.scalars(select(WatchlistEntry)).first()
        entry_id, reference, name, category = entry.id, entry.subject_reference, entry.name, entry.category
    rng = np.random.default_rng(track)
    return alerts.record_alert(store, alerts.NewAlert(
        deployment_id, "north-gate", track, entry_id, reference, name, category, 0.61, 0.45,
        PAST_DAY + timedelta(minutes=track), 120.0,
        rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8),
    ))


@pytest.fixture
def world(store: Store, engine) -> World:
    info = SubjectInfo(SUBJECT_REF, SUBJECT_NAME, "serious-offence", "wanted for robbery", "custody image 2024",
                       "custody image, lawfully held", SUBJECT_ADDER, date.today() + timedelta(days=30))
    add_subject(store, engine, info, [demo_images.grace_hopper_path()], today=date(2025, 2, 1))
    closed = authorised(store, "Zorbington Market", PAST_DAY, now=PAST_DAY - timedelta(hours=1))
    alert_ids = [fake_alert(store, closed, track) for track in (1, 2, 3)]
    deployments.close(store, closed, CLOSER, now=PAST_DAY + timedelta(hours=4))

    now = datetime.now(UTC)
    upcoming = authorised(store, "Quayside Arena", now + timedelta(hours=1))
    live = authorised(store, "Elmsworth Station", now - timedelta(minutes=5))
    deployments.start(store, live)
    planned = plan(store, "Hidden Lane", now + timedelta(hours=2))
    cancelled = plan(store, "Cancelled Court", PAST_DAY + timedelta(days=1))
    deployments.close(store, cancelled, CLOSER)
    return World(store, closed, upcoming, live, planned, cancelled, alert_ids)


@pytest.fixture
def client(world: World, engine):
    # The live deployment's cameras run in "another process": without its worker lock the server
    # would mark it interrupted at start (tests/test_smaller_leaks.py).
    with worker_lock(world.store, world.live), TestClient(create_app(store=world.store, engine=engine)) as c:
        yield c


def test_anonymous_access_and_what_is_announced(client: TestClient, world: World) -> None:
    home = client.get("/public")
    assert home.status_code == 200 and "text/html" in home.headers["content-type"]
    for place in ("Zorbington Market", "Quayside Arena", "Elmsworth Station"):
        assert place in home.text
    assert "Hidden Lane" not in home.text and "Cancelled Court" not in home.text
    assert "False alert rate (%)" in home.text and "Faces seen (estimate)" in home.text  # readable headers
    assert "/api/v1/public/records?format=csv" in home.text and "/api/v1/public/records?format=json" in home.text

    announced = client.get("/api/v1/public/deployments")
    assert announced.status_code == 200
    rows = announced.json()
    assert [r["id"] for r in rows] == [world.live, world.upcoming]  # soonest first; planned not announced
    assert {r["status"] for r in rows} == {"live", "authorised"}
    fields = {"id", "location", "latitude", "longitude", "date", "start", "end", "use_case", "status", "public_status"}
    assert set(rows[0]) == fields
    assert [r["public_status"] for r in rows] == ["live", "planned"]
    assert rows[0]["use_case"] == "Crime hotspot" and rows[0]["start"].endswith("+00:00")

    records = client.get("/api/v1/public/records")
    assert records.status_code == 200
    assert [r["deployment_id"] for r in records.json()] == [world.closed]  # the cancelled plan never ran
    for deployment_id in (world.closed, world.upcoming, world.live):
        leaflet = client.get(f"/public/deployments/{deployment_id}/leaflet")
        assert leaflet.status_code == 200
    for deployment_id in (world.planned, world.cancelled, 9999):
        assert client.get(f"/public/deployments/{deployment_id}/leaflet").status_code == 404


def test_leaflet_says_what_the_public_needs_to_know(client: TestClient, world: World, monkeypatch) -> None:
    page = client.get(f"/public/deployments/{world.upcoming}/leaflet").text
    assert 'class="leaflet"' in page and "Quayside Arena" in page and "Crime hotspot" in page
    assert "(Europe/London time)" in page and not re.search(r"\d{4}-\d\d-\d\dT", page)  # the force's clock, in words
    assert "not an offence" in page and "walk away" in page
    assert "deleted immediately and automatically" in page and "31 days" in page
    assert "data protection officer" in page and "the police force" in page
    assert 'href="/public"' in page
    monkeypatch.setenv("OPENLFR_FORCE_NAME", "Westshire Constabulary")
    monkeypatch.setenv("OPENLFR_CONTACT", "dpo@westshire.example")  # the name earlier releases read
    page = client.get(f"/public/deployments/{world.upcoming}/leaflet").text
    assert "Westshire Constabulary" in page and "dpo@westshire.example" in page
    monkeypatch.setenv("OPENLFR_FORCE_CONTACT", "lfr@westshire.example")
    assert "lfr@westshire.example" in client.get(f"/public/deployments/{world.upcoming}/leaflet").text


def test_a3_poster_for_each_announced_deployment(client: TestClient, world: World, monkeypatch) -> None:
    """The sign placed around a deployment: the leaflet's facts in large type, printed on one A3 sheet."""
    page = client.get(f"/public/deployments/{world.upcoming}/poster")
    assert page.status_code == 200 and 'class="poster"' in page.text and "poster-page" in page.text
    for needed in ("Quayside Arena", "Crime hotspot", "not an offence", "deleted immediately", "the police force",
                   f"/public/deployments/{world.upcoming}/leaflet"):
        assert needed in page.text, needed
    assert "<img" not in page.text and SUBJECT_NAME not in page.text and "north-gate" not in page.text
    assert client.get(f"/public/deployments/{world.planned}/poster").status_code == 404
    leaflet = client.get(f"/public/deployments/{world.upcoming}/leaflet").text
    assert f'href="/public/deployments/{world.upcoming}/poster"' in leaflet
    css = client.get("/static/app.css").text
    assert re.search(r"@page poster \{ size: A3 portrait;", css) and "body.poster-page, .poster { page: poster; }" in css
    monkeypatch.setenv("OPENLFR_FORCE_NAME", "Westshire Constabulary")
    monkeypatch.setenv("OPENLFR_FORCE_CONTACT", "lfr@westshire.example")
    page = client.get(f"/public/deployments/{world.upcoming}/poster").text
    assert "Westshire Constabulary" in page and "lfr@westshire.example" in page and "the police force" not in page


def test_csv_and_json_have_the_met_columns_and_filters_work(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/public/records", params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.text)))
    assert list(table[0]) == COLUMNS
    assert table[0]["location"] == "Zorbington Market" and table[0]["date"] == "2025-03-01"
    assert table[0]["total_alerts"] == "3" and table[0]["watchlist_size"] == "1"
    (record,) = client.get("/api/v1/public/records", params={"format": "json"}).json()
    assert list(record) == COLUMNS

    def ids(path: str, **params) -> list[int]:
        return [r.get("id", r.get("deployment_id")) for r in client.get(path, params=params).json()]

    assert ids("/api/v1/public/records", location="zorbINGTON") == [world.closed]
    assert ids("/api/v1/public/records", location="Quayside") == []
    assert ids("/api/v1/public/records", date_from="2025-03-01", date_to="2025-03-01") == [world.closed]
    assert ids("/api/v1/public/records", date_from="2025-03-02") == []
    assert ids("/api/v1/public/records", date_to="2025-02-28") == []
    assert ids("/api/v1/public/deployments", location="arena") == [world.upcoming]
    assert ids("/api/v1/public/deployments", date_to="2025-12-31") == []
    filtered = client.get("/api/v1/public/records", params={"format": "csv", "location": "elms"}).text
    assert filtered.strip() == ",".join(COLUMNS)

    # The page filters too, and its download links carry the same filters.
    page = client.get("/public", params={"location": "arena", "date_from": "", "date_to": ""}).text
    assert "Quayside Arena" in page and "Zorbington Market" not in page and "Elmsworth Station" not in page
    assert "/api/v1/public/records?format=csv&amp;location=arena" in page
    page = client.get("/public", params={"date_from": "2025-03-01", "date_to": "2025-03-01"}).text
    assert "Zorbington Market" in page and "Quayside Arena" not in page
    assert "format=json&amp;date_from=2025-03-01&amp;date_to=2025-03-01" in page
    assert client.get("/public", params={"date_from": "not-a-date"}).status_code == 200


def test_outcomes_recorded_after_closing_are_counted(client: TestClient, world: World) -> None:
    (before,) = client.get("/api/v1/public/records").json()
    assert before["total_alerts"] == 3 and before["alerts_not_adjudicated"] == 3 and before["arrests"] == 0
    first, second, third = world.alerts
    alerts.record_outcome(world.store, first, "arrest", DECIDER)
    alerts.record_outcome(world.store, second, "engaged-not-person", DECIDER)
    alerts.record_outcome(world.store, third, "no-action", DECIDER, adjudication="match")
    (after,) = client.get("/api/v1/public/records").json()
    assert after["alerts_not_adjudicated"] == 0
    assert after["arrests"] == 1 and after["no_action"] == 2 and after["other_outcomes"] == 0
    assert after["true_alerts_confirmed"] == 1 and after["true_alerts_unconfirmed"] == 1
    assert after["false_alerts_confirmed"] == 1 and after["false_alerts_unconfirmed"] == 0
    csv_text = client.get("/api/v1/public/records", params={"format": "csv"}).text
    (row,) = csv.DictReader(io.StringIO(csv_text))
    assert row["arrests"] == "1"


def test_public_site_reveals_no_person_officer_camera_or_image(client: TestClient, world: World) -> None:
    for alert_id in world.alerts[:2]:
        alerts.record_outcome(world.store, alert_id, "arrest", DECIDER)
    paths = ["/public", "/public?location=zorb", "/public?date_from=2025-01-01",
             "/api/v1/public/deployments", "/api/v1/public/records", "/api/v1/public/records?format=json",
             "/api/v1/public/records?format=csv"]
    paths += [f"/public/deployments/{i}/{kind}" for i in (world.closed, world.upcoming, world.live, world.planned)
              for kind in ("leaflet", "poster")]
    forbidden = [SUBJECT_NAME, "Quillfeather", SUBJECT_REF, SUBJECT_ADDER, PLANNER, AUTHORISER, CLOSER, DECIDER,
                 OP_NAME, NOTE, CAMERA_SOURCE, "secret-feeds", STREAM_SOURCE, "north-gate", "robbery",
                 "<img", "/9j/", "data:image", "base64", "JFIF"]
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        assert "set-cookie" not in response.headers, path
        body = response.text
        for secret in forbidden:
            assert secret.lower() not in body.lower(), (path, secret)
        assert not response.headers["content-type"].startswith("image/"), path
