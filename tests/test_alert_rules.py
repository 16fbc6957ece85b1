"""The alert rules of the live pipeline, on synthetic templates: N-of-M, once per track, best subject only."""

from __future__ import annotations

import numpy as np

from openlfr.core.types import Detection
from openlfr.live.pipeline import CameraPipeline, PipelineConfig, Watchlist
from openlfr.live.tracker import Track
from openlfr.media.video import Frame

DIM = 16


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def basis(i: int) -> np.ndarray:
    e = np.zeros(DIM, np.float32)
    e[i] = 1.0
    return e


def probe(scores: dict[int, float]) -> np.ndarray:
    """A unit template whose cosine with basis vector i is scores[i] (the rest goes to an unused axis)."""
    v = np.zeros(DIM, np.float32)
    for i, s in scores.items():
        v[i] = s
    v[DIM - 1] = np.sqrt(max(0.0, 1 - float((v**2).sum())))
    return v


def pipeline(config: PipelineConfig) -> tuple[CameraPipeline, list]:
    watchlist = Watchlist.build(
        np.stack([basis(0), basis(1), basis(2)]), ["A", "B", "B"], ["Alice", "Bob", "Bob"], ["c", "c", "c"], [10, 20, 21]
    )
    events: list = []
    return CameraPipeline("cam", engine=None, watchlist=watchlist, config=config, on_alert=events.append), events  # type: ignore[arg-type]


def feed(p: CameraPipeline, track: Track, templates: list[np.ndarray]) -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    for n, t in enumerate(templates):
        best, rows = p.watchlist.subject_scores(t[None])
        p._observe(track, t, best[0], rows[0], Frame(image, n, float(n), float(n)))


def track() -> Track:
    det = Detection((50.0, 50.0, 60.0, 60.0), np.array([[65, 70], [95, 70], [80, 85], [68, 100], [92, 100]], np.float32), 0.9)
    return Track(id=1, detection=det, first_seen=0.0, last_seen=0.0)


def test_watchlist_groups_images_by_subject() -> None:
    p, _ = pipeline(PipelineConfig(threshold=0.45))
    best, rows = p.watchlist.subject_scores(probe({0: 0.2, 1: 0.3, 2: 0.7})[None])
    assert p.watchlist.references == ["A", "B"]
    assert np.allclose(best[0], [0.2, 0.7], atol=1e-5) and rows[0][1] == 2


def test_needs_n_of_m_and_alerts_once() -> None:
    p, events = pipeline(PipelineConfig(threshold=0.45, confirm_n=2, confirm_m=3))
    t = track()
    feed(p, t, [probe({0: 0.5}), probe({0: 0.3})])
    assert events == []  # one hit of two so far
    feed(p, t, [probe({0: 0.6})])
    assert [e.reference for e in events] == ["A"] and events[0].entry_id == 10
    feed(p, t, [probe({0: 0.7})] * 5)
    assert len(events) == 1  # never again for this track and subject


def test_hits_outside_the_window_do_not_count() -> None:
    p, events = pipeline(PipelineConfig(threshold=0.45, confirm_n=2, confirm_m=2))
    feed(p, track(), [probe({0: 0.5}), probe({0: 0.1}), probe({0: 0.5}), probe({0: 0.1})])
    assert events == []


def test_face_resembling_two_subjects_names_only_the_closer() -> None:
    p, events = pipeline(PipelineConfig(threshold=0.45, confirm_n=2, confirm_m=5))
    feed(p, track(), [probe({0: 0.48, 2: 0.62})] * 3)
    assert [e.reference for e in events] == ["B"] and events[0].entry_id == 21


def test_pooled_template_finds_a_consistent_but_weak_match() -> None:
    noisy = [probe({0: 0.44, 3 + i: 0.6}) for i in range(4)]  # every view just under the threshold
    p, events = pipeline(PipelineConfig(threshold=0.45, pool_templates=False))
    feed(p, track(), noisy)
    assert events == []
    p, events = pipeline(PipelineConfig(threshold=0.45, pool_templates=True))
    feed(p, track(), noisy)  # their mean keeps the shared part and averages the noise away
    assert [e.reference for e in events] == ["A"]


def test_ended_tracks_keep_nothing() -> None:
    p, _ = pipeline(PipelineConfig(threshold=0.45))
    t = track()
    feed(p, t, [probe({0: 0.1})] * 3)
    assert t.state
    p._end([t])
    assert t.state == {} and p.stats.faces_seen == 1
