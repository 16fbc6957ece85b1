"""What the public may see, without signing in: deployments announced before they happen and their
results after. Never a face, a template, a subject's name or any watchlist detail."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from openlfr.services import transparency

router = APIRouter(prefix="/api/v1", tags=["public"])


@router.get("/public/deployments")
def upcoming(
    request: Request, location: str | None = None, date_from: date | None = None, date_to: date | None = None
) -> list[dict]:
    """Authorised and live deployments: location, time window and use case."""
    return transparency.upcoming(request.app.state.store, location=location, date_from=date_from, date_to=date_to)


@router.get("/public/records")
def past(
    request: Request,
    location: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    format: str = "json",
):
    """Closed deployments' records with the Met's published columns, as JSON or CSV."""
    rows = transparency.past_records(request.app.state.store, location=location, date_from=date_from, date_to=date_to)
    if format == "csv":
        return PlainTextResponse(
            transparency.records_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="openlfr-deployment-records.csv"'},
        )
    return rows
