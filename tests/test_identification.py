"""LFW identification protocol: the split is sound, and ranks on a subset are plausible."""

from __future__ import annotations

import pytest

from openlfr.evaluation import identification


def test_split_keeps_people_apart() -> None:
    names = [f"P{p}/P{p}_{i:04d}.jpg" for p in range(40) for i in range(1, 2 + p % 3)]
    gallery, mated, non_mated = identification.split(names, holdout=0.25, seed=1)
    gallery_people = {n.split("/")[0] for n in gallery}
    held_people = {n.split("/")[0] for n in non_mated}
    assert not gallery_people & held_people
    assert {n.split("/")[0] for n in mated} <= gallery_people
    assert len(gallery) == len(gallery_people)  # one image per enrolled person
    assert sorted(gallery + mated + non_mated) == sorted(names)
    assert identification.split(names, 0.25, 1) == (gallery, mated, non_mated)  # seeded: repeatable


@pytest.mark.slow
def test_lfw_subset_ranks(engine, lfw_root) -> None:
    result = identification.evaluate(engine, lfw_root, holdout=0.2, seed=0, limit_people=400)
    summary = result.as_dict()
    assert result.mated_probes > 100 and result.non_mated_probes > 20
    assert summary["rank_hit_rate"]["rank_1"] >= 0.9
    assert summary["rank_hit_rate"]["rank_20"] >= summary["rank_hit_rate"]["rank_1"]
    # Strangers rarely reach the default live threshold against a 350-person gallery.
    assert summary["non_mated_share_above"]["0.45"] <= 0.05
    assert summary["pack_threshold"] == engine.alert_threshold
    share = summary["non_mated_share_above"][str(engine.alert_threshold)]
    assert share == summary["non_mated_share_at_pack_threshold"] <= summary["non_mated_share_above"]["0.4"]
