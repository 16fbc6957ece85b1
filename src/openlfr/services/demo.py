"""The whole live facial recognition loop on images that ship with our dependencies.

Grace Hopper (matplotlib's sample image) is put on a watchlist; a deployment is planned, its
watchlist built and approved, and it is authorised by a second officer; a short walk-past video in
which Hopper and Eileen Collins (scikit-image's astronaut, not on any watchlist) cross the camera
is run through the live pipeline in real time; the alert for Hopper is adjudicated and the
deployment closed, which deletes its watchlist and produces its published record.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from openlfr.core import FaceEngine
from openlfr.live.runner import run_deployment
from openlfr.services import alerts, demo_images, deployments
from openlfr.services.common import OUTCOMES
from openlfr.services.subjects import SubjectInfo, add_subject
from openlfr.simulation.clips import walking_clip
from openlfr.storage import Store

DEMO_THRESHOLD = deployments.DEFAULT_THRESHOLD


@dataclass
class DemoResult:
    deployment_id: int
    alerts: list[dict]
    live: dict
    record: dict
    files_left: list[str] = field(default_factory=list)


def run_demo(engine: FaceEngine, home: Path, say: Callable[[str], None] = print) -> DemoResult:
    store = Store(home)
    info = SubjectInfo(
        reference="GH-1906",
        name="Grace Hopper",
        category="vulnerable-person",
        reason="Demonstration: reported as a vulnerable missing adult (fictional)",
        image_source="matplotlib sample_data/grace_hopper.jpg",
        lawful_basis="Public domain photograph used for demonstration",
        added_by="PC Demo",
        review_date=date.today() + timedelta(days=7),
    )
    add_subject(store, engine, info, [demo_images.grace_hopper_path()])
    say("1. Grace Hopper added as a watchlist subject (reason, image source and lawful basis recorded).")

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="openlfr-demo-video-") as tmp:
        clip = walking_clip(
            Path(tmp) / "camera.mp4",
            [demo_images.grace_hopper(), demo_images.eileen_collins()],
            seconds=4.0,
            size=(1280, 720),
            face_width=[200, 360],  # photographs scaled so both faces are about 65 px wide
            tilt_deg=4.0,
            gain=0.85,
        )
        deployment_id = deployments.plan(
            store,
            "Demo deployment",
            "Demo Square (signposted)",
            "locate-person",
            now,
            now + timedelta(hours=1),
            DEMO_THRESHOLD,
            [deployments.CameraSpec("camera-1", str(clip))],
            "PC Demo",
        )
        deployments.build_watchlist(store, deployment_id, None, "PC Demo")
        deployments.approve_watchlist(store, deployment_id, "Sgt Review")
        deployments.authorise(store, deployment_id, "Supt Authorise", "Demonstration of the full loop")
        say(
            f"2. Deployment {deployment_id} planned, its watchlist built and approved (frozen), and authorised by a "
            f"second officer; alert threshold {DEMO_THRESHOLD} (a similarity score from 0 to 1)."
        )
        say("3. Live: a 4-second 1280x720 camera feed in which Grace Hopper and Eileen Collins walk past ...")

        def on_alert(alert_id: int, event) -> None:
            say(
                f"   ALERT {alert_id}: {event.name} ({event.reference}) seen by {event.camera}: similarity "
                f"{event.score:.2f} against the alert threshold {DEMO_THRESHOLD}, raised {event.latency_ms:.0f} ms "
                "after the camera captured the frame."
            )

        # Every frame of the clip is processed (a camera file played as fast as the machine allows),
        # so the demo gives the same result on a busy laptop as on an idle one; real-time frame
        # dropping is what `openlfr live` and `benchmarks/live.py` show.
        report = run_deployment(store, engine, deployment_id, realtime=False, on_alert=on_alert)
    cam = report.cameras[0]
    say(f"   {frames_in_words(cam['frames_processed'], cam['frames_dropped'])}; "
        f"{count_in_words(report.faces_seen, 'face')} seen, {count_in_words(len(report.alert_ids), 'alert')}.")
    found = alerts.list_alerts(store, deployment_id)
    for alert in found:
        alerts.record_outcome(store, alert["id"], "engaged-confirmed", "PC Street", note="demo")
        say(f"4. An officer compared the camera image with the watchlist image for alert {alert['id']}, spoke to "
            f"the person and recorded \"{OUTCOMES['engaged-confirmed']}\" (a confirmed true alert).")
    record = deployments.close(store, deployment_id, "Supt Authorise")
    say("5. Deployment closed: its watchlist copy was deleted at once. Its published record:")
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and "models" not in p.parts)
    store.close()
    return DemoResult(deployment_id, found, report.as_dict(), record, files)


def count_in_words(n: int, noun: str) -> str:
    """Say "1 alert", "2 alerts" or "no alerts"."""
    return f"no {noun}s" if n == 0 else f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def frames_in_words(processed: int, dropped: int) -> str:
    """How much of the camera feed was checked, without the pipeline's vocabulary."""
    if not dropped:
        return f"All {processed} camera frames checked"
    return f"{processed} of {processed + dropped} camera frames checked ({dropped} skipped to keep up in real time)"


def stored_files_in_words(files: list[str]) -> str:
    """What the data directory holds, by kind, for an officer; any file of an unexpected kind is named,
    so the demo's claim that nothing of a passer-by was kept stays checkable."""
    kinds: dict[str, int] = {}
    unexpected: list[str] = []
    for name in files:
        top = name.split("/", 1)[0]
        if name.startswith("openlfr.db"):
            kind = "the database"
        elif top == "keys":
            kind = "the data key"
        elif name == "audit.anchor":
            kind = "the audit trail's anchor"
        elif name.endswith(".lock"):
            kind = "lock files"
        elif top == "images" and name.endswith(".bin"):
            kind = "reference"
        elif top == "alerts" and name.endswith(".bin"):
            kind = "alert"
        else:
            unexpected.append(name)
            continue
        kinds[kind] = kinds.get(kind, 0) + 1
    order = ("the database", "the data key", "the audit trail's anchor", "lock files")
    words = [k for k in order if k in kinds]
    if "reference" in kinds:
        words.append(f"{count_in_words(kinds['reference'], 'encrypted watchlist reference image')}")
    if "alert" in kinds:
        words.append(f"{count_in_words(kinds['alert'], 'encrypted alert image')} (camera crop, frame with "
                     "bystanders pixelated, copy of the watchlist image)")
    words += [f"an unexpected file {name}" for name in unexpected]
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words) or "nothing"
