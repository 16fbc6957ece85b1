"""Walk-bys with a large watchlist: thousands of LFW subjects on the list, a few of them passing, everyone
else a stranger to it; enrolled through the real services and scored per pass and per 10,000 faces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openlfr.cli.main import app
from openlfr.evaluation import aliases
from openlfr.evaluation.walkby import RememberedFaces, enrol_watchlist, remembered_faces_path
from openlfr.simulation import walkby
from openlfr.simulation.walkby import Scenario
from openlfr.storage import Store


def test_large_watchlist_plan(lfw_root: Path) -> None:
    scenario = walkby.plan(lfw_root, duration_s=10, people=6, watchlisted=2, fps=10, seed=5, watchlist_size=30)
    passers = {p.identity: p for p in scenario.passes}
    on_list = set(scenario.watchlist)
    assert scenario.target_watchlist_size == 30 and len(on_list) == 30 and scenario.reserve
    assert scenario.references_per_subject == 1 and not on_list & set(scenario.reserve)
    wanted = [p for p in scenario.passes if p.watchlisted]
    assert len(wanted) == 2 and all(p.identity in on_list and p.image not in scenario.watchlist[p.identity] for p in wanted)
    strangers = [name for name, p in passers.items() if not p.watchlisted]
    assert len(strangers) == 4 and not set(strangers) & (on_list | set(scenario.reserve))
    listed = aliases.read(aliases.SHIPPED_LFW) if aliases.SHIPPED_LFW.is_file() else aliases.NONE
    for a, b, _ in listed.entries:  # no stranger is a listed alias of someone on the watchlist
        pair = {aliases.identity_of(a), aliases.identity_of(b)}
        assert not (pair & set(strangers) and pair & on_list)
    # The truth file round-trips with the whole watchlist; without --watchlist-size nothing changes.
    again = Scenario.from_json(json.loads(json.dumps(scenario.to_json())))
    assert again.watchlist == scenario.watchlist and again.target_watchlist_size == 30
    small = walkby.plan(lfw_root, duration_s=10, people=6, watchlisted=2, fps=10, seed=5)
    same = walkby.plan(lfw_root, duration_s=10, people=6, watchlisted=2, fps=10, seed=5, watchlist_size=2)
    assert small.to_json() == same.to_json() and small.watchlist_size is None and len(small.watchlist) == 2


def test_large_watchlist_walkby_is_enrolled_whole_and_scored(tmp_path: Path, lfw_root: Path, model_home: Path, engine) -> None:
    runner = CliRunner()
    out = tmp_path / "wb"
    made = runner.invoke(app, ["simulate", "--data", str(lfw_root), "--out", str(out), "--duration", "9", "--people", "6",
                               "--watchlisted", "2", "--watchlist-size", "30", "--min-size", "70", "--max-size", "110",
                               "--fps", "10", "--seed", "3"])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "Watchlist of 30 subject(s)" in made.output
    truth = out / "truth.json"
    assert len(json.loads(truth.read_text())["watchlist"]) == 30

    result = runner.invoke(app, ["evaluate", "walkby", "--truth", str(truth), "--no-realtime", "--pack", "yunet-sface",
                                 "--home", str(model_home), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # The whole watchlist was enrolled and taken live, not only the two who walk past.
    assert data["watchlist_size"] == data["enrolled_subjects"] == data["planned_watchlist_size"] == 30
    assert data["record"]["watchlist_size"] == 30
    # The counts agree with each other and with the published record.
    assert data["passes"] == 6 and data["watchlisted_passes"] == 2
    assert data["true_alerts"] + data["false_alerts"] == data["record"]["total_alerts"]
    assert data["duplicate_alerts"] == data["true_alerts"] - data["alerted_passes"]
    assert data["alerted_passes"] == 2, data  # faces 70-110 px, enrolled from another photograph
    assert data["faces_seen"] >= 6 and data["camera"]["frames_dropped"] == 0
    assert data["false_alerts_per_10000_faces"] == pytest.approx(10000 * data["false_alerts"] / data["faces_seen"], abs=1e-3)

    # The reference faces were remembered beside the truth: enrolling again templates nothing.
    remembered = RememberedFaces(engine, remembered_faces_path(truth, engine))
    assert remembered.path.is_file() and len(remembered.known) >= 30
    enrolled, _ = enrol_watchlist(Store(tmp_path / "again"), remembered, Scenario.from_json(json.loads(truth.read_text())))
    assert enrolled == 30 and remembered.computed == 0
