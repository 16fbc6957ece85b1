"""Watchlist subjects and their reference images."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from openlfr.api.params import Id
from openlfr.api.security import SignedIn
from openlfr.api.uploads import read_uploads
from openlfr.services import subjects as subject_service

router = APIRouter(prefix="/api/v1", tags=["subjects"])


@router.get("/subjects")
def list_subjects(request: Request) -> list[dict]:
    return subject_service.list_subjects(request.app.state.store)


@router.post("/subjects", status_code=201)
def add_subject(
    request: Request,
    reference: Annotated[str, Form()],
    name: Annotated[str, Form()],
    category: Annotated[str, Form()],
    reason: Annotated[str, Form()],
    image_source: Annotated[str, Form()],
    lawful_basis: Annotated[str, Form()],
    review_date: Annotated[date, Form()],
    images: Annotated[list[UploadFile], File()],
    user: SignedIn,
    date_of_birth: Annotated[date | None, Form()] = None,
    under_18_justification: Annotated[str | None, Form()] = None,
) -> dict:
    """Enrol a subject: every image is checked (one clear face, quality limits) before anything is stored."""
    info = subject_service.SubjectInfo(
        reference=reference,
        name=name,
        category=category,
        reason=reason,
        image_source=image_source,
        lawful_basis=lawful_basis,
        added_by=user.username,
        review_date=review_date,
        date_of_birth=date_of_birth,
        under_18_justification=under_18_justification,
    )
    store = request.app.state.store
    result = subject_service.add_subject(store, request.app.state.engines(), info, read_uploads(images))
    return result.as_dict()


@router.get("/subjects/{reference}")
def get_subject(reference: str, request: Request) -> dict:
    return subject_service.subject_summary(request.app.state.store, reference)


@router.get("/subjects/{reference}/images/{image_id}")
def subject_image(reference: str, image_id: Id, request: Request) -> Response:
    """A reference image (biometric data): audited, never cached."""
    data = subject_service.reference_image(request.app.state.store, reference, image_id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store, private"})
