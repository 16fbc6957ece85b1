"""A watchlist subject and a ready deployment for the live tests, from the images that ship with dependencies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from openlfr.services import demo_images, deployments
from openlfr.services.subjects import SubjectInfo, add_subject
from openlfr.simulation.clips import walking_clip
from openlfr.storage import Store


def hopper_subject(store: Store, engine, reference: str = "GH-1") -> None:
    info = SubjectInfo(
        reference,
        "Grace Hopper",
        "serious-offence",
        "test subject",
        "matplotlib sample image",
        "test",
        "officer-a",
        date.today() + timedelta(days=30),
    )
    add_subject(store, engine, info, [demo_images.grace_hopper_path()])


def ready_deployment(
    store: Store, video: Path, threshold: float = 0.45, confirm: tuple[int, int] = (2, 5), record: bool = False
) -> int:
    """A deployment planned, watchlist built and approved, authorised: ready to go live now."""
    now = datetime.now(UTC)
    deployment_id = deployments.plan(
        store,
        "Test",
        "Test Street",
        "crime-hotspot",
        now - timedelta(minutes=1),
        now + timedelta(hours=1),
        threshold,
        [deployments.CameraSpec("cam-1", str(video), record)],
        "planner",
        confirm_n=confirm[0],
        confirm_m=confirm[1],
    )
    deployments.build_watchlist(store, deployment_id, None, "planner")
    deployments.approve_watchlist(store, deployment_id, "supervisor")
    deployments.authorise(store, deployment_id, "supervisor", "necessary and proportionate for the test")
    return deployment_id


__all__ = ["hopper_subject", "ready_deployment", "walking_clip"]
