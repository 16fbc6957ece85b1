"""The live facial recognition commands as an operator runs them, from subject to published record."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from typer.testing import CliRunner

from openlfr.cli.main import app
from openlfr.services import demo_images
from openlfr.simulation.clips import walking_clip

runner = CliRunner()


def run(home: Path, *args: object) -> object:
    result = runner.invoke(app, [str(a) for a in args] + ["--home", str(home)])
    return result


def test_whole_lfr_flow_from_the_command_line(tmp_path: Path, model_home: Path, engine) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    for f in (model_home / "models").iterdir():
        (home / "models" / f.name).symlink_to(f)
    r = run(
        home,
        "subjects",
        "add",
        demo_images.grace_hopper_path(),
        "--id",
        "GH-1",
        "--name",
        "Grace Hopper",
        "--category",
        "vulnerable-person",
        "--reason",
        "missing, at risk",
        "--image-source",
        "family photo",
        "--lawful-basis",
        "consent of next of kin",
        "--review-date",
        "2099-01-01",
        "--by",
        "pc-a",
    )
    assert r.exit_code == 0, r.output
    video = walking_clip(tmp_path / "cam.mp4", [demo_images.grace_hopper(), demo_images.eileen_collins()], seconds=2.5)
    r = run(
        home,
        "deployments",
        "plan",
        "--name",
        "High Street",
        "--location",
        "High Street, north end",
        "--use-case",
        "locate-person",
        "--start",
        "now",
        "--end",
        "+60",
        "--camera",
        f"north={video}",
        "--by",
        "pc-a",
        "--json",
    )
    assert r.exit_code == 0, r.output
    deployment = json.loads(r.stdout)["deployment_id"]
    r = run(home, "live", "--deployment", deployment)
    assert r.exit_code == 2 and "must be authorised to go live" in r.stderr
    assert run(home, "deployments", "watchlist", deployment, "--by", "pc-a").exit_code == 0
    assert run(home, "deployments", "approve-watchlist", deployment, "--by", "sgt-b").exit_code == 0
    r = run(home, "deployments", "authorise", deployment, "--by", "pc-a", "--note", "x")
    assert r.exit_code == 2 and "must not be the officer who planned" in r.stderr
    assert run(home, "deployments", "authorise", deployment, "--by", "supt-c", "--note", "missing person").exit_code == 0

    r = run(home, "live", "--deployment", deployment, "--no-realtime", "--json")
    assert r.exit_code == 0, r.output
    live = json.loads(r.stdout)
    assert len(live["alerts"]) == 1 and live["faces_seen"] == 2
    alert = live["alerts"][0]

    r = run(home, "alerts", "list", "--pending", "--json")
    assert [a["name"] for a in json.loads(r.stdout)] == ["Grace Hopper"]
    r = run(home, "alerts", "show", alert, "--image", tmp_path / "compare.png")
    assert r.exit_code == 0 and cv2.imread(str(tmp_path / "compare.png")) is not None
    r = run(home, "alerts", "outcome", alert, "--outcome", "arrest", "--by", "pc-d")
    assert r.exit_code == 0 and "legal hold" in r.stdout
    assert run(home, "alerts", "hold", alert, "--by", "sgt-b", "--reason", "case 7").exit_code == 0
    r = run(home, "alerts", "outcome", alert, "--outcome", "other", "--judged", "match", "--by", "pc-d")
    assert r.exit_code == 2 and "already has outcome arrest" in r.stderr

    r = run(home, "deployments", "close", deployment, "--by", "supt-c", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["arrests"] == 1
    r = run(home, "deployments", "record", "--csv", tmp_path / "records.csv", "--json")
    (record,) = json.loads(r.stdout)
    assert record["location"] == "High Street, north end" and record["true_alerts_confirmed"] == 1
    assert (tmp_path / "records.csv").read_text().splitlines()[1].startswith(f'{deployment},"High Street, north end",')
    r = run(home, "retention", "run", "--alert-days", "0", "--json")
    assert json.loads(r.stdout)["alerts_held"] == [alert]  # the hold keeps the images
    r = run(home, "retention", "log", "--json")
    assert [e["kind"] for e in json.loads(r.stdout)] == ["watchlist"]
    r = run(home, "subjects", "list", "--json")
    assert json.loads(r.stdout)[0]["category"] == "vulnerable-person"
