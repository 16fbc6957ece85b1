"""Signing in and out, and the review console: the live alert queue, one alert, live camera views."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse

from openlfr.api.params import Id
from openlfr.api.policy import ADMIN, AUDITOR, AUTHORISER, EXAMINER, OPERATOR, REVIEWER
from openlfr.api.security import SESSION_COOKIE, client_source, current_user
from openlfr.api.signin import checked_sign_in
from openlfr.errors import OpenLFRError
from openlfr.services import alerts as alert_service
from openlfr.services import audit, deployments, users
from openlfr.services.alerts import alert_payload
from openlfr.services.subjects import CATEGORIES
from openlfr.services.users import AuthError
from openlfr.web.render import STATIC_DIR, may, page

#: Deployments the console shows the state of: running, or stopped and not yet closed.
ON_THE_GROUND = ("live", deployments.PAUSED, deployments.INTERRUPTED, deployments.ENDED)

router = APIRouter(include_in_schema=False)

HOME_FOR_ROLE = {
    OPERATOR: "/console",
    REVIEWER: "/console",
    AUTHORISER: "/ops/deployments",
    ADMIN: "/admin/users",
    AUDITOR: "/audit",
    EXAMINER: "/rfr",
}


def redirect(url: str, flash: str | None = None, error: str | None = None) -> RedirectResponse:
    if flash:
        url += ("&" if "?" in url else "?") + "flash=" + quote(flash)
    if error:
        url += ("&" if "?" in url else "?") + "error=" + quote(error)
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str | None:
    """Only local paths: a login link must not bounce the officer to another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


@router.get("/login")
def login_form(request: Request, next: str | None = None):
    return page(request, "login.html", next_url=safe_next(next) or "")


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,
):
    """Sign in; throttled per source and hashed in the bounded pool (:mod:`openlfr.api.signin`)."""
    store, source = request.app.state.store, client_source(request)

    def work() -> tuple[users.CurrentUser, str]:
        user = users.authenticate(store, username, password, source=source)
        return user, users.create_session(store, user, source=source)[0]

    try:
        user, secret = await checked_sign_in(request, work)
    except AuthError as exc:  # the username stays typed; the password never comes back
        return page(request, "login.html", status_code=401, error=str(exc), next_url=safe_next(next) or "",
                    form={"username": username})  # fmt: skip
    except HTTPException as exc:
        if exc.status_code != 429:
            raise
        refused = page(request, "login.html", status_code=429, error=str(exc.detail), next_url=safe_next(next) or "",
                       form={"username": username})  # fmt: skip
        refused.headers.update(exc.headers or {})
        return refused
    response = redirect(safe_next(next) or HOME_FOR_ROLE.get(user.role, "/"))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.app.state.secure_cookies,
        max_age=12 * 3600,
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request):
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        users.end_session(request.app.state.store, cookie)
    response = redirect("/login", flash="Signed out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request):
    user = current_user(request)
    return redirect(HOME_FOR_ROLE.get(user.role, "/public"))


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The site's icon, from the package: browsers ask for it on every first visit."""
    return FileResponse(STATIC_DIR / "favicon.ico", media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


def awaiting_hold(alerts: list[dict]) -> list[dict]:
    """Arrests whose images are not yet under a legal hold: the web's version of the CLI's prompt."""
    return [a for a in alerts if a["outcome"] == "arrest" and not a["legal_hold"] and not a["images_deleted"]]


@router.get("/console")
def console(request: Request):
    store = request.app.state.store
    alerts = alert_service.list_alerts(store)
    pending = [a for a in reversed(alerts) if a["outcome"] is None]
    decided = [a for a in reversed(alerts) if a["outcome"] is not None][:20]
    return page(
        request,
        "console.html",
        pending=pending,
        decided=decided,
        arrests_unheld=awaiting_hold(alerts),
        categories=CATEGORIES,
        outcomes=alert_service.OUTCOMES,
        deployments_now=[d for d in deployments.list_deployments(store) if d["status"] in ON_THE_GROUND],
    )


def _alert_page(request: Request, alert_id: int, status_code: int = 200, **context):
    user = current_user(request)
    a = alert_payload(request.app.state.store, alert_id)
    audit.record(request.app.state.store, "alert.view", "alert", alert_id)
    return page(request, "alert.html", status_code=status_code, a=a, outcomes=alert_service.OUTCOMES,
                can_decide=user.role in (OPERATOR, REVIEWER),
                can_hold=may(user, "POST", "/ops/alerts/{alert_id}/hold") and not a["images_deleted"], **context)  # fmt: skip


@router.get("/console/alerts/{alert_id}")
def alert_page(alert_id: Id, request: Request):
    return _alert_page(request, alert_id)


@router.post("/console/alerts/{alert_id}/outcome")
def alert_outcome(alert_id: Id, request: Request, choice: Annotated[str, Form()], note: Annotated[str | None, Form()] = None):
    """One tap: the button carries the outcome, and for 'no action' the officer's judgement too.

    Refused, the page comes back with the note as typed. An arrest asks for a legal hold, as the CLI does."""
    user = current_user(request)
    outcome, _, judged = choice.partition(":")
    try:
        result = alert_service.record_outcome(
            request.app.state.store, alert_id, outcome, by=user.username, adjudication=judged or None, note=note or None
        )
    except OpenLFRError as exc:
        return _alert_page(request, alert_id, status_code=400, form={"note": note or ""}, errors={"outcome": str(exc)})
    done = f"Alert {alert_id}: {alert_service.OUTCOMES[outcome]} recorded."
    if result.get("legal_hold_prompt"):
        done += (f" An arrest followed: an authorising officer should now place a legal hold on alert {alert_id} "
                 "so its images are kept until the investigation ends.")  # fmt: skip
    return redirect("/console", flash=done)


@router.get("/console/live/{deployment_id}")
def live_view(deployment_id: Id, request: Request):
    detail = deployments.deployment_detail(request.app.state.store, deployment_id)
    audit.record(request.app.state.store, "live.view", "deployment", deployment_id, {"cameras": len(detail["cameras"])})
    return page(request, "live.html", deployment=detail)
