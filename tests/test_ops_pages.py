"""The operations, audit and users pages, driven through their HTML forms as a browser would.

Real app, real SQLite store, real face engine; nothing mocked. Users sign in through the login
form, every POST carries the CSRF token scraped from the page, and what a page says afterwards is
read from its HTML. No camera goes live here (the browser end-to-end test does that).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from lfr_helpers import hopper_subject
from openlfr import config
from openlfr.api.app import create_app
from openlfr.services import alerts as alert_service
from openlfr.services import audit, deployments, subjects, users
from openlfr.services.demo_images import grace_hopper
from openlfr.storage import Store
from openlfr.storage.models import Alert, AuditEvent, ReferenceImage, WatchlistEntry

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROLES = {
    "admin": "administrator",
    "opr": "operator",
    "auth1": "authorising_officer",
    "auth2": "authorising_officer",
    "reviewer": "reviewing_officer",
    "auditor": "auditor",
}


@pytest.fixture
def app(store: Store, engine):
    for username, role in ROLES.items():
        users.create_user(store, username, username.title(), role, PASSWORD, created_by="setup")
    return create_app(store=store, engine=engine, secure_cookies=False)


@pytest.fixture
def sign_in(app):
    """Open a browser (its own cookie jar) for one user, signed in through the login form."""
    opened: list[TestClient] = []

    def open_as(username: str) -> TestClient:
        client = TestClient(app)
        client.__enter__()
        opened.append(client)
        response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
        assert response.status_code == 303, response.text
        return client

    yield open_as
    for client in opened:
        client.__exit__(None, None, None)


def text(response) -> str:
    return html.unescape(response.text)


def csrf(client: TestClient, page: str = "/") -> str:
    response = client.get(page)
    assert response.status_code == 200, response.text
    return CSRF.search(response.text).group(1)


def submit(client: TestClient, url: str, data: dict | None = None, files=None, page: str | None = None) -> str:
    """POST a form (with the page's CSRF token) and follow its 303 back; returns the page it lands on."""
    token = csrf(client, page or url)
    response = client.post(url, data={**(data or {}), "csrf_token": token}, files=files, follow_redirects=False)
    assert response.status_code == 303, (response.status_code, response.text)
    landed = client.get(response.headers["location"])
    assert landed.status_code == 200, (landed.status_code, landed.text)
    return text(landed)


def refuse(client: TestClient, url: str, data: dict | None = None, files=None, page: str | None = None) -> str:
    """POST a form that the page must refuse: 400 and the same page again, with what was typed."""
    token = csrf(client, page or url)
    response = client.post(url, data={**(data or {}), "csrf_token": token}, files=files, follow_redirects=False)
    assert response.status_code == 400, (response.status_code, response.text)
    return text(response)


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def minute(value: datetime) -> str:
    """A ``datetime-local`` value as an officer types it: in the force's time zone."""
    return value.astimezone(config.time_zone()).strftime("%Y-%m-%dT%H:%M")


def plan_form(name: str = "High Street") -> dict:
    now = datetime.now(UTC)
    return {
        "name": name, "location": "High Street, Croydon", "latitude": "51.372", "longitude": "-0.1",
        "use_case": "crime-hotspot", "start": minute(now - timedelta(minutes=1)), "end": minute(now + timedelta(hours=2)),
        "threshold": "0.45", "camera_name": "cam-1", "camera_source": "street.mp4",
    }


def subject_form(reference: str = "GH-1") -> dict:
    return {
        "reference": reference, "name": "Grace Hopper", "category": "serious-offence",
        "reason": "wanted for a test offence", "image_source": "matplotlib sample image",
        "lawful_basis": "test fixture", "review_date": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
        "date_of_birth": "", "under_18_justification": "",
    }


def test_each_page_renders_for_an_allowed_role(app, sign_in) -> None:
    expectations = {
        "opr": {"/ops/subjects": "Add a subject", "/ops/deployments": "Plan a deployment", "/ops/records": "Deployment records"},
        "auth1": {"/ops/retention": "Retention and legal holds", "/ops/deployments": "Plan a deployment"},
        "reviewer": {"/ops/deployments": "Deployments", "/ops/records": "CSV"},
        "auditor": {"/audit": "Chain intact", "/ops/retention": "Deletion log", "/ops/records": "JSON"},
        "admin": {"/admin/users": "Create an account", "/ops/retention": "Run retention now", "/ops/deployments": "Deployments"},
    }
    for username, pages in expectations.items():
        client = sign_in(username)
        for path, expected in pages.items():
            response = client.get(path)
            assert response.status_code == 200, (username, path, response.text)
            assert expected in response.text, (username, path)
            assert 'name="csrf_token"' in response.text
    # Forms appear only for roles the policy lets post them.
    assert "Plan a deployment" not in sign_in("reviewer").get("/ops/deployments").text
    auditor_view = sign_in("auditor").get("/ops/retention").text
    assert "Run retention now" not in auditor_view and "/ops/retention/run" not in auditor_view
    # Not signed in: pages send the browser to the login form.
    with TestClient(app) as anonymous:
        response = anonymous.get("/ops/deployments", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_post_without_csrf_token_is_refused(sign_in, store: Store) -> None:
    op = sign_in("opr")
    assert op.post("/ops/deployments", data=plan_form()).status_code == 403
    assert op.post("/ops/deployments", data={**plan_form(), "csrf_token": "forged"}).status_code == 403
    admin = sign_in("admin")
    form = {"username": "mallory", "display_name": "M", "role": "administrator", "password": PASSWORD}
    assert admin.post("/admin/users", data=form).status_code == 403
    assert deployments.list_deployments(store) == []
    assert "mallory" not in [u["username"] for u in users.list_users(store)]


def test_operator_cannot_open_admin_pages_but_admin_creates_accounts(sign_in, store: Store) -> None:
    op = sign_in("opr")
    assert op.get("/admin/users").status_code == 403
    assert op.get("/audit").status_code == 403
    assert op.post("/admin/users", data={"csrf_token": csrf(op, "/ops/deployments"), "username": "x"}).status_code == 403
    admin = sign_in("admin")
    assert admin.get("/ops/subjects").status_code == 403  # administrators see no watchlist data

    page = submit(admin, "/admin/users", {"username": "new.officer", "display_name": "New Officer",
                                          "role": "reviewing_officer", "password": PASSWORD})
    assert "Account new.officer created (Reviewing officer)." in page
    assert "New Officer" in page
    created = [e for e in audit.search(store, action="user.create") if e["details"]["username"] == "new.officer"]
    assert created[0]["actor"] == "admin"

    page = refuse(admin, "/admin/users", {"username": "weak", "display_name": "Weak Person", "role": "auditor",
                                          "password": "short"})
    assert "Account not created: see the field marked below." in page
    assert '<p class="field-error" id="password-error">the password must be at least 12 characters long</p>' in page
    # What was typed comes back (the password never does), so the administrator corrects one field.
    assert 'id="username" name="username"' in page and 'value="weak"' in page and 'value="Weak Person"' in page
    assert '<option value="auditor" selected>' in page and "short" not in page
    assert "weak" not in [u["username"] for u in users.list_users(store)]


def test_non_image_upload_is_refused_and_nothing_is_stored(sign_in, store: Store) -> None:
    op = sign_in("opr")
    files = [("images", ("notes.txt", b"this is not a photograph", "text/plain"))]
    page = refuse(op, "/ops/subjects", subject_form(), files=files)
    assert "Subject not saved: see the field marked below." in page
    assert re.search(r'<p class="field-error" id="images-error">notes.txt is not an image in a format OpenLFR can read', page)
    # Everything typed is still there; only the file must be chosen again.
    assert 'value="GH-1"' in page and 'value="Grace Hopper"' in page and ">wanted for a test offence</textarea>" in page
    assert '<option value="serious-offence" selected>' in page and "Choose the image(s) again" in page
    assert subjects.list_subjects(store) == []
    with store.session() as s:
        assert s.query(ReferenceImage).count() == 0
    images_dir = store.home / "images"
    assert not images_dir.exists() or not any(images_dir.iterdir())

    # A form sent without any file, or with a missing field, is answered on the page too, not with a 422.
    page = refuse(op, "/ops/subjects", subject_form())
    assert 'id="images-error">choose at least one reference image' in page
    page = refuse(op, "/ops/subjects", {**subject_form(), "review_date": "soon"},
                  files=[("images", ("gh.jpg", jpeg(grace_hopper()), "image/jpeg"))])
    assert 'id="review_date-error">the review date \'soon\' is not a date' in page
    assert 'aria-invalid="true" aria-describedby="review_date-error"' in page
    assert subjects.list_subjects(store) == []


def test_full_lifecycle_through_the_forms(sign_in, store: Store) -> None:
    op, auth1, auth2 = sign_in("opr"), sign_in("auth1"), sign_in("auth2")

    # Plan as the operator: straight to the new deployment's page.
    token = csrf(op, "/ops/deployments")
    response = op.post("/ops/deployments", data={**plan_form(), "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    match = re.match(r"/ops/deployments/(\d+)\?flash=", location)
    assert match, location
    deployment_id = int(match.group(1))
    page = text(op.get(location))
    assert f"Deployment {deployment_id} planned" in page and 'class="status planned"' in page
    assert "Planned</strong> by opr" in page
    assert "Build the watchlist" in page and "add them first" in page  # no subjects yet

    # A subject through the upload form: the flash reports each image's quality.
    files = [("images", ("hopper.jpg", jpeg(grace_hopper()), "image/jpeg"))]
    page = submit(op, "/ops/subjects", subject_form(), files=files)
    assert "Subject GH-1 (Grace Hopper) saved with 1 new image(s)" in page
    assert re.search(r"hopper\.jpg: eyes px \d+, sharpness \d+", page), page
    assert "Wanted by police or courts: other serious offence" in page
    assert [s["reference"] for s in subjects.list_subjects(store)] == ["GH-1"]

    # Build the watchlist (the ticked subject), approve as an authorising officer.
    base = f"/ops/deployments/{deployment_id}"
    page = text(op.get(base))
    assert 'name="subject" value="GH-1"' in page
    assert "Approve watchlist" not in page and "Authorise deployment" not in page  # the operator's view
    page = submit(op, base + "/watchlist", {"subject": ["GH-1"]}, page=base)
    assert "Watchlist built with 1 subject(s)" in page and "GH-1" in page
    assert submit(op, base + "/watchlist", {}, page=base).count("tick at least one subject") == 1
    assert op.post(base + "/approve", data={"csrf_token": csrf(op, base)}).status_code == 403

    page = text(auth1.get(base))
    assert "Approve watchlist (1 subject(s))" in page
    page = submit(auth1, base + "/approve", page=base)
    assert "Watchlist approved and frozen." in page
    assert re.search(r"approved and frozen</strong>\s*by auth1 at", page)

    # Authorise: a note is required; then a different authorising officer does it.
    page = refuse(auth2, base + "/authorise", {"note": "  ", "override_reason": "kept as typed"}, page=base)
    assert 'id="note-error">' in page and "authorisation needs a note" in page and 'value="kept as typed"' in page
    page = submit(auth2, base + "/authorise", {"note": "Violent crime hotspot; proportionate"}, page=base)
    assert "Deployment authorised" in page and 'class="status authorised"' in page
    assert "by auth2" in page and "Note: Violent crime hotspot; proportionate" in page
    page = text(op.get(base))
    assert "Go live" in page and "Close deployment" in page and "data-confirm=" in page

    # An alert raised while it ran (recorded through the service, no camera started) can be held and released.
    with store.session() as s:
        entry_id = s.query(WatchlistEntry).first().id
    alert_id = alert_service.record_alert(store, alert_service.NewAlert(
        deployment_id, "cam-1", 1, entry_id, "GH-1", "Grace Hopper", "serious-offence", 0.7, 0.45,
        datetime.now(UTC), 120.0, np.full((112, 112, 3), 128, np.uint8), np.full((240, 320, 3), 90, np.uint8)))
    page = text(auth1.get("/ops/retention"))
    assert f'action="/ops/alerts/{alert_id}/hold"' in page and "Grace Hopper" not in page
    page = submit(auth1, f"/ops/alerts/{alert_id}/hold", {"reason": ""}, page="/ops/retention")
    assert "a legal hold needs a reason" in page
    page = submit(auth1, f"/ops/alerts/{alert_id}/hold", {"reason": "Case 42"}, page="/ops/retention")
    assert f"Alert {alert_id} is under legal hold" in page and f'action="/ops/alerts/{alert_id}/release"' in page
    page = submit(auth1, f"/ops/alerts/{alert_id}/release", {"reason": "Case 42 concluded"}, page="/ops/retention")
    assert f"Legal hold on alert {alert_id} lifted" in page
    assert op.post(f"/ops/alerts/{alert_id}/hold", data={"reason": "x", "csrf_token": csrf(op)}).status_code == 403

    # Close as the operator: an alert without an outcome is named first, and closing needs a tick.
    page = text(op.get(base))
    assert 'id="undecided-alerts"' in page and f'<a href="/console/alerts/{alert_id}">Alert {alert_id}</a>' in page
    assert 'name="undecided_ok" value="yes" required' in page and "1 alert(s) still have no outcome" in page
    page = submit(op, base + "/close", page=base)
    assert f"1 alert(s) have no outcome yet ({alert_id})" in page and 'class="status closed"' not in page
    # Then the watchlist goes, the record is shown here and on the records page.
    page = submit(op, base + "/close", {"undecided_ok": "yes"}, page=base)
    assert "Deployment closed" in page and 'class="status closed"' in page
    assert "Deployment record" in page and "Faces seen (estimate)" in page and "Watchlist size</dt><dd>1" in page
    assert "Go live" not in page and "Close deployment" not in page
    # The watchlist rows are gone, so its steps are told from the audit trail.
    assert re.search(r"Watchlist built</strong>\s*by opr at .*1 subject\(s\), 1 image\(s\)", page)
    assert re.search(r"approved and frozen</strong>\s*by auth1 at", page) and "Deleted at" in page
    assert "never went live" in page
    with store.session() as s:
        assert s.query(WatchlistEntry).count() == 0
    for viewer in (op, sign_in("auditor"), sign_in("reviewer")):
        records = text(viewer.get("/ops/records"))
        assert f'<a href="/ops/deployments/{deployment_id}">{deployment_id}</a>' in records
        assert "High Street, Croydon" in records and "Crime hotspot" in records
        assert 'href="/api/v1/records?format=csv"' in records
    page = submit(auth1, "/ops/retention/run", page="/ops/retention")
    assert "Retention run: images of 0 alert(s) deleted" in page
    assert submit(op, base + "/close", page="/ops/deployments").count("it must be planned or authorised or live") == 1


def test_the_planner_may_not_authorise_and_sees_why(app, sign_in, store: Store, engine) -> None:
    hopper_subject(store, engine)
    auth1 = sign_in("auth1")
    token = csrf(auth1, "/ops/deployments")
    location = auth1.post("/ops/deployments", data={**plan_form("Stadium"), "csrf_token": token},
                          follow_redirects=False).headers["location"]
    base = location.split("?")[0]
    submit(auth1, base + "/watchlist", {"subject": ["GH-1"]}, page=base)
    # Separation of duties: nor may the builder approve; a second officer does (services/duties.py).
    page = submit(auth1, base + "/approve", page=base)
    assert "the watchlist must be approved by an officer other than the one who built it" in page
    submit(sign_in("auth2"), base + "/approve", page=base)
    page = refuse(auth1, base + "/authorise", {"note": "my own deployment"}, page=base)
    assert "Not authorised: the authorising officer must not be the officer who planned the deployment" in page
    assert ">my own deployment</textarea>" in page
    assert deployments.deployment_detail(store, int(base.rsplit("/", 1)[1]))["status"] == "planned"
    # Not authorised: going live is refused on the page and no camera thread starts.
    page = submit(auth1, base + "/start", page=base)
    assert "is planned; it must be authorised to go live" in page
    assert app.state.live.status() == []
    assert "The cameras were not running." in submit(auth1, base + "/stop", page=base)

    # Bad plans are explained beside the field, with everything typed kept; not a 422 or a stack trace.
    page = refuse(auth1, "/ops/deployments", {**plan_form(), "end": plan_form()["start"]})
    assert "Deployment not planned: see the field marked below." in page
    assert 'id="end-error">a deployment must end after it starts' in page
    assert 'value="High Street, Croydon"' in page and 'value="51.372"' in page and f'value="{plan_form()["start"]}"' in page
    page = refuse(auth1, "/ops/deployments", {**plan_form(), "threshold": "high"})
    assert 'id="threshold-error">the threshold \'high\' is not a number' in page and 'value="high"' in page
    page = refuse(auth1, "/ops/deployments", {"name": "Only a name"})
    assert 'id="location-error">enter the deployment\'s location' in page and 'value="Only a name"' in page
    assert auth1.get("/ops/deployments/999").status_code == 404


def test_audit_page_verifies_the_chain_and_searches(sign_in, store: Store, engine, tmp_path: Path) -> None:
    hopper_subject(store, engine)
    now = datetime.now(UTC)
    deployment_id = deployments.plan(store, "Audit", "Somewhere", "crime-hotspot", now, now + timedelta(hours=1), 0.45,
                                     [deployments.CameraSpec("cam-1", str(tmp_path / "v.mp4"))], "opr")
    deployments.build_watchlist(store, deployment_id, None, "opr")
    deployments.approve_watchlist(store, deployment_id, "auth1")
    deployments.authorise(store, deployment_id, "auth2", "necessary and proportionate")

    auditor = sign_in("auditor")
    page = text(auditor.get("/audit"))
    checked = int(re.search(r"Chain intact: (\d+) event\(s\) checked", page).group(1))
    assert checked == audit.count(store)
    assert "deployment.authorise" in page
    assert not [e for e in audit.search(store, action="audit.search")]  # opening the page is not a search

    page = text(auditor.get("/audit", params={"action": "deployment.", "record_id": str(deployment_id), "actor": "",
                                              "record_type": "", "since": minute(now - timedelta(hours=1)), "until": ""}))
    assert "deployment.authorise" in page and "deployment.plan" in page and "watchlist.build" not in page
    assert "necessary and proportionate" in page
    assert "/api/v1/audit/export?format=csv&action=deployment." in page
    assert re.search(r"/api/v1/audit/export\?format=json&action=deployment\.&record_id=\d+&since=", page)
    searches = audit.search(store, action="audit.search")
    assert searches[0]["actor"] == "auditor" and searches[0]["details"]["action"] == "deployment."
    assert searches[0]["details"]["results"] == 2

    page = text(auditor.get("/audit", params={"since": "last week"}))
    assert "is not a date and time" in page and "Chain intact" in page

    # Tampering is shown in a red box, not hidden.
    with store.session() as s:
        s.query(AuditEvent).filter(AuditEvent.action == "deployment.authorise").one().actor = "someone-else"
    page = text(auditor.get("/audit"))
    assert 'class="error verify"' in page and "was modified or inserted" in page


def test_retention_page_lists_holds_and_kept_images_for_the_auditor(sign_in, store: Store) -> None:
    # An auditor reads the retention page but gets no forms.
    auditor = sign_in("auditor")
    page = auditor.get("/ops/retention").text
    assert "31 days" in page and "No alert is under legal hold." in page
    assert "/hold" not in page and "/release" not in page
    with store.session() as s:
        assert s.query(Alert).count() == 0


# --- issue 13: alerts as an officer reads them, refused forms, error pages, users, closing ------------


def alert_for_console(store: Store, engine, outcome: str | None = None) -> tuple[int, int]:
    """An authorised deployment with one alert of Grace Hopper (no camera runs): (deployment, alert)."""
    hopper_subject(store, engine)
    now = datetime.now(UTC)
    deployment_id = deployments.plan(store, "Console", "Market Square", "crime-hotspot", now - timedelta(minutes=1),
                                     now + timedelta(hours=1), 0.45, [deployments.CameraSpec("cam-1", "street.mp4")], "opr")
    deployments.build_watchlist(store, deployment_id, None, "opr")
    deployments.approve_watchlist(store, deployment_id, "auth1")
    deployments.authorise(store, deployment_id, "auth2", "necessary and proportionate")
    with store.session() as s:
        entry_id = s.query(WatchlistEntry).first().id
    face = cv2.resize(grace_hopper(), (112, 112))
    alert_id = alert_service.record_alert(store, alert_service.NewAlert(
        deployment_id, "cam-1", 1, entry_id, "GH-1", "Grace Hopper", "serious-offence", 0.8123, 0.45,
        datetime(2026, 7, 1, 13, 5, 9, 123456, tzinfo=UTC), 120.0, face, np.full((240, 320, 3), 90, np.uint8)))
    if outcome:
        alert_service.record_outcome(store, alert_id, outcome, "reviewer")
    return deployment_id, alert_id


def test_alert_card_and_page_say_who_with_a_thumbnail_and_the_note_before_the_buttons(sign_in, store: Store, engine) -> None:
    _deployment_id, alert_id = alert_for_console(store, engine)
    reviewer = sign_in("reviewer")
    console = text(reviewer.get("/console"))
    card = console[console.index(f'id="alert-{alert_id}"'):console.index("</li>", console.index(f'id="alert-{alert_id}"'))]
    assert '<strong class="subject-name">Grace Hopper</strong> <span class="subject-ref">GH-1</span>' in card
    assert "Wanted by police or courts: other serious offence" in card
    assert f'<img class="thumb" src="/api/v1/alerts/{alert_id}/images/reference" alt="Watchlist image of Grace Hopper"' in card
    assert reviewer.get(f"/api/v1/alerts/{alert_id}/images/reference").headers["content-type"] == "image/jpeg"
    assert "Seen again" not in card  # no sightings: nothing shown

    page = text(reviewer.get(f"/console/alerts/{alert_id}"))
    assert "<h1>Alert 1: Grace Hopper" in page and '<span class="subject-ref">GH-1</span>' in page
    assert "<dt>Category</dt><dd>Wanted by police or courts: other serious offence</dd>" in page
    assert page.index('id="note"') < page.index('name="choice"'), "the note must come before the buttons that submit"
    assert page.count("(tap to zoom)") == 2 and 'tabindex="0"' in page


def test_sightings_merged_into_an_alert_are_shown_on_card_and_page(sign_in, store: Store, engine, monkeypatch) -> None:
    """Another part of the system merges repeat sightings into ``sightings``: the pages show them when present."""
    from openlfr.web import pages

    _deployment_id, alert_id = alert_for_console(store, engine)
    seen = [{"time": "2026-07-01T13:05:40+00:00", "camera": "cam-2", "score": 0.7712}]
    listed, payload = alert_service.list_alerts, pages.alert_payload
    monkeypatch.setattr(alert_service, "list_alerts", lambda *a, **k: [{**x, "sightings": seen} for x in listed(*a, **k)])
    monkeypatch.setattr(pages, "alert_payload", lambda *a: {**payload(*a), "sightings": seen})
    reviewer = sign_in("reviewer")
    for page in (text(reviewer.get("/console")), text(reviewer.get(f"/console/alerts/{alert_id}"))):
        assert "Seen again 1 time(s):" in page and "<li>1 Jul 2026 14:05:40 · camera cam-2 · score 0.771</li>" in page
    # A payload without the key renders nothing, rather than failing.
    monkeypatch.setattr(pages, "alert_payload", lambda *a: {k: v for k, v in payload(*a).items() if k != "sightings"})
    assert "Seen again" not in text(reviewer.get(f"/console/alerts/{alert_id}"))


def test_times_are_worded_in_the_force_time_zone_and_typed_in_it(sign_in, store: Store, engine, monkeypatch) -> None:
    deployment_id, alert_id = alert_for_console(store, engine)
    reviewer, auditor = sign_in("reviewer"), sign_in("auditor")
    page = text(reviewer.get(f"/console/alerts/{alert_id}"))
    assert "<dt>Time</dt><dd>1 Jul 2026 14:05:09</dd>" in page  # 13:05:09 UTC is 14:05:09 in London in July
    assert "Times are Europe/London time." in page
    monkeypatch.setenv("OPENLFR_TIME_ZONE", "America/New_York")
    page = text(reviewer.get(f"/console/alerts/{alert_id}"))
    assert "<dt>Time</dt><dd>1 Jul 2026 09:05:09</dd>" in page and "Times are America/New_York time." in page
    for path in ("/console", f"/console/alerts/{alert_id}", f"/ops/deployments/{deployment_id}", "/ops/deployments"):
        shown = text(reviewer.get(path))
        assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", shown.replace('value="', "")), path  # no ISO "T" on screen
        assert ".123456" not in shown and "+00:00" not in shown, path
    when = re.findall(r'<td data-label="When"><div class="v">([^<]*)</div></td>', text(auditor.get("/audit")))
    assert when and all(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d", w) for w in when), when

    # A time typed into a form is read in the same zone: 09:00 in New York is 13:00 UTC in July.
    op = sign_in("opr")
    form = {**plan_form("Typed"), "start": "2026-07-01T09:00", "end": "2026-07-01T12:00"}
    location = op.post("/ops/deployments", data={**form, "csrf_token": csrf(op, "/ops/deployments")},
                       follow_redirects=False).headers["location"]
    planned = deployments.deployment_detail(store, int(location.split("?")[0].rsplit("/", 1)[1]))
    assert planned["start"].startswith("2026-07-01T13:00") and planned["end"].startswith("2026-07-01T16:00")
    assert "1 Jul 2026 09:00 to 12:00" in text(op.get(location.split("?")[0]))
    monkeypatch.setenv("OPENLFR_TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="OPENLFR_TIME_ZONE"):
        config.time_zone()


def test_plan_form_opens_submittable_with_the_pack_threshold(sign_in) -> None:
    """The browser refuses a number whose value is off the field's step: 0.727 with step=0.01 could not be sent."""
    page = text(sign_in("opr").get("/ops/deployments"))
    field = re.search(r'<input id="threshold"[^>]*>', page).group(0)
    assert 'step="any"' in field and 'value="0.45"' in field  # the fixture's SFace pack; the fused pack's is 0.727
    assert re.search(r'<input id="start"[^>]*value="\d{4}-\d\d-\d\dT\d\d:\d\d"', page)


def test_recording_an_arrest_prompts_a_legal_hold_on_the_web(sign_in, store: Store, engine) -> None:
    _deployment_id, alert_id = alert_for_console(store, engine)
    reviewer = sign_in("reviewer")
    # A refused outcome comes back with the note as typed.
    page = refuse(reviewer, f"/console/alerts/{alert_id}/outcome", {"choice": "no-action", "note": "typed before tapping"},
                  page=f"/console/alerts/{alert_id}")
    assert "Not recorded: outcome no-action needs the officer's judgement" in page and 'value="typed before tapping"' in page

    page = submit(reviewer, f"/console/alerts/{alert_id}/outcome", {"choice": "arrest"}, page=f"/console/alerts/{alert_id}")
    assert f"Alert {alert_id}: Arrest recorded. An arrest followed: an authorising officer should now place a legal hold" in page
    assert 'id="arrests-unheld"' in page and f'<a href="/console/alerts/{alert_id}">alert {alert_id}</a>' in page
    assert "Ask an authorising officer to place it" in text(reviewer.get(f"/console/alerts/{alert_id}"))

    auth1 = sign_in("auth1")
    assert "arrest: a legal hold is advised" in text(auth1.get("/ops/retention"))
    page = text(auth1.get(f"/console/alerts/{alert_id}"))
    assert 'id="hold-prompt"' in page and f'action="/ops/alerts/{alert_id}/hold"' in page
    assert f'name="next" value="/console/alerts/{alert_id}"' in page
    page = submit(auth1, f"/ops/alerts/{alert_id}/hold", {"reason": "Case 7", "next": f"/console/alerts/{alert_id}"},
                  page=f"/console/alerts/{alert_id}")
    assert f"Alert {alert_id} is under legal hold" in page and "<dt>Legal hold</dt><dd>yes</dd>" in page
    assert 'id="hold-prompt"' not in page and 'id="arrests-unheld"' not in text(reviewer.get("/console"))
    # ``next`` leads only to this site's own pages.
    token = csrf(auth1, "/ops/retention")
    response = auth1.post(f"/ops/alerts/{alert_id}/hold", data={"reason": "x", "next": "//evil.example/", "csrf_token": token},
                          follow_redirects=False)
    assert response.headers["location"].startswith("/ops/retention")


def test_users_page_disables_enables_and_changes_roles_audited(sign_in, store: Store) -> None:
    admin, op = sign_in("admin"), sign_in("opr")
    ids = {u["username"]: u["id"] for u in users.list_users(store)}
    page = text(admin.get("/admin/users"))
    assert f'action="/admin/users/{ids["opr"]}/active"' in page and f'action="/admin/users/{ids["opr"]}/role"' in page

    page = submit(admin, f"/admin/users/{ids['opr']}/active", {"active": "no"}, page="/admin/users")
    assert "Account opr disabled: its sessions and API tokens were ended." in page
    assert op.get("/ops/deployments", follow_redirects=False).headers["location"].startswith("/login")  # session ended
    disabled = audit.search(store, action="user.disable")
    assert disabled[0]["actor"] == "admin" and disabled[0]["details"]["username"] == "opr"
    page = submit(admin, f"/admin/users/{ids['opr']}/active", {"active": "yes"}, page="/admin/users")
    assert "Account opr enabled." in page and audit.search(store, action="user.enable")[0]["actor"] == "admin"

    page = submit(admin, f"/admin/users/{ids['reviewer']}/role", {"role": "auditor"}, page="/admin/users")
    assert "reviewer is now Auditor." in page
    assert users.get_user(store, ids["reviewer"])["role"] == "auditor"
    changed = audit.search(store, action="user.role")[0]
    assert changed["actor"] == "admin"
    assert changed["details"] == {"username": "reviewer", "from": "reviewing_officer", "to": "auditor"}

    # The service's own rules answer on the page: the last administrator stays, unknown roles are refused.
    page = submit(admin, f"/admin/users/{ids['admin']}/active", {"active": "no"}, page="/admin/users")
    assert "Account not changed: admin is the last active administrator" in page
    page = submit(admin, f"/admin/users/{ids['opr']}/role", {"role": "superuser"}, page="/admin/users")
    assert "Role not changed: role 'superuser' does not exist" in page
    op = sign_in("opr")  # enabled again: signs in anew; an operator may not change accounts
    token = csrf(op, "/ops/deployments")
    assert op.post(f"/admin/users/{ids['auth1']}/active", data={"active": "no", "csrf_token": token}).status_code == 403


def test_browsers_get_styled_error_pages_and_programs_get_json(app, sign_in) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    op = sign_in("opr")
    page = op.get("/admin/users", headers=html)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Not allowed" in page.text and "your role (operator) may not GET /admin/users" in page.text
    assert 'href="/static/app.css"' in page.text and "Opr · Operator" in page.text  # the site's page, signed in
    assert op.get("/admin/users").json() == {"detail": "your role (operator) may not GET /admin/users"}

    missing = op.get("/no/such/page", headers=html)
    assert missing.status_code == 404 and "<h1>Not found" in missing.text and "Opr · Operator" in missing.text
    assert op.get("/no/such/page").json() == {"detail": "Not Found"}
    assert op.get("/ops/deployments/999", headers=html).status_code == 404
    bad = op.get("/console/alerts/not-a-number", headers=html)
    assert bad.status_code == 422 and "<h1>That address or form was not understood" in bad.text
    forged = op.post("/ops/deployments", data={**plan_form(), "csrf_token": "forged"}, headers=html)
    assert forged.status_code == 403 and "CSRF" in forged.text and forged.headers["content-type"].startswith("text/html")
    # The API stays JSON even for a browser, and anonymous browsers are sent to sign in.
    api = op.get("/api/v1/users", headers=html)
    assert api.status_code == 403 and api.headers["content-type"] == "application/json"
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/v1/alerts", headers=html).json()["detail"].startswith("sign in first")
        gone = anonymous.get("/nowhere", headers=html)
        assert gone.status_code == 404 and 'href="/login"' in gone.text
        assert anonymous.get("/console", headers=html, follow_redirects=False).headers["location"] == "/login?next=/console"


def test_favicon_is_served_from_the_package(app) -> None:
    with TestClient(app) as anonymous:
        icon = anonymous.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00" and len(icon.content) < 20_000


def test_rfr_search_form_keeps_what_was_typed(app, store: Store) -> None:
    users.create_user(store, "exa", "Exa", "examiner", PASSWORD, created_by="setup")
    with TestClient(app) as examiner:
        examiner.post("/login", data={"username": "exa", "password": PASSWORD})
        page = refuse(examiner, "/rfr/searches", {"case_reference": " ", "justification": "CCTV of the suspect, case 9",
                                                  "top_k": "7"}, files=[("probe", ("p.jpg", jpeg(grace_hopper()), "image/jpeg"))],
                      page="/rfr")  # fmt: skip
    assert "Search not started: see the field marked below." in page
    assert 'id="case_reference-error">a search needs the case reference' in page
    assert ">CCTV of the suspect, case 9</textarea>" in page and 'value="7"' in page and "Choose the probe again" in page


def test_deployment_page_links_leaflet_and_poster_and_warns_of_placeholders(sign_in, store: Store, engine,
                                                                            monkeypatch) -> None:  # fmt: skip
    deployment_id, _alert_id = alert_for_console(store, engine)
    for name in (config.ENV_FORCE_NAME, config.ENV_FORCE_CONTACT, config.ENV_CONTACT_LEGACY):
        monkeypatch.delenv(name, raising=False)
    op = sign_in("opr")
    page = text(op.get(f"/ops/deployments/{deployment_id}"))
    for printed in ("leaflet", "poster"):
        assert f'href="/public/deployments/{deployment_id}/{printed}"' in page
    assert 'id="force-placeholders"' in page and "OPENLFR_FORCE_NAME" in page
    monkeypatch.setenv(config.ENV_FORCE_NAME, "Westshire Police")
    monkeypatch.setenv(config.ENV_FORCE_CONTACT, "lfr@westshire.example")
    assert 'id="force-placeholders"' not in text(op.get(f"/ops/deployments/{deployment_id}"))
    # Not yet authorised, there is nothing public to print.
    planned = deployments.plan(store, "Later", "Elsewhere", "crime-hotspot", datetime.now(UTC) + timedelta(hours=1),
                               datetime.now(UTC) + timedelta(hours=2), 0.45, [deployments.CameraSpec("cam-1", "x.mp4")], "opr")
    assert "/poster" not in text(op.get(f"/ops/deployments/{planned}"))


def test_rfr_decision_refused_comes_back_with_the_note(app, store: Store, engine) -> None:
    from openlfr.services import rfr
    from rfr_helpers import seed_custody

    seed_custody(store, engine, fillers=5)
    users.create_user(store, "exa", "Exa", "examiner", PASSWORD, created_by="setup")
    search = rfr.start_search(store, engine, jpeg(grace_hopper()), "s.jpg", "CASE-9", "robbery; CCTV still of the suspect",
                              "exa", 5)  # fmt: skip
    top = search["candidates"][0]["id"]
    with TestClient(app) as examiner:
        examiner.post("/login", data={"username": "exa", "password": PASSWORD})
        page = refuse(examiner, f"/rfr/candidates/{top}/decision", {"decision": "maybe", "note": "ears differ"},
                      page=f"/rfr/candidates/{top}")  # fmt: skip
    assert "unknown decision 'maybe'" in page and 'value="ears differ"' in page
    assert rfr.candidate_detail(store, top, "exa")["decision"] is None
