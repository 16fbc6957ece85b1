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


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def minute(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M")


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

    page = submit(admin, "/admin/users", {"username": "weak", "display_name": "Weak", "role": "auditor", "password": "short"})
    assert "Account not created: the password must be at least 12 characters long" in page
    assert "weak" not in [u["username"] for u in users.list_users(store)]


def test_non_image_upload_is_refused_and_nothing_is_stored(sign_in, store: Store) -> None:
    op = sign_in("opr")
    files = [("images", ("notes.txt", b"this is not a photograph", "text/plain"))]
    page = submit(op, "/ops/subjects", subject_form(), files=files)
    assert "Subject not saved: notes.txt is not an image in a format OpenLFR can read" in page
    assert subjects.list_subjects(store) == []
    with store.session() as s:
        assert s.query(ReferenceImage).count() == 0
    images_dir = store.home / "images"
    assert not images_dir.exists() or not any(images_dir.iterdir())

    # A form sent without any file, or with a missing field, is answered on the page too, not with a 422.
    page = submit(op, "/ops/subjects", subject_form())
    assert "choose at least one reference image" in page
    page = submit(op, "/ops/subjects", {**subject_form(), "review_date": "soon"},
                  files=[("images", ("gh.jpg", jpeg(grace_hopper()), "image/jpeg"))])
    assert "review date 'soon' is not a date" in page
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
    page = submit(auth2, base + "/authorise", {"note": "  "}, page=base)
    assert "authorisation needs a note" in page
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

    # Close as the operator: the watchlist goes, the record is shown here and on the records page.
    page = submit(op, base + "/close", page=base)
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
    page = submit(auth1, base + "/authorise", {"note": "my own deployment"}, page=base)
    assert "the authorising officer must not be the officer who planned the deployment" in page
    assert deployments.deployment_detail(store, int(base.rsplit("/", 1)[1]))["status"] == "planned"
    # Not authorised: going live is refused on the page and no camera thread starts.
    page = submit(auth1, base + "/start", page=base)
    assert "is planned; it must be authorised to go live" in page
    assert app.state.live.status() == []
    assert "The cameras were not running." in submit(auth1, base + "/stop", page=base)

    # Bad plans are explained on the page, not answered with a 422 or a stack trace.
    page = submit(auth1, "/ops/deployments", {**plan_form(), "end": plan_form()["start"]})
    assert "Deployment not planned: a deployment must end after it starts" in page
    page = submit(auth1, "/ops/deployments", {**plan_form(), "threshold": "high"})
    assert "the threshold 'high' is not a number" in page
    page = submit(auth1, "/ops/deployments", {"name": "Only a name"})
    assert "a deployment needs a name and a location" in page
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
