"""The evaluation reports a force puts in front of a court: each command runs on a small LFW subset and
writes a self-contained HTML report (plots inline) with its JSON, stating the comparisons behind each
figure; the calibration it writes feeds the threshold service; small groups are flagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openlfr.cli.main import app
from openlfr.evaluation import openset
from openlfr.services import thresholds

runner = CliRunner()
PEOPLE = "160"


@pytest.fixture(scope="module")
def env(tmp_path_factory, model_home, lfw_root, engine) -> dict:
    home = tmp_path_factory.mktemp("eval-home")
    shutil.copytree(model_home / "models", home / "models")
    return {"home": home, "cache": tmp_path_factory.mktemp("eval-cache"), "lfw": lfw_root}


def run(env: dict, *args: str):
    result = runner.invoke(app, [*map(str, args), "--home", str(env["home"]), "--cache-dir", str(env["cache"])])
    assert result.exit_code == 0, result.output
    return result


def embedded_plots(html: str) -> int:
    return html.count("data:image/png;base64,")


def test_verification_report(env, tmp_path) -> None:
    run(env, "evaluate", "verification", "--data", env["lfw"], "--folds", "2", "--out", tmp_path)
    html = (tmp_path / "verification.html").read_text()
    data = json.loads((tmp_path / "verification.json").read_text())
    assert embedded_plots(html) >= 1 and "<script" not in html
    text = json.dumps(data)
    assert ("impostor" in text and "1e-05" in text) or "0.00001" in text
    assert "cannot be measured" in html or "indicative only" in html  # 300 impostor pairs cannot support FAR 1e-5


def test_identification_report_and_calibration(env, tmp_path) -> None:
    run(env, "evaluate", "identification", "--data", env["lfw"], "--people", PEOPLE, "--sizes", "10,20", "--draws", "2",
        "--out", tmp_path)  # fmt: skip
    html = (tmp_path / "identification.html").read_text()
    assert embedded_plots(html) >= 1
    assert "1/1000" in html or "0.001" in html
    calibration = openset.load_calibration(tmp_path / "calibration.json")
    assert [w["size"] for w in calibration["watchlists"]] == [10, 20]
    assert calibration["pack_id"].startswith("yunet-sface")
    # FPIR never rises as the threshold rises; TPIR likewise.
    for w in calibration["watchlists"]:
        assert (w["fpir"][1:] <= w["fpir"][:-1] + 1e-12).all() and (w["tpir"][1:] <= w["tpir"][:-1] + 1e-12).all()
    # The calibration drives threshold choices once imported.
    from openlfr.storage import Store

    store = Store(env["home"])
    ref = thresholds.import_calibration(store, tmp_path / "calibration.json", "analyst")
    rec = thresholds.recommend(store, calibration["pack_id"], 0.01, 20, ref)
    assert rec.calibration == ref and rec.fpir <= 0.01


def test_demographics_report_flags_small_groups(env, tmp_path) -> None:
    people = sorted(p.name for p in (Path(env["lfw"]) / "lfw-deepfunneled").iterdir() if p.is_dir())[: int(PEOPLE)]
    groups = tmp_path / "groups.csv"

    # A demonstration grouping (second letter of the name), NOT a demographic attribute; one tiny group on purpose.
    def group(p: str) -> str:
        return "tiny" if p == people[-1] else ("early" if p[1].lower() < "l" else "late")

    rows = ["identity,letters"] + [f"{p},{group(p)}" for p in people]
    groups.write_text("\n".join(rows) + "\n")
    run(env, "evaluate", "demographics", "--data", env["lfw"], "--groups", groups, "--people", PEOPLE, "--watchlist-size", "20",
        "--out", tmp_path)  # fmt: skip
    html = (tmp_path / "demographics.html").read_text()
    data = json.loads((tmp_path / "demographics.json").read_text())
    assert "tiny" in html and "too small" in html.lower()
    text = json.dumps(data).lower()
    assert "wilson" in text or "ci" in text


def test_live_report_on_a_short_walkby(env, tmp_path) -> None:
    """A 15-second walk-by (1080p, 5 passers-by, 2 watchlisted), processed frame by frame."""
    sim = tmp_path / "sim"
    args = ["--duration", "15", "--people", "5", "--watchlisted", "2", "--min-size", "70", "--max-size", "110"]
    runner_result = runner.invoke(app, ["simulate", "--data", str(env["lfw"]), "--out", str(sim), *args])
    assert runner_result.exit_code == 0, runner_result.output
    result = runner.invoke(app, ["evaluate", "live", "--truth", str(sim / "truth.json"), "--no-realtime", "--out", str(tmp_path),
                                 "--home", str(env["home"])])  # fmt: skip
    assert result.exit_code == 0, result.output
    html = (tmp_path / "live.html").read_text()
    data = json.loads((tmp_path / "live.json").read_text())
    text = json.dumps(data)
    assert "10,000" in html or "10000" in text
    assert "false" in text.lower() and "tpir" in text.lower()
