"""The examiners' pages: start a case-bound search, choose the probe face, review candidates one by
one (probe beside candidate), confirm a colleague's possible matches, export the case report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from openlfr.api.params import Id
from openlfr.api.security import current_user
from openlfr.api.uploads import read_uploads
from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.services import rfr
from openlfr.web.forms import field_errors, refused
from openlfr.web.pages import redirect
from openlfr.web.render import page

router = APIRouter(include_in_schema=False)


#: Which field a refused search is about, from the service's words (see ``ops_pages.field_errors``).
SEARCH_HINTS = (
    ("case_reference", ("case reference",)),
    ("justification", ("justification",)),
    ("top_k", ("top-k",)),
    ("probe", ("image", "face", "video", "clip", "probe", "file")),
)


def _searches_page(request: Request, case: str | None = None, status_code: int = 200, **extra):
    store = request.app.state.store
    try:
        from openlfr.services import custody

        gallery = custody.stats(store)
    except (ImportError, OpenLFRError):
        gallery = None
    return page(request, "rfr.html", status_code=status_code, searches=rfr.list_searches(store, case or None),
                gallery=gallery, default_k=rfr.DEFAULT_TOP_K, max_k=rfr.MAX_TOP_K, **extra)  # fmt: skip


@router.get("/rfr")
def searches(request: Request, case: str | None = None):
    return _searches_page(request, case)


@router.post("/rfr/searches")
def start(
    request: Request,
    probe: Annotated[UploadFile, File()],
    case_reference: Annotated[str, Form()] = "",
    justification: Annotated[str, Form()] = "",
    top_k: Annotated[str, Form()] = str(rfr.DEFAULT_TOP_K),
):
    user = current_user(request)
    try:
        ((name, data),) = read_uploads([probe])
        try:
            k = int(top_k)
        except ValueError:  # not a number, or one too long to convert: the service names the range
            k = -1
        result = rfr.start_search(request.app.state.store, request.app.state.engines("custody"), data, name, case_reference,
                                  justification, user.username, k)  # fmt: skip
    except OpenLFRError as exc:  # the form comes back as typed; the probe file must be chosen again
        errors = field_errors(exc, SEARCH_HINTS)
        typed = {"case_reference": case_reference, "justification": justification, "top_k": top_k}
        return _searches_page(request, status_code=400, errors=errors, form=typed,
                              form_error=refused("Search not started", exc, errors))  # fmt: skip
    return redirect(f"/rfr/searches/{result['id']}")


@router.get("/rfr/searches/{search_id}")
def search(search_id: Id, request: Request):
    user = current_user(request)
    detail = rfr.search_detail(request.app.state.store, search_id, user.username)
    pending_confirmation = [c for c in detail["candidates"] if c["awaiting_your_confirmation"]]
    return page(request, "rfr_search.html", s=detail, decisions=rfr.DECISIONS, confirmations=rfr.CONFIRMATIONS,
                pending_confirmation=pending_confirmation)  # fmt: skip


@router.post("/rfr/searches/{search_id}/face")
def choose(search_id: Id, request: Request, face: Annotated[str, Form()] = ""):
    user = current_user(request)
    try:
        rfr.choose_face(request.app.state.store, request.app.state.engines("custody"), search_id, int(face) - 1, user.username)
    except (OpenLFRError, ValueError) as exc:
        return redirect(f"/rfr/searches/{search_id}", error=str(exc))
    return redirect(f"/rfr/searches/{search_id}", flash="Search run: review the candidates below.")


@router.post("/rfr/searches/{search_id}/complete")
def complete(search_id: Id, request: Request):
    user = current_user(request)
    try:
        rfr.complete_review(request.app.state.store, search_id, user.username)
    except OpenLFRError as exc:
        return redirect(f"/rfr/searches/{search_id}", error=str(exc))
    return redirect(f"/rfr/searches/{search_id}", flash="Review complete: unmarked candidates recorded as not a match.")


def _candidate_page(request: Request, candidate_id: int, status_code: int = 200, **extra):
    user = current_user(request)
    c = rfr.candidate_detail(request.app.state.store, candidate_id, user.username)
    can_confirm = c["awaiting_your_confirmation"]  # the independence rule lives in services.rfr
    can_decide = c["confirmation"] is None and not can_confirm
    return page(request, "rfr_candidate.html", status_code=status_code, c=c, can_confirm=can_confirm,
                can_decide=can_decide, decisions=rfr.DECISIONS, confirmations=rfr.CONFIRMATIONS, **extra)  # fmt: skip


@router.get("/rfr/candidates/{candidate_id}")
def candidate(candidate_id: Id, request: Request):
    return _candidate_page(request, candidate_id)


@router.post("/rfr/candidates/{candidate_id}/decision")
def decide(candidate_id: Id, request: Request, decision: Annotated[str, Form()] = "", note: Annotated[str, Form()] = ""):
    user = current_user(request)
    try:
        result = rfr.decide(request.app.state.store, candidate_id, decision, user.username, note or None)
        detail = rfr.candidate_detail(request.app.state.store, candidate_id, user.username)
    except NotFoundError:
        raise
    except OpenLFRError as exc:  # back to the comparison with the note as typed
        return _candidate_page(request, candidate_id, status_code=400, form={"note": note}, form_error=str(exc))
    return redirect(f"/rfr/searches/{detail['search_id']}", flash=f"Rank {result['rank']}: {rfr.DECISIONS[decision]} recorded.")


@router.post("/rfr/candidates/{candidate_id}/confirmation")
def confirm(candidate_id: Id, request: Request, agree: Annotated[str, Form()] = "", note: Annotated[str, Form()] = ""):
    user = current_user(request)
    try:
        result = rfr.confirm(request.app.state.store, candidate_id, agree == "yes", user.username, note or None)
        detail = rfr.candidate_detail(request.app.state.store, candidate_id, user.username)
    except NotFoundError:
        raise
    except OpenLFRError as exc:
        return _candidate_page(request, candidate_id, status_code=400, form={"cnote": note}, form_error=str(exc))
    label = rfr.CONFIRMATIONS[result["confirmation"]]
    return redirect(f"/rfr/searches/{detail['search_id']}", flash=f"Rank {result['rank']}: {label}.")
