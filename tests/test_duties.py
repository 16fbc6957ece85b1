"""Separation of duties (issue 12, finding 2): every pair of steps in the table is refused to one
officer and allowed to two, in the table itself, in the services, and end to end through the API:
one authorising officer can no longer plan, build, approve and authorise a deployment alone."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import cv2
import pytest
from fastapi.testclient import TestClient

from lfr_helpers import hopper_subject
from openlfr.api.app import create_app
from openlfr.errors import StoreError
from openlfr.services import audit, demo_images, deployments, rfr, users
from openlfr.services.duties import RULES, Step, check, same_officer
from openlfr.storage import Store
from rfr_helpers import seed_custody

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DEPLOYMENT_STEPS = [Step.PLAN, Step.BUILD, Step.APPROVE, Step.AUTHORISE]  # in the order they happen
RFR_STEPS = [Step.DECIDE, Step.CONFIRM]
#: Every (later step, earlier step) pair within one process: each is either a rule or allowed.
PAIRS = [(later, earlier) for steps in (DEPLOYMENT_STEPS, RFR_STEPS) for earlier, later in itertools.combinations(steps, 2)]
FORBIDDEN = [(step, before) for step, rules in RULES.items() for before in rules]


def test_the_table_names_only_earlier_steps_of_the_same_process() -> None:
    """A rule against a later step, or across processes, could never fire: the table would lie."""
    assert FORBIDDEN and set(FORBIDDEN) <= set(PAIRS)
    assert set(FORBIDDEN) == {
        (Step.APPROVE, Step.BUILD),
        (Step.AUTHORISE, Step.PLAN),
        (Step.AUTHORISE, Step.BUILD),
        (Step.CONFIRM, Step.DECIDE),
    }


@pytest.mark.parametrize(("step", "before"), PAIRS, ids=lambda s: s.name)
def test_every_pair_in_the_table_is_exact(step: Step, before: Step) -> None:
    """One officer on both steps is refused exactly when the table says so, trimmed and in any case;
    two officers are always allowed."""
    check(step, "officer-b", {before: "officer-a"})
    check(step, "officer-a", {before: None})  # the earlier step not taken (or not known): nobody to clash with
    if (step, before) in FORBIDDEN:
        for same in ("officer-a", " Officer-A ", "OFFICER-A"):
            with pytest.raises(StoreError, match=RULES[step][before]):
                check(step, same, {before: "officer-a"})
    else:
        check(step, " Officer-A", {before: "officer-a"})


def test_same_officer_compares_trimmed_and_case_insensitively() -> None:
    assert same_officer("Sgt Smith ", "sgt smith") and not same_officer("sgt smith", "sgt smyth")
    assert not same_officer(None, "x") and not same_officer("x", None) and not same_officer(None, None)


def _walk(store: Store, officers: dict[Step, str]) -> int:
    """Plan, build, approve and authorise one deployment, each step by the officer named for it."""
    deployment_id = deployments.plan(
        store, "Match day", "Station Road", "protective-security", NOW + timedelta(hours=2), NOW + timedelta(hours=6), 0.5,
        [deployments.CameraSpec("north", "rtsp://camera.invalid/stream")], officers[Step.PLAN],
    )  # fmt: skip
    deployments.build_watchlist(store, deployment_id, None, officers[Step.BUILD], now=NOW)
    deployments.approve_watchlist(store, deployment_id, officers[Step.APPROVE], now=NOW)
    deployments.authorise(store, deployment_id, officers[Step.AUTHORISE], "necessary and proportionate", now=NOW)
    return deployment_id


@pytest.mark.parametrize(
    ("step", "before"), [p for p in PAIRS if p[0] in DEPLOYMENT_STEPS], ids=lambda s: s.name
)  # fmt: skip
def test_every_deployment_pair_in_the_services(store: Store, engine, step: Step, before: Step) -> None:
    """The services read who took each earlier step from the stored deployment and watchlist."""
    hopper_subject(store, engine)
    officers = {s: f"officer-{i}" for i, s in enumerate(DEPLOYMENT_STEPS)}
    officers[step] = f"  {officers[before].upper()}"  # the same officer, typed differently
    if (step, before) in FORBIDDEN:
        with pytest.raises(StoreError, match=RULES[step][before]):
            _walk(store, officers)
        assert deployments.list_deployments(store)[0]["status"] == "planned"
    else:
        deployment_id = _walk(store, officers)
        assert deployments.deployment_detail(store, deployment_id)["status"] == "authorised"


def test_every_rfr_pair_in_the_services(store: Store, engine) -> None:
    """The confirming examiner is not the first examiner, however the name is typed."""
    seed_custody(store, engine, fillers=5)
    probe = cv2.imencode(".jpg", demo_images.grace_hopper())[1].tobytes()
    search = rfr.start_search(store, engine, probe, "s.jpg", "CASE-D", "a test of duties", "exa")
    top = search["candidates"][0]["id"]
    rfr.decide(store, top, "possible-match", "exa", note="same ear shape")
    for same in ("exa", " EXA "):
        with pytest.raises(StoreError, match=RULES[Step.CONFIRM][Step.DECIDE]):
            rfr.confirm(store, top, True, same)
    assert rfr.confirm(store, top, True, "exb")["confirmed_by"] == "exb"


def test_one_authorising_officer_cannot_take_a_deployment_through_alone(store: Store, engine) -> None:
    """End to end through the API: an authorising officer may plan and build (both are planners' steps),
    but cannot then approve or authorise their own work; a second officer can, and the audit trail
    names each."""
    hopper_subject(store, engine)
    tokens = {}
    for name in ("boss", "boss2"):
        account = users.create_user(store, name, name.title(), "authorising_officer", "a long enough test password", "test")
        tokens[name] = {"Authorization": f"Bearer {users.create_token(store, account.id, 'test', days=1)}"}
    client = TestClient(create_app(store=store, engine=engine, secure_cookies=False))
    now = datetime.now(UTC)
    plan = {"name": "Alone", "location": "Test Square", "use_case": "crime-hotspot", "threshold": 0.5,
            "start": (now + timedelta(minutes=30)).isoformat(), "end": (now + timedelta(hours=2)).isoformat(),
            "cameras": [{"name": "cam-1", "source": "/nonexistent.mp4"}]}  # fmt: skip
    planned = client.post("/api/v1/deployments", json=plan, headers=tokens["boss"])
    assert planned.status_code == 201, planned.text
    base = f"/api/v1/deployments/{planned.json()['id']}"
    assert client.post(f"{base}/watchlist", json={}, headers=tokens["boss"]).status_code == 200

    approve = client.post(f"{base}/watchlist/approve", headers=tokens["boss"])
    assert approve.status_code == 409 and RULES[Step.APPROVE][Step.BUILD] in approve.text
    alone = client.post(f"{base}/authorise", json={"note": "proportionate"}, headers=tokens["boss"])
    assert alone.status_code == 409 and "built and approved" in alone.text
    assert client.post(f"{base}/start", headers=tokens["boss"]).status_code == 409

    # A second officer approves; the first still may not authorise what they planned and built.
    assert client.post(f"{base}/watchlist/approve", headers=tokens["boss2"]).status_code == 200
    alone = client.post(f"{base}/authorise", json={"note": "proportionate"}, headers=tokens["boss"])
    assert alone.status_code == 409 and RULES[Step.AUTHORISE][Step.PLAN] in alone.text
    assert client.get(base, headers=tokens["boss"]).json()["status"] == "planned"

    authorised = client.post(f"{base}/authorise", json={"note": "proportionate"}, headers=tokens["boss2"])
    assert authorised.status_code == 200 and authorised.json()["status"] == "authorised"
    actors = {e["action"]: e["actor"] for e in audit.search(store) if e["action"].startswith(("deployment.", "watchlist."))}
    assert actors == {"deployment.plan": "boss", "watchlist.build": "boss", "watchlist.approve": "boss2",
                      "deployment.authorise": "boss2"}  # fmt: skip
