"""The operations pages (subjects, deployments, retention, records), the auditors' page and the users page.

Server-rendered forms over the same services as the REST API, so the rules (life cycle, quality
limits, who may authorise) are enforced in one place. Every POST answers with a 303 back to a
page carrying a flash message or the service's own error text, never a stack trace. Which buttons
a page shows is decided from :mod:`openlfr.api.policy`, so the page and the access rules cannot
disagree.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import select

from openlfr.api.params import Id
from openlfr.api.security import current_user
from openlfr.api.uploads import read_uploads
from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.services import alerts as alert_service
from openlfr.services import audit, deployments, records, retention, subjects, transparency, users
from openlfr.services.alerts import alert_payload
from openlfr.services.common import utc
from openlfr.services.gallery import EnrolResult
from openlfr.services.users import CurrentUser
from openlfr.storage import Store
from openlfr.storage.models import Alert, Deployment, Gallery, Person, ReferenceImage
from openlfr.web import formatting
from openlfr.web.forms import FieldError, Hints, field_errors, refused
from openlfr.web.pages import redirect, safe_next
from openlfr.web.render import may, page

router = APIRouter(include_in_schema=False)

#: Human headings for the Met's published record columns: the same as the public site's.
RECORD_LABELS = transparency.COLUMN_LABELS
#: Short names for the quality measures shown beside each reference image.
QUALITY_LABELS = {
    "inter_eye_px": "eyes px",
    "sharpness": "sharpness",
    "brightness": "brightness",
    "contrast": "contrast",
    "frontalness": "frontal",
    "detector_score": "detector",
}
AUDIT_FILTERS = ("actor", "action", "record_type", "record_id", "since", "until")
AUDIT_PAGE_LIMIT = 200


# --- helpers -----------------------------------------------------------------------------------


def _store(request: Request) -> Store:
    return request.app.state.store


def _text(value: str | None) -> str:
    return (value or "").strip()


#: Which field a service's refusal is about, from its words (:mod:`openlfr.web.forms`).
SUBJECT_HINTS: Hints = (
    ("under_18_justification", ("under 18", "under-18", "justification")),
    ("date_of_birth", ("date of birth",)),
    ("review_date", ("review date",)),
    ("category", ("category",)),
    ("image_source", ("image source",)),
    ("lawful_basis", ("lawful basis",)),
    ("images", ("image", "face", "eyes", "sharp", "bright", "contrast", "frontal", "detector", "quality")),
    ("reason", ("reason",)),
    ("reference", ("reference",)),
)
PLAN_HINTS: Hints = (
    ("threshold", ("threshold",)),
    ("latitude", ("latitude",)),
    ("longitude", ("longitude",)),
    ("use_case", ("use case",)),
    ("end", ("end after", "24 hours", "the end")),
    ("start", ("start",)),
    ("camera_source", ("camera", "source")),
)
USER_HINTS: Hints = (
    ("username", ("username",)),
    ("display_name", ("display name",)),
    ("role", ("role",)),
    ("password", ("password",)),
)
AUTHORISE_HINTS: Hints = (("override_reason", ("override",)), ("note", ("note",)))


def _date(value: str | None, what: str, required: bool = True, field: str = "") -> date | None:
    text = _text(value)
    if not text:
        if required:
            raise FieldError(field, f"enter the {what} (YYYY-MM-DD)")
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FieldError(field, f"the {what} {text!r} is not a date (YYYY-MM-DD)") from None


def _local_datetime(value: str | None, what: str, required: bool = True, field: str = "") -> datetime | None:
    """A ``datetime-local`` (or plain date) field, typed in the force's time zone, as UTC (what the store keeps)."""
    text = _text(value)
    if not text:
        if required:
            raise FieldError(field, f"enter the {what} (date and time)")
        return None
    try:
        return formatting.from_input(text)
    except ValueError:
        raise FieldError(field, f"the {what} {text!r} is not a date and time (YYYY-MM-DDTHH:MM)") from None


def _float(value: str | None, what: str, field: str = "") -> float | None:
    text = _text(value)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise FieldError(field, f"the {what} {text!r} is not a number") from None


def _quality_text(quality: dict) -> str:
    parts = []
    for key, label in QUALITY_LABELS.items():
        if key in quality:
            value = float(quality[key])
            parts.append(f"{label} {value:.2f}" if abs(value) < 10 else f"{label} {value:.0f}")
    return ", ".join(parts)


def _enrol_summary(result: EnrolResult) -> str:
    images = "; ".join(f"{img.source}: {_quality_text(img.quality)}" for img in result.images)
    return (
        f"Subject {result.reference} ({result.name}) saved with {len(result.images)} new image(s) "
        f"({result.total_images} in all). Quality — {images}."
    )


def _subject_images(store: Store) -> dict[str, list[dict]]:
    """Each subject's reference images with their quality measures (numbers only, never the image).

    Private helper: ``services.subjects.list_subjects`` gives only a count of images.
    """
    with store.session() as s:
        rows = s.execute(
            select(Person.reference, ReferenceImage.id, ReferenceImage.source_name, ReferenceImage.quality)
            .join(Gallery, Gallery.id == Person.gallery_id)
            .join(ReferenceImage, ReferenceImage.person_id == Person.id)
            .where(Gallery.name == subjects.SUBJECTS_GALLERY)
            .order_by(Person.reference, ReferenceImage.id)
        ).all()
    found: dict[str, list[dict]] = {}
    for reference, image_id, source, quality in rows:
        found.setdefault(reference, []).append({"id": image_id, "source": source, "quality": _quality_text(quality or {})})
    return found


def _planned_at(store: Store, deployment_id: int) -> str | None:
    """When the deployment was planned (``deployment_detail`` names who, not when)."""
    with store.session() as s:
        deployment = s.get(Deployment, deployment_id)
        return utc(deployment.created_at).isoformat() if deployment and deployment.created_at else None


def _watchlist_history(store: Store, deployment_id: int) -> dict[str, dict]:
    """Who built, approved and deleted a deployment's watchlist, from the audit trail.

    Once a deployment closes its watchlist row is gone (deleted with the biometric copies), so the
    life cycle of a closed deployment is shown from the trail. Newest event per action.
    """
    history: dict[str, dict] = {}
    for e in audit.search(store, record_type="watchlist", record_id=str(deployment_id), action="watchlist."):
        history.setdefault(e["action"].removeprefix("watchlist."), e)
    return history


def _kept_alerts(store: Store) -> tuple[list[dict], list[dict]]:
    """(alerts under legal hold, alerts whose images are still kept): no names, no images."""
    policy = retention.RetentionPolicy()
    held, kept = [], []
    with store.session() as s:
        for a in s.scalars(select(Alert).where(Alert.images_deleted_at.is_(None)).order_by(Alert.id)):
            row = {
                "id": a.id,
                "deployment": a.deployment_id,
                "camera": a.camera_name,
                "time": utc(a.frame_time).isoformat(),
                "outcome": alert_service.OUTCOMES.get(a.outcome, a.outcome) if a.outcome else None,
                "legal_hold": a.legal_hold,
                "hold_reason": a.hold_reason,
                "hold_by": a.hold_by,
                "due": (utc(a.created_at) + policy.alert_images).isoformat(),
                "hold_advised": a.outcome == "arrest",  # the CLI's prompt after an arrest, on the page
            }
            (held if a.legal_hold else kept).append(row)
    return held, kept


def _not_found(request: Request, exc: NotFoundError) -> Response:
    return page(request, "message.html", status_code=404, heading="Not found", message=str(exc))


# --- watchlist subjects --------------------------------------------------------------------------


def _subjects_context(request: Request) -> dict:
    store = _store(request)
    return dict(
        subjects=subjects.list_subjects(store),
        images=_subject_images(store),
        categories=subjects.CATEGORIES,
        can_add=may(request.state.user, "POST", "/ops/subjects"),
        today=date.today().isoformat(),
        default_review=(date.today() + timedelta(days=180)).isoformat(),
    )


@router.get("/ops/subjects")
def subjects_page(request: Request):
    return page(request, "ops_subjects.html", **_subjects_context(request))


@router.post("/ops/subjects")
def add_subject(
    request: Request,
    reference: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    category: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    image_source: Annotated[str, Form()] = "",
    lawful_basis: Annotated[str, Form()] = "",
    review_date: Annotated[str, Form()] = "",
    date_of_birth: Annotated[str, Form()] = "",
    under_18_justification: Annotated[str, Form()] = "",
    images: Annotated[list[UploadFile] | None, File()] = None,
):
    """Enrol a subject from the upload form; the service checks every image before anything is stored.

    Refused, the form comes back as typed (the images must be chosen again: no browser keeps a file)."""
    user = current_user(request)
    typed = {"reference": reference, "name": name, "category": category, "reason": reason, "image_source": image_source,
             "lawful_basis": lawful_basis, "review_date": review_date, "date_of_birth": date_of_birth,
             "under_18_justification": under_18_justification}  # fmt: skip
    try:
        if not _text(reference):
            raise FieldError("reference", "enter the subject's reference")
        if not _text(name):
            raise FieldError("name", "enter the subject's name")
        chosen = [f for f in images or [] if f.filename]
        if not chosen:
            raise FieldError("images", "choose at least one reference image")
        info = subjects.SubjectInfo(
            reference=_text(reference),
            name=_text(name),
            category=category,
            reason=_text(reason),
            image_source=_text(image_source),
            lawful_basis=_text(lawful_basis),
            added_by=user.username,
            review_date=_date(review_date, "review date", field="review_date"),
            date_of_birth=_date(date_of_birth, "date of birth", required=False, field="date_of_birth"),
            under_18_justification=_text(under_18_justification) or None,
        )
        result = subjects.add_subject(_store(request), request.app.state.engines(), info, read_uploads(chosen))
    except OpenLFRError as exc:
        errors = field_errors(exc, SUBJECT_HINTS)
        return page(request, "ops_subjects.html", status_code=400, **_subjects_context(request), form=typed, errors=errors,
                    form_error=refused("Subject not saved", exc, errors))  # fmt: skip
    return redirect("/ops/subjects", flash=_enrol_summary(result))


# --- deployments ---------------------------------------------------------------------------------


def _deployments_context(request: Request) -> dict:
    """The list and the plan form, whose start and end are filled in the force's time zone."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return dict(
        deployments=deployments.list_deployments(_store(request)),
        use_cases=deployments.USE_CASES,
        can_plan=may(request.state.user, "POST", "/ops/deployments"),
        default_threshold=request.app.state.default_threshold(),
        default_start=formatting.input_value(now),
        default_end=formatting.input_value(now + timedelta(hours=4)),
    )


@router.get("/ops/deployments")
def deployments_page(request: Request):
    return page(request, "ops_deployments.html", **_deployments_context(request))


@router.post("/ops/deployments")
def plan_deployment(
    request: Request,
    name: Annotated[str, Form()] = "",
    location: Annotated[str, Form()] = "",
    latitude: Annotated[str, Form()] = "",
    longitude: Annotated[str, Form()] = "",
    use_case: Annotated[str, Form()] = "",
    start: Annotated[str, Form()] = "",
    end: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "",
    camera_name: Annotated[str, Form()] = "",
    camera_source: Annotated[str, Form()] = "",
):
    user = current_user(request)
    typed = {"name": name, "location": location, "latitude": latitude, "longitude": longitude, "use_case": use_case,
             "start": start, "end": end, "threshold": threshold, "camera_name": camera_name,
             "camera_source": camera_source}  # fmt: skip
    try:
        for field, what in (("name", "name"), ("location", "location"), ("camera_name", "camera's name"),
                            ("camera_source", "camera's source")):  # fmt: skip
            if not _text(typed[field]):
                raise FieldError(field, f"enter the deployment's {what}")
        value = _float(threshold, "threshold", field="threshold")
        deployment_id = deployments.plan(
            _store(request),
            _text(name),
            _text(location),
            use_case,
            _local_datetime(start, "start", field="start"),
            _local_datetime(end, "end", field="end"),
            request.app.state.default_threshold() if value is None else value,
            [deployments.CameraSpec(_text(camera_name), _text(camera_source))],
            created_by=user.username,
            latitude=_float(latitude, "latitude", field="latitude"),
            longitude=_float(longitude, "longitude", field="longitude"),
            check_sources=True,
        )
    except OpenLFRError as exc:
        errors = field_errors(exc, PLAN_HINTS)
        return page(request, "ops_deployments.html", status_code=400, **_deployments_context(request), form=typed,
                    errors=errors, form_error=refused("Deployment not planned", exc, errors))  # fmt: skip
    return redirect(f"/ops/deployments/{deployment_id}", flash=f"Deployment {deployment_id} planned. Next: build its watchlist.")


@router.get("/ops/deployments/{deployment_id}")
def deployment_page(deployment_id: Id, request: Request):
    return _deployment_page(request, deployment_id)


def _deployment_extras(store: Store, deployment_id: int, user: CurrentUser | None, d: dict) -> dict:
    """What the page warns about and offers to print: undecided alerts before closing (the officer
    sees which, not only how many), the leaflet and A3 poster once announced, placeholders in them."""
    return dict(
        undecided=alert_service.list_alerts(store, deployment_id, pending_only=True) if d["status"] != "closed" else [],
        can_open_alerts=may(user, "GET", "/console/alerts/{alert_id}"),
        printable=bool(d.get("authorised_at")),
        force_configured=transparency.force_configured(),
    )


def _deployment_page(request: Request, deployment_id: int, status_code: int = 200, **extra) -> Response:
    """The deployment page; ``extra`` refills a refused form on it (the authorisation's note)."""
    store = _store(request)
    user = request.state.user
    try:
        d = deployments.deployment_detail(store, deployment_id)
    except NotFoundError as exc:
        return _not_found(request, exc)
    base = "/ops/deployments/{deployment_id}"
    wl = d["watchlist"]
    run = request.app.state.live.run(deployment_id)
    running = bool(run and run.thread.is_alive())
    status = d["status"]
    actions = {
        "watchlist": status == "planned" and not (wl and wl["approved_at"]) and may(user, "POST", base + "/watchlist"),
        "approve": status == "planned" and bool(wl) and not wl["approved_at"] and may(user, "POST", base + "/approve"),
        "authorise": status == "planned" and bool(wl and wl["approved_at"]) and may(user, "POST", base + "/authorise"),
        "start": status in deployments.STARTABLE and not running and may(user, "POST", base + "/start"),
        "stop": running and may(user, "POST", base + "/stop"),
        "close": status != "closed" and may(user, "POST", base + "/close"),
    }
    record = None
    if status == "closed":
        with store.session() as s:
            record = records.record_for(s, deployment_id)
    today = date.today().isoformat()
    pool = subjects.list_subjects(store) if actions["watchlist"] else []
    return page(
        request,
        "ops_deployment.html",
        status_code=status_code,
        **_deployment_extras(store, deployment_id, user, d),
        **extra,
        d=d,
        planned_at=_planned_at(store, deployment_id),
        actions=actions,
        history=_watchlist_history(store, deployment_id) if wl is None else {},
        running=running,
        run_error=run.error if run else None,
        record=record,
        record_labels=RECORD_LABELS,
        subjects=[{**s, "expired": s["review_date"] < today} for s in pool],
        categories=subjects.CATEGORIES,
        can_watch_live=status == "live" and may(user, "GET", "/console/live/{deployment_id}"),
    )


def _lifecycle_step(deployment_id: int, done: str, action) -> Response:
    """Run one life-cycle service call; back to the deployment page with what happened or why not."""
    try:
        message = action()
    except OpenLFRError as exc:
        return redirect(f"/ops/deployments/{deployment_id}", error=str(exc))
    return redirect(f"/ops/deployments/{deployment_id}", flash=message or done)


@router.post("/ops/deployments/{deployment_id}/watchlist")
def build_watchlist(deployment_id: Id, request: Request, subject: Annotated[list[str] | None, Form()] = None):
    user = current_user(request)
    chosen = [r for r in subject or [] if r.strip()]

    def build() -> str:
        if not chosen:
            raise OpenLFRError("tick at least one subject for the watchlist")
        size = deployments.build_watchlist(_store(request), deployment_id, chosen, built_by=user.username)
        return f"Watchlist built with {size} subject(s). An authorising officer must approve it."

    return _lifecycle_step(deployment_id, "", build)


@router.post("/ops/deployments/{deployment_id}/approve")
def approve_watchlist(deployment_id: Id, request: Request):
    user = current_user(request)
    return _lifecycle_step(
        deployment_id,
        "Watchlist approved and frozen.",
        lambda: deployments.approve_watchlist(_store(request), deployment_id, approved_by=user.username),
    )


@router.post("/ops/deployments/{deployment_id}/authorise")
def authorise(
    deployment_id: Id, request: Request, note: Annotated[str, Form()] = "", override_reason: Annotated[str, Form()] = ""
):
    """Refused (no note, the planner authorising, a threshold needing an override), the page comes back
    with the note and override reason as typed."""
    user = current_user(request)
    try:
        deployments.authorise(_store(request), deployment_id, officer=user.username, note=note,
                              override_reason=override_reason or None)  # fmt: skip
    except NotFoundError as exc:
        return _not_found(request, exc)
    except OpenLFRError as exc:
        errors = field_errors(exc, AUTHORISE_HINTS)
        return _deployment_page(request, deployment_id, status_code=400, errors=errors,
                                form={"note": note, "override_reason": override_reason},
                                form_error=refused("Not authorised", exc, errors))  # fmt: skip
    return redirect(f"/ops/deployments/{deployment_id}", flash="Deployment authorised: it may now go live.")


@router.post("/ops/deployments/{deployment_id}/start")
def start(deployment_id: Id, request: Request):
    """Go live (as the REST route does) and take the officer to the alert queue."""
    store = _store(request)
    try:
        status = deployments.deployment_detail(store, deployment_id)["status"]
        if status not in ("live", *deployments.STARTABLE):  # refuse before the model pack is loaded for nothing
            raise OpenLFRError(
                f"deployment {deployment_id} has ended; it can only be closed" if status == deployments.ENDED
                else f"deployment {deployment_id} is {status}; it must be authorised to go live"
            )  # fmt: skip
        request.app.state.live.start(deployment_id, lambda alert_id: alert_payload(store, alert_id))
    except OpenLFRError as exc:
        return redirect(f"/ops/deployments/{deployment_id}", error=str(exc))
    return redirect("/console", flash=f"Deployment {deployment_id} is live: alerts appear here.")


@router.post("/ops/deployments/{deployment_id}/stop")
def stop(deployment_id: Id, request: Request):
    def halt() -> str:
        deployments.deployment_detail(_store(request), deployment_id)  # NotFoundError for an unknown id
        run = request.app.state.live.stop(deployment_id)
        if run is None:
            return "The cameras were not running."
        return "Cameras stopped. The deployment stays open for outcomes until it is closed."

    return _lifecycle_step(deployment_id, "", halt)


@router.post("/ops/deployments/{deployment_id}/close")
def close(deployment_id: Id, request: Request, undecided_ok: Annotated[str, Form()] = ""):
    """Close; while alerts await an outcome the officer must first say they close anyway (the page lists them)."""
    user = current_user(request)

    def shut() -> str:
        store = _store(request)
        closed = deployments.deployment_detail(store, deployment_id)["status"] == "closed"  # the service says why not
        waiting = [] if closed else [a["id"] for a in alert_service.list_alerts(store, deployment_id, pending_only=True)]
        if waiting and undecided_ok != "yes":
            raise OpenLFRError(
                f"{len(waiting)} alert(s) have no outcome yet ({', '.join(map(str, waiting))}): record their outcomes, "
                "or tick 'Close anyway' to close with them undecided"
            )
        request.app.state.live.stop(deployment_id)
        deployments.close(_store(request), deployment_id, by=user.username)
        return "Deployment closed: its watchlist was deleted and its record published."

    return _lifecycle_step(deployment_id, "", shut)


# --- retention and legal holds -------------------------------------------------------------------


@router.get("/ops/retention")
def retention_page(request: Request):
    store = _store(request)
    user = request.state.user
    held, kept = _kept_alerts(store)
    return page(
        request,
        "ops_retention.html",
        policy=retention.RetentionPolicy(),
        log=retention.deletion_log(store),
        held=held,
        kept=kept,
        can_run=may(user, "POST", "/ops/retention/run"),
        can_hold=may(user, "POST", "/ops/alerts/{alert_id}/hold"),
        can_release=may(user, "POST", "/ops/alerts/{alert_id}/release"),
    )


@router.post("/ops/retention/run")
def run_retention(request: Request):
    try:
        report = retention.run(_store(request))
    except OpenLFRError as exc:
        return redirect("/ops/retention", error=str(exc))

    def ids(values: list[int]) -> str:
        return f" ({', '.join(map(str, values))})" if values else ""

    message = (
        f"Retention run: images of {len(report.alert_images_deleted)} alert(s) deleted{ids(report.alert_images_deleted)}; "
        f"{len(report.footage_deleted)} footage segment(s) deleted; "
        f"{len(report.watchlists_deleted)} watchlist(s) of closed deployments deleted{ids(report.watchlists_deleted)}; "
        f"{len(report.alerts_held)} alert(s) kept under legal hold{ids(report.alerts_held)}."
    )
    return redirect("/ops/retention", flash=message)


@router.post("/ops/alerts/{alert_id}/hold")
def hold(alert_id: Id, request: Request, reason: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""):
    """Place a hold; ``next`` brings the officer back to the page they held it from (the alert's, after an arrest)."""
    user = current_user(request)
    back = safe_next(next) or "/ops/retention"
    try:
        alert_service.set_legal_hold(_store(request), alert_id, user.username, reason)
    except OpenLFRError as exc:
        return redirect(back, error=f"Alert {alert_id}: {exc}")
    return redirect(back, flash=f"Alert {alert_id} is under legal hold: its images are kept until it is lifted.")


@router.post("/ops/alerts/{alert_id}/release")
def release(alert_id: Id, request: Request, reason: Annotated[str, Form()] = ""):
    user = current_user(request)
    try:
        alert_service.lift_legal_hold(_store(request), alert_id, user.username, reason)
    except OpenLFRError as exc:
        return redirect("/ops/retention", error=f"Alert {alert_id}: {exc}")
    return redirect("/ops/retention", flash=f"Legal hold on alert {alert_id} lifted: the normal retention period applies again.")


# --- records -------------------------------------------------------------------------------------


@router.get("/ops/records")
def records_page(request: Request):
    store = _store(request)
    closed = [d["id"] for d in deployments.list_deployments(store) if d["status"] == "closed"]
    with store.session() as s:
        rows = [records.record_for(s, deployment_id) for deployment_id in closed]
    return page(request, "ops_records.html", records=rows, columns=records.COLUMNS, labels=RECORD_LABELS)


# --- audit ---------------------------------------------------------------------------------------


@router.get("/audit")
def audit_page(request: Request):
    """Search the trail, check the chain, export. A search is itself an audited act."""
    store = _store(request)
    params = request.query_params
    filters = {key: _text(params.get(key)) for key in AUDIT_FILTERS}
    submitted = any(key in params for key in AUDIT_FILTERS)
    error = None
    events: list[dict] = []
    export = ""
    try:
        since = _local_datetime(filters["since"], "'since' time", required=False)
        until = _local_datetime(filters["until"], "'until' time", required=False)
    except OpenLFRError as exc:
        error, since, until = str(exc), None, None
    else:
        events = audit.search(
            store,
            actor=filters["actor"] or None,
            action=filters["action"] or None,
            record_type=filters["record_type"] or None,
            record_id=filters["record_id"] or None,
            since=since,
            until=until,
            limit=AUDIT_PAGE_LIMIT,
        )
        query = {k: v for k, v in filters.items() if v and k not in ("since", "until")}
        query |= {k: v.isoformat() for k, v in (("since", since), ("until", until)) if v}
        export = urlencode(query)
        if submitted:
            audit.record(store, "audit.search", details={**{k: v for k, v in filters.items() if v}, "results": len(events)})
    for e in events:
        e["details_text"] = json.dumps(e["details"], sort_keys=True, ensure_ascii=False) if e["details"] else ""
    return page(
        request,
        "audit.html",
        error=error,
        filters=filters,
        events=events,
        limit=AUDIT_PAGE_LIMIT,
        verification=audit.verify_configured(store),
        export=export,
    )


# --- users ---------------------------------------------------------------------------------------


def _users_context(request: Request) -> dict:
    return dict(users=users.list_users(_store(request)), roles=users.ROLE_LABELS, min_password=users.MIN_PASSWORD_LENGTH)


@router.get("/admin/users")
def users_page(request: Request):
    return page(request, "admin_users.html", **_users_context(request))


@router.post("/admin/users")
def create_user(
    request: Request,
    username: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
):
    """Refused, the form comes back as typed, except the password."""
    user = current_user(request)
    try:
        created = users.create_user(_store(request), username, display_name, role, password, created_by=user.username)
    except OpenLFRError as exc:
        errors = field_errors(exc, USER_HINTS)
        return page(request, "admin_users.html", status_code=400, **_users_context(request), errors=errors,
                    form={"username": username, "display_name": display_name, "role": role},
                    form_error=refused("Account not created", exc, errors))  # fmt: skip
    return redirect("/admin/users", flash=f"Account {created.username} created ({created.role_label}).")


@router.post("/admin/users/{user_id}/active")
def set_active(user_id: Id, request: Request, active: Annotated[str, Form()] = ""):
    """Disable (sessions and tokens end at once) or enable an account; the service audits it and keeps
    the last active administrator."""
    user = current_user(request)
    try:
        if active not in ("yes", "no"):
            raise OpenLFRError("say whether the account should be active (yes or no)")
        users.set_active(_store(request), user_id, active == "yes", by=user.username)
        name = users.get_user(_store(request), user_id)["username"]
    except OpenLFRError as exc:
        return redirect("/admin/users", error=f"Account not changed: {exc}")
    done = "enabled" if active == "yes" else "disabled: its sessions and API tokens were ended"
    return redirect("/admin/users", flash=f"Account {name} {done}.")


@router.post("/admin/users/{user_id}/role")
def set_role(user_id: Id, request: Request, role: Annotated[str, Form()] = ""):
    """Change what a person may do (from their next request); audited by the service."""
    user = current_user(request)
    try:
        users.set_role(_store(request), user_id, role, by=user.username)
        changed = users.get_user(_store(request), user_id)
    except OpenLFRError as exc:
        return redirect("/admin/users", error=f"Role not changed: {exc}")
    return redirect("/admin/users", flash=f"{changed['username']} is now {changed['role_label']}.")
