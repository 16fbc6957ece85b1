"""Detection recall on synthetic 1080p frames of LFW faces: the matching rules, and the targets.

Targets (default YuNet pack, default score threshold): at least 98% of faces 40 px wide found and
at least 90% of faces 24 px wide (the smallest face size NEC claims). Timing is measured by
``benchmarks/engine.py``, never asserted here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openlfr.core.types import Detection
from openlfr.evaluation.detection import RecallResult, iou, match, measure_recall
from openlfr.simulation import FaceTruth


@pytest.fixture(scope="module")
def recall(engine, lfw_root: Path) -> dict[int, RecallResult]:
    # 8 frames x 16 faces = 128 faces per size, different people in every frame.
    results = measure_recall(engine, lfw_root, (24, 40), frames=8, faces_per_frame=16, seed=2024)
    return {int(r.face_width_px): r for r in results}


def detection(box: tuple[float, float, float, float], score: float = 0.9) -> Detection:
    return Detection(box=box, landmarks=np.zeros((5, 2), dtype=np.float32), score=score)


def truth(box: tuple[float, float, float, float]) -> FaceTruth:
    x, y, w, h = box
    patch = (int(x) - 5, int(y) - 5, int(w) + 10, int(h) + 10)
    return FaceTruth("p", None, box, np.zeros((5, 2), dtype=np.float32), patch)


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_match_is_one_to_one_and_prefers_the_best_overlap() -> None:
    truths = [(0, 0, 20, 20), (100, 0, 20, 20)]
    dets = [(1, 1, 20, 20), (0, 0, 20, 20), (100, 0, 20, 20), (300, 300, 20, 20)]
    matches, unmatched = match(truths, dets)
    assert sorted((t, d) for t, d, _ in matches) == [(0, 1), (1, 2)]
    assert unmatched == [0, 3]


def test_match_threshold() -> None:
    # A box of the same size shifted by half its width has IoU 1/3: found at 0.3, not at 0.5.
    assert len(match([(0, 0, 24, 24)], [(12, 0, 24, 24)])[0]) == 1
    assert len(match([(0, 0, 24, 24)], [(12, 0, 24, 24)], iou_threshold=0.5)[0]) == 0


def test_recall_result_counts() -> None:
    result = RecallResult(face_width_px=24)
    truths = [truth((10, 10, 24, 30)), truth((200, 10, 24, 30))]
    dets = [detection((10, 11, 24, 30)), detection((12, 12, 20, 26)), detection((900, 500, 24, 30))]
    result.add_frame(truths, dets, 50.0)
    assert (result.faces, result.found, result.recall) == (2, 1, 0.5)
    assert result.false_detections == 2  # the duplicate on the first face and the background one
    assert result.false_in_patches == 1  # the duplicate lies inside the first face's patch
    assert result.false_per_frame == 2.0
    assert result.missed == [truths[1]]
    assert result.mean_detect_ms == 50.0


@pytest.mark.data
@pytest.mark.slow
def test_recall_40px(recall: dict[int, RecallResult]) -> None:
    r = recall[40]
    assert r.faces == 128
    assert r.recall >= 0.98, r.as_dict()
    assert r.false_per_frame <= 1.0, r.as_dict()


@pytest.mark.data
@pytest.mark.slow
def test_recall_24px(recall: dict[int, RecallResult]) -> None:
    r = recall[24]
    assert r.recall >= 0.90, r.as_dict()
    assert r.false_per_frame <= 1.0, r.as_dict()
    # Found faces are found where they are, not merely somewhere near.
    assert r.mean_iou >= 0.6, r.as_dict()
