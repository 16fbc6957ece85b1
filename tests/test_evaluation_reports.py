"""Evaluation reports: the statistics on known values, the open-set protocol and calibration file on synthetic
templates, and every report command end to end on a small LFW subset (templates cached once per session)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from openlfr.cli.main import app
from openlfr.evaluation import demographics, openset, verification

runner = CliRunner()
PEOPLE = 300  # the first 300 LFW people: 648 images, 87 of them with two or more


# ------------------------------------------------------------------------------------------------ statistics


def test_wilson_interval_known_values() -> None:
    lo, hi = demographics.wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert demographics.wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    lo, hi = demographics.wilson(81, 263)  # Wilson (1927)-style example, checked against statsmodels' proportion_confint
    assert lo == pytest.approx(0.2553, abs=1e-3) and hi == pytest.approx(0.3662, abs=1e-3)
    assert demographics.wilson(0, 0) == (0.0, 1.0)


def test_two_proportion_z_and_holm() -> None:
    z, p = demographics.two_proportion_z(45, 100, 30, 100)
    assert z == pytest.approx(2.1909, abs=1e-3) and p == pytest.approx(0.02846, abs=1e-4)
    assert demographics.two_proportion_z(0, 50, 0, 80) == (0.0, 1.0)  # both zero: no evidence of a difference
    assert demographics.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert demographics.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_too_small_rule() -> None:
    assert demographics.Rate(1, 20, 5).too_small()  # few trials, few people, wide interval
    assert demographics.Rate(10, 5000, 400).too_small() == []
    assert any("interval" in r for r in demographics.Rate(50, 100, 50).too_small())


def test_tar_at_far_counts_and_support() -> None:
    rng = np.random.default_rng(0)
    mated, impostors = rng.normal(0.7, 0.1, 5000), rng.normal(0.1, 0.1, 10_000)
    rows = {r["far"]: r for r in (verification.tar_at_far(mated, impostors, f) for f in verification.FARS)}
    assert rows[1e-2]["false_accepts"] == 100 and rows[1e-2]["status"] == "supported"
    assert rows[1e-3]["false_accepts"] == 10 and "indicative" in rows[1e-3]["status"]
    assert rows[1e-5]["tar"] is None and "cannot be measured" in rows[1e-5]["status"]
    assert all(r["impostor_comparisons"] == 10_000 for r in rows.values())
    assert rows[1e-3]["tar"] <= rows[1e-2]["tar"]


def test_upper_triangle_index() -> None:
    i, j = verification.upper_pair(np.arange(21), 7)
    assert (i == np.triu_indices(7, 1)[0]).all() and (j == np.triu_indices(7, 1)[1]).all()


# ------------------------------------------------------------------------------- open set on synthetic templates


def synthetic(people: int = 400, per: int = 3, noise: float = 0.6, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Random identities; each image is its identity's direction plus noise (cosine scores like a recogniser's)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 64))
    rows, names = [], []
    for p in range(people):
        for k in range(1 if p % 4 == 0 else per):  # a quarter of the people have one image only
            rows.append(centres[p] + noise * rng.normal(size=64) * np.linalg.norm(centres[p]) / 8)
            names.append(f"P{p:04d}/P{p:04d}_{k + 1:04d}.jpg")
    t = np.array(rows, np.float32)
    return t / np.linalg.norm(t, axis=1, keepdims=True), names


def test_exceeding_counts_scores_at_or_above_each_threshold() -> None:
    counts = openset.exceeding(np.array([-0.5, 0.0, 0.3, 0.3005, 0.9999, 1.0]))
    assert counts[0] == 5 and counts[300] == 4 and counts[301] == 2 and counts[1000] == 1


def test_open_set_protocol_on_synthetic_templates() -> None:
    templates, names = synthetic()
    eligible = openset.eligible_people(templates, names)
    assert len(eligible) == 300
    d = openset.draw(templates, names, 100, seed=1)
    assert len(d.mated_score) == 200  # two other images of each enrolled person
    assert not set(d.mated_identity) & set(d.non_mated_identity)
    assert len(d.non_mated_score) == len(names) - 300  # everyone else's images
    assert d.impostor_comparisons == len(d.non_mated_score) * 100
    result = openset.OpenSetResult(100, [d, openset.draw(templates, names, 100, seed=2)])
    fpir, tpir = result.fpir(), result.tpir()
    assert (np.diff(fpir) <= 1e-12).all() and (np.diff(tpir) <= 1e-12).all()  # both fall as the threshold rises
    assert fpir[0] == 1.0 and tpir[-1] == 0.0
    at = result.at_fpir(1 / 100)
    assert at["fpir"] <= 1 / 100 and at["tpir"] > 0.9
    assert "indicative" in at["status"]  # ~500 non-mated probes × 1/100 = 5 < 30
    assert "cannot be resolved" in result.at_fpir(1 / 6000)["status"]
    check = openset.extrapolation_check(result, (1 / 10,))[0]
    assert check["predicted_fpir"] == pytest.approx(check["measured_fpir"], abs=0.05)
    with pytest.raises(Exception, match="needs 301 people"):
        openset.draw(templates, names, 301, seed=0)


def with_bad_photographs(templates: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Every second image of a person made useless (a random direction) and marked as enrolment would refuse it,
    and every image of the first 20 people refused: (templates, enrollable)."""
    rng = np.random.default_rng(5)
    templates = templates.copy()
    enrollable = np.ones(len(names), bool)
    for i, n in enumerate(names):
        if n.endswith("_0002.jpg"):
            templates[i] = rng.normal(size=templates.shape[1])
            templates[i] /= np.linalg.norm(templates[i])
            enrollable[i] = False
        if int(n[1:5]) < 20:
            enrollable[i] = False
    return templates, enrollable


def test_watchlists_hold_only_images_enrolment_accepts() -> None:
    """A watchlist cannot hold a photograph that enrolment refuses, so neither may an evaluation's."""
    clean, names = synthetic()
    templates, enrollable = with_bad_photographs(clean, names)
    refused_people = {n.split("/")[0] for n in names if int(n[1:5]) < 20}
    eligible = openset.eligible_people(templates, names, enrollable)
    assert len(eligible) == 300 - 15 and not refused_people & set(eligible)  # 15 of the first 20 have 2+ images
    d = openset.draw(templates, names, 250, seed=3, enrollable=enrollable)
    assert d.reference_rows is not None and enrollable[d.reference_rows].all()
    assert not refused_people & set(d.mated_identity)
    anywhere = openset.draw(templates, names, 250, seed=3)
    assert anywhere.reference_rows is not None and not enrollable[anywhere.reference_rows].all()
    # Bad references lose their people's every probe; bad probes are still searched (a camera sees whoever passes).
    assert d.mated_correct.mean() > anywhere.mated_correct.mean() + 0.1
    note = openset.references_note(templates, enrollable)
    assert note["refused"] == int((~enrollable).sum()) and "enrolment quality limits" in note["rule"]
    assert openset.references_note(templates, None)["refused"] == 0


def test_calibration_file_round_trips(tmp_path: Path) -> None:
    templates, names = synthetic(people=200)
    results = openset.evaluate(templates, names, [20, 100], seeds=[0, 1])
    data = openset.calibration(results, "pack:abc", True, {"name": "synthetic", "images": len(names)}, 10, [0, 1])
    path = openset.save_calibration(data, tmp_path / "calibration.json")
    loaded = openset.load_calibration(path)
    assert loaded["pack_id"] == "pack:abc" and loaded["format"] == "openlfr-calibration/1"  # no model: measured curves only
    assert [w["size"] for w in loaded["watchlists"]] == [20, 100]
    w = loaded["watchlists"][1]
    assert w["fpir"].shape == loaded["thresholds"].shape == (1001,)
    np.testing.assert_allclose(w["fpir"], results[1].fpir(), atol=1e-6)
    np.testing.assert_allclose(w["tpir"], results[1].tpir(), atol=1e-5)
    rate = w["impostor_tail"]["exceeding"] / w["impostor_tail"]["comparisons"]
    np.testing.assert_allclose(rate, results[1].impostor_rate(), rtol=1e-3, atol=1e-9)
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(Exception, match="not an OpenLFR calibration"):
        openset.load_calibration(tmp_path / "bad.json")


def test_group_rates_from_a_draw() -> None:
    templates, names = synthetic(people=120)
    d = openset.draw(templates, names, 40, seed=0)
    group = set(sorted({n.split("/")[0] for n in names})[:60])
    tpir, fpir = demographics.identification_rates(d, group, 0.5)
    assert 0 < tpir.trials < len(d.mated_score) and 0 < fpir.trials < len(d.non_mated_score)
    tests = demographics.significance({"a": {"fnmr": tpir, "fmr": fpir, "tpir": tpir, "fpir": fpir},
                                       "b": {"fnmr": fpir, "fmr": tpir, "tpir": fpir, "fpir": tpir}})  # fmt: skip
    assert len(tests) == 4 and all(0 <= t["p"] <= t["p_holm"] <= 1 for t in tests)


# -------------------------------------------------------------------------------------- reports on LFW data


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory, engine, lfw_root: Path) -> Path:
    """Templates of the subset, computed once for the whole file (the CLI reads them from here)."""
    cache = tmp_path_factory.mktemp("template-cache")
    openset.lfw_template_cache(engine, lfw_root, cache, limit_people=PEOPLE)
    return cache


def invoke(*args: object) -> dict:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def embedded_plots(html_path: Path) -> int:
    html = html_path.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    assert "How to read this report" in html
    return len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]{500,}">', html))


def test_verification_report(tmp_path: Path, lfw_root: Path, model_home: Path, cache_dir: Path) -> None:
    folds = [line.split() for line in (lfw_root / "pairs.txt").read_text().splitlines()[1:]]
    small = [*folds[:40], *folds[300:340], *folds[600:640], *folds[900:940]]  # 2 folds of 40 mated + 40 non-mated
    (tmp_path / "pairs.txt").write_text("2\t40\n" + "\n".join("\t".join(r) for r in small) + "\n")
    out = tmp_path / "report"
    data = invoke("evaluate", "verification", "--data", lfw_root, "--pairs", tmp_path / "pairs.txt",
                  "--folder", lfw_root / "lfw-deepfunneled", "--people", PEOPLE, "--max-non-mated", 20_000,
                  "--out", out, "--home", model_home, "--cache-dir", cache_dir, "--json")  # fmt: skip
    view2, folder = data["datasets"]
    assert view2["impostor_comparisons"] == 80 and view2["mated_comparisons"] == 80
    assert len(view2["ten_fold"]["fold_accuracies"]) == 2 and view2["ten_fold"]["mean_accuracy"] > 0.9
    assert folder["impostor_comparisons"] == 20_000 and folder["mated_comparisons"] > 500
    assert any("random sample" in n for n in folder["notes"])
    rows = {r["far"]: r for r in folder["tar_at_far"]}
    assert set(rows) == set(verification.FARS)
    assert rows[1e-2]["status"] == "supported" and rows[1e-2]["false_accepts"] <= 200 and rows[1e-2]["tar"] > 0.9
    assert "cannot be measured" in rows[1e-5]["status"]
    saved = json.loads((out / "verification.json").read_text())
    assert saved["datasets"][1]["tar_at_far"][0]["impostor_comparisons"] == 20_000
    assert embedded_plots(out / "verification.html") == 2  # ROC and DET
    assert "impostor comparisons" in (out / "verification.html").read_text()


def test_identification_report_and_calibration(tmp_path: Path, lfw_root: Path, model_home: Path, cache_dir: Path) -> None:
    out = tmp_path / "ident"
    data = invoke("evaluate", "identification", "--data", lfw_root, "--people", PEOPLE, "--sizes", "20,50,max,5000",
                  "--draws", 2, "--out", out, "--home", model_home, "--cache-dir", cache_dir, "--json")  # fmt: skip
    # The rank-based figures and their keys are unchanged.
    assert {"rank_hit_rate", "non_mated_share_above", "gallery_size", "mated_probes"} <= set(data)
    assert data["rank_hit_rate"]["rank_1"] > 0.9
    report = json.loads((out / "identification.json").read_text())
    assert [w["size"] for w in report["watchlists"]] == [20, 50, 87]
    assert any("5000 skipped" in n for n in report["notes"])
    for w in report["watchlists"]:
        assert w["draws"] == 2 and w["non_mated_probes_per_draw"] > 200
        targets = {round(1 / a["target_fpir"]): a for a in w["at_fpir"]}
        assert set(targets) == {1000, 6000}
        assert "insufficient non-mated probes" in targets[6000]["status"]  # a few hundred probes cannot resolve 1/6000
        assert 0 <= targets[1000]["tpir"] <= 1 and 0 <= targets[1000]["threshold"] <= 1
    assert report["extrapolated"][0]["size"] == 10_000 and "insufficient" in report["extrapolated"][0]["status"]
    assert len(report["highest_non_mated"]["87"]) == 10
    assert embedded_plots(out / "identification.html") == 2
    assert "insufficient non-mated probes" in (out / "identification.html").read_text()
    calibration = openset.load_calibration(out / "calibration.json")
    assert calibration["dataset"]["people"] == PEOPLE and calibration["pack_id"].startswith("yunet-sface")
    assert [w["size"] for w in calibration["watchlists"]] == [20, 50, 87]
    assert data["open_set"]["calibration_file"] == str(out / "calibration.json")
    # Watchlist images are those enrolment accepts; the quality measures behind that are cached beside the templates.
    refs = report["references"]
    assert refs == calibration["references"] == data["dataset"]["references"]
    assert "enrolment quality limits" in refs["rule"] and 0 <= refs["refused"] < refs["images_with_face"] // 10
    assert list(cache_dir.glob("quality-*.npz"))
    assert "watchlist images: images the default enrolment quality limits accept" in (out / "identification.html").read_text()


def test_identification_prints_without_json(tmp_path: Path, lfw_root: Path, model_home: Path, cache_dir: Path, engine) -> None:
    """The plain-text summary names the share of strangers at the pack's alert threshold (it used to crash with
    KeyError: 'None' because the threshold was never set)."""
    out = tmp_path / "ident"
    result = runner.invoke(app, [str(a) for a in ("evaluate", "identification", "--data", lfw_root, "--people", 30,
                                                  "--no-report", "--out", out, "--home", model_home, "--cache-dir",
                                                  cache_dir, "--pack", "yunet-sface")])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert f"share at or above the pack's alert threshold {engine.alert_threshold}" in text
    saved = json.loads((out / "identification_result.json").read_text())
    assert saved["pack_threshold"] == engine.alert_threshold
    assert saved["non_mated_share_at_pack_threshold"] == saved["non_mated_share_above"][str(engine.alert_threshold)]
    assert "open_set" not in saved and not (out / "identification.html").exists()


def test_identification_needs_exactly_one_data_set(tmp_path: Path) -> None:
    for args in ((), ("--data", tmp_path, "--folder", tmp_path)):
        result = runner.invoke(app, ["evaluate", "identification", *map(str, args), "--out", str(tmp_path / "o")])
        assert result.exit_code == 2 and "exactly one of --data (LFW) and --folder" in result.stderr


def test_identification_on_a_labelled_folder(tmp_path: Path, test_data: Path, model_home: Path, engine) -> None:
    """Any DIR/<identity>/<images>, here the celeba-dev set (not LFW): closed-set ranks, the open-set report and a
    calibration file that 'threshold import' accepts. Every person has 2+ images, so 'max' would enrol everyone
    and leave no stranger to measure false alerts with: it is skipped, with a note."""
    folder = test_data / "celeba-dev"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    out, home = tmp_path / "ident", tmp_path / "home"
    data = invoke("evaluate", "identification", "--folder", folder, "--people", 20, "--sizes", "5,10,max,500",
                  "--draws", 2, "--out", out, "--home", model_home, "--cache-dir", tmp_path / "cache",
                  "--pack", "yunet-sface", "--all-references", "--json")  # fmt: skip
    assert data["dataset"]["name"] == "celeba-dev (first 20 people)" and data["dataset"]["people"] == 20
    assert data["dataset"]["references"]["refused"] == 0 and "not applied" in data["dataset"]["references"]["rule"]
    assert not list((tmp_path / "cache").glob("quality-*.npz"))  # --all-references: no quality pass at all
    assert data["protocol"].startswith("celeba-dev")
    assert data["mated_probes"] > 40 and data["rank_hit_rate"]["rank_1"] > 0.6
    assert data["pack_threshold"] == engine.alert_threshold
    report = json.loads((out / "identification.json").read_text())
    assert report["dataset"]["path"] == str(folder) and report["dataset"]["images"] == data["dataset"]["images"]
    assert [w["size"] for w in report["watchlists"]] == [5, 10]
    assert any("500 skipped" in n for n in report["notes"])
    assert any("20 skipped" in n and "no non-mated probes" in n for n in report["notes"])
    assert all(w["non_mated_probes_per_draw"] > 30 for w in report["watchlists"])
    html = (out / "identification.html").read_text()
    assert embedded_plots(out / "identification.html") == 2
    assert "celeba-dev" in html and "LFW people are mostly public figures" not in html
    calibration = openset.load_calibration(out / "calibration.json")
    assert calibration["dataset"]["name"].startswith("celeba-dev") and calibration["pack_id"] == engine.pack_id
    imported = runner.invoke(app, ["threshold", "import", str(out / "calibration.json"), "--by", "tester", "--home", str(home)])
    assert imported.exit_code == 0, imported.output
    assert "Imported calibration" in imported.stdout


def demonstration_groups(path: Path, lfw_root: Path) -> None:
    """A groups file for the test only: LFW has no demographic labels, so people are grouped by the initial of their
    surname (a demonstration of the method, not a demographic), plus a deliberately tiny group."""
    people = sorted(p.name for p in (lfw_root / "lfw-deepfunneled").iterdir() if p.is_dir())[:PEOPLE]
    lines = ["# DEMONSTRATION ONLY: not demographic labels. Forces supply their own.", "identity,surname_initial,tiny_group"]
    for i, p in enumerate(people):
        half = "A-M" if p.split("_")[-1][:1].upper() <= "M" else "N-Z"
        lines.append(f"{p},{half},{'few' if i % 60 == 0 else 'many'}")
    path.write_text("\n".join(lines) + "\n")


def test_demographics_report(tmp_path: Path, lfw_root: Path, model_home: Path, cache_dir: Path) -> None:
    groups = tmp_path / "groups.csv"
    demonstration_groups(groups, lfw_root)
    out = tmp_path / "demo"
    data = invoke("evaluate", "demographics", "--data", lfw_root, "--groups", groups, "--people", PEOPLE,
                  "--watchlist-size", 40, "--out", out, "--home", model_home, "--cache-dir", cache_dir, "--json")  # fmt: skip
    assert set(data["attributes"]) == {"surname_initial", "tiny_group"}
    halves = data["attributes"]["surname_initial"]["groups"]
    assert set(halves) == {"A-M", "N-Z"} and sum(g["people"] for g in halves.values()) == PEOPLE
    for g in halves.values():
        for figure in demographics.FIGURES:
            r = g[figure]
            assert r["trials"] > 0 and r["ci95"][0] <= (r["rate"] or 0) <= r["ci95"][1]
    assert len(data["attributes"]["surname_initial"]["tests"]) == 4  # one pair of groups × four figures
    few = data["attributes"]["tiny_group"]["groups"]["few"]
    assert few["people"] == 5 and few["tpir"]["too_small"] and few["fnmr"]["too_small"]
    assert all(t["caution"] for t in data["attributes"]["tiny_group"]["tests"])
    html = (out / "demographics.html").read_text()
    assert "too small to support a claim" in html and "tiny_group = few" in html
    assert embedded_plots(out / "demographics.html") == 2
    saved = json.loads((out / "demographics.json").read_text())
    assert saved["small_rule"] == demographics.SMALL_RULE
    assert "enrolment quality limits" in saved["references"]["rule"]  # the watchlist holds what enrolment accepts


def test_live_report_on_a_short_walkby(tmp_path: Path, lfw_root: Path, model_home: Path, engine) -> None:
    from openlfr.simulation import walkby

    scenario = walkby.plan(lfw_root, duration_s=6, people=3, watchlisted=2, min_face_px=70, max_face_px=100, fps=10, seed=4)
    paths = walkby.write(scenario, tmp_path / "wb")
    out = tmp_path / "live"
    data = invoke("evaluate", "live", "--truth", paths["truth"], "--no-realtime", "--out", out, "--home", model_home, "--json")
    assert data["passes"] == 3 and data["watchlisted_passes"] == 2
    assert data["faces_seen"] >= 2 and data["frames_dropped"] == 0
    assert data["alerted_passes"] == 2, data  # faces 70-100 px, enrolled from other photographs
    assert data["false_alerts_per_10000_faces"] == pytest.approx(10000 * data["false_alerts"] / data["faces_seen"], rel=1e-3)
    delays = data["time_to_alert_s"]
    assert len(delays["per_pass"]) == 2 and 0 <= delays["p50"] <= delays["p95"] <= 4.5
    assert 0 < data["per_pass_tpir_ci95"][0] <= data["per_pass_tpir"] <= data["per_pass_tpir_ci95"][1]
    html = (out / "live.html").read_text()
    assert "simulated" in html and "per 10,000" in html
    assert embedded_plots(out / "live.html") == 1
    assert not math.isnan(json.loads((out / "live.json").read_text())["figures"]["alerts_per_pass"])
