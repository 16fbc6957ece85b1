"""Track-level decisions, calibrated as decisions of their own.

A pack's alert threshold is calibrated on single photographs: at threshold t a stranger's photograph
scores above some watchlist subject with probability FPIR(t). The live pipeline does not decide on one
photograph, though. It templates a track's views (ten or more per pass), and alerts when N of the
last M views score at or above t, or when the track's pooled template (the quality-weighted mean of
its views) does. A track has many chances, so its false-alert rate is not a single image's.

This module measures that, on walk-by videos rendered by :mod:`openlfr.simulation.walkby` (not the
ones the walk-by results are reported on):

1. :func:`record_tracks` runs the real pipeline (detection at reduced scale, tracker, refinement,
   template spacing and track splits) over every frame of a video, but keeps each track's views'
   full templates instead of deciding. Each track is named after the pass it follows, from the
   video's ground truth.
2. :func:`measure` compares every track with a gallery of every labelled identity, one to three
   photographs each as a watchlist holds them, except the identities the track shows (and their
   aliases): the impostor comparisons. Each track whose identity has other photographs is also
   compared with them: the mated comparison. For each decision rule it computes the rule's statistic
   (the highest threshold at which the rule would have alerted) and, from the same comparisons, the
   single-image statistic (the photograph the track shows, compared directly).
3. Per-track FPIR at watchlist size W is the chance that a stranger's track alerts on any of W
   subjects drawn at random from the gallery, computed exactly over draws (hypergeometric), and set
   beside the single-image FPIR at the same threshold. For a per-track FPIR target each rule's
   threshold is the lowest that keeps the measured rate at or below it; its TPIR is the share of
   mated tracks that alert there.

Everything here is evaluation code: it keeps biometric data of LFW people in memory, which the live
pipeline never does for anyone who raised no alert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from openlfr.core import FaceEngine
from openlfr.core.types import Detection, Face
from openlfr.errors import OpenLFRError
from openlfr.evaluation.aliases import AliasList
from openlfr.live.pipeline import AlertEvent, CameraPipeline, PipelineConfig, Watchlist
from openlfr.live.tracker import Track
from openlfr.media.video import Frame
from openlfr.simulation.frames import LFW_FACE_BOX
from openlfr.simulation.walkby import Scenario

Progress = Callable[[int, int], None] | None

#: Photographs per gallery subject, at most: the walk-by watchlists enrol one to three.
REFERENCES_PER_SUBJECT = 3


@dataclass
class TrackViews:
    """The views one track templated, in order, with the identity the ground truth gives them."""

    track_id: int
    templates: list[np.ndarray] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)
    #: Per view, the pass (index into the scenario's passes) whose face was nearest the view's box.
    passes: list[int] = field(default_factory=list)

    def identity_pass(self) -> int:
        """The pass most of the views show."""
        return max(set(self.passes), key=self.passes.count)


class _RecordingPipeline(CameraPipeline):
    """The live pipeline, deciding nothing: each templated view is completed with the second model's
    part (the pipeline itself asks only for views near the threshold) and kept with its track."""

    def __init__(self, engine: FaceEngine, config: PipelineConfig, locate: Callable[[Detection, float], int]) -> None:
        dummy = np.zeros((1, engine.dimension), np.float32)
        dummy[0, 0] = 1.0
        watchlist = Watchlist.build(dummy, ["none"], ["none"], ["none"], [0])
        super().__init__("calibration", engine, watchlist, config, on_alert=lambda _e: None)
        self.locate = locate
        self.recorded: dict[int, TrackViews] = {}

    def _observe(
        self,
        track: Track,
        template: np.ndarray,
        scores: np.ndarray,
        rows: np.ndarray,
        frame: Frame,
        detection: Detection | None = None,
        in_view: list | None = None,
    ) -> list[AlertEvent]:
        detection = detection or track.detection
        face = Face(detection, None, template.copy())  # type: ignore[arg-type]
        if self.engine.second is not None:
            self.engine.add_second_opinion(frame.image, [face])
        views = self.recorded.setdefault(track.id, TrackViews(track.id))
        views.templates.append(face.template)
        views.qualities.append(detection.inter_eye_px * detection.score)
        views.passes.append(self.locate(detection, frame.captured_at))
        return super()._observe(track, face.template, scores, rows, frame, detection, in_view)


def _locator(scenario: Scenario) -> Callable[[Detection, float], int]:
    """Which pass a detection at time t shows: the one whose face centre is nearest its box's centre."""
    bx, by, bw, bh = LFW_FACE_BOX
    passes = scenario.passes

    def locate(detection: Detection, t: float) -> int:
        x, y, w, h = detection.box
        cx, cy = x + w / 2, y + h / 2
        best, best_d = -1, math.inf
        for p in passes:
            if not p.t_enter - 0.1 <= t <= p.t_exit + 0.1:
                continue
            (px, py), width = p.at(t)
            scale = width / bw
            d = math.hypot(px + (bx + bw / 2) * scale - cx, py + (by + bh / 2) * scale - cy)
            if d < best_d:
                best, best_d = p.index, d
        return best

    return locate


def record_tracks(
    engine: FaceEngine, scenario: Scenario, video: Path, threshold: float, progress: Progress = None
) -> list[TrackViews]:
    """Every track's views in ``video`` (every frame processed, as the walk-by's deterministic mode does),
    templated as the live pipeline templates them at ``threshold`` (its spacing and budget rules)."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise OpenLFRError(f"cannot open walk-by video {video}")
    pipeline = _RecordingPipeline(engine, PipelineConfig(threshold=2.0), _locator(scenario))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or scenario.frames
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            t = index / scenario.fps
            pipeline.process(Frame(image, index, t, t))
            index += 1
            if progress:
                progress(index, total)
        pipeline.finish()
    finally:
        capture.release()
    return [v for v in pipeline.recorded.values() if v.templates and v.identity_pass() >= 0]


@dataclass(frozen=True)
class Rule:
    """A track decision: alert when ``n`` of the last ``m`` views reach the threshold, and/or when the
    pooled template of at least ``pooled_min`` views does (``pooled``: "or", "and" or None)."""

    n: int = 2
    m: int = 5
    pooled: str | None = None
    pooled_min: int = 3

    @property
    def name(self) -> str:
        votes = f"{self.n}-of-{self.m}"
        if self.pooled is None:
            return votes
        if self.n == 0:
            return f"pooled (>= {self.pooled_min} views)"
        return f"{votes} {self.pooled} pooled"


RULES = (
    Rule(1, 1),
    Rule(2, 5),
    Rule(3, 5),
    Rule(0, 0, "only"),
    Rule(2, 5, "or"),
    Rule(2, 5, "and"),
)


def _votes(scores: np.ndarray, n: int, m: int) -> np.ndarray:
    """Per view (rows) and subject: the n-th highest score among the view and the m-1 before it.
    Rows before the n-th view are -inf: the rule cannot fire yet."""
    k = scores.shape[0]
    out = np.full_like(scores, -np.inf)
    for i in range(n - 1, k):
        window = scores[max(0, i - m + 1) : i + 1]
        out[i] = np.sort(window, axis=0)[-n]
    return out


def rule_statistic(rule: Rule, view_scores: np.ndarray, pooled_scores: np.ndarray) -> np.ndarray:
    """The highest threshold at which ``rule`` alerts, per subject (columns), from the views' scores and
    the pooled template's score after each view (rows; -inf where fewer than ``pooled_min`` views)."""
    if rule.pooled == "only":
        return pooled_scores.max(axis=0)
    votes = _votes(view_scores, rule.n, rule.m)
    if rule.pooled == "or":
        votes = np.maximum(votes, pooled_scores)
    elif rule.pooled == "and":
        votes = np.minimum(votes, pooled_scores)
    return votes.max(axis=0)


@dataclass
class Comparisons:
    """Statistics per rule (and for the single shown photograph): impostor ones per track and gallery
    subject (-inf where the subject is the track's own identity or an alias of it), mated ones per
    track with other photographs of its identity."""

    subjects: list[str]
    impostor: dict[str, np.ndarray]  # rule name -> (tracks, subjects)
    mated: dict[str, np.ndarray]  # rule name -> (mated tracks,)
    views_per_track: list[int]


def _subject_max(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(scores, starts, axis=1)


def compare(
    tracks: list[TrackViews],
    scenario: Scenario,
    templates: np.ndarray,
    names: list[str],
    aliases: AliasList,
    rules: Iterable[Rule] = RULES,
    seed: int = 0,
) -> Comparisons:
    """Every track against every identity in ``names`` (image names ``<identity>/<file>``, with their
    ``templates``): up to three photographs per identity, never the one a track shows."""
    rules = list(rules)
    rng = np.random.default_rng(seed)
    by_identity: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        if np.any(templates[i]):
            by_identity.setdefault(name.split("/")[0], []).append(i)
    row_of = {name: i for i, name in enumerate(names)}
    subjects = sorted(by_identity)
    refs: list[int] = []
    starts: list[int] = []
    for s in subjects:
        rows = by_identity[s]
        starts.append(len(refs))
        refs += [rows[i] for i in sorted(rng.choice(len(rows), min(len(rows), REFERENCES_PER_SUBJECT), replace=False))]
    gallery = templates[refs]
    start_arr = np.asarray(starts)
    subject_index = {s: k for k, s in enumerate(subjects)}
    # Identities the alias list names as one person (or whose photographs are the same photograph):
    # comparing a track with them is not an impostor comparison.
    same_as: dict[str, set[str]] = {}
    for a, b, _kind in aliases.entries:
        ia, ib = a.split("/")[0], b.split("/")[0]
        same_as.setdefault(ia, set()).add(ib)
        same_as.setdefault(ib, set()).add(ia)
    keys = ["single photograph"] + [r.name for r in rules]
    impostor = {k: np.full((len(tracks), len(subjects)), -np.inf, np.float32) for k in keys}
    mated: dict[str, list[float]] = {k: [] for k in keys}
    for ti, track in enumerate(tracks):
        views = np.stack(track.templates)
        q = np.asarray(track.qualities, np.float32)[:, None]
        pooled = np.cumsum(views * q, axis=0)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        shown_pass = scenario.passes[track.identity_pass()]
        shown = _image_name(shown_pass.image)
        own = {scenario.passes[p].identity for p in set(track.passes) if p >= 0}
        excluded = np.zeros(len(subjects), bool)
        for s in own | {a for o in own for a in same_as.get(o, ())}:
            if s in subject_index:
                excluded[subject_index[s]] = True
        view_scores = _subject_max(views @ gallery.T, start_arr)
        pooled_scores = _subject_max(pooled @ gallery.T, start_arr)
        for rule in rules:
            pmin = rule.pooled_min
            ps = pooled_scores.copy()
            ps[: pmin - 1] = -np.inf
            stat = rule_statistic(rule, view_scores, ps)
            stat[excluded] = -np.inf
            impostor[rule.name][ti] = stat
        if shown in row_of and np.any(templates[row_of[shown]]):
            single = _subject_max(templates[row_of[shown]][None] @ gallery.T, start_arr)[0]
            single[excluded] = -np.inf
            impostor["single photograph"][ti] = single
        # Mated: the track's identity enrolled from up to three of its *other* photographs.
        identity = shown_pass.identity
        others = [r for r in by_identity.get(identity, []) if names[r] != shown]
        if others and shown in row_of and len(set(track.passes)) == 1:
            chosen = [others[i] for i in sorted(rng.choice(len(others), min(len(others), REFERENCES_PER_SUBJECT), replace=False))]
            mated_refs = templates[chosen]
            v = (views @ mated_refs.T).max(axis=1, keepdims=True)
            p = (pooled @ mated_refs.T).max(axis=1, keepdims=True)
            mated["single photograph"].append(float((templates[row_of[shown]] @ mated_refs.T).max()))
            for rule in rules:
                pp = p.copy()
                pp[: rule.pooled_min - 1] = -np.inf
                mated[rule.name].append(float(rule_statistic(rule, v, pp)[0]))
    return Comparisons(
        subjects=subjects,
        impostor=impostor,
        mated={k: np.asarray(v, np.float32) for k, v in mated.items()},
        views_per_track=[len(t.templates) for t in tracks],
    )


def _image_name(path: str) -> str:
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def per_track_fpir(impostor: np.ndarray, threshold: float, watchlist_size: int) -> float:
    """The chance that a stranger's track alerts against W gallery subjects drawn at random: exact over
    draws, per track (hypergeometric), averaged over tracks. Excluded subjects (-inf) are never drawn."""
    if not len(impostor):
        return float("nan")
    g = np.isfinite(impostor).sum(axis=1).astype(np.float64)  # subjects that may be drawn, per track
    c = (impostor >= threshold).sum(axis=1).astype(np.float64)  # of which alert
    w = np.minimum(watchlist_size, g)
    # P(no alerting subject among w drawn of g) = prod_{i < w} (g - c - i) / (g - i)
    i = np.arange(int(w.max()))[None, :]
    factors = np.where(i < w[:, None], np.clip(g[:, None] - c[:, None] - i, 0, None) / (g[:, None] - i), 1.0)
    return float(np.mean(1.0 - factors.prod(axis=1)))


def threshold_for(impostor: np.ndarray, watchlist_size: int, target: float, grid: np.ndarray) -> float | None:
    """The lowest threshold on ``grid`` whose per-track FPIR is at or below ``target`` (None: none is).
    Per-track FPIR falls as the threshold rises, so the grid is bisected."""
    lo, hi = 0, len(grid)
    while lo < hi:
        mid = (lo + hi) // 2
        if per_track_fpir(impostor, float(grid[mid]), watchlist_size) <= target:
            hi = mid
        else:
            lo = mid + 1
    return float(grid[lo]) if lo < len(grid) else None


#: Exceeding impostor comparisons below this count make a measured per-track rate indicative only.
MIN_EXCEEDING = 30
#: Thresholds searched, over the whole score range: packs' scales differ (SFace alerts near 0.45, the fused pack near 0.73).
GRID = np.round(np.arange(0.0, 1.0005, 0.001), 3)


def _at(impostor: np.ndarray, mated: np.ndarray, threshold: float, sizes: tuple[int, ...]) -> dict:
    exceeding = impostor >= threshold
    return {
        "threshold": threshold,
        "per_track_fpir": {str(w): per_track_fpir(impostor, threshold, w) for w in sizes},
        "exceeding_comparisons": int(exceeding.sum()),
        "tracks_exceeding": int(exceeding.any(axis=1).sum()),
        "tpir": float((mated >= threshold).mean()) if len(mated) else None,
    }


def summarise(comparisons: list[Comparisons], threshold: float, sizes: tuple[int, ...], targets: tuple[float, ...]) -> dict:
    """Per rule: per-track FPIR (at each watchlist size) and TPIR at ``threshold``, and for each target
    per-track FPIR the threshold that meets it with the TPIR there."""
    keys = list(comparisons[0].impostor)
    rows = []
    for key in keys:
        impostor = np.vstack([c.impostor[key] for c in comparisons])
        impostor = impostor[np.isfinite(impostor).any(axis=1)]
        mated = np.concatenate([c.mated[key] for c in comparisons])
        chosen = []
        for w in sizes:
            for target in targets:
                t = threshold_for(impostor, w, target, GRID)
                row = {"watchlist_size": w, "target_fpir": target, "threshold": t}
                if t is not None:
                    at = _at(impostor, mated, t, (w,))
                    row |= {
                        "tpir": at["tpir"],
                        "exceeding_comparisons": at["exceeding_comparisons"],
                        "supported": at["exceeding_comparisons"] >= MIN_EXCEEDING,
                    }
                chosen.append(row)
        rows.append(
            {
                "rule": key,
                "tracks": len(impostor),
                "mated_tracks": len(mated),
                "impostor_comparisons": int(np.isfinite(impostor).sum()),
                "at_threshold": _at(impostor, mated, threshold, sizes),
                "for_target": chosen,
            }
        )
    views = [n for c in comparisons for n in c.views_per_track]
    return {
        "threshold": threshold,
        "watchlist_sizes": list(sizes),
        "target_fpir": list(targets),
        "tracks": len(views),
        "views_per_track": {"median": float(np.median(views)), "max": int(max(views))} if views else None,
        "rules": rows,
        "method": (
            "Each track (every frame of the walk-by processed by the live pipeline, views templated as it "
            "templates them) is compared with every labelled identity except its own and its aliases, one to "
            f"three photographs each. A rule's statistic is the highest threshold at which it would alert. "
            "Per-track FPIR at W is exact over random watchlists of W of those identities (hypergeometric), "
            "averaged over tracks; TPIR is the share of tracks alerting on their own identity enrolled from "
            f"other photographs. A rate is supported when at least {MIN_EXCEEDING} impostor comparisons exceed "
            "its threshold; tracks of one video are correlated, so treat a rate resting on few tracks as indicative."
        ),
    }


def validate(calibration: dict, comparisons: list[Comparisons], videos: list[dict]) -> dict:
    """Check a track calibration on walk-bys not used to make it: at each photograph threshold, the
    impostor comparisons a photograph exceeds there against those the rule's tracks exceed at the
    calibrated track threshold (and at the photograph threshold itself), over the same passes and gallery."""
    from openlfr.calibration import track_threshold

    photo = np.concatenate([c.impostor["single photograph"].ravel() for c in comparisons])
    photo = photo[np.isfinite(photo)]
    rows = {}
    for key in calibration["rules"]:
        n, m = (int(v) for v in key.split("/"))
        name = VOTING_RULES[key]
        stat = np.concatenate([c.impostor[name].ravel() for c in comparisons])
        stat = stat[np.isfinite(stat)]
        mated = np.concatenate([c.mated[name] for c in comparisons])
        points = []
        for t in calibration["rules"][key]["threshold"]:
            tt = track_threshold(calibration, n, m, t)
            photo_n = int((photo >= t).sum())
            if photo_n < calibration.get("rule_of", 30):
                continue
            points.append(
                {
                    "threshold": t,
                    "track_threshold": tt,
                    "photo_exceeding": photo_n,
                    "track_exceeding_at_threshold": int((stat >= t).sum()),
                    "track_exceeding_at_track_threshold": int((stat >= tt).sum()),
                    "tpir_at_threshold": float((mated >= t).mean()) if len(mated) else None,
                    "tpir_at_track_threshold": float((mated >= tt).mean()) if len(mated) else None,
                }
            )
        rows[key] = points
    return {"videos": videos, "impostor_comparisons": len(photo), "rules": rows}


def views_cache(truth_path: Path, engine: FaceEngine) -> Path:
    """Where the recorded views of a walk-by are kept beside its truth (evaluation only: not encrypted)."""
    pack = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in engine.pack_id)
    return truth_path.with_name(f"track-views-{pack}.npz")


def _save(path: Path, tracks: list[TrackViews]) -> None:
    np.savez(
        path,
        templates=np.vstack([np.stack(t.templates) for t in tracks]),
        qualities=np.concatenate([np.asarray(t.qualities, np.float32) for t in tracks]),
        passes=np.concatenate([np.asarray(t.passes, np.int64) for t in tracks]),
        track_of_view=np.concatenate([np.full(len(t.templates), t.track_id, np.int64) for t in tracks]),
    )


def _load(path: Path) -> list[TrackViews]:
    with np.load(path) as z:
        templates, qualities, passes, owner = z["templates"], z["qualities"], z["passes"], z["track_of_view"]
    tracks: dict[int, TrackViews] = {}
    for k, track_id in enumerate(owner.tolist()):
        views = tracks.setdefault(track_id, TrackViews(track_id))
        views.templates.append(templates[k])
        views.qualities.append(float(qualities[k]))
        views.passes.append(int(passes[k]))
    return list(tracks.values())


def tracks_of(engine: FaceEngine, truth_path: Path, progress: Progress = None) -> tuple[Scenario, list[TrackViews]]:
    """The walk-by's scenario and its tracks' views, recorded once and read back from beside the truth after."""
    truth_path = Path(truth_path)
    if not truth_path.is_file():
        raise OpenLFRError(f"walk-by truth {truth_path} not found (write one with 'openlfr simulate')")
    scenario = Scenario.from_json(json.loads(truth_path.read_text()))
    cache = views_cache(truth_path, engine)
    if cache.is_file():
        return scenario, _load(cache)
    video = truth_path.with_name("walkby.mp4")
    if not video.is_file():
        raise OpenLFRError(f"walk-by video {video} not found beside {truth_path.name}")
    tracks = record_tracks(engine, scenario, video, engine.alert_threshold, progress)
    if tracks:
        _save(cache, tracks)
    return scenario, tracks


def gallery_names(images_dir: Path, truths: list[Path], people: int | None = None) -> list[str]:
    """Image names of the impostor gallery: every labelled identity, or (quick runs) the first ``people``
    plus those the walk-bys show, so that every track still has its mated comparison."""
    from openlfr.evaluation.openset import folder_names

    names = folder_names(images_dir)
    if people is None:
        return names
    shown = {p["identity"] for truth in truths for p in json.loads(Path(truth).read_text())["passes"]}
    first = set(sorted({n.split("/")[0] for n in names})[:people])
    return [n for n in names if n.split("/")[0] in first | shown]


def evaluate(
    engine: FaceEngine,
    truths: list[Path],
    templates: np.ndarray,
    names: list[str],
    aliases: AliasList,
    threshold: float,
    sizes: tuple[int, ...] = (20, 1000),
    targets: tuple[float, ...] = (1 / 1000, 1 / 6000),
    rules: tuple[Rule, ...] = RULES,
    progress: Callable[[str, int, int], None] | None = None,
    calibration: Path | None = None,
    validation: list[Path] = (),
) -> dict:
    """Record (or read back) each walk-by's tracks, compare them with the labelled gallery, and summarise;
    with ``calibration``, also write the track calibration the live pipeline reads there."""

    def gather(paths: list[Path]) -> tuple[list[Comparisons], list[dict]]:
        comparisons, videos = [], []
        for truth in paths:
            step = (lambda d, n, label=str(truth): progress(label, d, n)) if progress else None
            scenario, tracks = tracks_of(engine, truth, step)
            comparisons.append(compare(tracks, scenario, templates, names, aliases, rules))
            videos.append({"truth": str(truth), "seed": scenario.seed, "passes": len(scenario.passes), "tracks": len(tracks)})
        return comparisons, videos

    comparisons, videos = gather(truths)
    if not comparisons or not any(len(c.views_per_track) for c in comparisons):
        raise OpenLFRError("no tracks were found in the walk-by videos")
    summary = summarise(comparisons, threshold, sizes, targets)
    result = {"pack": engine.pack_id, "videos": videos, "aliases": aliases.describe(), **summary}
    if calibration is not None:
        from openlfr.calibration import save, track_threshold

        data = track_calibration(comparisons, engine.pack_id, videos)
        if validation:
            data["validation"] = validate(data, *gather(list(validation)))
        save(data, calibration)
        n, m = 2, 5
        result["calibration"] = {
            "file": str(calibration),
            "rules": sorted(data["rules"]),
            "validation": data.get("validation"),
            f"track_threshold_{n}_of_{m}": track_threshold(data, n, m, threshold),
        }
    return result


#: Photograph thresholds the track calibration is made at, and the finer grid track thresholds are read on.
PHOTO_GRID = np.round(np.arange(0.30, 0.951, 0.005), 3)
FINE_GRID = GRID
#: The rules the live pipeline can run (N of M views), as named in deployments ("N/M").
VOTING_RULES = {"1/1": Rule(1, 1).name, "2/5": Rule(2, 5).name, "3/5": Rule(3, 5).name}


def _rate(stat: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per threshold, the share and the number of finite comparisons at or above it."""
    values = np.sort(stat[np.isfinite(stat)])
    count = len(values) - np.searchsorted(values, thresholds, side="left")
    return count / max(len(values), 1), count


def track_calibration(comparisons: list[Comparisons], pack_id: str, videos: list[dict]) -> dict:
    """Per N-of-M rule, the track threshold matching each photograph threshold's false-match rate.

    For each photograph threshold t whose per-comparison impostor rate on the passes' own photographs
    rests on at least ``RULE_OF`` exceeding comparisons, the track threshold is the lowest at which the
    rule's per-comparison rate, over the same passes and gallery, is no higher. Rates are per comparison
    (one track against one subject), so the pairs hold for every watchlist size.
    """
    from datetime import UTC, datetime

    from openlfr.calibration import RULE_OF, TRACK_FORMAT

    photo = np.concatenate([c.impostor["single photograph"].ravel() for c in comparisons])
    photo_rate, photo_count = _rate(photo, PHOTO_GRID)
    # Where a photograph's rate rests on enough comparisons, and is a tail rate (not most comparisons).
    measured = (photo_count >= RULE_OF) & (photo_rate < 0.5)
    rules = {}
    for key, name in VOTING_RULES.items():
        stat = np.concatenate([c.impostor[name].ravel() for c in comparisons])
        rate, count = _rate(stat, FINE_GRID)
        xs, ys, photo_rates, track_rates, exceeding = [], [], [], [], []
        for t, target in zip(PHOTO_GRID[measured], photo_rate[measured], strict=True):
            ok = np.flatnonzero(rate <= target)
            if not len(ok):
                continue
            xs.append(float(t))
            photo_rates.append(float(target))
            ys.append(round(float(FINE_GRID[ok[0]]), 3))
            track_rates.append(float(rate[ok[0]]))
            exceeding.append(int(count[ok[0]]))
        if xs:
            rules[key] = {
                "rule": name,
                "threshold": xs,
                "track_threshold": ys,
                "photo_rate": [float(f"{r:.6g}") for r in photo_rates],
                "track_rate": [float(f"{r:.6g}") for r in track_rates],
                "track_exceeding": exceeding,
            }
    return {
        "format": TRACK_FORMAT,
        "rule_of": RULE_OF,
        "pack_id": pack_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "videos": videos,
        "impostor_comparisons": int(np.isfinite(photo).sum()),
        "rules": rules,
        "method": (
            "Walk-by videos rendered by 'openlfr simulate' (not those walk-by results are reported on) are "
            "processed frame by frame by the live pipeline; each track's views are templated as the pipeline "
            "templates them and compared with every LFW identity but its own and its aliases (one to three "
            "photographs each). For each photograph threshold t whose impostor rate, measured on the photographs "
            f"the passes show against the same gallery, rests on at least {RULE_OF} exceeding comparisons, the "
            "track threshold is the lowest at which the N-of-M rule's per-comparison rate is no higher. Between "
            "measured thresholds the offset is interpolated; outside them the nearest measured offset is kept."
        ),
    }
