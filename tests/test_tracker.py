"""The live face tracker: identities kept through motion and skipped frames, ended tracks forgotten."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from openlfr.core.types import Detection
from openlfr.live.tracker import FaceTracker, Track

FRAME_W, FRAME_H = 1920, 1080


def face(cx: float, cy: float, size: float, score: float = 0.9) -> Detection:
    """A synthetic square face centred at (cx, cy), landmarks placed where a frontal face has them."""
    x, y = cx - size / 2, cy - size / 2
    rel = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    landmarks = (np.array([x, y]) + rel * size).astype(np.float32)
    return Detection(box=(x, y, size, size), landmarks=landmarks, score=score)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def frame_times(duration: float, gap: float | tuple[float, float], rng: np.random.Generator) -> list[float]:
    """Timestamps from 0 to ``duration``, a fixed gap or a random one in [lo, hi] (skipped frames)."""
    times, t = [], 0.0
    while t <= duration:
        times.append(t)
        t += gap if isinstance(gap, float) else float(rng.uniform(*gap))
    return times


@pytest.mark.parametrize(
    ("size", "speed", "gap", "direction"),
    [
        (24, 600.0, 0.2, (1.0, 0.0)),  # small and fast: moves 5 widths between processed frames
        (24, 600.0, 0.3, (-1.0, 0.0)),
        (24, 600.0, 1 / 30, (1.0, 0.0)),
        (24, 600.0, (1 / 30, 0.3), (0.8, 0.6)),  # irregular gaps, diagonal
        (48, 450.0, (1 / 30, 0.3), (-0.6, 0.8)),
        (80, 300.0, 0.1, (1.0, 0.0)),
        (200, 600.0, 1 / 30, (1.0, 0.0)),
        (200, 600.0, 0.3, (-1.0, 0.0)),
        (120, 0.0, 0.2, (1.0, 0.0)),  # standing still
    ],
)
def test_single_moving_face_keeps_one_id(
    size: float, speed: float, gap: float | tuple[float, float], direction: tuple[float, float]
) -> None:
    rng = np.random.default_rng(7)
    tracker = FaceTracker()
    start = np.array([FRAME_W / 2, FRAME_H / 2]) - np.array(direction) * 900 * (speed > 0)
    times = frame_times(1800 / speed if speed else 3.0, gap, rng)
    ids = set()
    for t in times:
        jitter = rng.normal(0.0, 0.03 * size, size=2)  # detector noise, a few % of the face size
        cx, cy = start + np.array(direction) * speed * t + jitter
        det = face(cx, cy, size * float(rng.uniform(0.95, 1.05)))
        update = tracker.update([det], t)
        assert update.ended == []
        assert len(update.active) == 1
        assert update.active[0].detection is det
        ids.add(update.active[0].id)
    assert len(ids) == 1
    (track,) = tracker.flush()
    assert track.hits == len(times)
    assert track.first_seen == 0.0 and track.last_seen == times[-1]
    if speed:  # the motion state has learnt the velocity
        assert np.allclose(track.velocity, np.array(direction) * speed, atol=0.25 * speed)


@pytest.mark.parametrize(
    ("size", "speed", "gap", "offset"),
    [(80, 400.0, 1 / 30, 40), (80, 400.0, 0.2, 40), (100, 600.0, 0.1, 30), (24, 600.0, 0.2, 12), (40, 300.0, 0.3, 15)],
)
def test_crossing_faces_keep_their_ids(size: float, speed: float, gap: float, offset: float) -> None:
    rng = np.random.default_rng(3)
    tracker = FaceTracker()
    label_of_id: dict[int, str] = {}
    overlapped = False
    for t in frame_times(1400 / speed, gap, rng):
        a_box = (260 + speed * t, 500.0)
        b_box = (1660 - speed * t, 500.0 + offset)
        a = face(*(np.array(a_box) + rng.normal(0, 0.02 * size, 2)), size)
        b = face(*(np.array(b_box) + rng.normal(0, 0.02 * size, 2)), size * 1.1)
        overlapped |= iou(a.box, b.box) > 0.1
        update = tracker.update([b, a] if t % 2 < 1 else [a, b], t)
        assert update.ended == []
        assert len(update.active) == 2
        for track in update.active:
            label = "a" if track.detection is a else "b"
            assert label_of_id.setdefault(track.id, label) == label
    assert len(label_of_id) == 2
    assert overlapped or gap > 0.1  # the paths really cross (with big gaps the overlap may fall between frames)


def test_face_gone_longer_than_max_age_ends_once_and_returns_as_new_track() -> None:
    tracker = FaceTracker(max_age=0.5)
    for t in np.arange(0.0, 1.0, 1 / 30):
        update = tracker.update([face(600, 400, 80)], float(t))
    (track,) = update.active
    last = track.last_seen
    # Within max_age: the track coasts, nothing ends.
    for dt in (0.1, 0.2, 0.3, 0.4):
        update = tracker.update([], last + dt)
        assert update.ended == [] and update.active == []
        assert tracker.tracks == [track]
    assert track.misses == 4
    update = tracker.update([], last + 0.55)
    assert update.ended == [track]
    assert tracker.tracks == []
    for t in (last + 0.6, last + 0.7):
        assert tracker.update([], t).ended == []
    update = tracker.update([face(600, 400, 80)], last + 0.8)
    (new,) = update.active
    assert new.id != track.id and new.id > track.id
    assert new.hits == 1 and not new.confirmed
    assert tracker.flush() == [new]


def test_face_missed_briefly_keeps_its_id() -> None:
    tracker = FaceTracker(max_age=0.5)
    first = tracker.update([face(100, 400, 60)], 0.0).active[0]
    tracker.update([face(130, 400, 60)], 0.1)
    for t in (0.2, 0.3, 0.4):  # missed by the detector; the face keeps moving at 300 px/s
        assert tracker.update([], t).active == []
    update = tracker.update([face(250, 400, 60)], 0.5)
    assert update.active == [first] and update.ended == []
    assert first.misses == 0 and first.hits == 3


def test_face_changing_direction_is_followed_and_velocity_adapts() -> None:
    tracker = FaceTracker()
    pos, ids = np.array([300.0, 300.0]), set()
    for k in range(31):  # 3 s at 10 processed frames/s: right, then diagonally down, at 300 px/s
        velocity = np.array([300.0, 0.0]) if k <= 10 else np.array([212.0, 212.0])
        if k:
            pos = pos + velocity * 0.1
        (track,) = tracker.update([face(*pos, 60)], k * 0.1).active
        ids.add(track.id)
        if k in (10, 30):
            assert track.velocity == pytest.approx(tuple(velocity), abs=20.0)
    assert len(ids) == 1


def test_far_face_replacing_a_near_one_is_a_new_track() -> None:
    """A small face where a big one just was is someone else (size gate), even though it is close."""
    tracker = FaceTracker()
    for t in (0.0, 0.1, 0.2):
        (near,) = tracker.update([face(900, 500, 200)], t).active
    update = tracker.update([face(950, 520, 40)], 0.3)
    assert [tr.id for tr in update.active] == [near.id + 1]
    assert tracker.update([face(900, 500, 200)], 0.4).active[0] is near


def test_stalled_stream_does_not_revive_old_tracks() -> None:
    tracker = FaceTracker()
    old = tracker.update([face(500, 500, 50)], 0.0).active[0]
    tracker.update([face(510, 500, 50)], 0.1)
    update = tracker.update([face(900, 500, 50)], 5.0)  # next frame five seconds later
    assert update.ended == [old]
    assert [tr.id for tr in update.active] == [old.id + 1]


def test_tracker_keeps_no_reference_to_ended_tracks() -> None:
    tracker = FaceTracker(max_age=0.5)
    track = None
    for i in range(5):
        update = tracker.update([face(300 + 5 * i, 300, 80), face(1200, 600, 80)], i / 30)
    track = next(tr for tr in update.active if tr.detection.box[0] < 1000)
    template = np.ones(128, dtype=np.float32)
    track.state.pooled = template
    track_ref, template_ref = weakref.ref(track), weakref.ref(template)
    del template

    ended = []
    for t in (0.5, 0.8, 0.9):  # the other face stays; ours disappears (missed in two frames, 0.5 s gone)
        update = tracker.update([face(1200, 600, 80)], t)
        ended += update.ended
    assert ended == [track]
    del track, ended, update
    tracker.update([face(1200, 600, 80)], 1.0)  # the tracker goes on working
    gc.collect()
    assert track_ref() is None
    assert template_ref() is None
    assert len(tracker.tracks) == 1


def test_flush_ends_everything_and_forgets_it() -> None:
    tracker = FaceTracker()
    update = tracker.update([face(200, 200, 60), face(800, 200, 60), face(1400, 600, 120)], 0.0)
    tracker.update([face(202, 200, 60)], 0.1)
    refs = [weakref.ref(tr) for tr in update.active]
    ids = sorted(tr.id for tr in update.active)
    del update
    ended = tracker.flush()
    assert sorted(tr.id for tr in ended) == ids
    assert tracker.tracks == []
    del ended
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert tracker.flush() == [] and tracker.finish() == []
    # The tracker is usable after a flush and never reuses an id.
    (track,) = tracker.update([face(200, 200, 60)], 0.2).active
    assert track.id > max(ids)


def test_low_score_detections_extend_tracks_but_never_create_them() -> None:
    tracker = FaceTracker(low_score=0.6, max_age=0.5)
    for t in (0.0, 0.1, 0.2):  # a weak detection alone never starts a track
        update = tracker.update([face(400, 400, 60, score=0.4)], t)
        assert update.active == [] and tracker.tracks == []

    (track,) = tracker.update([face(800, 400, 60, score=0.9)], 0.3).active
    # Blurred for a second: weak detections keep the track alive well past max_age.
    for i, t in enumerate(np.arange(0.4, 1.5, 0.1)):
        weak = face(800 + 10 * (i + 1), 400, 60, score=0.35)
        far_weak = face(200, 900, 60, score=0.5)  # no track nearby: ignored
        update = tracker.update([far_weak, weak], float(t))
        assert update.active == [track] and update.ended == []
        assert track.detection is weak
    assert track.hits == 12 and track.confirmed
    assert len(tracker.tracks) == 1

    # A strong detection wins the track over a weak one at the same place; the weak one is dropped.
    strong, weak = face(920, 400, 60, score=0.95), face(921, 401, 60, score=0.3)
    update = tracker.update([weak, strong], 1.5)
    assert update.active == [track] and track.detection is strong
    assert tracker.tracks == [track]


def test_state_is_per_track_and_kept_while_the_track_lives() -> None:
    tracker = FaceTracker()
    a, b = tracker.update([face(300, 300, 80), face(1200, 300, 80)], 0.0).active
    assert a.state.empty and b.state.empty and a.state is not b.state
    a.state.scores.append(np.zeros(4))
    a.state.best_quality = 0.42
    update = tracker.update([face(305, 300, 80), face(1195, 300, 80)], 0.1)
    assert update.active == [a, b]
    assert a.state.best_quality == 0.42 and len(a.state.scores) == 1
    assert b.state.empty
    assert update.confirmed == [a, b]


def test_ids_are_unique_and_increasing_and_confirmation_needs_min_hits() -> None:
    tracker = FaceTracker(min_hits=3)
    seen: list[int] = []
    for k in range(4):
        (track,) = tracker.update([face(200 + 400 * k, 500, 60)], 3.5 * k).active  # each one ends the previous
        seen.append(track.id)
    assert seen == sorted(set(seen))
    t0 = 14.0
    track = tracker.update([face(100, 100, 60)], t0).active[0]
    assert not track.confirmed
    tracker.update([face(102, 100, 60)], t0 + 0.1)
    assert not track.confirmed
    update = tracker.update([face(104, 100, 60)], t0 + 0.2)
    assert track.confirmed and update.confirmed == [track]
    assert FaceTracker(min_hits=1).update([face(1, 1, 30)], 0.0).confirmed != []


def test_irregular_and_backward_timestamps_are_tolerated() -> None:
    tracker = FaceTracker()
    track = tracker.update([face(500, 500, 60)], 10.0).active[0]
    tracker.update([face(520, 500, 60)], 10.1)
    tracker.update([face(540, 500, 60)], 10.1)  # duplicate timestamp: refresh, no infinite velocity
    update = tracker.update([face(545, 500, 60)], 10.05)  # clock went back: treated as 10.1
    assert update.active == [track] and update.ended == []
    assert all(np.isfinite(track.velocity)) and track.last_seen == 10.1
    update = tracker.update([face(600, 500, 60)], 10.3)
    assert update.active == [track]


def test_predicted_box_follows_velocity() -> None:
    tracker = FaceTracker()
    tracker.update([face(100, 100, 50)], 0.0)
    (track,) = tracker.update([face(110, 95, 50)], 0.1).active
    assert track.velocity == pytest.approx((100.0, -50.0))
    x, y, w, h = track.predicted_box(0.3)
    assert (x + w / 2, y + h / 2) == pytest.approx((130.0, 85.0))
    assert (w, h) == pytest.approx((50.0, 50.0))
    assert isinstance(track, Track) and track.predicted_box(0.1) == pytest.approx(track.box)


def test_split_replaces_a_track_with_a_fresh_confirmed_one() -> None:
    tracker = FaceTracker()
    for n in range(4):
        (old,) = tracker.update([face(500 + 60 * n, 500, 80)], n * 0.1).active
    assert old.has_velocity and old.confirmed
    new = tracker.split(old)
    assert new.id > old.id and new.confirmed and not new.has_velocity and new.state.empty
    assert new.box == old.box and new.first_seen == new.last_seen == old.last_seen
    assert tracker.tracks == [new]  # the old track is forgotten; the caller ends it
    (follow,) = tracker.update([face(500 + 60 * 4, 500, 80)], 0.4).active
    assert follow is new and new.has_velocity


def test_a_track_survives_dropped_frames_on_a_busy_machine() -> None:
    """Processed frames a second apart (most dropped) and one missed detection: still one track.
    Before, a track ended after max_age whatever the frame gap, and each new track alerted again."""
    tracker = FaceTracker()
    ids = set()
    x = 100.0
    for k, t in enumerate((0.0, 0.9, 1.8, 2.7, 3.6, 4.5)):
        x = 100.0 + 300.0 * t  # walking 300 px/s
        detections = [] if k == 3 else [face(x, 500, 90)]  # the detector misses the face once
        update = tracker.update(detections, t)
        assert not update.ended
        ids |= {tr.id for tr in update.active}
    assert len(ids) == 1
    # A face gone for good still ends: two missed frames past max_age, or max_gap in any case.
    assert tracker.update([], 5.4).ended == [] and tracker.update([], 6.3).ended == []
    assert len(tracker.update([], 7.2).ended) == 1
    tracker.update([face(100, 500, 90)], 8.0)
    assert len(tracker.update([], 11.5).ended) == 1  # max_gap: 3.5 s unseen, no miss counted yet
