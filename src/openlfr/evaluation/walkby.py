"""Scoring a live run against a walk-by video's ground truth, through the whole system.

The run goes through the same path as a real deployment: subjects enrolled with quality checks,
a deployment planned, its watchlist built and approved, authorised, taken live on the video as a
camera, alerts stored, the deployment closed. Alerts are then matched to passes:

- an alert is *true* when the subject it names was in view (from 0.5 s before their pass began to
  1.5 s after it ended, for tracking and confirmation delay) and *false* otherwise;
- a watchlisted pass is *alerted* when at least one true alert names them during it;
- *duplicate* alerts are further true alerts for a pass that already had one.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from openlfr.core import FaceEngine
from openlfr.errors import OpenLFRError
from openlfr.live.runner import run_deployment
from openlfr.services import deployments
from openlfr.services.subjects import SubjectInfo, add_subject
from openlfr.simulation.walkby import Scenario
from openlfr.storage import Store

BEFORE_S, AFTER_S = 0.5, 1.5


@dataclass
class WalkbyResult:
    passes: int
    watchlisted_passes: int
    alerted_passes: int
    true_alerts: int
    false_alerts: int
    duplicate_alerts: int
    passes_with_one_alert: int
    enrolled_subjects: int
    skipped_reference_images: list[str]
    faces_seen: int
    camera: dict
    threshold: float
    record: dict
    missed: list[dict] = field(default_factory=list)
    false: list[dict] = field(default_factory=list)

    @property
    def alerted_rate(self) -> float:
        return self.alerted_passes / self.watchlisted_passes if self.watchlisted_passes else 0.0

    def as_dict(self) -> dict:
        return self.__dict__ | {"alerted_rate": round(self.alerted_rate, 4)}


def enrol_watchlist(store: Store, engine: FaceEngine, scenario: Scenario) -> tuple[int, list[str]]:
    """Enrol each watchlisted identity from their other photographs; images failing quality are skipped."""
    from openlfr.errors import NoFaceError, QualityError

    skipped: list[str] = []
    enrolled = 0
    for identity, photos in sorted(scenario.watchlist.items()):
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
        good = False
        for photo in photos:
            try:
                add_subject(store, engine, info, [photo])
                good = True
            except (QualityError, NoFaceError, OpenLFRError) as exc:
                skipped.append(f"{photo}: {exc}")
        enrolled += good
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
) -> WalkbyResult:
    return run_with_events(engine, truth_path, video_path, threshold, realtime, home, confirm, pool_templates)[0]


def run_with_events(
    engine: FaceEngine,
    truth_path: str | Path,
    video_path: str | Path | None = None,
    threshold: float = deployments.DEFAULT_THRESHOLD,
    realtime: bool = True,
    home: str | Path | None = None,
    confirm: tuple[int, int] = (2, 5),
    pool_templates: bool = False,
) -> tuple[WalkbyResult, Scenario, list[tuple[float, str]]]:
    """:func:`run`, also returning the scenario and the alert events (video time, subject) for time-to-alert."""
    truth_path = Path(truth_path)
    scenario = Scenario.from_json(json.loads(truth_path.read_text()))
    video = Path(video_path) if video_path else truth_path.with_name("walkby.mp4")
    if not video.is_file():
        raise OpenLFRError(f"walk-by video {video} not found")
    with tempfile.TemporaryDirectory(prefix="openlfr-walkby-") as tmp:
        store = Store(home or tmp)
        enrolled, skipped = enrol_watchlist(store, engine, scenario)
        now = datetime.now(UTC)
        deployment_id = deployments.plan(
            store,
            "Walk-by evaluation",
            "Simulated street",
            "crime-hotspot",
            now,
            now + timedelta(hours=2),
            threshold,
            [deployments.CameraSpec("sim", str(video))],
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
        report = run_deployment(
            store,
            engine,
            deployment_id,
            realtime=realtime,
            on_alert=lambda _id, e: events.append((e.frame.index / scenario.fps, e.reference)),
            pool_templates=pool_templates,
        )
        record = deployments.close(store, deployment_id, "evaluator")
        store.close()
    result = score(scenario, events, enrolled, skipped, report.faces_seen, report.cameras[0], threshold, record)
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
    )


def latency_summary(result: WalkbyResult) -> str:
    cam = result.camera
    return (
        f"{cam['frames_processed']} frames processed, {cam['frames_dropped']} dropped ({cam['processed_fps']} fps); "
        f"alert latency p50 {cam['alert_latency_p50_ms']} ms, p95 {cam['alert_latency_p95_ms']} ms"
    )
