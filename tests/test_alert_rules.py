"""The alert rules of the live pipeline, on synthetic templates: N-of-M, once per track, best subject only."""

from __future__ import annotations

import numpy as np

from openlfr.core.types import Detection, Face
from openlfr.live.pipeline import CameraPipeline, PipelineConfig, Watchlist
from openlfr.live.tracker import Track, TrackState
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


def pipeline(config: PipelineConfig, engine: object = None) -> tuple[CameraPipeline, list]:
    watchlist = Watchlist.build(
        np.stack([basis(0), basis(1), basis(2)]), ["A", "B", "B"], ["Alice", "Bob", "Bob"], ["c", "c", "c"], [10, 20, 21]
    )
    events: list = []
    return CameraPipeline("cam", engine=engine, watchlist=watchlist, config=config, on_alert=events.append), events  # type: ignore[arg-type]


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
    assert not t.state.empty and t.state.templates == 3 and t.state.pooled is not None
    p._end([t])
    assert t.state.empty and t.state == TrackState() and p.stats.faces_seen == 1


class StubEngine:
    """Finds the faces it is shown and templates each as the probe given with it: the pipeline's own
    detect → track → template → compare path, without models."""

    second = None

    def __init__(self, min_alert_inter_eye_px: float | None) -> None:
        self.min_alert_inter_eye_px = min_alert_inter_eye_px
        self.shown: list[tuple[Detection, np.ndarray]] = []
        self.templated: list[float] = []  # inter-eye distance of every view templated

    def detect(self, image: np.ndarray, scale: float = 1.0) -> list[Detection]:
        return [d for d, _ in self.shown]  # in full-resolution coordinates, whatever the search scale

    def refine(self, image: np.ndarray, detection: Detection) -> Detection:
        return detection

    def describe(self, image: np.ndarray, detections: list[Detection], second_opinion: bool = True) -> list[Face]:
        template = {id(d): t for d, t in self.shown}
        self.templated += [d.inter_eye_px for d in detections]
        return [Face(d, None, template[id(d)]) for d in detections]  # type: ignore[arg-type]

    def first_model_part(self, template: np.ndarray) -> np.ndarray:
        return template


def square_face(cx: float, cy: float, size: float) -> Detection:
    """A frontal face ``size`` px wide centred at (cx, cy); its eyes are 0.4 x size apart."""
    rel = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    x, y = cx - size / 2, cy - size / 2
    return Detection((x, y, size, size), (np.array([x, y]) + rel * size).astype(np.float32), 0.9)


def run_frames(p: CameraPipeline, engine: StubEngine, frames: list[list[tuple[Detection, np.ndarray]]]) -> list[int]:
    """Feed one list of (face, template) per frame, 0.1 s apart; the frame index of every alert."""
    alerted = []
    for n, faces in enumerate(frames):
        engine.shown = faces
        if p.process(Frame(np.zeros((1080, 1920, 3), np.uint8), n, n * 0.1, n * 0.1)):
            alerted.append(n)
    p.finish()
    return alerted


def test_faces_below_the_pack_minimum_are_tracked_and_counted_but_never_alerted() -> None:
    """Two watchlisted people in view, each matching strongly: the one whose eyes are 12 px apart (below
    the pack's 16 px) is followed and counted but never compared; the one at 32 px is alerted once."""
    engine = StubEngine(min_alert_inter_eye_px=16.0)
    p, events = pipeline(PipelineConfig(threshold=0.45), engine)
    frames = [
        [(square_face(300 + 20 * n, 400, 30), probe({0: 0.9})), (square_face(1200 + 20 * n, 500, 80), probe({1: 0.9}))]
        for n in range(20)
    ]
    run_frames(p, engine, frames)
    assert [e.reference for e in events] == ["B"]
    assert p.stats.faces_seen == 2  # both faces seen, the small one included
    assert p.stats.views_too_small > 0 and min(engine.templated) >= 16.0  # the small face was never templated


def test_pack_minimum_comes_from_the_engine_unless_configured() -> None:
    by_pack, _ = pipeline(PipelineConfig(threshold=0.45), StubEngine(min_alert_inter_eye_px=16.0))
    configured, _ = pipeline(PipelineConfig(threshold=0.45, min_alert_inter_eye_px=0), StubEngine(min_alert_inter_eye_px=16.0))
    assert by_pack.min_alert_inter_eye_px == 16.0 and configured.min_alert_inter_eye_px == 0.0


def test_a_face_is_alerted_once_it_comes_close_enough() -> None:
    """One person approaching: no alert while their eyes are under the minimum apart, then the same track
    is compared as soon as its views are large enough."""
    engine = StubEngine(min_alert_inter_eye_px=16.0)
    p, events = pipeline(PipelineConfig(threshold=0.45), engine)
    sizes = [30 + 2 * n for n in range(20)]  # eyes 12 px apart growing to 27 px; 16 px reached at n = 5
    alerted = run_frames(p, engine, [[(square_face(600 + 10 * n, 500, s), probe({0: 0.9}))] for n, s in enumerate(sizes)])
    assert [e.reference for e in events] == ["A"] and alerted[0] >= 6  # two compared views needed (2 of 5)
    assert p.stats.faces_seen == 1 and len(p.tracker.tracks) == 0


def test_views_are_judged_at_the_track_threshold() -> None:
    """A track calibrated to alert no more often than a photograph at 0.45 needs its views to reach 0.5."""
    views = [probe({0: 0.48})] * 3
    p, events = pipeline(PipelineConfig(threshold=0.45))
    feed(p, track(), views)
    assert [e.reference for e in events] == ["A"]
    p, events = pipeline(PipelineConfig(threshold=0.45, track_threshold=0.5))
    feed(p, track(), views)
    assert events == []
    feed(p, track(), [probe({0: 0.52})] * 2)
    assert [e.reference for e in events] == ["A"]
