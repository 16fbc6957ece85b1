"""The public transparency site: no sign-in, and nothing on it but what the force publishes anyway —
announced deployments, their records, and the leaflet for each location. No images, ever."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from openlfr.api.params import Id
from openlfr.errors import NotFoundError
from openlfr.services import transparency
from openlfr.services.records import COLUMNS
from openlfr.web.render import page

router = APIRouter(include_in_schema=False)


def _day(value: str | None) -> date | None:
    """A filter date from the form; an empty or malformed one is ignored rather than answered with an error."""
    try:
        return date.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None


@router.get("/public")
def public_home(request: Request, location: str | None = None, date_from: str | None = None, date_to: str | None = None):
    store = request.app.state.store
    where = (location or "").strip() or None
    day_from, day_to = _day(date_from), _day(date_to)
    # The download links carry the same filters, so a download is exactly the table on screen.
    filters = {k: str(v) for k, v in (("location", where), ("date_from", day_from), ("date_to", day_to)) if v}
    return page(
        request,
        "public.html",
        upcoming=transparency.upcoming(store, where, day_from, day_to),
        records=transparency.past_records(store, where, day_from, day_to),
        columns=[(c, transparency.COLUMN_LABELS.get(c, c)) for c in COLUMNS],
        location=where or "",
        date_from=day_from.isoformat() if day_from else "",
        date_to=day_to.isoformat() if day_to else "",
        csv_url="/api/v1/public/records?" + urlencode({"format": "csv", **filters}),
        json_url="/api/v1/public/records?" + urlencode({"format": "json", **filters}),
        upcoming_json_url="/api/v1/public/deployments" + (f"?{urlencode(filters)}" if filters else ""),
        force=transparency.force_name(),
    )


def _printed(request: Request, deployment_id: int, template: str):
    """The leaflet or the poster: the same published facts (``transparency.leaflet``), nothing more."""
    try:
        facts = transparency.leaflet(request.app.state.store, deployment_id)
    except NotFoundError:
        return page(
            request,
            "message.html",
            status_code=404,
            heading="Not found",
            message="There is no published deployment with this number.",
        )
    return page(request, template, d=facts)


@router.get("/public/deployments/{deployment_id}/leaflet")
def leaflet(deployment_id: Id, request: Request):
    return _printed(request, deployment_id, "leaflet.html")


@router.get("/public/deployments/{deployment_id}/poster")
def poster(deployment_id: Id, request: Request):
    """An A3 sign for the location (the Met places signs around every deployment); prints on one sheet."""
    return _printed(request, deployment_id, "poster.html")
