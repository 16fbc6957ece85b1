"""The REST API end to end with bearer tokens: a deployment's life cycle, alerts and their images,
outcomes, clear errors, and the audit trail naming who did it, in what role and from where."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openlfr.api.app import create_app
from openlfr.services import alerts, audit, demo_images, users
from openlfr.storage.models import WatchlistEntry

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)

PASSWORD = "a long enough test password"


@pytest.fixture
def api(store, engine):
    for username, role in [
        ("opr", "operator"),
        ("boss", "authorising_officer"),
        ("rev", "reviewing_officer"),
        ("aud", "auditor"),
    ]:
        users.create_user(store, username, username.title(), role, PASSWORD, "test")
    client = TestClient(create_app(store=store, engine=engine, secure_cookies=False))
    tokens = {}
    for username in ("opr", "boss", "rev", "aud"):
        response = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
    return client, tokens, store


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_openapi_document_is_versioned(api) -> None:
    client, tokens, _store = api
    assert client.get("/api/v1/openapi.json").status_code == 401  # the description is for staff, not the public
    assert client.get("/api/v1/docs").status_code == 401
    assert client.get("/api/v1/docs", headers=tokens["aud"]).status_code == 200
    doc = client.get("/api/v1/openapi.json", headers=tokens["aud"]).json()
    assert doc["info"]["title"] == "OpenLFR"
    assert all(path.startswith("/api/v1/") for path in doc["paths"])
    assert "/api/v1/deployments/{deployment_id}/authorise" in doc["paths"]


def test_lifecycle_alert_images_outcome_and_audit(api) -> None:
    client, t, store = api
    review = (date.today() + timedelta(days=30)).isoformat()
    form = {"reference": "GH-9", "name": "Grace Hopper", "category": "serious-offence", "reason": "wanted for a test",
            "image_source": "matplotlib sample", "lawful_basis": "test", "review_date": review}  # fmt: skip
    files = [("images", ("hopper.jpg", _jpeg(demo_images.grace_hopper()), "image/jpeg"))]
    created = client.post("/api/v1/subjects", data=form, files=files, headers=t["opr"])
    assert created.status_code == 201, created.text
    assert created.json()["images"][0]["quality"]

    now = datetime.now(UTC)
    plan = {"name": "API test", "location": "Test Square", "use_case": "crime-hotspot",
            "start": (now - timedelta(minutes=1)).isoformat(), "end": (now + timedelta(hours=1)).isoformat(),
            "cameras": [{"name": "cam-1", "source": "/nonexistent.mp4"}]}  # fmt: skip
    planned = client.post("/api/v1/deployments", json=plan, headers=t["opr"])
    assert planned.status_code == 201, planned.text
    assert planned.json()["threshold"] == 0.45  # no threshold given: the (single-model) pack's own
    deployment_id = planned.json()["id"]
    assert client.post(f"/api/v1/deployments/{deployment_id}/watchlist", json={}, headers=t["opr"]).status_code == 200
    # The planner may not approve or authorise; the authorising officer may.
    assert client.post(f"/api/v1/deployments/{deployment_id}/authorise", json={"note": "x"}, headers=t["opr"]).status_code == 403
    assert client.post(f"/api/v1/deployments/{deployment_id}/watchlist/approve", headers=t["boss"]).status_code == 200
    authorised = client.post(f"/api/v1/deployments/{deployment_id}/authorise", json={"note": "proportionate"}, headers=t["boss"])
    assert authorised.status_code == 200 and authorised.json()["status"] == "authorised"

    with store.session() as s:
        entry = s.scalars(select(WatchlistEntry)).first()
        entry_id = entry.id
    rng = np.random.default_rng(0)
    alert_id = alerts.record_alert(store, alerts.NewAlert(
        deployment_id, "cam-1", 1, entry_id, "GH-9", "Grace Hopper", "serious-offence", 0.7, 0.45, now, 90.0,
        rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8),
    ))  # fmt: skip

    listed = client.get("/api/v1/alerts", headers=t["rev"]).json()
    assert [a["id"] for a in listed] == [alert_id]
    detail = client.get(f"/api/v1/alerts/{alert_id}", headers=t["rev"]).json()
    assert detail["reason"] == "wanted for a test" and detail["captured_at_ms"] > 0
    for kind in ("probe", "frame", "reference"):
        image = client.get(f"/api/v1/alerts/{alert_id}/images/{kind}", headers=t["rev"])
        assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
        assert "no-store" in image.headers["cache-control"]
    assert client.get(f"/api/v1/alerts/{alert_id}/images/probe", headers=t["aud"]).status_code == 403
    assert client.get(f"/api/v1/alerts/{alert_id}/images/selfie", headers=t["rev"]).status_code == 404

    decided = client.post(f"/api/v1/alerts/{alert_id}/outcome", json={"outcome": "engaged-confirmed"}, headers=t["rev"])
    assert decided.status_code == 200 and decided.json()["outcome_by"] == "rev"
    again = client.post(
        f"/api/v1/alerts/{alert_id}/outcome", json={"outcome": "no-action", "adjudication": "match"}, headers=t["rev"]
    )
    assert again.status_code == 409 and "already has outcome" in again.json()["detail"]

    closed = client.post(f"/api/v1/deployments/{deployment_id}/close", headers=t["opr"])
    assert closed.status_code == 200 and closed.json()["true_alerts_confirmed"] == 1
    record = client.get(f"/api/v1/deployments/{deployment_id}/record", headers=t["aud"]).json()
    assert record["total_alerts"] == 1

    views = audit.search(store, action="alert.view_images", record_id=str(alert_id))
    assert views and all(v["actor"] == "rev" and v["role"] == "reviewing_officer" and v["source"] for v in views)
    (authorisation,) = audit.search(store, action="deployment.authorise")
    assert authorisation["actor"] == "boss" and authorisation["role"] == "authorising_officer"
    assert client.get("/api/v1/audit/verify", headers=t["aud"]).json()["ok"] is True
    exported = client.get("/api/v1/audit/export?format=csv", headers=t["aud"])
    assert exported.status_code == 200 and "deployment.authorise" in exported.text
    assert audit.search(store, action="audit.export")[0]["actor"] == "aud"


def test_errors_are_clear_and_nothing_is_half_written(api) -> None:
    client, t, store = api
    missing = client.get("/api/v1/deployments/4242", headers=t["opr"])
    assert missing.status_code == 404 and "deployment 4242 does not exist" in missing.json()["detail"]
    now = datetime.now(UTC)
    bad = {"name": "x", "location": "y", "use_case": "fishing", "start": now.isoformat(),
           "end": (now + timedelta(hours=1)).isoformat(), "cameras": [{"name": "c", "source": "0"}]}  # fmt: skip
    refused = client.post("/api/v1/deployments", json=bad, headers=t["opr"])
    assert refused.status_code == 400 and "unknown use case 'fishing'" in refused.json()["detail"]
    form = {"reference": "X-1", "name": "Nobody", "category": "serious-offence", "reason": "r", "image_source": "s",
            "lawful_basis": "l", "review_date": (date.today() + timedelta(days=5)).isoformat()}  # fmt: skip
    not_image = client.post(
        "/api/v1/subjects", data=form, files=[("images", ("notes.txt", b"hello", "text/plain"))], headers=t["opr"]
    )
    assert not_image.status_code == 400 and "notes.txt" in not_image.json()["detail"]
    assert client.get("/api/v1/subjects", headers=t["opr"]).json() == []
    images = store.home / "images"
    assert not images.exists() or not any(images.iterdir()), "a refused upload left a file behind"


def test_logout_revokes_the_token(api) -> None:
    client, t, _store = api
    assert client.get("/api/v1/me", headers=t["opr"]).json()["username"] == "opr"
    assert client.post("/api/v1/auth/logout", headers=t["opr"]).status_code == 200
    assert client.get("/api/v1/me", headers=t["opr"]).status_code == 401


def test_nobody_can_obtain_a_token_for_another_account(api) -> None:
    """An administrator manages accounts but cannot mint a credential that acts as an officer; any
    user creates tokens for themselves only, against their own password."""
    client, t, store = api
    admin = users.create_user(store, "adm", "Adm", "administrator", PASSWORD, "test")
    t["adm"] = {"Authorization": f"Bearer {users.create_token(store, admin.id, 'test', days=1)}"}
    opr = users.get_user_by_username(store, "opr")
    before = users.list_tokens(store, opr["id"])

    # The old route that let an administrator mint a token for anyone is gone, for every role.
    for who in ("adm", "opr", "boss"):
        minted = client.post(f"/api/v1/users/{opr['id']}/tokens", json={"name": "impersonate", "days": 30},
                             headers=t[who])  # fmt: skip
        assert minted.status_code in (404, 405), (who, minted.status_code, minted.text)
    # Naming someone else in the body of one's own-token request changes nothing: the caller gets it.
    body = {"name": "ops script", "days": 30, "password": PASSWORD, "user_id": opr["id"], "username": "opr"}
    own = client.post("/api/v1/me/tokens", json=body, headers=t["adm"])
    assert own.status_code == 201, own.text
    assert users.token_user(store, own.json()["access_token"]).username == "adm"
    # The password asked for is the caller's own: an officer's password does not get the admin a token.
    wrong = client.post("/api/v1/me/tokens", json={"name": "x", "password": "not the password!"}, headers=t["adm"])
    assert wrong.status_code == 401
    assert users.list_tokens(store, opr["id"]) == before
    created = [e for e in audit.search(store, action="token.create") if e["details"]["name"] == "ops script"]
    assert [(e["actor"], e["details"]["username"]) for e in created] == [("adm", "adm")]
    # Administrators still list and revoke anyone's tokens.
    listed = client.get("/api/v1/tokens", headers=t["adm"]).json()
    opr_token = next(x for x in listed if x["username"] == "opr")
    assert client.delete(f"/api/v1/tokens/{opr_token['id']}", headers=t["adm"]).status_code == 200
    # An officer makes a longer-lived token for themselves the same way.
    mine = client.post("/api/v1/me/tokens", json={"name": "van laptop", "days": 90, "password": PASSWORD}, headers=t["boss"])
    assert mine.status_code == 201 and users.token_user(store, mine.json()["access_token"]).username == "boss"
