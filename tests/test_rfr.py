"""Retrospective search end to end at service level: case-bound, audited, the examiner picks the face,
a possible match needs a second examiner, faces not chosen are deleted, results expire."""

from __future__ import annotations

import re
from datetime import timedelta

import cv2
import pytest

from openlfr.errors import NoFaceError, OpenLFRError, StoreError
from openlfr.services import audit, demo_images, rfr
from openlfr.simulation.clips import walking_clip
from rfr_helpers import seed_custody, two_faces

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)

JUSTIFICATION = "robbery on 3 May; CCTV still of the suspect; necessary to identify"


def jpeg(image) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_single_face_search_ranks_the_right_record_first(store, engine) -> None:
    seed_custody(store, engine)
    result = rfr.start_search(store, engine, jpeg(demo_images.grace_hopper()), "still.jpg", "CASE-1", JUSTIFICATION, "exa")
    assert result["status"] == "awaiting-review"
    assert len(result["candidates"]) == rfr.DEFAULT_TOP_K
    assert result["candidates"][0]["custody_id"] == "C-HOPPER"
    assert result["candidates"][0]["score"] > 0.9
    assert [c["rank"] for c in result["candidates"]] == list(range(1, 21))
    assert len({c["custody_id"] for c in result["candidates"]}) == 20
    events = audit.search(store, action="rfr.search")
    assert {e["action"] for e in events} == {"rfr.search", "rfr.search.start"}
    assert all(e["actor"] == "exa" for e in events)


def test_search_needs_a_case_and_a_justification(store, engine) -> None:
    seed_custody(store, engine)
    data = jpeg(demo_images.grace_hopper())
    with pytest.raises(OpenLFRError, match="case reference"):
        rfr.start_search(store, engine, data, "x.jpg", " ", JUSTIFICATION, "exa")
    with pytest.raises(OpenLFRError, match="justification"):
        rfr.start_search(store, engine, data, "x.jpg", "CASE-1", "", "exa")
    with pytest.raises(OpenLFRError, match="top-k"):
        rfr.start_search(store, engine, data, "x.jpg", "CASE-1", JUSTIFICATION, "exa", top_k=201)
    blank = jpeg(demo_images.camera_scene(seed=1) * 0 + 128)
    with pytest.raises(NoFaceError):
        rfr.start_search(store, engine, blank, "blank.jpg", "CASE-1", JUSTIFICATION, "exa")
    assert rfr.list_searches(store) == []


def test_examiner_chooses_among_faces_and_the_others_are_dropped(store, engine) -> None:
    seed_custody(store, engine)
    started = rfr.start_search(store, engine, jpeg(two_faces()), "two.jpg", "CASE-2", JUSTIFICATION, "exa", top_k=5)
    assert started["status"] == "choose-face" and len(started["face"]["options"]) == 2
    assert len(rfr.probe_images(store, started["id"])) == 2
    # The main face is named by the one rule (largest box, then detector score); options stay left to right.
    options = started["face"]["options"]
    assert [o["main"] for o in options].count(True) == 1
    assert next(o for o in options if o["main"]) == max(options, key=lambda o: o["box"][2] * o["box"][3])
    assert options[0]["box"][0] < options[1]["box"][0]
    choice = next(i for i, o in enumerate(started["face"]["options"]) if o["box"][0] > 320)  # the face on the right: Collins
    done = rfr.choose_face(store, engine, started["id"], choice, "exa")
    assert done["candidates"][0]["custody_id"] == "C-COLLINS"
    assert len(done["candidates"]) == 5
    assert len(rfr.probe_images(store, started["id"])) == 1  # only the chosen face is kept
    with pytest.raises(StoreError, match="already been run"):
        rfr.choose_face(store, engine, started["id"], 0, "exa")


def test_cctv_clip_offers_the_best_view_of_each_person(store, engine, tmp_path) -> None:
    seed_custody(store, engine)
    clip = walking_clip(tmp_path / "cctv.mp4", [demo_images.grace_hopper(), demo_images.eileen_collins()], seconds=2.0)
    started = rfr.start_search(store, engine, clip.read_bytes(), "cctv.mp4", "CASE-3", JUSTIFICATION, "exa")
    assert started["probe_kind"] == "video" and started["status"] == "choose-face"
    assert len(started["face"]["options"]) == 2
    hopper = next(i for i, o in enumerate(started["face"]["options"]) if o["box"][1] < 200)  # Hopper walks in the top band
    done = rfr.choose_face(store, engine, started["id"], hopper, "exa")
    assert done["candidates"][0]["custody_id"] == "C-HOPPER"


def test_possible_match_needs_an_independent_second_examiner(store, engine) -> None:
    seed_custody(store, engine)
    search = rfr.start_search(store, engine, jpeg(demo_images.grace_hopper()), "s.jpg", "CASE-4", JUSTIFICATION, "exa")
    top = search["candidates"][0]["id"]
    rfr.decide(store, top, "possible-match", "exa", note="same ear shape")
    assert rfr.candidate_detail(store, top, "exb")["note"] is None  # the second examiner decides blind
    with pytest.raises(StoreError, match="different examiner"):
        rfr.confirm(store, top, True, "exa")
    with pytest.raises(StoreError, match="not marked as a possible match"):
        rfr.confirm(store, search["candidates"][1]["id"], True, "exb")
    confirmed = rfr.confirm(store, top, True, "exb", note="agree")
    assert confirmed["confirmation"] == "confirmed" and confirmed["confirmed_by"] == "exb"
    with pytest.raises(StoreError, match="cannot change"):
        rfr.decide(store, top, "not-a-match", "exa")
    reviewed = rfr.complete_review(store, search["id"], "exa")
    assert reviewed["status"] == "reviewed"
    assert all(c["decision"] for c in reviewed["candidates"])
    report = rfr.case_report_html(store, search["id"], "exa")
    assert "CASE-4" in report and "not identifications" in report
    # Times read as on the pages ("30 Nov 2026 14:05:09"), never ISO with a "T" and microseconds.
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", report)
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d", report)
    assert "Confirmed as a possible match" in report and report.count("data:image/jpeg") == 2  # probe + confirmed candidate
    assert audit.search(store, action="rfr.report_export")[0]["actor"] == "exa"
    assert audit.verify(store).ok


def test_first_examiners_note_is_hidden_on_every_route_page_and_report(store, engine) -> None:
    """Independence holds everywhere: until the second examiner has recorded their view of a possible
    match, the first one's note reaches them through no route, page or report."""
    from fastapi.testclient import TestClient

    from openlfr.api.app import create_app
    from openlfr.services import users

    seed_custody(store, engine)
    tokens = {}
    for name in ("exa", "exb"):
        account = users.create_user(store, name, name.upper(), "examiner", "a long enough test password", "test")
        tokens[name] = {"Authorization": f"Bearer {users.create_token(store, account.id, 'test', days=1)}"}
    search = rfr.start_search(store, engine, jpeg(demo_images.grace_hopper()), "s.jpg", "CASE-6", JUSTIFICATION, "exa")
    top = search["candidates"][0]["id"]
    note = "scar above the left eyebrow matches"
    rfr.decide(store, top, "possible-match", "exa", note=note)
    client = TestClient(create_app(store=store, engine=engine, secure_cookies=False))
    sid = search["id"]

    views = {
        "search route": f"/api/v1/rfr/searches/{sid}",
        "candidate route": f"/api/v1/rfr/candidates/{top}",
        "search page": f"/rfr/searches/{sid}",
        "candidate page": f"/rfr/candidates/{top}",
        "case report": f"/api/v1/rfr/searches/{sid}/report",
    }
    for what, url in views.items():
        response = client.get(url, headers=tokens["exb"])
        assert response.status_code == 200, (what, response.text)
        assert note not in response.text, f"the confirming examiner sees the first examiner's note on the {what}"
    seen = client.get(f"/api/v1/rfr/searches/{sid}", headers=tokens["exb"]).json()["candidates"][0]
    assert seen["note"] is None and seen["awaiting_your_confirmation"] is True and seen["decided_by"] == "exa"
    assert note not in rfr.case_report_html(store, sid, "exb")
    # Its author still sees it everywhere.
    assert client.get(f"/api/v1/rfr/searches/{sid}", headers=tokens["exa"]).json()["candidates"][0]["note"] == note
    assert note in client.get(f"/rfr/candidates/{top}", headers=tokens["exa"]).text
    # Once the second examiner has decided, the note is no longer hidden from them.
    confirmed = client.post(f"/api/v1/rfr/candidates/{top}/confirmation", json={"agree": True}, headers=tokens["exb"])
    assert confirmed.status_code == 200
    after = client.get(f"/api/v1/rfr/searches/{sid}", headers=tokens["exb"]).json()["candidates"][0]
    assert after["note"] == note and after["awaiting_your_confirmation"] is False


def test_results_expire_under_retention(store, engine) -> None:
    from openlfr.services import deployments

    seed_custody(store, engine)
    search = rfr.start_search(store, engine, jpeg(demo_images.grace_hopper()), "s.jpg", "CASE-5", JUSTIFICATION, "exa")
    probe_files = list((store.home / "rfr").iterdir())
    assert len(probe_files) == 1
    assert rfr.delete_expired(store) == []
    later = deployments.now_utc() + rfr.SEARCH_RETENTION + timedelta(days=1)
    assert rfr.delete_expired(store, now=later) == [search["id"]]
    assert not any((store.home / "rfr").iterdir())
    with pytest.raises(OpenLFRError, match="does not exist"):
        rfr.search_detail(store, search["id"], "exa")
    assert rfr.delete_expired(store, now=later) == []  # twice is harmless
