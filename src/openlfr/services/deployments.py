"""Deployments: planned, authorised, live, closed — and the frozen watchlist each one carries.

The life cycle is enforced here and nowhere else:

``planned`` → (watchlist built ≤ 24 h before the start, then approved and frozen) →
``authorised`` (by an officer who neither planned it nor built its watchlist; the watchlist's
approver is not its builder either: ``services.duties``) → ``live`` → ``closed`` (the watchlist's
templates and images are deleted at once, and the deployment record is produced).

When its cameras stop, a live deployment is ``ended`` if its planned end has passed or every
camera's source has ended (a video file played to its end), and ``paused`` if an operator stopped it
or its cameras failed: a paused deployment may go live again, an ended one may only be closed.
A deployment found ``live`` when a server or ``openlfr live`` starts, with no process running its
cameras (a crash, a kill, a restart), is marked ``interrupted``: it may go live again or be closed.

Each camera has a state of its own, written by the process running it (so that every page and
every server process reads the same truth): ``unreachable`` when its source could not be opened
at planning (a warning), then ``connecting``, ``up``, ``reconnecting``, ``failed`` (with the
reason), ``ended`` (its source ended) or ``stopped`` (the deployment was stopped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from openlfr import metrics
from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.models.packs import FUSED_THRESHOLD
from openlfr.services import audit, duties
from openlfr.services.common import USE_CASES, now_utc, utc, watchlist_image_context, watchlist_template_context
from openlfr.services.gallery import image_context, reference_template_context
from openlfr.services.records import deployment_record
from openlfr.services.subjects import SUBJECTS_GALLERY, subject
from openlfr.storage import Store
from openlfr.storage.crypto import CAMERA_SOURCE_CONTEXT, record_context, redact_source
from openlfr.storage.models import Camera, DeletionLog, Deployment, Gallery, Person, Watchlist, WatchlistEntry

#: Default alert threshold: the default (fused) pack's, which accepts the same share of LFW impostor
#: pairs (4.4 in 100,000) as 0.45 does for the single-model ``yunet-sface`` pack
#: (``benchmarks/fusion.py``). Thresholds are pack-specific: calibrate per pack and watchlist size.
DEFAULT_THRESHOLD = FUSED_THRESHOLD
#: A deployment's watchlist may be built no earlier than this before the deployment starts.
WATCHLIST_LEAD = timedelta(hours=24)
#: Longest N-of-M confirmation window (M templates of one tracked face): a few seconds of video.
MAX_CONFIRM_WINDOW = 100
#: Was live, but the process running its cameras ended without stopping them (see :func:`mark_interrupted`).
INTERRUPTED = "interrupted"
#: Stopped before its planned end (by an operator, or its cameras failed): may go live again.
PAUSED = "paused"
#: Its cameras ran to the end of their sources or its planned end passed: may only be closed.
ENDED = "ended"
#: Statuses from which a deployment may go live (again).
STARTABLE = ("authorised", PAUSED, INTERRUPTED)
#: Statuses a deployment may be closed from.
CLOSABLE = ("planned", "authorised", "live", PAUSED, ENDED, INTERRUPTED)
#: The smallest face a camera may be asked to find: the detector's limit and a face worth finding.
MIN_FACE_PX_RANGE = (20.0, 400.0)
#: Camera states (see the module docstring).
CAMERA_STATES = ("unreachable", "connecting", "up", "reconnecting", "failed", "ended", "stopped")


@dataclass
class CameraSpec:
    name: str
    source: str
    record: bool = False
    #: The smallest face (px wide at the camera's resolution) it must find; None: the live
    #: pipeline's default (``PipelineConfig.smallest_face_px``, 40 px). 24 px keeps distant faces
    #: findable at the cost of frame rate.
    min_face_px: float | None = None


def _camera(store: Store, spec: CameraSpec) -> Camera:
    """A camera row: the address encrypted in full, and only its redacted form in plain text (an RTSP
    address often carries the camera's password, which administrators and auditors must not see).
    The full address is sealed by :func:`_seal_source` once the row has its id (flush first)."""
    if spec.min_face_px is not None and not MIN_FACE_PX_RANGE[0] <= spec.min_face_px <= MIN_FACE_PX_RANGE[1]:
        low, high = MIN_FACE_PX_RANGE
        raise OpenLFRError(f"camera {spec.name}: smallest face {spec.min_face_px} px must be between {low:.0f} and {high:.0f} px")
    return Camera(
        name=spec.name, source=redact_source(spec.source), source_sealed=None, record=spec.record, min_face_px=spec.min_face_px
    )


def _source_context(camera_id: int | None) -> str:
    """Associated data of camera ``camera_id``'s encrypted address: bound to that camera's row."""
    return record_context(CAMERA_SOURCE_CONTEXT, "cameras", camera_id, "source_sealed")


def _seal_source(store: Store, camera: Camera, source: str) -> None:
    camera.source_sealed = store.cipher.encrypt(source.encode(), _source_context(camera.id))


def camera_sources(store: Store, deployment_id: int) -> list[CameraSpec]:
    """The cameras with their full, decrypted addresses: for the live runner only, never for display."""
    with store.session() as s:
        return [
            CameraSpec(
                c.name,
                store.cipher.decrypt(c.source_sealed, _source_context(c.id)).decode() if c.source_sealed else c.source,
                c.record,
                c.min_face_px,
            )
            for c in get(s, deployment_id).cameras
        ]


def get(session: Session, deployment_id: int) -> Deployment:
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFoundError(f"deployment {deployment_id} does not exist")
    return deployment


def require_status(deployment: Deployment, *allowed: str, action: str) -> None:
    if deployment.status not in allowed:
        raise StoreError(f"deployment {deployment.id} is {deployment.status}; it must be {' or '.join(allowed)} to {action}")


def _who_did(deployment: Deployment) -> dict[duties.Step, str | None]:
    """Who took each step so far, from the stored record, for :func:`duties.check`."""
    wl = deployment.watchlist
    return {
        duties.Step.PLAN: deployment.created_by,
        duties.Step.BUILD: wl.built_by if wl is not None else None,
        duties.Step.APPROVE: wl.approved_by if wl is not None else None,
        duties.Step.AUTHORISE: deployment.authorised_by,
    }


def plan(
    store: Store,
    name: str,
    location: str,
    use_case: str,
    start: datetime,
    end: datetime,
    threshold: float,
    cameras: list[CameraSpec],
    created_by: str,
    latitude: float | None = None,
    longitude: float | None = None,
    confirm_n: int = 2,
    confirm_m: int = 5,
    check_sources: bool = False,
) -> int:
    """Plan a deployment; returns its id. With ``check_sources`` every camera is tried at once and
    any that cannot be opened is marked ``unreachable`` with the reason (a warning: a camera may be
    installed later; going live refuses it)."""
    if use_case not in USE_CASES:
        raise OpenLFRError(f"unknown use case {use_case!r}; choose one of {', '.join(USE_CASES)}")
    start, end = utc(start), utc(end)
    if end <= start:
        raise OpenLFRError("a deployment must end after it starts")
    if end - start > timedelta(hours=24):
        raise OpenLFRError("a deployment may last at most 24 hours; plan several")
    if not 0.0 < threshold < 1.0:
        raise OpenLFRError(f"threshold {threshold} must be between 0 and 1")
    if not cameras:
        raise OpenLFRError("a deployment needs at least one camera")
    if not 1 <= confirm_n <= confirm_m <= MAX_CONFIRM_WINDOW:
        raise OpenLFRError(f"confirmation needs 1 <= N <= M <= {MAX_CONFIRM_WINDOW}")
    if len({c.name for c in cameras}) != len(cameras):
        raise OpenLFRError("camera names must be unique within a deployment")
    with store.session() as s:
        deployment = Deployment(
            name=name,
            location_name=location,
            latitude=latitude,
            longitude=longitude,
            use_case=use_case,
            planned_start=start,
            planned_end=end,
            threshold=threshold,
            confirm_n=confirm_n,
            confirm_m=confirm_m,
            created_by=created_by,
            cameras=[_camera(store, c) for c in cameras],
        )
        s.add(deployment)
        s.flush()
        for camera, spec in zip(deployment.cameras, cameras, strict=True):
            _seal_source(store, camera, spec.source)
        deployment_id = deployment.id
    audit.record(
        store,
        "deployment.plan",
        "deployment",
        deployment_id,
        {
            "name": name,
            "location": location,
            "use_case": use_case,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "threshold": threshold,
            "cameras": [c.name for c in cameras],
        },
        actor=created_by,
    )
    if check_sources:
        check_cameras(store, deployment_id)
    return deployment_id


def build_watchlist(
    store: Store, deployment_id: int, references: list[str] | None, built_by: str, now: datetime | None = None
) -> int:
    """Copy the chosen subjects' templates and images into the deployment's own, unapproved watchlist.

    ``references=None`` takes every subject whose review date has not passed. A watchlist that is
    not yet approved may be rebuilt; an approved one is frozen.
    """
    now = now or now_utc()
    written: list[str] = []
    try:
        with store.session() as s:
            deployment = get(s, deployment_id)
            require_status(deployment, "planned", action="build its watchlist")
            start = utc(deployment.planned_start)
            if now < start - WATCHLIST_LEAD:
                raise StoreError(
                    f"the watchlist may be built no more than 24 hours before the deployment starts "
                    f"({start.isoformat()}); too early by {(start - WATCHLIST_LEAD - now)}"
                )
            if now >= utc(deployment.planned_end):
                raise StoreError("the deployment's planned end has passed")
            duties.check(duties.Step.BUILD, built_by, _who_did(deployment))  # no rule today: the table decides
            if deployment.watchlist is not None:
                if deployment.watchlist.approved_at is not None:
                    raise StoreError("the watchlist is approved and frozen; it cannot be rebuilt")
                old_files = [e.image_file for e in deployment.watchlist.entries]
                s.delete(deployment.watchlist)
                s.flush()
                for f in old_files:
                    store.delete_blob(f)
            if references is None:
                rows = s.scalars(
                    select(Person).join(Gallery).where(Gallery.name == SUBJECTS_GALLERY).order_by(Person.reference)
                ).all()
                chosen = [subject(s, p.reference) for p in rows]
                chosen = [(p, d) for p, d in chosen if d.review_date >= now.date()]
            else:
                chosen = [subject(s, r) for r in references]
                expired = [p.reference for p, d in chosen if d.review_date < now.date()]
                if expired:
                    raise StoreError(f"review date passed for {', '.join(expired)}: review them before use")
            if not chosen:
                raise StoreError("no watchlist subjects to build the watchlist from")
            pack_ids = {img.pack_id for p, _ in chosen for img in p.images}
            if len(pack_ids) != 1:
                raise StoreError(f"subjects' templates come from several model packs: {sorted(pack_ids)}")
            pack_id = pack_ids.pop()
            watchlist = Watchlist(deployment=deployment, pack_id=pack_id, built_by=built_by, built_at=now)
            s.add(watchlist)
            copies = []
            for person, details in chosen:
                for image in person.images:
                    entry = WatchlistEntry(
                        subject_reference=person.reference,
                        name=person.name,
                        category=details.category,
                        reason=details.reason,
                        image_file="",  # sealed below, bound to the entry's id
                        template=b"",
                    )
                    watchlist.entries.append(entry)
                    copies.append((entry, image))
            s.flush()
            for entry, image in copies:
                data = store.read_blob(image.file, image_context(image.id))
                entry.image_file = store.write_blob("watchlists", data, watchlist_image_context(entry.id))
                written.append(entry.image_file)
                template = store.cipher.decrypt(image.template, reference_template_context(image.pack_id, image.id))
                entry.template = store.cipher.encrypt(template, watchlist_template_context(pack_id, entry.id))
            deployment.watchlist_size = len(chosen)
            s.flush()
            size, entries = len(chosen), len(watchlist.entries)
    except BaseException:
        for f in written:
            store.delete_blob(f)
        raise
    audit.record(store, "watchlist.build", "watchlist", deployment_id, {"subjects": size, "images": entries}, actor=built_by)
    return size


def approve_watchlist(store: Store, deployment_id: int, approved_by: str, now: datetime | None = None) -> None:
    with store.session() as s:
        deployment = get(s, deployment_id)
        require_status(deployment, "planned", action="approve its watchlist")
        if deployment.watchlist is None:
            raise StoreError("build the watchlist before approving it")
        if deployment.watchlist.approved_at is not None:
            raise StoreError("the watchlist is already approved")
        duties.check(duties.Step.APPROVE, approved_by, _who_did(deployment))
        deployment.watchlist.approved_by = approved_by
        deployment.watchlist.approved_at = now or now_utc()
        size = deployment.watchlist_size
    audit.record(store, "watchlist.approve", "watchlist", deployment_id, {"subjects": size}, actor=approved_by)


def authorise(
    store: Store,
    deployment_id: int,
    officer: str,
    note: str,
    now: datetime | None = None,
    override_reason: str | None = None,
) -> None:
    """The authorising officer's approval, without which the deployment cannot go live.

    The threshold is checked against the model pack's calibration for the watchlist's size: if the
    estimated false-alert rate (FPIR) is above 1 in 1,000, if it would find fewer than half of the
    watchlisted people (a threshold meant for another pack does that), or there is no calibration for
    the pack, the officer must give an explicit override reason, which is audited and kept with the
    deployment.
    """
    from openlfr.services import thresholds

    with store.session() as s:
        deployment = get(s, deployment_id)
        require_status(deployment, "planned", action="be authorised")
        if deployment.watchlist is None or deployment.watchlist.approved_at is None:
            raise StoreError("the watchlist must be built and approved before the deployment is authorised")
        duties.check(duties.Step.AUTHORISE, officer, _who_did(deployment))
        if not note.strip():
            raise OpenLFRError("authorisation needs a note recording why the deployment is necessary and proportionate")
        pack_id, threshold, size = deployment.watchlist.pack_id, deployment.threshold, deployment.watchlist_size or 1
    try:
        estimate: thresholds.Estimate | None = thresholds.estimate(store, pack_id, threshold, size)
        if estimate.fpir > thresholds.MAX_FPIR_WITHOUT_OVERRIDE:
            problem: str | None = (
                f"threshold {threshold} gives an estimated false-alert rate (FPIR) of {estimate.fpir_words()} at watchlist "
                f"size {size}, above 1 in 1,000 ({estimate.calibration})"
            )
        elif estimate.tpir < thresholds.MIN_TPIR_WITHOUT_OVERRIDE:
            problem = (
                f"threshold {threshold} would find only {estimate.tpir:.0%} of watchlisted people (estimated TPIR, 95% interval "
                f"{estimate.tpir_interval[0]:.0%} to {estimate.tpir_interval[1]:.0%}, {estimate.calibration}); thresholds "
                "belong to a model pack: is it another pack's?"
            )
        else:
            problem = None
    except OpenLFRError as exc:
        estimate, problem = None, f"the threshold cannot be checked: {exc}"
    override = (override_reason or "").strip() or None
    if problem and not override:
        raise StoreError(f"{problem}; raise the threshold or authorise with an explicit override reason")
    with store.session() as s:
        deployment = get(s, deployment_id)
        deployment.status = "authorised"
        deployment.authorised_by = officer
        deployment.authorised_at = now or now_utc()
        deployment.authorisation_note = note
        deployment.calibration_reference = estimate.calibration if estimate else None
        deployment.estimated_fpir = estimate.fpir if estimate else None
        deployment.estimated_fpir_low = estimate.fpir_interval[0] if estimate else None
        deployment.estimated_fpir_high = estimate.fpir_interval[1] if estimate else None
        deployment.estimate_method = f"{estimate.method}; {estimate.interval_method}" if estimate else None
        deployment.threshold_override = override if problem else None
    details = {
        "note": note,
        "threshold": threshold,
        "watchlist_size": size,
        "estimated_fpir": estimate.fpir if estimate else None,
        "estimated_fpir_interval": list(estimate.fpir_interval) if estimate else None,
        "estimated_tpir": estimate.tpir if estimate else None,
        "estimated_tpir_interval": list(estimate.tpir_interval) if estimate else None,
        "estimate_extrapolated": estimate.extrapolated if estimate else None,
        "calibration": estimate.calibration if estimate else None,
    }
    audit.record(store, "deployment.authorise", "deployment", deployment_id, details, actor=officer)
    if problem and override:
        audit.record(
            store, "threshold.override", "deployment", deployment_id, {"problem": problem, "reason": override}, actor=officer
        )


def require_startable(deployment: Deployment) -> None:
    """Refuse to go live unless the deployment is authorised, paused or interrupted (or live already)."""
    if deployment.status == ENDED:
        raise StoreError(f"deployment {deployment.id} has ended; it can only be closed")
    if deployment.status not in ("live", *STARTABLE):
        raise StoreError(f"deployment {deployment.id} is {deployment.status}; it must be authorised to go live")


def start(store: Store, deployment_id: int, now: datetime | None = None) -> None:
    now = now or now_utc()
    with store.session() as s:
        deployment = get(s, deployment_id)
        if deployment.status == "live":
            return
        require_startable(deployment)
        if now >= utc(deployment.planned_end):
            raise StoreError("the deployment's planned end has passed; it cannot go live")
        if now < utc(deployment.planned_start) - timedelta(minutes=15):
            raise StoreError(f"the deployment is planned to start at {utc(deployment.planned_start).isoformat()}")
        deployment.status = "live"
        deployment.started_at = deployment.started_at or now
        for camera in deployment.cameras:
            camera.state, camera.state_reason, camera.state_at = "connecting", None, now
    audit.record(store, "deployment.start", "deployment", deployment_id, {"started_at": now.isoformat()})


def set_camera_state(
    store: Store, deployment_id: int, camera: str, state: str, reason: str | None = None, now: datetime | None = None
) -> None:
    """Record what a camera is doing now; a failure is audited with its reason."""
    if state not in CAMERA_STATES:
        raise ValueError(f"unknown camera state {state!r}")
    now = now or now_utc()
    with store.session() as s:
        row = s.scalars(select(Camera).where(Camera.deployment_id == deployment_id, Camera.name == camera)).first()
        if row is None:
            raise NotFoundError(f"deployment {deployment_id} has no camera {camera!r}")
        changed = row.state != state
        row.state, row.state_reason, row.state_at = state, (reason or None) and reason[:500], now
    metrics.camera_state(store, deployment_id, camera, state)
    if changed and state == "failed":
        audit.record(
            store, "camera.failed", "deployment", deployment_id, {"camera": camera, "reason": reason}, actor="system"
        )


def finish_run(store: Store, deployment_id: int, sources_ended: bool, now: datetime | None = None) -> str:
    """After a deployment's cameras have stopped: ``ended`` when the planned end has passed or every
    source ended, else ``paused``. Returns the new status (unchanged unless it was live)."""
    now = now or now_utc()
    with store.session() as s:
        deployment = get(s, deployment_id)
        if deployment.status != "live":
            return deployment.status
        ended = sources_ended or now >= utc(deployment.planned_end)
        deployment.status = ENDED if ended else PAUSED
        if ended:
            deployment.ended_at = now
        for camera in deployment.cameras:
            if camera.state in ("connecting", "up", "reconnecting"):
                camera.state, camera.state_at = ("ended" if ended else "stopped"), now
        status = deployment.status
    audit.record(
        store, "deployment.end" if status == ENDED else "deployment.pause", "deployment", deployment_id,
        {"at": now.isoformat(), "sources_ended": sources_ended}, actor="system",
    )  # fmt: skip
    return status


def live_state(status: str, cameras: list[dict]) -> dict:
    """The deployment's state as officers and the public should read it, derived from its status and
    its cameras' states: a ``label`` (live / paused / ended / planned / closed) and, while live, how
    many cameras are up and which have failed (the console's banner)."""
    failed = [c for c in cameras if c.get("state") in ("failed", "reconnecting", "unreachable")]
    up = sum(1 for c in cameras if c.get("state") == "up")
    label = {"live": "live", PAUSED: "paused", INTERRUPTED: "paused", ENDED: "ended", "closed": "ended"}.get(status, "planned")
    problem = None
    if status == "live" and failed:
        problem = "; ".join(f"camera {c['name']} {c['state']}" + (f": {c['reason']}" if c.get("reason") else "") for c in failed)
    elif status in ("planned", "authorised", PAUSED, INTERRUPTED) and failed:
        words = {"unreachable": "could not be opened when checked", "failed": "failed when going live"}
        problem = "; ".join(
            f"camera {c['name']} {words.get(c['state'], c['state'])}: {c.get('reason')}" for c in failed
        ) + ". Going live will be refused until it can be opened."
    return {"label": label, "cameras_up": up, "cameras": len(cameras), "problem": problem}


def mark_interrupted(store: Store, running: Callable[[int], bool]) -> list[int]:
    """Mark ``live`` deployments whose cameras no process is running (``running(id)`` is False) as
    ``interrupted``, and audit it: otherwise a crash leaves them shown as live to officers and the
    public. Returns the deployments marked."""
    marked = []
    with store.session() as s:
        for deployment in s.scalars(select(Deployment).where(Deployment.status == "live").order_by(Deployment.id)):
            if not running(deployment.id):
                deployment.status = INTERRUPTED
                marked.append(deployment.id)
    for deployment_id in marked:
        audit.record(
            store, "deployment.interrupted", "deployment", deployment_id,
            {"reason": "found live with no process running its cameras (crash or restart)"}, actor="system",
        )  # fmt: skip
    return marked


@dataclass
class FrozenWatchlist:
    """A live deployment's watchlist in memory: one row per reference image, decrypted for matching only."""

    pack_id: str
    templates: np.ndarray  # (n, d) float32, unit rows
    entry_ids: list[int]
    references: list[str]
    names: list[str]
    categories: list[str]

    @property
    def size(self) -> int:
        return len(set(self.references))


def load_watchlist(store: Store, deployment_id: int) -> FrozenWatchlist:
    with store.session() as s:
        deployment = get(s, deployment_id)
        require_status(deployment, "live", *STARTABLE, action="load its watchlist")
        wl = deployment.watchlist
        if wl is None or wl.approved_at is None:
            raise StoreError(f"deployment {deployment_id} has no approved watchlist")
        entries = list(wl.entries)
        templates = np.stack(
            [
                np.frombuffer(store.cipher.decrypt(e.template, watchlist_template_context(wl.pack_id, e.id)), np.float32)
                for e in entries
            ]
        )
        return FrozenWatchlist(
            pack_id=wl.pack_id,
            templates=templates,
            entry_ids=[e.id for e in entries],
            references=[e.subject_reference for e in entries],
            names=[e.name for e in entries],
            categories=[e.category for e in entries],
        )


def delete_watchlist(session: Session, store: Store, deployment: Deployment, reason: str) -> int:
    """Delete a deployment's watchlist copies (templates and images); log it. Returns files deleted."""
    wl = deployment.watchlist
    if wl is None:
        return 0
    files = [e.image_file for e in wl.entries]
    session.delete(wl)
    session.flush()
    for f in files:
        store.delete_blob(f)
    session.add(DeletionLog(kind="watchlist", record_id=deployment.id, files=len(files), reason=reason))
    return len(files)


def close(store: Store, deployment_id: int, by: str, now: datetime | None = None) -> dict:
    """End the deployment: delete its watchlist immediately and produce its published record."""
    now = now or now_utc()
    with store.session() as s:
        deployment = get(s, deployment_id)
        require_status(deployment, *CLOSABLE, action="be closed")
        deployment.ended_at = deployment.ended_at or now
        deployment.closed_at = now
        deployment.status = "closed"
        reason = f"deployment {deployment_id} closed by {by}"
        had_watchlist = deployment.watchlist is not None
        files = delete_watchlist(s, store, deployment, reason)
        s.flush()
        deployment.record = deployment_record(s, deployment)
        record = deployment.record
    if had_watchlist:
        audit.record(store, "watchlist.delete", "watchlist", deployment_id, {"reason": reason, "files": files}, actor=by)
    audit.record(store, "deployment.close", "deployment", deployment_id, {"closed_at": now.isoformat()}, actor=by)
    return record


def camera_view(c: Camera) -> dict:
    """A camera as pages show it: the redacted address and its state, never the sealed address."""
    return {
        "name": c.name,
        "source": c.source,
        "record": c.record,
        "min_face_px": c.min_face_px,
        "state": c.state,
        "reason": c.state_reason,
        "state_at": utc(c.state_at).isoformat() if c.state_at else None,
    }


def check_cameras(store: Store, deployment_id: int, timeout_s: float = 5.0) -> dict[str, str]:
    """Try to open every camera's source now; record each as ``unreachable`` (with the reason) or
    clear that warning. Returns the problems by camera name. Planning warns with it; going live
    refuses a deployment with any (:func:`openlfr.live.runner.run_deployment`)."""
    from openlfr.media.video import probe_source

    problems: dict[str, str] = {}
    for spec in camera_sources(store, deployment_id):
        problem = probe_source(spec.source, timeout_s=timeout_s)
        if problem:
            problems[spec.name] = problem
    now = now_utc()
    with store.session() as s:
        for camera in get(s, deployment_id).cameras:
            if camera.name in problems:
                camera.state, camera.state_reason, camera.state_at = "unreachable", problems[camera.name][:500], now
            elif camera.state == "unreachable":
                camera.state, camera.state_reason, camera.state_at = None, None, now
    return problems


def list_deployments(store: Store) -> list[dict]:
    """Every deployment with its cameras, in two queries (cameras loaded together: on a database server each
    query is a round trip, and one per deployment made the list several times slower on PostgreSQL)."""
    with store.session() as s:
        return [
            {
                "id": d.id,
                "name": d.name,
                "location": d.location_name,
                "use_case": d.use_case,
                "status": d.status,
                "start": utc(d.planned_start).isoformat(),
                "end": utc(d.planned_end).isoformat(),
                "threshold": d.threshold,
                "watchlist_size": d.watchlist_size,
                "cameras": [c.name for c in d.cameras],
                "live_state": live_state(d.status, [camera_view(c) for c in d.cameras]),
                "camera_states": [
                    {k: v for k, v in camera_view(c).items() if k in ("name", "state", "reason", "state_at")} for c in d.cameras
                ],
            }
            for d in s.scalars(select(Deployment).options(selectinload(Deployment.cameras)).order_by(Deployment.id))
        ]


def deployment_detail(store: Store, deployment_id: int) -> dict:
    """Everything about one deployment that its pages show, without any biometric data."""
    with store.session() as s:
        d = get(s, deployment_id)
        wl = d.watchlist
        cameras = [camera_view(c) for c in d.cameras]
        return {
            "id": d.id,
            "name": d.name,
            "location": d.location_name,
            "latitude": d.latitude,
            "longitude": d.longitude,
            "use_case": d.use_case,
            "use_case_label": USE_CASES.get(d.use_case, d.use_case),
            "status": d.status,
            "start": utc(d.planned_start).isoformat(),
            "end": utc(d.planned_end).isoformat(),
            "threshold": d.threshold,
            "confirm": f"{d.confirm_n}/{d.confirm_m}",
            "created_by": d.created_by,
            "authorised_by": d.authorised_by,
            "authorised_at": utc(d.authorised_at).isoformat() if d.authorised_at else None,
            "authorisation_note": d.authorisation_note,
            "started_at": utc(d.started_at).isoformat() if d.started_at else None,
            "ended_at": utc(d.ended_at).isoformat() if d.ended_at else None,
            "closed_at": utc(d.closed_at).isoformat() if d.closed_at else None,
            "watchlist_size": d.watchlist_size,
            "watchlist": None
            if wl is None
            else {
                "subjects": sorted({e.subject_reference for e in wl.entries}),
                "images": len(wl.entries),
                "built_by": wl.built_by,
                "built_at": utc(wl.built_at).isoformat(),
                "approved_by": wl.approved_by,
                "approved_at": utc(wl.approved_at).isoformat() if wl.approved_at else None,
            },
            "cameras": cameras,
            "live_state": live_state(d.status, cameras),
            "faces_seen": d.faces_seen,
            "frames_processed": d.frames_processed,
            "frames_dropped": d.frames_dropped,
        }


def add_camera(store: Store, deployment_id: int, camera: CameraSpec, by: str) -> None:
    """Cameras can be added until the deployment is authorised (the authorisation covers them)."""
    if not camera.name.strip() or not camera.source.strip():
        raise OpenLFRError("a camera needs a name and a source")
    with store.session() as s:
        deployment = get(s, deployment_id)
        require_status(deployment, "planned", action="add a camera")
        if any(c.name == camera.name for c in deployment.cameras):
            raise StoreError(f"deployment {deployment_id} already has a camera named {camera.name!r}")
        row = _camera(store, camera)
        deployment.cameras.append(row)
        s.flush()
        _seal_source(store, row, camera.source)
    audit.record(store, "camera.add", "deployment", deployment_id, {"camera": camera.name}, actor=by)
