"""The calibration model: alias lists, the impostor tail fit, bootstrap intervals over people, predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from openlfr import calibration as cal
from openlfr.errors import OpenLFRError
from openlfr.evaluation import aliases, calibrate, openset


def synthetic(people: int = 400, per: int = 4, dim: int = 32, noise: float = 0.55, seed: int = 0):
    """Unit templates of ``people`` identities: a random centre each, plus noise per image."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, dim))
    rows, names = [], []
    for p in range(people):
        for i in range(per):
            v = centres[p] / np.sqrt(dim) + noise * rng.standard_normal(dim) / np.sqrt(dim)
            rows.append(v / np.linalg.norm(v))
            names.append(f"person_{p:04d}/person_{p:04d}_{i:04d}.jpg")
    return np.array(rows, np.float32), names


def test_alias_list_needs_evidence_and_known_kinds(tmp_path):
    good = tmp_path / "a.csv"
    aliases.write([("A", "B", "same_person", "same face, two spellings"), ("C/C_1.jpg", "D/D_1.jpg", "same_photo", "x")], good)
    listed = aliases.read(good)
    assert listed.same("A/A_1.jpg", "B/B_7.jpg") and listed.same("C/C_1.jpg", "D/D_1.jpg")
    assert not listed.same("C/C_2.jpg", "D/D_1.jpg") and not listed.same("A/A_1.jpg", "A/A_2.jpg")
    (tmp_path / "b.csv").write_text("name_a,name_b,kind,evidence\nA,B,same_person,\n")
    with pytest.raises(OpenLFRError, match="evidence"):
        aliases.read(tmp_path / "b.csv")
    (tmp_path / "c.csv").write_text("name_a,name_b,kind,evidence\nA,B,looks_alike,high score\n")
    with pytest.raises(OpenLFRError, match="kind"):
        aliases.read(tmp_path / "c.csv")


def test_shipped_lfw_alias_list_has_evidence_for_every_entry():
    listed = aliases.read(aliases.SHIPPED_LFW)
    assert len(listed) >= 8
    assert listed.same("Sepp_Blatter/Sepp_Blatter_0001.jpg", "Joseph_Blatter/Joseph_Blatter_0002.jpg")
    assert not listed.same("Serena_Williams/Serena_Williams_0001.jpg", "Venus_Williams/Venus_Williams_0001.jpg")


def test_alias_pairs_are_left_out_of_impostor_statistics():
    templates, names = synthetic(people=60, per=3)
    # File person 1's images under a second name: its comparisons with person 0 become "impostors" scoring high.
    templates[3:6] = templates[0:3]
    both = aliases.AliasList((("person_0000", "person_0001", "same_person"),), source="test")
    plain = calibrate.collect(templates, names)
    cleaned = calibrate.collect(templates, names, both)
    assert cleaned.excluded == 9 and plain.excluded == 0
    assert cleaned.comparisons == plain.comparisons - 9
    assert cleaned.exceeding[990] < plain.exceeding[990]  # the identical pairs no longer count as impostors
    draws_plain = openset.draw(templates, names, 40, 0)
    draws_clean = openset.draw(templates, names, 40, 0, aliases=both)
    assert draws_clean.excluded_comparisons >= draws_plain.excluded_comparisons == 0


def test_mated_model_uses_only_references_enrolment_accepts():
    """One image of each person is useless (a random direction) and enrolment refuses it: the calibrated share
    of mated probes must come from the references a watchlist could hold, while that image is still a probe."""
    templates, names = synthetic(people=120, per=4)
    rng = np.random.default_rng(3)
    bad = np.array([n.endswith("_0000.jpg") for n in names])
    junk = rng.standard_normal((int(bad.sum()), templates.shape[1]))
    templates[bad] = junk / np.linalg.norm(junk, axis=1, keepdims=True)
    anywhere = calibrate.collect(templates, names)
    accepted = calibrate.collect(templates, names, enrollable=~bad)
    assert accepted.mated_probes.sum() == anywhere.mated_probes.sum() == 120 * 3  # k - 1 probes each, bad one included
    k = int(np.searchsorted(accepted.coarse, 0.3))
    share = accepted.mated_counts[:, k].sum() / accepted.mated_probes.sum()
    share_anywhere = anywhere.mated_counts[:, k].sum() / anywhere.mated_probes.sum()
    assert share > share_anywhere + 0.1
    assert share == pytest.approx(2 / 3, abs=0.05)  # of 3 probes per reference, the bad one misses
    assert accepted.comparisons == anywhere.comparisons  # impostor comparisons keep every image


def test_tail_fit_agrees_with_measured_rates_and_intervals_cover_the_estimate():
    templates, names = synthetic()
    c = calibrate.collect(templates, names)
    model = calibrate.model(c, replicates=40)
    assert model["tail"]["check"], "the fit is checked against measured rates"
    for row in model["tail"]["check"]:
        assert row["fitted_rate"] == pytest.approx(row["measured_rate"], rel=0.6)
    data = {"format": cal.FORMAT, "thresholds": cal.GRID, "dataset": {"name": "synthetic"}, "model": model, "watchlists": []}
    p = cal.predict(data, 0.6, 100)
    assert p.fpir_interval[0] <= p.fpir <= p.fpir_interval[1]
    assert p.tpir_interval[0] <= p.tpir <= p.tpir_interval[1]
    assert p.fpir_interval[1] > p.fpir_interval[0]  # sampling of people leaves real uncertainty
    # FPIR grows with the watchlist; TPIR cannot grow with it.
    big = cal.predict(data, 0.6, 10_000)
    assert big.fpir > p.fpir and big.tpir <= p.tpir + 1e-12
    t, (lo, hi), conservative = cal.threshold_for(data, 1 / 1000, 100)
    assert lo <= t <= hi and conservative >= t
    assert cal.predict(data, t, 100).fpir <= 1 / 1000


def test_rates_beyond_the_comparisons_are_marked_extrapolated():
    templates, names = synthetic()
    model = calibrate.model(calibrate.collect(templates, names), replicates=20)
    data = {"format": cal.FORMAT, "thresholds": cal.GRID, "dataset": {"name": "synthetic"}, "model": model, "watchlists": []}
    measured = cal.predict(data, float(cal.GRID[np.argmax(model["rate"] < 1e-2)]), 10)
    far = cal.predict(data, 0.99, 10)
    assert not measured.extrapolated and "measured" in measured.method
    assert far.extrapolated and "generalised Pareto" in far.method


def test_transfer_error_widens_the_intervals():
    templates, names = synthetic(seed=0)
    other_t, other_n = synthetic(seed=1, noise=0.7)  # another population: noisier photographs
    base = calibrate.model(calibrate.collect(templates, names), replicates=20)
    other = calibrate.model(calibrate.collect(other_t, other_n), replicates=5)
    data = {"format": cal.FORMAT, "thresholds": cal.GRID, "dataset": {"name": "synthetic"}, "model": base, "watchlists": []}
    narrow = cal.predict(data, 0.6, 100)
    base["transfer"] = calibrate.transfer(base, other, "other")
    assert base["transfer"]["fpir_factor"] >= 1.0
    wide = cal.predict(data, 0.6, 100)
    assert wide.fpir_interval[1] >= narrow.fpir_interval[1] and wide.tpir_interval[0] <= narrow.tpir_interval[0]
    assert "transfer" in wide.interval_method


def test_calibration_file_round_trip(tmp_path):
    templates, names = synthetic(people=120)
    model = calibrate.model(calibrate.collect(templates, names), replicates=10)
    results = openset.evaluate(templates, names, [50], [0, 1])
    data = openset.calibration(results, "pack:x", True, {"name": "synthetic"}, 10, [0, 1], model=model)
    path = cal.save(data, tmp_path / "c.json")
    loaded = cal.load(path)
    assert loaded["format"] == cal.FORMAT and loaded["model"]["bootstrap"]["rate"].shape[0] == 10
    expected = cal.predict(data | {"thresholds": cal.GRID}, 0.7, 50).fpir
    assert cal.predict(loaded, 0.7, 50).fpir == pytest.approx(expected, rel=1e-5)  # 6 significant digits on disk


def test_verification_and_closed_set_leave_alias_pairs_out():
    from openlfr.evaluation.verification import all_pairs

    templates, names = synthetic(people=50, per=3)
    templates[3:6] = templates[0:3]  # person 1's images are person 0's
    both = aliases.AliasList((("person_0000", "person_0001", "same_person"),), source="test")
    ids = [aliases.identity_of(n) for n in names]
    _, plain, _ = all_pairs(templates, ids)
    _, cleaned, how = all_pairs(templates, ids, names=names, aliases=both)
    assert len(plain) - len(cleaned) == 9 and "9 left out as label errors" in how
    _, sampled, how = all_pairs(templates, ids, max_non_mated=5000, names=names, aliases=both)
    assert "left out beforehand as label errors" in how and (sampled < 0.999).all() and len(sampled) == 5000
    result = openset.closed_set(templates, names, 0.0, 0, both)
    assert result.excluded_comparisons > 0 and result.as_dict()["excluded_comparisons"] == result.excluded_comparisons


# ------------------------------------------------------------------------------------- track calibrations


def _tracks_file(tmp_path: Path, rules: dict) -> Path:
    path = tmp_path / "tracks.json"
    path.write_text(json.dumps({"format": cal.TRACK_FORMAT, "pack_id": "p:1", "rules": rules}))
    return path


def test_track_threshold_keeps_a_tracks_false_alert_rate_at_the_photographs() -> None:
    data = {"rules": {"2/5": {"threshold": [0.6, 0.7], "track_threshold": [0.61, 0.72]}}}
    assert cal.track_threshold(data, 2, 5, 0.65) == pytest.approx(0.665)  # offsets interpolated
    assert cal.track_threshold(data, 2, 5, 0.8) == pytest.approx(0.82)  # nearest measured offset kept
    assert cal.track_threshold(data, 2, 5, 0.5) == pytest.approx(0.51)
    assert cal.track_threshold(data, 3, 5, 0.65) is None  # no such rule: judged at the threshold
    assert cal.track_threshold(None, 2, 5, 0.65) is None


def test_bad_track_calibrations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(OpenLFRError, match="not an OpenLFR track calibration"):
        (tmp_path / "x.json").write_text('{"format": "openlfr-calibration/2"}')
        cal.load_tracks(tmp_path / "x.json")
    with pytest.raises(OpenLFRError, match="matching, increasing"):
        cal.load_tracks(_tracks_file(tmp_path, {"2/5": {"threshold": [0.7, 0.6], "track_threshold": [0.71, 0.61]}}))
    ok = cal.load_tracks(_tracks_file(tmp_path, {"2/5": {"threshold": [0.6, 0.7], "track_threshold": [0.61, 0.72]}}))
    assert ok["pack_id"] == "p:1"


@pytest.mark.parametrize("pack", ["fused", "sface"])
def test_each_pack_ships_a_validated_track_calibration(pack: str) -> None:
    from openlfr.models.packs import fused_pack, sface_pack

    spec = fused_pack() if pack == "fused" else sface_pack()
    data = cal.shipped_tracks(spec.pack_id)
    assert data is not None, f"no shipped track calibration for {spec.pack_id}"
    t = cal.track_threshold(data, 2, 5, spec.alert_threshold)
    # A track judged on 2 of 5 views alerts more often than one photograph at the same threshold (measured
    # about twice as often), so its views must score higher, by a little.
    assert spec.alert_threshold < t < spec.alert_threshold + 0.05
    # Checked on walk-bys not used to make it: at each photograph threshold the tracks, judged at their
    # track threshold, exceed no more impostor comparisons than the photographs did, give or take 25%.
    checks = data["validation"]["rules"]["2/5"]
    assert checks and {v["truth"] for v in data["validation"]["videos"]}.isdisjoint({v["truth"] for v in data["videos"]})
    for p in checks:
        assert p["track_exceeding_at_track_threshold"] <= 1.25 * p["photo_exceeding"]
        assert p["track_exceeding_at_threshold"] >= p["track_exceeding_at_track_threshold"]
