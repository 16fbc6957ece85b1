"""One camera's recognition loop: detect → track → template the best frames → compare → alert.

**Immediate deletion of non-matches.** Everything derived from a face (its crop, landmarks,
templates and scores) lives only in its track's ``state`` while the face is in view. When the
tracker ends the track, the pipeline adds one to an aggregate *faces seen* counter and lets the
track go; nothing about it is written, logged or kept. Only a face that raises an alert leaves
anything behind, and that is handed to the alert sink (which stores it encrypted).

**Alerts.** A track's templates are compared with the frozen watchlist; a subject is alerted
when at least N of the track's last M templates score at or above the threshold for them, or when
(optionally) the track's pooled template (the quality-weighted mean of its views) does. Only the
subject the track resembles most can be alerted, at most once per track and subject, so a person
standing in view raises one alert, not a storm, and a face resembling two subjects names one.

**Faces too small for the calibration.** A pack's alert threshold was calibrated on photographs with
faces about 43 px between the eyes; below some size its false-match rate is no longer what the
calibration says, and nothing has measured it. A view whose inter-eye distance is below the pack's
measured minimum (:attr:`PipelineConfig.min_alert_inter_eye_px`, ``benchmarks/face_size.py``) is
tracked and counted as a face seen, but never templated or compared: it cannot raise an alert. When
the person comes closer, the same track's larger views are compared as usual.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import cv2
import numpy as np

from openlfr.core import FaceEngine
from openlfr.core.second_opinion import SecondOpinionProcess
from openlfr.core.types import Detection, Face
from openlfr.live.tracker import Box, FaceTracker, Track
from openlfr.media.video import Frame


@dataclass(frozen=True)
class Watchlist:
    """The frozen watchlist in memory: one template row per reference image, grouped by subject."""

    templates: np.ndarray  # (rows, d), unit length
    subject_of_row: np.ndarray  # (rows,) index into references
    references: list[str]
    names: list[str]
    categories: list[str]
    entry_ids: list[int]  # per row, the stored watchlist entry (for the alert's reference image)

    @classmethod
    def build(
        cls, templates: np.ndarray, references: list[str], names: list[str], categories: list[str], entry_ids: list[int]
    ) -> Watchlist:
        subjects: dict[str, int] = {}
        for ref in references:
            subjects.setdefault(ref, len(subjects))
        first = {ref: i for i, ref in reversed(list(enumerate(references)))}
        ordered = sorted(subjects, key=subjects.get)  # type: ignore[arg-type]
        return cls(
            templates=np.ascontiguousarray(templates, dtype=np.float32),
            subject_of_row=np.array([subjects[r] for r in references], dtype=np.int64),
            references=ordered,
            names=[names[first[r]] for r in ordered],
            categories=[categories[first[r]] for r in ordered],
            entry_ids=list(entry_ids),
        )

    @functools.cached_property
    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ordered by subject (stable), where each subject's run starts, and each sorted row's subject."""
        order = np.argsort(self.subject_of_row, kind="stable")
        subjects = self.subject_of_row[order]
        starts = np.flatnonzero(np.r_[True, subjects[1:] != subjects[:-1]])
        return order, starts, subjects

    def subject_scores(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per probe and subject, the best score over the subject's images and the (first) row that gave it."""
        order, starts, subjects = self._segments
        scores = (probes @ self.templates.T)[:, order]  # (probes, rows), grouped by subject
        best = np.maximum.reduceat(scores, starts, axis=1)
        position = np.where(scores == best[:, subjects], np.arange(len(order)), len(order))
        best_row = order[np.minimum.reduceat(position, starts, axis=1)]
        return best.astype(np.float32), best_row


@dataclass
class _Pending:
    """A view waiting for the second model: what is needed to judge it as it was when it was seen."""

    future: Future
    track: Track
    face: Face
    frame: Frame
    detection: Detection
    in_view: list[tuple[Box, Track]]


@dataclass
class AlertEvent:
    camera: str
    track_id: int
    subject_index: int
    reference: str
    name: str
    category: str
    entry_id: int
    score: float
    frame: Frame
    crop: np.ndarray
    #: The frame as stored with the alert: every other face in it pixelated, so an alert keeps no
    #: recognisable image of bystanders who raised no alert.
    view: np.ndarray
    emitted_mono: float

    @property
    def latency_ms(self) -> float:
        return (self.emitted_mono - self.frame.captured_mono) * 1000.0


@dataclass
class PipelineConfig:
    #: The deployment's authorised threshold: calibrated on single photographs (one face, one decision).
    threshold: float
    confirm_n: int = 2
    confirm_m: int = 5
    #: The score a track's views must reach, N of the last M (and its pooled template), for an alert.
    #: A track is judged on many views, so at the photograph threshold a stranger's track alerts more
    #: often than a stranger's photograph (about twice as often for 2 of 5, measured by ``openlfr evaluate
    #: track-decisions``). The runner sets this from the pack's track calibration so that a pass raises
    #: false alerts no more often than the authorised threshold promises; None: views are judged at
    #: ``threshold`` (no track calibration for this pack or rule).
    track_threshold: float | None = None
    #: Templates computed per track before only clearly better views are templated.
    templates_per_track: int = 10
    #: After that budget, a new template needs a view this much better (eye distance x confidence).
    better_view: float = 1.15
    #: A track is templated at most this often (seconds). At 25 processed frames a second, templating
    #: every view would spend the budget on near-identical views in its first 0.4 s (and most of the
    #: CPU on templates); 0.08 s keeps the cadence the walk-by recall was measured at (about 13
    #: processed frames a second before frames were searched at reduced scale).
    template_interval_s: float = 0.08
    #: At most this many views are templated in one frame; the rest wait for the next frame, the
    #: tracks templated least recently first. Several people appearing at once would otherwise make
    #: one frame take several frame-times and the frames behind it would be dropped.
    max_templates_per_frame: int = 2
    #: Fused packs: ask the second model (dlib's ResNet, ~80 ms a face on this machine) on a worker
    #: thread while the camera's next frames are processed, and judge the view when its answer is in.
    #: Asked in line, each near-threshold view stalled the camera for two or three frame-times, which
    #: were dropped. Off (in line, deterministic) when frames are not processed in real time.
    async_second_opinion: bool = False
    #: Also alert on the track's pooled template (mean of its views) once it averages at least
    #: ``pooled_min_templates`` views. Off by default: on the 5-minute walk-by it found one more
    #: watchlisted pass in 20 but also raised one false alert (README, "Measured").
    pool_templates: bool = False
    pooled_min_templates: int = 3
    #: A new view scoring below this against the track's pooled template (its earlier views) is
    #: another person's: the tracker joined a face that left with one that appeared close by. The
    #: track is then split, so the first person's data is dropped and the newcomer is judged on
    #: their own views only. On the 5-minute walk-by, views of one face scored 0.7 or more against
    #: their track and swapped faces 0.3 or less (README, "Measured").
    identity_break: float = 0.4
    #: After its template budget a track is templated again at least this often (seconds), so a
    #: swap is noticed and the newcomer recognised even when their view is no better.
    recheck_s: float = 1.0
    blur_non_alerting: bool = True
    #: Detections narrower than this (px) are ignored: too small to recognise, and where detectors'
    #: false positives (badges, patterns) concentrate.
    min_face_px: float = 20.0
    #: The smallest face (px wide, full resolution) the camera must find. Each frame is searched on a
    #: copy reduced so that such a face is ``DETECTOR_MIN_FACE_PX`` wide (0.5 for 40 px at 1080p: a
    #: quarter of the pixels, so about a quarter of the detection time), and each face about to be
    #: templated is found again at full resolution for precise landmarks (``FaceEngine.refine``).
    #: A camera asked to find 24 px faces searches at 0.83: slower, but they stay findable.
    smallest_face_px: float = 40.0
    #: Views whose inter-eye distance (px) is below this are tracked and counted but never compared
    #: with the watchlist. None: the engine's pack's measured minimum (``ModelPack.min_alert_inter_eye_px``,
    #: from ``benchmarks/face_size.py``); 0 compares every view. A per-camera or per-deployment
    #: setting (a camera placed so that faces are larger) would override it here.
    min_alert_inter_eye_px: float | None = None

    @property
    def vote_threshold(self) -> float:
        """What views (and pooled templates) are compared with: the track threshold, else the deployment's."""
        return self.threshold if self.track_threshold is None else self.track_threshold


@dataclass
class PipelineStats:
    frames: int = 0
    #: Views whose landmarks were found again at full resolution before templating.
    refined: int = 0
    faces_seen: int = 0
    templates: int = 0
    alerts: int = 0
    #: Tracks found to have swapped to another person's face and split (see ``identity_break``).
    splits: int = 0
    #: Views given the second model's opinion (fused packs only).
    second_opinions: int = 0
    #: Views of confirmed tracks not compared because their face was below the pack's minimum size.
    views_too_small: int = 0
    detect_ms: float = 0.0
    template_ms: float = 0.0


#: The smallest face (px wide) the detector finds reliably in the image it is given.
DETECTOR_MIN_FACE_PX = 20.0


def detection_scale(smallest_face_px: float) -> float:
    """The scale to search frames at so that a face ``smallest_face_px`` wide is still found."""
    return min(1.0, DETECTOR_MIN_FACE_PX / max(smallest_face_px, 1e-6))


def face_crop(image: np.ndarray, detection: Detection, margin: float = 0.5) -> np.ndarray:
    """The face with some context around it, as an officer would want to see it."""
    x, y, w, h = detection.box
    h_img, w_img = image.shape[:2]
    x0, y0 = max(0, int(x - margin * w)), max(0, int(y - margin * h))
    x1, y1 = min(w_img, int(x + w * (1 + margin))), min(h_img, int(y + h * (1 + margin)))
    return image[y0:y1, x0:x1].copy()


class CameraPipeline:
    def __init__(
        self,
        camera: str,
        engine: FaceEngine,
        watchlist: Watchlist,
        config: PipelineConfig,
        on_alert: Callable[[AlertEvent], None],
        tracker: FaceTracker | None = None,
    ) -> None:
        if config.pool_templates and engine is not None and engine.second is not None:
            # Views without the second opinion would pool first-model-only parts with fused ones.
            raise ValueError("pooled track templates are not supported with a pack that has a second opinion")
        self.camera = camera
        self.engine = engine
        self.watchlist = watchlist
        self.config = config
        self.on_alert = on_alert
        self.tracker = tracker or FaceTracker()
        self.stats = PipelineStats()
        self.active: list[Track] = []
        limit = config.min_alert_inter_eye_px
        if limit is None:
            limit = engine.min_alert_inter_eye_px if engine is not None else None
        #: The inter-eye distance (px) a view needs to be compared with the watchlist.
        self.min_alert_inter_eye_px = float(limit or 0.0)
        #: Scale of the copy each frame is searched on (see ``PipelineConfig.smallest_face_px``).
        self.detect_scale = detection_scale(config.smallest_face_px)
        #: Views awaiting the second model's answer (``PipelineConfig.async_second_opinion``), oldest first,
        #: and the process that answers (dlib holds Python's lock while it works: a thread would stall us).
        self._pending: list[_Pending] = []
        self._opinions: SecondOpinionProcess | None = None
        if config.async_second_opinion and engine is not None and engine.second is not None:
            self._opinions = SecondOpinionProcess(engine.second.resnet_model)

    def warm_up(self, frame_size: tuple[int, int]) -> None:
        """Run every model once on a blank frame of the camera's size (``(width, height)``) before the
        camera starts: ONNX Runtime plans each new input shape on its first run, which took about a
        second, and the frames that arrived meanwhile were dropped. Nothing is kept."""
        width, height = frame_size
        blank = np.zeros((height, width, 3), np.uint8)
        self.engine.detect(blank, self.detect_scale)
        side = max(8.0, self.config.smallest_face_px)
        box = (width / 2 - side / 2, height / 2 - side / 2, side, side)
        points = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], np.float32) * side
        dummy = Detection(box, (points + np.array(box[:2], np.float32)).astype(np.float32), 1.0)
        self.engine.refine(blank, dummy)
        self.engine.describe(blank, [dummy], second_opinion=False)

    def _end(self, tracks: list[Track]) -> None:
        if self._pending:  # views of these tracks still awaiting a second opinion are dropped unjudged
            self._pending = [job for job in self._pending if job.track not in tracks]
        for track in tracks:
            if track.confirmed or track.state.templates:
                self.stats.faces_seen += 1
            track.state.clear()  # the only copy of this face's templates and scores

    def _wants_template(self, track: Track) -> bool:
        quality = track.detection.inter_eye_px * track.detection.score
        state = track.state
        if any(job.track is track for job in self._pending):  # one view at a time with the second model
            return False
        if state.templated_at is not None and track.last_seen - state.templated_at < self.config.template_interval_s:
            return False
        if state.templates < self.config.templates_per_track:
            return True
        if state.templated_at is not None and track.last_seen - state.templated_at >= self.config.recheck_s:
            return True
        return quality > state.best_quality * self.config.better_view

    def _is_someone_else(self, track: Track, template: np.ndarray) -> bool:
        # Compared on the first model's part, which every templated view has (see describe()).
        seen = track.state.identity
        if seen is None:
            return False
        first = self.engine.first_model_part(template)
        cosine = float(first @ seen) / max(float(np.linalg.norm(first) * np.linalg.norm(seen)), 1e-12)
        return cosine < self.config.identity_break

    def _split(self, track: Track) -> Track:
        """End ``track`` (dropping what it held of the person who left) and follow the newcomer anew."""
        successor = self.tracker.split(track)
        self._end([track])
        self.active = [successor if t is track else t for t in self.active]
        self.stats.splits += 1
        return successor

    def process(self, frame: Frame) -> list[AlertEvent]:
        started = time.perf_counter()
        alerts = self._collect()
        detections = [d for d in self.engine.detect(frame.image, self.detect_scale) if d.box[2] >= self.config.min_face_px]
        detected = time.perf_counter()
        update = self.tracker.update(detections, frame.captured_at)
        self._end(update.ended)
        self.active = update.active
        comparable = [t for t in update.confirmed if t.detection.inter_eye_px >= self.min_alert_inter_eye_px]
        self.stats.views_too_small += len(update.confirmed) - len(comparable)
        wanting = [t for t in comparable if self._wants_template(t)]
        # Never-templated tracks first (they cannot alert yet), then the longest waiting.
        wanting.sort(key=lambda t: (t.state.templates > 0, t.state.templated_at or 0.0))
        chosen = wanting[: self.config.max_templates_per_frame]
        if chosen and self.detect_scale < 1.0:
            for track in chosen:
                track.detection = self.engine.refine(frame.image, track.detection)
            self.stats.refined += len(chosen)
        if chosen:
            # With a fused pack, the slow second model runs only on views that the first model puts
            # near enough to a subject for the fused score to possibly reach the threshold; the
            # others keep a first-model-only template, which cannot reach it either.
            faces = self.engine.describe(frame.image, [t.detection for t in chosen], second_opinion=False)
            probes = np.stack([f.template for f in faces])
            best, best_row = self.watchlist.subject_scores(probes)
            later: set[int] = set()
            if self.engine.second and best.shape[1]:
                floor = self.engine.second_opinion_floor(self.config.vote_threshold)
                near = np.flatnonzero(self.engine.first_model_scores(best.max(axis=1)) >= floor)
                if len(near) and self.config.async_second_opinion:
                    later = {int(i) for i in near}  # judged when the answer is in (see _collect)
                elif len(near):
                    self.engine.add_second_opinion(frame.image, [faces[i] for i in near])
                    probes = np.stack([f.template for f in faces])
                    best, best_row = self.watchlist.subject_scores(probes)
                self.stats.second_opinions += len(near)
            self.stats.templates += len(chosen)
            for i, track in enumerate(chosen):
                if self._is_someone_else(track, probes[i]):
                    track = self._split(track)
                if i in later:
                    self._ask_later(track, faces[i], frame)
                else:
                    alerts += self._observe(track, probes[i], best[i], best_row[i], frame)
        self.stats.frames += 1
        self.stats.detect_ms += (detected - started) * 1000
        self.stats.template_ms += (time.perf_counter() - detected) * 1000
        return alerts

    def _observe(
        self,
        track: Track,
        template: np.ndarray,
        scores: np.ndarray,
        rows: np.ndarray,
        frame: Frame,
        detection: Detection | None = None,
        in_view: list[tuple[Box, Track]] | None = None,
    ) -> list[AlertEvent]:
        """Add one templated view to the track's evidence and alert if it now confirms a subject.
        ``detection`` and ``in_view`` (boxes and tracks) are as they were in ``frame`` when the view is
        judged later (a second opinion answered on another thread); default: the track's now."""
        detection = detection or track.detection
        state = track.state
        history = state.scores
        history.append(scores)
        while len(history) > self.config.confirm_m:
            history.popleft()
        state.templates += 1
        state.templated_at = track.last_seen
        quality = detection.inter_eye_px * detection.score
        state.best_quality = max(state.best_quality, quality)
        # The track's pooled template: a quality-weighted mean of its views, which averages out
        # per-frame noise (blur, compression, detector jitter) for genuine and impostor scores alike.
        state.pooled = template * quality if state.pooled is None else state.pooled + template * quality
        first = self.engine.first_model_part(template) * quality if self.engine else template * quality
        state.identity = first if state.identity is None else state.identity + first
        alerted = state.alerted
        stacked = np.stack(history)
        hits = (stacked >= self.config.vote_threshold).sum(axis=0)
        confirmed = hits >= self.config.confirm_n
        if self.config.pool_templates and state.pooled is not None and state.templates >= self.config.pooled_min_templates:
            unit = state.pooled / max(float(np.linalg.norm(state.pooled)), 1e-12)
            pooled_scores, pooled_rows = self.watchlist.subject_scores(unit[None])
            pooled_hit = pooled_scores[0] >= self.config.vote_threshold
            confirmed |= pooled_hit
            rows = np.where(pooled_hit, pooled_rows[0], rows)
            stacked = np.vstack([stacked, pooled_scores])
        # Only the track's best-matching subject may be alerted: a face that resembles two people on
        # the watchlist names the closer one, rather than raising an alert for each.
        leader = int(np.argmax(stacked.max(axis=0)))
        confirmed &= np.arange(len(confirmed)) == leader
        events = []
        for subject in np.flatnonzero(confirmed):
            if subject in alerted:
                continue
            alerted.add(int(subject))
            event = AlertEvent(
                camera=self.camera,
                track_id=track.id,
                subject_index=int(subject),
                reference=self.watchlist.references[subject],
                name=self.watchlist.names[subject],
                category=self.watchlist.categories[subject],
                entry_id=self.watchlist.entry_ids[int(rows[subject])],
                score=float(stacked[:, subject].max()),
                frame=frame,
                crop=face_crop(frame.image, detection),
                view=self.operator_view(frame.image, in_view),
                emitted_mono=time.monotonic(),
            )
            self.stats.alerts += 1
            self.on_alert(event)
            events.append(event)
        return events

    def finish(self) -> None:
        """End every track (end of stream): judge the views still awaiting a second opinion, then count
        the tracks and drop what they held; the second-opinion thread is shut down."""
        self._collect(wait=True)
        if self._opinions is not None:
            self._opinions.close()
            self._opinions = None
        self._end(self.tracker.flush())
        self.active = []

    def _ask_later(self, track: Track, face: Face, frame: Frame) -> None:
        """Queue ``face`` (a view of ``track`` in ``frame``) for the second model on the worker thread."""
        assert self._opinions is not None and self.engine.second is not None
        in_view = [(t.detection.box, t) for t in self.active]
        future = self._opinions.submit(self.engine.second.chips(frame.image, [face.detection]))
        self._pending.append(_Pending(future, track, face, frame, track.detection, in_view))

    def _collect(self, wait: bool = False) -> list[AlertEvent]:
        """Judge the views whose second opinion has come back (all of them with ``wait``), in the order
        they were asked. A view of a track that has ended meanwhile is dropped unjudged, with the rest of
        what the track held."""
        alerts: list[AlertEvent] = []
        while self._pending and (wait or self._pending[0].future.done()):
            job = self._pending.pop(0)
            self.engine.fill_second_opinion([job.face], job.future.result())  # now both models' parts
            if job.track not in self.tracker.tracks:
                continue
            best, rows = self.watchlist.subject_scores(job.face.template[None])
            alerts += self._observe(job.track, job.face.template, best[0], rows[0], job.frame, job.detection, job.in_view)
        return alerts

    def operator_view(self, image: np.ndarray, in_view: list[tuple[Box, Track]] | None = None) -> np.ndarray:
        """The frame as an operator sees it: faces that raised no alert blurred, alerting faces boxed.
        ``in_view``: the faces' boxes as they were in ``image`` (default: the tracks' latest boxes)."""
        view = image.copy()
        h_img, w_img = view.shape[:2]
        for (x, y, w, h), track in in_view if in_view is not None else [(t.detection.box, t) for t in self.active]:
            x0, y0 = max(0, int(x - 0.2 * w)), max(0, int(y - 0.2 * h))
            x1, y1 = min(w_img, int(x + 1.2 * w)), min(h_img, int(y + 1.2 * h))
            if x1 <= x0 or y1 <= y0:
                continue
            if track.state.alerted:
                cv2.rectangle(view, (x0, y0), (x1, y1), (0, 0, 255), 3)
                cv2.putText(view, "ALERT", (x0, max(12, y0 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 255), 2)
            elif self.config.blur_non_alerting:
                region = view[y0:y1, x0:x1]
                small = cv2.resize(region, (max(1, (x1 - x0) // 12), max(1, (y1 - y0) // 12)))
                view[y0:y1, x0:x1] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
        return view


@dataclass
class WorkerStats:
    camera: str
    frames_read: int = 0
    frames_processed: int = 0
    frames_dropped: int = 0
    reconnects: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    started_mono: float = field(default_factory=time.monotonic)
    ended_mono: float | None = None
    events: list[str] = field(default_factory=list)

    def summary(self, pipeline: PipelineStats) -> dict:
        elapsed = (self.ended_mono or time.monotonic()) - self.started_mono
        lat = np.array(self.latencies_ms) if self.latencies_ms else None
        return {
            "camera": self.camera,
            "seconds": round(elapsed, 2),
            "frames_read": self.frames_read,
            "frames_processed": self.frames_processed,
            "frames_dropped": self.frames_dropped,
            "processed_fps": round(self.frames_processed / elapsed, 2) if elapsed > 0 else 0.0,
            "faces_seen": pipeline.faces_seen,
            "templates": pipeline.templates,
            "alerts": pipeline.alerts,
            "track_splits": pipeline.splits,
            "second_opinions": pipeline.second_opinions,
            "views_too_small": pipeline.views_too_small,
            "views_refined": pipeline.refined,
            "mean_detect_ms": round(pipeline.detect_ms / max(pipeline.frames, 1), 1),
            "mean_template_ms_per_frame": round(pipeline.template_ms / max(pipeline.frames, 1), 1),
            "alert_latency_p50_ms": round(float(np.percentile(lat, 50)), 1) if lat is not None else None,
            "alert_latency_p95_ms": round(float(np.percentile(lat, 95)), 1) if lat is not None else None,
            "reconnects": self.reconnects,
            "events": self.events[-20:],
        }
