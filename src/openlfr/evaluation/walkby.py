"""Scoring a live run against a walk-by video's ground truth, through the whole system.

The run goes through the same path as a real deployment: subjects enrolled with quality checks,
a deployment planned, its watchlist built and approved, authorised, taken live on the video as a
camera, alerts stored, the deployment closed. Alerts are then matched to passes:

- an alert is *true* when the subject it names was in view (from 0.5 s before their pass began to
  1.5 s after it ended, for tracking and confirmation delay) and *false* otherwise;
- a watchlisted pass is *alerted* when at least one true alert names them during it;
- *duplicate* alerts are further true alerts for a pass that already had one.

A large watchlist (thousands of subjects, ``openlfr simulate --watchlist-size``) is enrolled through the
same services, one subject at a time with a progress callback. What the engine found in each reference
image is remembered beside the truth file (:class:`RememberedFaces`), so evaluating the same walk-by
again (another pack's run excepted) enrols without templating thousands of images a second time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from openlfr.core import FaceEngine
from openlfr.core.types import Detection, Face, QualityReport
from openlfr.errors import NoFaceError, OpenLFRError, QualityError
from openlfr.live.runner import run_deployment
from openlfr.services import deployments
from openlfr.services.alerts import REPEAT_WINDOW_S
from openlfr.services.subjects import SubjectInfo, add_subject
from openlfr.simulation.walkby import Scenario
from openlfr.storage import Store

BEFORE_S, AFTER_S = 0.5, 1.5
Progress = Callable[[int, int], None] | None


@dataclass
class WalkbyResult:
    passes: int
    watchlisted_passes: int
    alerted_passes: int
    true_alerts: int
    false_alerts: int
    duplicate_alerts: int
    passes_with_one_alert: int
    enrolled_subjects: int  # the deployment's watchlist size
    skipped_reference_images: list[str]
    faces_seen: int
    camera: dict
    threshold: float
    record: dict
    missed: list[dict] = field(default_factory=list)
    false: list[dict] = field(default_factory=list)
    #: The watchlist size the truth asks for (the enrolled one is ``enrolled_subjects``).
    planned_watchlist_size: int = 0
    #: Further sightings merged into an earlier alert of the same subject (``repeat_window_s``) that
    #: fall within a pass of that subject. Merged sightings that do not are counted in ``false_alerts``:
    #: the officer is shown them as the subject.
    merged_sightings: int = 0

    @property
    def alerted_rate(self) -> float:
        """Per-pass TPIR: the share of watchlisted passes that raised a true alert."""
        return self.alerted_passes / self.watchlisted_passes if self.watchlisted_passes else 0.0

    @property
    def watchlist_size(self) -> int:
        return self.enrolled_subjects

    @property
    def false_alerts_per_10000_faces(self) -> float | None:
        """The rate deployment records publish; None when no face was seen."""
        return 10000 * self.false_alerts / self.faces_seen if self.faces_seen else None

    def as_dict(self) -> dict:
        per_10000 = self.false_alerts_per_10000_faces
        return self.__dict__ | {
            "alerted_rate": round(self.alerted_rate, 4),
            "watchlist_size": self.watchlist_size,
            "false_alerts_per_10000_faces": round(per_10000, 3) if per_10000 is not None else None,
        }


class RememberedFaces(FaceEngine):
    """The engine, remembering the faces it finds in each image in a file, keyed by the image's pixels.

    Enrolment still decodes every image and runs every quality check on what this returns; only the
    detection, quality measures and templates of an image already seen are read back instead of computed.
    For evaluation data only: the file holds templates unencrypted.
    """

    def __init__(self, engine: FaceEngine, path: Path) -> None:
        super().__init__(**{f.name: getattr(engine, f.name) for f in fields(engine)})
        self.path = path
        self.known: dict[str, list[Face]] = self._read()
        self.computed = 0

    @staticmethod
    def key(image: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).hexdigest()

    def faces(self, image: np.ndarray, with_templates: bool = True) -> list[Face]:
        if not with_templates:
            return super().faces(image, with_templates)
        key = self.key(image)
        if key not in self.known:
            self.known[key] = super().faces(image)
            self.computed += 1
        return self.known[key]

    def _read(self) -> dict[str, list[Face]]:
        if not self.path.is_file():
            return {}
        with np.load(self.path) as z:
            if str(z["pack_id"]) != self.pack_id:
                return {}
            known: dict[str, list[Face]] = {}
            row = 0
            for key, count in zip(z["keys"], z["counts"], strict=True):
                faces = []
                for i in range(row, row + int(count)):
                    detection = Detection(tuple(float(v) for v in z["boxes"][i]), z["landmarks"][i], float(z["scores"][i]))  # type: ignore[arg-type]
                    faces.append(Face(detection, QualityReport(*(float(v) for v in z["quality"][i])), z["templates"][i]))
                known[str(key)] = faces
                row += int(count)
        return known

    def save(self) -> None:
        """Write what is known (when something new was computed); a read-only folder is left alone."""
        if not self.computed:
            return
        faces = [f for fs in self.known.values() for f in fs]
        quality = [[getattr(f.quality, q.name) for q in fields(QualityReport)] for f in faces]
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp.npz")
        try:
            np.savez(
                tmp,
                pack_id=np.array(self.pack_id),
                keys=np.array(list(self.known), dtype=str),
                counts=np.array([len(fs) for fs in self.known.values()], np.int64),
                boxes=np.array([f.detection.box for f in faces], np.float32).reshape(-1, 4),
                landmarks=np.array([f.detection.landmarks for f in faces], np.float32).reshape(-1, 5, 2),
                scores=np.array([f.detection.score for f in faces], np.float32),
                quality=np.array(quality, np.float64).reshape(-1, len(fields(QualityReport))),
                templates=np.array([f.template for f in faces], np.float32).reshape(-1, self.dimension),
            )
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)


def remembered_faces_path(truth_path: Path, engine: FaceEngine) -> Path:
    """Where :class:`RememberedFaces` keeps a walk-by's reference faces for one model pack."""
    return truth_path.with_name(f"enrol-faces-{re.sub(r'[^A-Za-z0-9_.-]+', '_', engine.pack_id)}.npz")


def enrol_watchlist(store: Store, engine: FaceEngine, scenario: Scenario, progress: Progress = None) -> tuple[int, list[str]]:
    """Enrol the scenario's watchlist through the subject service; returns (subjects enrolled, images refused).

    Each subject is enrolled from their listed photographs (at most ``references_per_subject``, the first
    that pass the quality checks). When none of a subject's photographs passes, subjects from the reserve
    are enrolled in their place until the watchlist holds ``target_watchlist_size`` subjects.
    """
    skipped: list[str] = []
    enrolled = 0
    target, limit = scenario.target_watchlist_size, scenario.references_per_subject
    subjects = sorted(scenario.watchlist.items())
    reserve = list(scenario.reserve.items())
    done = 0
    while subjects or (reserve and enrolled < target):
        identity, photos = subjects.pop(0) if subjects else reserve.pop(0)
        info = SubjectInfo(
            reference=identity,
            name=identity.replace("_", " "),
            category="serious-offence",
            reason="simulated watchlist entry",
            image_source="LFW (Labeled Faces in the Wild)",
            lawful_basis="test data",
            added_by="simulation",
            review_date=date.today() + timedelta(days=30),
        )
        added = 0
        for photo in photos:
            if limit is not None and added >= limit:
                break
            try:
                add_subject(store, engine, info, [photo])
                added += 1
            except (QualityError, NoFaceError, OpenLFRError) as exc:
                skipped.append(f"{photo}: {exc}")
        enrolled += added > 0
        done += 1
        if progress:
            # Still to do: the listed subjects, and reserve subjects for any shortfall they leave.
            shortfall = max(0, target - enrolled - len(subjects)) if reserve else 0
            progress(done, done + len(subjects) + shortfall)
    return enrolled, skipped


def run(
    engine: FaceEngine,
    truth_path: str | Path,
    video_path: str | Path | None = None,
    threshold: float = deployments.DEFAULT_THRESHOLD,
    realtime: bool = True,
    home: str | Path | None = None,
    confirm: tuple[int, int] = (2, 5),
    pool_templates: bool = False,
    *,
    progress: Progress = None,
    remember: bool = True,
    drop_frame: Callable[[int], bool] | None = None,
    repeat_window_s: float = REPEAT_WINDOW_S,
    min_face_px: float | None = None,
) -> WalkbyResult:
    return run_with_events(
        engine, truth_path, video_path, threshold, realtime, home, confirm, pool_templates, progress=progress,
        remember=remember, drop_frame=drop_frame, repeat_window_s=repeat_window_s, min_face_px=min_face_px,
    )[0]  # fmt: skip


def run_with_events(
    engine: FaceEngine,
    truth_path: str | Path,
    video_path: str | Path | None = None,
    threshold: float = deployments.DEFAULT_THRESHOLD,
    realtime: bool = True,
    home: str | Path | None = None,
    confirm: tuple[int, int] = (2, 5),
    pool_templates: bool = False,
    *,
    progress: Progress = None,
    remember: bool = True,
    drop_frame: Callable[[int], bool] | None = None,
    repeat_window_s: float = REPEAT_WINDOW_S,
    min_face_px: float | None = None,
) -> tuple[WalkbyResult, Scenario, list[tuple[float, str]]]:
    """:func:`run`, also returning the scenario and the alert events (video time, subject) for time-to-alert.

    ``progress(done, total)`` follows the enrolment of the watchlist; ``remember`` keeps the reference
    images' faces beside the truth file for the next run (:class:`RememberedFaces`).
    ``drop_frame(index)`` (not in real time) says which frames to skip, as a busy machine would
    drop them, deterministically. ``min_face_px``: the camera's smallest face to find (None: the
    pipeline's default, 40 px).
    """
    truth_path = Path(truth_path)
    scenario = Scenario.from_json(json.loads(truth_path.read_text()))
    video = Path(video_path) if video_path else truth_path.with_name("walkby.mp4")
    if not video.is_file():
        raise OpenLFRError(f"walk-by video {video} not found")
    with tempfile.TemporaryDirectory(prefix="openlfr-walkby-") as tmp:
        # A throwaway embedded store, whatever $OPENLFR_DATABASE_URL says: an evaluation must never
        # enrol LFW people or plan deployments in a force's own database.
        scratch = Path(home or tmp)
        store = Store(scratch, database_url=f"sqlite:///{scratch / 'openlfr.db'}")
        enroller = RememberedFaces(engine, remembered_faces_path(truth_path, engine)) if remember else engine
        enrolled, skipped = enrol_watchlist(store, enroller, scenario, progress)
        if isinstance(enroller, RememberedFaces):
            enroller.save()
        now = datetime.now(UTC)
        deployment_id = deployments.plan(
            store,
            "Walk-by evaluation",
            "Simulated street",
            "crime-hotspot",
            now,
            now + timedelta(hours=2),
            threshold,
            [deployments.CameraSpec("sim", str(video), min_face_px=min_face_px)],
            "evaluator",
            confirm_n=confirm[0],
            confirm_m=confirm[1],
        )
        deployments.build_watchlist(store, deployment_id, None, "evaluator")
        deployments.approve_watchlist(store, deployment_id, "supervisor")
        # Evaluating a pack (or a threshold) comes before calibrating it, so an uncalibrated one is
        # run under a recorded override rather than refused.
        deployments.authorise(
            store, deployment_id, "supervisor", "evaluation of the live pipeline",
            override_reason="walk-by evaluation on simulated video; no real deployment",
        )  # fmt: skip
        events: list[tuple[float, str]] = []
        sightings: list[tuple[float, str]] = []
        report = run_deployment(
            store,
            engine,
            deployment_id,
            realtime=realtime,
            on_alert=lambda _id, e: events.append((e.frame.index / scenario.fps, e.reference)),
            on_sighting=lambda _id, e: sightings.append((e.frame.index / scenario.fps, e.reference)),
            pool_templates=pool_templates,
            drop_frame=drop_frame,
            repeat_window_s=repeat_window_s,
        )
        record = deployments.close(store, deployment_id, "evaluator")
        store.close()
    result = score(scenario, events, enrolled, skipped, report.faces_seen, report.cameras[0], threshold, record, sightings)
    return result, scenario, events


def score(
    scenario: Scenario,
    events: list[tuple[float, str]],
    enrolled: int,
    skipped: list[str],
    faces_seen: int,
    camera: dict,
    threshold: float,
    record: dict,
    sightings: Sequence[tuple[float, str]] = (),
) -> WalkbyResult:
    wanted = [p for p in scenario.passes if p.watchlisted]
    per_pass = {p.index: 0 for p in wanted}
    true_alerts = false_alerts = 0
    false: list[dict] = []
    for t, reference in events:
        hits = [p for p in wanted if p.identity == reference and p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S]
        if hits:
            true_alerts += 1
            per_pass[hits[0].index] += 1
        else:
            false_alerts += 1
            in_view = [p.identity for p in scenario.passes if p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S]
            false.append({"t": round(t, 2), "alerted_as": reference, "in_view": in_view})
    merged = 0
    for t, reference in sightings:
        if any(p.identity == reference and p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S for p in wanted):
            merged += 1
        else:
            false_alerts += 1
            in_view = [p.identity for p in scenario.passes if p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S]
            false.append({"t": round(t, 2), "alerted_as": reference, "in_view": in_view, "merged_sighting": True})
    missed = [
        {"identity": p.identity, "t_enter": p.t_enter, "width": [p.width_start, p.width_end], "blur": p.blur_sigma}
        for p in wanted
        if per_pass[p.index] == 0
    ]
    return WalkbyResult(
        passes=len(scenario.passes),
        watchlisted_passes=len(wanted),
        alerted_passes=sum(1 for n in per_pass.values() if n > 0),
        true_alerts=true_alerts,
        false_alerts=false_alerts,
        duplicate_alerts=sum(max(0, n - 1) for n in per_pass.values()),
        passes_with_one_alert=sum(1 for n in per_pass.values() if n == 1),
        enrolled_subjects=enrolled,
        skipped_reference_images=skipped,
        faces_seen=faces_seen,
        camera=camera,
        threshold=threshold,
        record=record,
        missed=missed,
        false=false,
        planned_watchlist_size=scenario.target_watchlist_size,
        merged_sightings=merged,
    )


def latency_summary(result: WalkbyResult) -> str:
    cam = result.camera
    return (
        f"{cam['frames_processed']} frames processed, {cam['frames_dropped']} dropped ({cam['processed_fps']} fps); "
        f"alert latency p50 {cam['alert_latency_p50_ms']} ms, p95 {cam['alert_latency_p95_ms']} ms"
    )
