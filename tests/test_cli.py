"""The ``openlfr`` command as a user runs it: real store, real models, output checked."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from openlfr.cli.main import app
from openlfr.services import demo_images

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, model_home: Path) -> Path:
    """A data directory that starts with the session's cleaned model cache, so no test rebuilds it."""
    target = tmp_path / "home"
    (target / "models").mkdir(parents=True)
    for f in (model_home / "models").iterdir():
        (target / "models" / f.name).symlink_to(f)
    return target


def run(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_enrol_identify_people_json(home: Path, tmp_path: Path, engine) -> None:
    hopper = demo_images.grace_hopper_path()
    r = run("enrol", hopper, "--id", "GH-1", "--name", "Grace Hopper", "--home", home, "--json")
    assert r.exit_code == 0, r.output
    enrolled = json.loads(r.stdout)
    assert enrolled["reference"] == "GH-1" and enrolled["total_images"] == 1

    scene = tmp_path / "scene.jpg"
    cv2.imwrite(str(scene), demo_images.camera_scene())
    r = run("identify", scene, "--home", home, "--json")
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout)
    assert len(result["faces"]) == 2
    assert [f["main"] for f in result["faces"]] == [True, False]  # the main face first
    refs = [[c["reference"] for c in f["candidates"]] for f in result["faces"]]
    assert sorted(refs) == [[], ["GH-1"]]

    r = run("people", "--home", home, "--json")
    assert json.loads(r.stdout) == [{"reference": "GH-1", "name": "Grace Hopper", "images": 1}]


def test_identify_defaults_to_the_pack_alert_threshold(home: Path, engine) -> None:
    """One default for searches and alerts: yunet-sface's alert threshold (0.45), not its native 0.363."""
    hopper = demo_images.grace_hopper_path()
    r = run("enrol", hopper, "--id", "GH-1", "--name", "Grace Hopper", "--home", home, "--pack", "yunet-sface")
    assert r.exit_code == 0, r.output
    r = run("identify", hopper, "--home", home, "--pack", "yunet-sface", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["threshold"] == engine.alert_threshold != engine.native_threshold


def test_identify_says_plainly_when_nobody_matched(home: Path, tmp_path: Path, engine) -> None:
    run("enrol", demo_images.grace_hopper_path(), "--id", "GH-1", "--name", "Grace Hopper", "--home", home)
    astronaut = tmp_path / "astronaut.png"
    cv2.imwrite(str(astronaut), demo_images.eileen_collins())
    r = run("identify", astronaut, "--home", home)
    assert r.exit_code == 0
    assert "nobody matched" in r.stdout


def test_errors_are_one_line_with_exit_status_2(home: Path, tmp_path: Path, engine) -> None:
    bad = tmp_path / "photo.jpg"
    bad.write_text("hello")
    r = run("enrol", bad, "--id", "X", "--name", "X", "--home", home)
    assert r.exit_code == 2
    assert "photo.jpg is not an image" in r.stderr
    assert "Traceback" not in r.output
    r = run("identify", demo_images.grace_hopper_path(), "--gallery", "nope", "--home", home)
    assert r.exit_code == 2 and "gallery 'nope' does not exist" in r.stderr


def test_demo_runs_the_whole_live_loop() -> None:
    r = run("demo")
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "ALERT 1: Grace Hopper (GH-1906)" in out
    assert "Eileen Collins raised no alert" in out
    assert "2 faces seen, 1 alert." in out
    assert '"Engaged: confirmed to be the person" (a confirmed true alert)' in out
    assert "True alerts │ 1 confirmed by engaging the person" in out  # engaged — confirmed counts as confirmed
    assert "Face recogniser: YuNet + SFace with a second opinion from dlib" in out
    assert "about 1 in " in out  # the estimated false-alert rate as odds ...
    # ... and what an officer cannot read is gone: pack ids, scientific notation, file names.
    for raw in ("yunet-sface", "e-05", "e-06", ".bin", "T0", "pack:"):
        assert raw not in out, raw


def test_threshold_recommend_json_gives_interval_and_method(home: Path) -> None:
    result = run("threshold", "recommend", "--target-fpir", "1/6000", "--watchlist-size", "1000", "--home", home, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("threshold", "threshold_interval", "conservative_threshold", "fpir", "fpir_interval", "tpir",
                "tpir_interval", "method", "interval_method", "extrapolated", "calibration", "advice"):  # fmt: skip
        assert key in data, key
    assert data["fpir"] <= 1 / 6000 and data["tpir_interval"][0] <= data["tpir"] <= data["tpir_interval"][1]
    words = run("threshold", "estimate", "--threshold", "0.727", "--watchlist-size", "100", "--home", home)
    assert words.exit_code == 0 and "95% interval" in words.output and "calibrate on its own images" in words.output
