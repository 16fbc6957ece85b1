"""Commands for live facial recognition: subjects, deployments, the live run, alerts and retention."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from openlfr.cli.common import HomeOpt, JsonOpt, PackOpt, console, emit_json, engine_for, friendly_errors
from openlfr.errors import OpenLFRError
from openlfr.services.deployments import DEFAULT_THRESHOLD

subjects_app = typer.Typer(help="Watchlist subjects: who may be sought, why, and on what authority.", no_args_is_help=True)
deployments_app = typer.Typer(help="Plan, authorise and close deployments; build their watchlists.", no_args_is_help=True)
alerts_app = typer.Typer(help="Review alerts and record what officers decided.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete what has been kept long enough, and show what was deleted.", no_args_is_help=True)

ByOpt = Annotated[str, typer.Option("--by", help="Who is doing this (recorded).")]


def parse_time(value: str) -> datetime:
    """ISO 8601, 'now', or '+N' minutes from now; naive times are UTC."""
    if value == "now":
        return datetime.now(UTC)
    if value.startswith("+"):
        from datetime import timedelta

        return datetime.now(UTC) + timedelta(minutes=float(value[1:]))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise OpenLFRError(f"{value!r} is not a time: use ISO 8601 (2026-11-22T14:00), 'now' or '+MINUTES'") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise OpenLFRError(f"{value!r} is not a date: use YYYY-MM-DD") from exc


@subjects_app.command("add")
@friendly_errors
def subjects_add(
    images: Annotated[list[Path], typer.Argument(help="Reference images of the subject.")],
    reference: Annotated[str, typer.Option("--id", help="Subject reference (unique).")],
    name: Annotated[str, typer.Option("--name")],
    category: Annotated[str, typer.Option("--category", help="e.g. serious-violence, missing-person.")],
    reason: Annotated[str, typer.Option("--reason", help="Why the person is sought.")],
    image_source: Annotated[str, typer.Option("--image-source", help="Where the image came from.")],
    lawful_basis: Annotated[str, typer.Option("--lawful-basis", help="Why the image is lawfully held.")],
    review_date: Annotated[str, typer.Option("--review-date", help="When inclusion must be reviewed (YYYY-MM-DD).")],
    by: ByOpt,
    date_of_birth: Annotated[str | None, typer.Option("--dob", help="Date of birth, YYYY-MM-DD.")] = None,
    justification: Annotated[
        str | None, typer.Option("--under-18-justification", help="Required for a missing/vulnerable under-18.")
    ] = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a watchlist subject with their reference images and the details the law requires."""
    from openlfr.services.subjects import SubjectInfo, add_subject
    from openlfr.storage import Store

    info = SubjectInfo(
        reference,
        name,
        category,
        reason,
        image_source,
        lawful_basis,
        by,
        parse_date(review_date),
        parse_date(date_of_birth),
        justification,  # type: ignore[arg-type]
    )
    result = add_subject(Store(home), engine_for(pack, home), info, list(images))
    if as_json:
        emit_json(result.as_dict())
    else:
        console.print(f"Added subject {name} ({reference}), {result.total_images} reference image(s).")


@subjects_app.command("list")
@friendly_errors
def subjects_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    from openlfr.services.subjects import list_subjects
    from openlfr.storage import Store

    rows = list_subjects(Store(home))
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Watchlist subjects")
    for col in ("reference", "name", "category", "images", "review_date", "added_by", "under_18"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("reference", "name", "category", "images", "review_date", "added_by", "under_18")))
    console.print(table)


@deployments_app.command("plan")
@friendly_errors
def deployments_plan(
    name: Annotated[str, typer.Option("--name")],
    location: Annotated[str, typer.Option("--location", help="Where, as the public will read it.")],
    use_case: Annotated[str, typer.Option("--use-case", help="crime-hotspot, protective-security or locate-person.")],
    start: Annotated[str, typer.Option("--start", help="ISO time, 'now' or '+MINUTES'.")],
    end: Annotated[str, typer.Option("--end", help="ISO time or '+MINUTES'.")],
    camera: Annotated[list[str], typer.Option("--camera", help="NAME=SOURCE (file, URL, camera index or folder).")],
    by: ByOpt,
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Alert threshold (default: the default pack's; 0.45 for the yunet-sface pack)."),
    ] = DEFAULT_THRESHOLD,
    record: Annotated[list[str] | None, typer.Option("--record", help="Record footage from this camera.")] = None,
    min_face: Annotated[
        list[str] | None,
        typer.Option("--min-face", help="NAME=PX: smallest face that camera must find (default 40 px; 24 costs frame rate)."),
    ] = None,
    latitude: Annotated[float | None, typer.Option("--lat")] = None,
    longitude: Annotated[float | None, typer.Option("--lon")] = None,
    confirm: Annotated[str, typer.Option("--confirm", help="N/M: alert when N of a face's last M templates match.")] = "2/5",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Plan a deployment (it cannot go live until its watchlist is approved and it is authorised)."""
    from openlfr.services.deployments import CameraSpec, deployment_detail, plan
    from openlfr.storage import Store

    smallest: dict[str, float] = {}
    for item in min_face or []:
        cam_name, sep, px = item.partition("=")
        try:
            smallest[cam_name] = float(px)
        except ValueError:
            raise OpenLFRError(f"--min-face {item!r} must be NAME=PX, e.g. north=24") from None
    specs = []
    for item in camera:
        cam_name, sep, source = item.partition("=")
        if not sep or not cam_name or not source:
            raise OpenLFRError(f"--camera {item!r} must be NAME=SOURCE")
        specs.append(CameraSpec(cam_name, source, cam_name in (record or []), smallest.pop(cam_name, None)))
    if smallest:
        raise OpenLFRError(f"--min-face names no camera of this deployment: {', '.join(smallest)}")
    try:
        n, m = (int(v) for v in confirm.split("/"))
    except ValueError as exc:
        raise OpenLFRError(f"--confirm {confirm!r} must be N/M, e.g. 2/5") from exc
    deployment_id = plan(
        Store(home),
        name,
        location,
        use_case,
        parse_time(start),
        parse_time(end),
        threshold,
        specs,
        by,
        latitude,
        longitude,
        n,
        m,
        check_sources=True,
    )
    cameras = deployment_detail(Store(home), deployment_id)["cameras"]
    problems = {c["name"]: c["reason"] for c in cameras if c["state"] == "unreachable"}
    if as_json:
        emit_json({"deployment_id": deployment_id, "camera_warnings": problems})
    else:
        console.print(f"Planned deployment {deployment_id}: {name} at {location}.")
        for cam_name, problem in problems.items():
            console.print(f"[yellow]Warning: camera {cam_name} cannot be opened now ({problem}); going live will refuse it.[/]")


@deployments_app.command("list")
@friendly_errors
def deployments_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    from openlfr.services.deployments import list_deployments
    from openlfr.storage import Store

    rows = list_deployments(Store(home))
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Deployments")
    for col in ("id", "name", "location", "status", "start", "end", "threshold", "watchlist_size"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("id", "name", "location", "status", "start", "end", "threshold", "watchlist_size")))
    console.print(table)


@deployments_app.command("watchlist")
@friendly_errors
def deployments_watchlist(
    deployment: Annotated[int, typer.Argument()],
    by: ByOpt,
    subject: Annotated[list[str] | None, typer.Option("--subject", help="Subject reference (default: all current).")] = None,
    home: HomeOpt = None,
) -> None:
    """Build the deployment's own copy of the watchlist (no more than 24 h before it starts)."""
    from openlfr.services.deployments import build_watchlist
    from openlfr.storage import Store

    size = build_watchlist(Store(home), deployment, subject or None, by)
    console.print(f"Watchlist for deployment {deployment} built with {size} subject(s); it needs approval.")


@deployments_app.command("approve-watchlist")
@friendly_errors
def deployments_approve(deployment: Annotated[int, typer.Argument()], by: ByOpt, home: HomeOpt = None) -> None:
    """Approve and freeze the watchlist (by an officer other than its builder)."""
    from openlfr.services.deployments import approve_watchlist
    from openlfr.storage import Store

    approve_watchlist(Store(home), deployment, by)
    console.print(f"Watchlist of deployment {deployment} approved by {by}; it is now frozen.")


@deployments_app.command("authorise")
@friendly_errors
def deployments_authorise(
    deployment: Annotated[int, typer.Argument()],
    by: ByOpt,
    note: Annotated[str, typer.Option("--note", help="Why this deployment is necessary and proportionate.")],
    override: Annotated[
        str | None,
        typer.Option("--override-reason", help="Needed (and audited) when the threshold's estimated FPIR is above 1 in 1,000."),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """The authorising officer's approval (not the planner or the builder); the threshold is checked against the calibration."""
    from openlfr.services.deployments import authorise
    from openlfr.storage import Store

    authorise(Store(home), deployment, by, note, override_reason=override)
    console.print(f"Deployment {deployment} authorised by {by}.")


@deployments_app.command("close")
@friendly_errors
def deployments_close(
    deployment: Annotated[int, typer.Argument()], by: ByOpt, home: HomeOpt = None, as_json: JsonOpt = False
) -> None:
    """End the deployment: delete its watchlist now and produce its published record."""
    from openlfr.services.deployments import close
    from openlfr.storage import Store

    record = close(Store(home), deployment, by)
    if as_json:
        emit_json(record)
    else:
        console.print(f"Deployment {deployment} closed; its watchlist was deleted.")
        print_record(record)


def print_record(record: dict) -> None:
    """The record in words, times in the force's time zone (``--json`` / ``--csv`` give the published columns)."""
    from openlfr import config
    from openlfr.services.records import record_in_words

    table = Table(title=f"Deployment record {record['deployment_id']}", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for label, value in record_in_words(record, config.time_zone()):
        table.add_row(label, value)
    console.print(table)


@deployments_app.command("record")
@friendly_errors
def deployments_record(
    deployment: Annotated[list[int] | None, typer.Argument(help="Deployment ids (default: all closed).")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Also write the records as CSV.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deployment records with the Met's published columns, as JSON or CSV."""
    from sqlalchemy import select

    from openlfr.services.records import record_for, to_csv
    from openlfr.storage import Store
    from openlfr.storage.models import Deployment

    store = Store(home)
    with store.session() as s:
        ids = deployment or list(s.scalars(select(Deployment.id).where(Deployment.status == "closed")))
        records = [record_for(s, i) for i in ids]
    if csv_path:
        csv_path.write_text(to_csv(records))
    if as_json:
        emit_json(records)
        return
    for r in records:
        print_record(r)
    if csv_path:
        console.print(f"CSV written to {csv_path}")


def live(
    deployment: Annotated[int, typer.Option("--deployment", help="An authorised deployment.")],
    max_seconds: Annotated[float | None, typer.Option("--max-seconds", help="Stop after this long.")] = None,
    realtime: Annotated[bool, typer.Option(help="Pace video files at their frame rate, dropping frames when busy.")] = True,
    repeat_window: Annotated[
        float,
        typer.Option("--repeat-window", min=0, help="Seconds within which a subject's further alerts merge into the first."),
    ] = 120.0,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a deployment's cameras: alerts are stored and shown as they happen; non-matches leave no trace."""
    from openlfr.live.runner import recover_interrupted, run_deployment
    from openlfr.storage import Store

    store = Store(home)
    for interrupted in recover_interrupted(store):
        if not as_json:
            console.print(f"[yellow]deployment {interrupted} was left live by a crash: marked interrupted[/]")
    engine = engine_for(pack, home)

    def show_alert(alert_id: int, event) -> None:
        if not as_json:
            console.print(
                f"[bold red]ALERT {alert_id}[/] camera {event.camera}: {event.name} ({event.reference}, "
                f"{event.category}) score {event.score:.3f}, {event.latency_ms:.0f} ms after the frame"
            )

    def show_event(camera: str, message: str) -> None:
        if not as_json:
            console.print(f"[yellow]{camera}[/]: {message}")

    def show_sighting(alert_id: int, event) -> None:
        if not as_json:
            console.print(f"[red]alert {alert_id}[/]: {event.name} seen again on camera {event.camera} (score {event.score:.3f})")

    report = run_deployment(
        store, engine, deployment, realtime=realtime, max_seconds=max_seconds, on_alert=show_alert, on_event=show_event,
        on_sighting=show_sighting, repeat_window_s=repeat_window,
    )  # fmt: skip
    if as_json:
        emit_json(report.as_dict())
        return
    console.print(f"Deployment {deployment} is now {report.status}.")
    if report.track_threshold is not None:
        console.print(
            f"Each track's views had to reach {report.track_threshold} (the pack's track calibration for its N of M), so that a "
            "stranger's pass alerts no more often than one photograph at the deployment's threshold."
        )
    for cam in report.cameras:
        console.print(
            f"{cam['camera']}: {cam['frames_processed']} frames processed, {cam['frames_dropped']} dropped "
            f"({cam['processed_fps']} fps), {cam['faces_seen']} faces seen, {cam['alerts']} alert(s), "
            f"{cam['views_too_small']} view(s) too small to compare; "
            f"alert latency p50 {cam['alert_latency_p50_ms']} ms, p95 {cam['alert_latency_p95_ms']} ms"
        )


@alerts_app.command("list")
@friendly_errors
def alerts_list(
    deployment: Annotated[int | None, typer.Option("--deployment")] = None,
    pending: Annotated[bool, typer.Option("--pending", help="Only alerts without an outcome.")] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    from openlfr.services.alerts import list_alerts
    from openlfr.storage import Store

    rows = list_alerts(Store(home), deployment, pending)
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Alerts")
    cols = ("id", "deployment", "camera", "time", "subject", "name", "category", "score", "outcome", "legal_hold")
    for col in cols:
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in cols))
    console.print(table)


@alerts_app.command("show")
@friendly_errors
def alerts_show(
    alert: Annotated[int, typer.Argument()],
    image: Annotated[Path | None, typer.Option("--image", help="Write the camera crop beside the watchlist image here.")] = None,
    home: HomeOpt = None,
) -> None:
    """An alert's details; with --image, the side-by-side comparison an officer adjudicates from."""
    import cv2

    from openlfr.services.alerts import comparison_image, list_alerts
    from openlfr.storage import Store

    store = Store(home)
    rows = [r for r in list_alerts(store) if r["id"] == alert]
    if not rows:
        raise OpenLFRError(f"alert {alert} does not exist")
    console.print(json.dumps(rows[0], indent=2))
    if image:
        cv2.imwrite(str(image), comparison_image(store, alert))
        console.print(f"Comparison written to {image} (an export of biometric data: handle accordingly).")


@alerts_app.command("outcome")
@friendly_errors
def alerts_outcome(
    alert: Annotated[int, typer.Argument()],
    outcome: Annotated[str, typer.Option("--outcome", help="no-action, engaged-not-person, engaged-confirmed, arrest, other.")],
    by: ByOpt,
    judged: Annotated[str | None, typer.Option("--judged", help="match or no-match (needed for no-action and other).")] = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the officer's decision on an alert."""
    from openlfr.services.alerts import record_outcome
    from openlfr.storage import Store

    result = record_outcome(Store(home), alert, outcome, by, judged, note)
    if as_json:
        emit_json(result)
        return
    console.print(f"Alert {alert}: outcome {outcome} recorded by {by}.")
    if result["legal_hold_prompt"]:
        console.print(
            "[bold]An arrest followed: a supervisor should place a legal hold so the images are kept until the "
            f"investigation ends:[/] openlfr alerts hold {alert} --by SUPERVISOR --reason CASE"
        )


@alerts_app.command("hold")
@friendly_errors
def alerts_hold(
    alert: Annotated[int, typer.Argument()],
    by: ByOpt,
    reason: Annotated[str, typer.Option("--reason", help="The investigation or case.")],
    home: HomeOpt = None,
) -> None:
    """Place a legal hold (supervisor): images kept beyond 31 days until the process concludes."""
    from openlfr.services.alerts import set_legal_hold
    from openlfr.storage import Store

    set_legal_hold(Store(home), alert, by, reason)
    console.print(f"Alert {alert} is under legal hold.")


@alerts_app.command("release")
@friendly_errors
def alerts_release(
    alert: Annotated[int, typer.Argument()],
    by: ByOpt,
    reason: Annotated[str, typer.Option("--reason")],
    home: HomeOpt = None,
) -> None:
    """Lift a legal hold (supervisor); normal retention applies again."""
    from openlfr.services.alerts import lift_legal_hold
    from openlfr.storage import Store

    lift_legal_hold(Store(home), alert, by, reason)
    console.print(f"Legal hold on alert {alert} lifted.")


@retention_app.command("run")
@friendly_errors
def retention_run(
    alert_days: Annotated[int, typer.Option("--alert-days", min=0)] = 31,
    footage_days: Annotated[int, typer.Option("--footage-days", min=0)] = 31,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete alert images and footage past their retention period, and watchlists of closed deployments."""
    from datetime import timedelta

    from openlfr.services.retention import RetentionPolicy, run
    from openlfr.storage import Store

    report = run(Store(home), RetentionPolicy(timedelta(days=alert_days), timedelta(days=footage_days)))
    if as_json:
        emit_json(report.as_dict())
        return
    console.print(
        f"Deleted images of {len(report.alert_images_deleted)} alert(s), {len(report.footage_deleted)} footage "
        f"segment(s), {len(report.watchlists_deleted)} watchlist(s); {len(report.alerts_held)} alert(s) kept under legal hold."
    )


@retention_app.command("log")
@friendly_errors
def retention_log(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """What was deleted, when and why."""
    from openlfr.services.retention import deletion_log
    from openlfr.storage import Store

    rows = deletion_log(Store(home))
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Deletion log")
    for col in ("at", "kind", "record", "files", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("at", "kind", "record", "files", "reason")))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(subjects_app, name="subjects")
    app.add_typer(deployments_app, name="deployments")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(retention_app, name="retention")
    app.command("live")(friendly_errors(live))
    app.command("simulate")(friendly_errors(simulate))


def simulate(
    data: Annotated[Path, typer.Option("--data", help="LFW folder (holding lfw-deepfunneled/).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for walkby.mp4, truth.json and the watchlist images.")],
    duration: Annotated[float, typer.Option("--duration", min=1.0, help="Seconds of video.")] = 60.0,
    people: Annotated[int, typer.Option("--people", min=1, help="People passing the camera.")] = 60,
    watchlisted: Annotated[int, typer.Option("--watchlisted", min=0, help="How many of them are on the watchlist.")] = 5,
    watchlist_size: Annotated[
        int | None,
        typer.Option(
            "--watchlist-size",
            min=1,
            help="Subjects on the watchlist (default: the watchlisted passers-by). Larger: LFW identities with one "
            "reference image each; everyone else who passes is on no watchlist.",
        ),
    ] = None,
    min_size: Annotated[float, typer.Option("--min-size", min=12.0, help="Smallest face width, px.")] = 40.0,
    max_size: Annotated[float, typer.Option("--max-size", help="Largest face width, px.")] = 160.0,
    fps: Annotated[float, typer.Option("--fps")] = 25.0,
    seed: Annotated[int, typer.Option("--seed")] = 1,
) -> None:
    """Render a 1080p walk-by video of LFW faces with exact ground truth (who, when, where, how big)."""
    import time

    from openlfr.cli.common import progress_bar
    from openlfr.simulation import walkby

    try:
        scenario = walkby.plan(data, duration, people, watchlisted, min_size, max_size, fps, seed, watchlist_size=watchlist_size)
    except (ValueError, FileNotFoundError) as exc:
        raise OpenLFRError(str(exc)) from exc
    started = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("rendering", total=scenario.frames, rate="")

        def advance(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, rate=f"{rate:.0f} frames/s")

        paths = walkby.write(scenario, out, advance)
    console.print(
        f"{len(scenario.passes)} passes ({watchlisted} watchlisted) in {duration:.0f} s of 1080p video: {paths['video']}\n"
        f"Watchlist of {scenario.target_watchlist_size} subject(s); ground truth (with the LFW photographs to enrol as "
        f"the watchlist): {paths['truth']}"
    )


def evaluate_walkby(
    truth: Annotated[Path, typer.Option("--truth", help="truth.json written by 'openlfr simulate'.")],
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Deployment threshold (default: the model pack's alert threshold).")
    ] = None,
    realtime: Annotated[bool, typer.Option(help="Play the video in real time, dropping frames when busy.")] = True,
    confirm: Annotated[str, typer.Option("--confirm", help="N/M confirmation.")] = "2/5",
    out: Annotated[Path | None, typer.Option("--out", help="Write the full result as JSON here.")] = None,
    pool: Annotated[bool, typer.Option("--pool", help="Also alert on each track's pooled template.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Also write live.html and live.json into this folder.")] = None,
    process_every: Annotated[
        int, typer.Option("--process-every", min=1, help="With --no-realtime: process every k-th frame (k times too slow)."),
    ] = 1,
    repeat_window: Annotated[
        float, typer.Option("--repeat-window", min=0, help="Seconds in which a subject's further alerts merge into the first.")
    ] = 120.0,
    min_face: Annotated[
        float | None, typer.Option("--min-face", help="Smallest face (px) the camera must find (default 40; 24 is slower).")
    ] = None,
    pack: PackOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a walk-by video through a whole deployment and score its alerts against the ground truth."""
    from openlfr.cli.common import progress_bar
    from openlfr.evaluation import walkby

    n, m = (int(v) for v in confirm.split("/"))
    engine = engine_for(pack, home)
    threshold = engine.alert_threshold if threshold is None else threshold
    with progress_bar() as bar:
        task = bar.add_task("enrolling the watchlist", total=None, rate="")
        result, scenario, events = walkby.run_with_events(
            engine,
            truth,
            threshold=threshold,
            realtime=realtime,
            confirm=(n, m),
            pool_templates=pool,
            progress=lambda done, total: bar.update(task, completed=done, total=total, rate="subjects"),
            drop_frame=(lambda index: index % process_every != 0) if process_every > 1 else None,
            repeat_window_s=repeat_window,
            min_face_px=min_face,
        )
    if report:
        from openlfr.evaluation import live_report

        live_report.write_live_report(report, result, scenario, events, confirm, realtime, pool, engine.pack_id)
    data = result.as_dict()
    if out:
        out.write_text(json.dumps(data, indent=2, default=str))
    if as_json:
        emit_json(data)
        return
    per_10000 = result.false_alerts_per_10000_faces
    console.print(
        f"Walk-by: {result.passes} passes, {result.watchlisted_passes} watchlisted; watchlist of {result.watchlist_size} "
        f"subject(s) (planned {result.planned_watchlist_size}); threshold {threshold}, "
        f"confirm {confirm}{', pooled templates' if pool else ''}\n"
        f"  per-pass TPIR (watchlisted passes alerted): {result.alerted_passes}/{result.watchlisted_passes} "
        f"({result.alerted_rate:.1%})\n"
        f"  false alerts: {result.false_alerts} in {result.faces_seen} faces seen = "
        f"{'n/a' if per_10000 is None else f'{per_10000:.1f}'} per 10,000 faces; duplicate alerts: {result.duplicate_alerts}; "
        f"passes with exactly one alert: {result.passes_with_one_alert}; "
        f"further sightings merged into an alert: {result.merged_sightings}\n"
        f"  faces seen: {result.faces_seen}; {walkby.latency_summary(result)}"
    )
