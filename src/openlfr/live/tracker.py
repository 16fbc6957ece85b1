"""Following faces across camera frames so each person is one track, not one event per frame.

Tracking lets the live pipeline compute templates for a face only a few times, compare them
against the watchlist as one subject, and, above all, know when a person has left: the tracker
hands every ended track back to its caller exactly once and keeps no reference to it, so that the
caller can delete the biometric data held for it at once (people who raise no alert must not be
retained).

Association is SORT/ByteTrack-like, without scipy:

* each track carries a constant-velocity motion state (centre and size velocities, smoothed over
  time), so a face is compared with where it should be *now*, which also works when frames are
  skipped and timestamps jump;
* a detection matches a track on IoU with the predicted box, or, when they barely overlap (small
  faces moving more than their own width between processed frames), on centre distance gated by
  face size, elapsed time and plausible speed;
* pairs are assigned greedily by cost, which for a handful of faces per frame gives the same result
  as the Hungarian algorithm in practice;
* detections scoring at or above ``low_score`` are associated first; weaker ones (blur, partial
  occlusion) may then only extend tracks left unmatched, never start new ones.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from openlfr.core.types import Detection

Box = tuple[float, float, float, float]  # x, y, width, height

# Predicted sizes stay within this factor of the last measured size: size velocities are noisy.
_MAX_PREDICTED_SCALE = 1.5
# Box sizes jitter by several % from frame to frame, so the size velocity is smoothed this many times
# more slowly than the centre velocity, starting from zero rather than from one noisy difference.
_SIZE_SMOOTHING_FACTOR = 3.0
# Below this gap (seconds) two observations are treated as simultaneous: no velocity is derived.
_MIN_DT = 1e-3


@dataclass
class TrackState:
    """What the live pipeline holds about one tracked face while it is in view: the only copy of its
    biometric data, dropped (:meth:`clear`) when the track ends unless it raised an alert."""

    #: Templates computed for this face so far, and when the last one was (seconds).
    templates: int = 0
    templated_at: float | None = None
    #: Best view so far (inter-eye distance x detector score): later views must beat it to be templated.
    best_quality: float = 0.0
    #: Per template, the best score for each watchlist subject (the last M, for N-of-M confirmation).
    scores: deque[np.ndarray] = field(default_factory=deque)
    #: Quality-weighted sum of the templates (the pooled template, once normalised).
    pooled: np.ndarray | None = None
    #: Quality-weighted sum of the first model's parts: who this track has been following.
    identity: np.ndarray | None = None
    #: Watchlist subjects (indices) this track has raised an alert for.
    alerted: set[int] = field(default_factory=set)

    def clear(self) -> None:
        """Forget everything held about the face (its templates, scores and identity)."""
        self.templates, self.templated_at, self.best_quality = 0, None, 0.0
        self.scores.clear()
        self.pooled = self.identity = None
        self.alerted.clear()

    @property
    def empty(self) -> bool:
        return self.templates == 0 and self.pooled is None and self.identity is None and not self.scores and not self.alerted


@dataclass(eq=False)
class Track:
    """One face followed across frames.

    Compared by identity (two tracks are never equal just because their fields agree). ``state``
    holds the pipeline's data about the face (:class:`TrackState`); it is dropped with the track,
    so nothing biometric is kept anywhere else.
    """

    id: int
    detection: Detection
    first_seen: float
    last_seen: float
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    velocity: tuple[float, float] = (0.0, 0.0)  # centre, px/s
    size_velocity: tuple[float, float] = (0.0, 0.0)  # width and height, px/s
    state: TrackState = field(default_factory=TrackState, repr=False)

    @property
    def box(self) -> Box:
        """The latest matched box."""
        return self.detection.box

    @property
    def has_velocity(self) -> bool:
        """Whether the motion state has been measured (needs two matches at different times)."""
        return self.hits >= 2

    def predicted_box(self, t: float) -> Box:
        """Where the face should be at time ``t``, extrapolating the smoothed velocities."""
        dt = max(0.0, t - self.last_seen)
        x, y, w, h = self.detection.box
        cx, cy = x + w / 2 + self.velocity[0] * dt, y + h / 2 + self.velocity[1] * dt
        pw = min(max(w + self.size_velocity[0] * dt, w / _MAX_PREDICTED_SCALE), w * _MAX_PREDICTED_SCALE)
        ph = min(max(h + self.size_velocity[1] * dt, h / _MAX_PREDICTED_SCALE), h * _MAX_PREDICTED_SCALE)
        return (cx - pw / 2, cy - ph / 2, pw, ph)


@dataclass(frozen=True)
class TrackUpdate:
    """What one frame did to the tracks.

    ``ended`` tracks are handed over once and already forgotten by the tracker: the caller must
    drop them (and their ``state``) unless they raised an alert.
    """

    active: list[Track]
    ended: list[Track]

    @property
    def confirmed(self) -> list[Track]:
        """Active tracks seen often enough to be worth a template."""
        return [track for track in self.active if track.confirmed]


class FaceTracker:
    """Associates each frame's detections with the faces already being followed.

    Parameter defaults, for faces 24–200 px wide in 1080p moving up to ~600 px/s with up to
    0.3 s between processed frames:

    * ``iou_threshold=0.3``: predicted and detected boxes of the same face overlap well above this
      even with detector jitter; below it the distance gate decides.
    * ``max_age=0.7`` s: time without a match after which a track ends; tolerates one missed
      detection at 0.3 s frame gaps while ending tracks of people who left well under a second later.
    * ``min_misses=2``: ...but only once it has also gone unmatched in this many processed frames.
      On a busy machine processed frames may be a second or more apart; a track must not end just
      because the frame that would have extended it was dropped (each new track may alert again).
    * ``max_gap=3.0`` s: a track unmatched this long ends whatever the miss count (the motion
      prediction is worthless by then).
    * ``min_hits=2``: one lone detection is often a false positive; two matches confirm a face.
    * ``low_score=0.6``: detections below this only extend tracks (ByteTrack). It equals the
      detector's default threshold, so to use the second stage run the detector lower (e.g. 0.3).
    * ``max_speed=900`` px/s: a track with no measured velocity yet may jump this far per second
      (600 px/s walking with a margin), so a small fast face is caught on its second sighting.
    * ``max_speed_change=450`` px/s: with a measured velocity, how far off the prediction a face may
      be per second elapsed (turning, accelerating, velocity still converging).
    * ``gate_sizes=1.0``: distance tolerance, in face sizes, that does not depend on time (jitter).
    * ``max_size_ratio=2.0``: a distance match needs the detection's size within this factor of the
      track's last one, so a near face and a far face passing each other are not swapped.
    * ``velocity_smoothing=0.1`` s: time constant of the velocity filter; frames further apart
      weigh more, so skipped frames don't slow convergence.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_age: float = 0.7,
        min_hits: int = 2,
        min_misses: int = 2,
        max_gap: float = 3.0,
        low_score: float = 0.6,
        max_speed: float = 900.0,
        max_speed_change: float = 450.0,
        gate_sizes: float = 1.0,
        max_size_ratio: float = 2.0,
        velocity_smoothing: float = 0.1,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold {iou_threshold} must be in (0, 1]")
        if max_age <= 0 or min_hits < 1 or min_misses < 0 or max_size_ratio < 1 or velocity_smoothing <= 0:
            raise ValueError("max_age and velocity_smoothing must be positive, min_hits and max_size_ratio >= 1")
        if max_speed < 0 or max_speed_change < 0 or gate_sizes < 0:
            raise ValueError("max_speed, max_speed_change and gate_sizes must not be negative")
        self.iou_threshold = iou_threshold
        self.max_age = max_age
        self.min_misses = min_misses
        self.max_gap = max(max_gap, max_age)
        self.min_hits = min_hits
        self.low_score = low_score
        self.max_speed = max_speed
        self.max_speed_change = max_speed_change
        self.gate_sizes = gate_sizes
        self.max_size_ratio = max_size_ratio
        self.velocity_smoothing = velocity_smoothing
        self._tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._last_t: float | None = None

    @property
    def tracks(self) -> list[Track]:
        """Tracks still alive, matched in the last frame or not (a copy)."""
        return list(self._tracks)

    def update(self, detections: Iterable[Detection], t: float) -> TrackUpdate:
        """Associate one frame's detections, taken at time ``t`` (seconds), with the tracks.

        Call it for every processed frame, even one with no detections: that is when tracks
        end. A timestamp earlier than the previous one is treated as equal to it (clock glitch),
        so tracks never see time go backwards.
        """
        if self._last_t is not None and t < self._last_t:
            t = self._last_t
        self._last_t = t

        # Expire first, so a face seen again after max_age starts a new track instead of reviving one.
        ended = [track for track in self._tracks if self._expired(track, t)]
        self._tracks = [track for track in self._tracks if not self._expired(track, t)]

        dets = list(detections)
        high = [d for d in dets if d.score >= self.low_score]
        low = [d for d in dets if d.score < self.low_score]

        unmatched_tracks = list(self._tracks)
        active: list[Track] = []
        for stage_dets, may_create in ((high, True), (low, False)):
            pairs, left_tracks, left_dets = self._associate(unmatched_tracks, stage_dets, t)
            for track, det in pairs:
                self._observe(track, det, t)
                active.append(track)
            unmatched_tracks = left_tracks
            if may_create:
                for det in left_dets:
                    track = Track(id=next(self._ids), detection=det, first_seen=t, last_seen=t)
                    track.confirmed = track.hits >= self.min_hits
                    self._tracks.append(track)
                    active.append(track)

        for track in unmatched_tracks:
            track.misses += 1
        active.sort(key=lambda track: track.id)
        return TrackUpdate(active=active, ended=ended)

    def _expired(self, track: Track, t: float) -> bool:
        gap = t - track.last_seen
        return gap > self.max_gap or (gap > self.max_age and track.misses >= self.min_misses)

    def flush(self) -> list[Track]:
        """End every remaining track (end of stream) and hand them back; the tracker forgets them."""
        ended, self._tracks = self._tracks, []
        return ended

    finish = flush

    def split(self, track: Track) -> Track:
        """Replace ``track`` by a new one at its current box: the caller found that the face it now
        follows is another person's (one person left as another appeared nearby and the motion gate
        joined them). The old track is forgotten; the caller ends it and drops its ``state``. The new
        track is confirmed (its face has been seen) but measures its own velocity afresh."""
        self._tracks = [t for t in self._tracks if t is not track]
        successor = Track(
            id=next(self._ids),
            detection=track.detection,
            first_seen=track.last_seen,
            last_seen=track.last_seen,
            confirmed=True,
        )
        self._tracks.append(successor)
        return successor

    def _observe(self, track: Track, det: Detection, t: float) -> None:
        """Update a track with its matched detection, refining the motion state."""
        dt = t - track.last_seen
        if dt >= _MIN_DT:
            (ox, oy, ow, oh), (nx, ny, nw, nh) = track.detection.box, det.box
            v = ((nx + nw / 2 - ox - ow / 2) / dt, (ny + nh / 2 - oy - oh / 2) / dt)
            sv = ((nw - ow) / dt, (nh - oh) / dt)
            if track.has_velocity:
                a = 1.0 - math.exp(-dt / self.velocity_smoothing)
                v = tuple(p + a * (m - p) for p, m in zip(track.velocity, v, strict=True))
            a = 1.0 - math.exp(-dt / (_SIZE_SMOOTHING_FACTOR * self.velocity_smoothing))
            sv = tuple(p + a * (m - p) for p, m in zip(track.size_velocity, sv, strict=True))
            # A wrong match must not fling the prediction across the frame.
            speed = math.hypot(*v)
            if speed > 2 * self.max_speed > 0:
                v = tuple(c * 2 * self.max_speed / speed for c in v)
            track.velocity = (float(v[0]), float(v[1]))
            track.size_velocity = (float(sv[0]), float(sv[1]))
            track.hits += 1
        # Simultaneous observations (same timestamp) refresh the box but are not a new sighting.
        track.detection = det
        track.last_seen = t
        track.misses = 0
        track.confirmed = track.confirmed or track.hits >= self.min_hits

    def _associate(
        self, tracks: Sequence[Track], dets: Sequence[Detection], t: float
    ) -> tuple[list[tuple[Track, Detection]], list[Track], list[Detection]]:
        """Greedy lowest-cost-first matching; returns the pairs and what is left on each side."""
        if not tracks or not dets:
            return [], list(tracks), list(dets)
        cost = self._cost(tracks, dets, t)
        rows, cols = np.nonzero(np.isfinite(cost))
        order = np.argsort(cost[rows, cols], kind="stable")
        used_t: set[int] = set()
        used_d: set[int] = set()
        pairs: list[tuple[Track, Detection]] = []
        for k in order:
            i, j = int(rows[k]), int(cols[k])
            if i in used_t or j in used_d:
                continue
            used_t.add(i)
            used_d.add(j)
            pairs.append((tracks[i], dets[j]))
        left_tracks = [tr for i, tr in enumerate(tracks) if i not in used_t]
        left_dets = [d for j, d in enumerate(dets) if j not in used_d]
        return pairs, left_tracks, left_dets

    def _cost(self, tracks: Sequence[Track], dets: Sequence[Detection], t: float) -> np.ndarray:
        """Cost of each (track, detection) pair: ``1 - IoU`` in [0, 1) for overlap matches,
        ``1 + distance / allowance`` in [1, 2] for distance matches, infinite when gated out."""
        pred = np.array([tr.predicted_box(t) for tr in tracks], dtype=np.float64)  # (T, 4)
        box = np.array([d.box for d in dets], dtype=np.float64)  # (D, 4)
        px, py, pw, ph = (pred[:, k : k + 1] for k in range(4))  # (T, 1)
        dx, dy, dw, dh = (box[None, :, k] for k in range(4))  # (1, D)

        iw = np.clip(np.minimum(px + pw, dx + dw) - np.maximum(px, dx), 0.0, None)
        ih = np.clip(np.minimum(py + ph, dy + dh) - np.maximum(py, dy), 0.0, None)
        inter = iw * ih
        union = pw * ph + dw * dh - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)

        dist = np.hypot(px + pw / 2 - dx - dw / 2, py + ph / 2 - dy - dh / 2)
        p_size = np.sqrt(np.maximum(pw * ph, 1e-9))
        d_size = np.sqrt(np.maximum(dw * dh, 1e-9))
        # Sizes are compared with the last measured one: the extrapolated size is the less certain.
        last_size = np.array([[math.sqrt(max(tr.box[2] * tr.box[3], 1e-9))] for tr in tracks])
        ratio = d_size / last_size
        size_ok = (ratio <= self.max_size_ratio) & (ratio >= 1.0 / self.max_size_ratio)
        elapsed = np.array([[max(0.0, t - tr.last_seen)] for tr in tracks])
        speed = np.array([[self.max_speed_change if tr.has_velocity else self.max_speed] for tr in tracks])
        allowance = np.maximum(self.gate_sizes * (p_size + d_size) / 2 + speed * elapsed, 1e-9)
        near = size_ok & (dist <= allowance)

        return np.where(iou >= self.iou_threshold, 1.0 - iou, np.where(near, 1.0 + dist / allowance, np.inf))
