"""Error answers a person can read: styled pages for browsers, ``{"detail": …}`` JSON for programs.

A browser opening a page (its ``Accept`` names ``text/html``, the path is not under ``/api/``) that
is refused or missing gets the site's own page with the reason and a way back; API clients keep the
JSON they parse. Nothing about *whether* a request is refused changes here: every existing handler
still decides the status, this only chooses how the answer is dressed.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import WebSocketRequestValidationError
from fastapi.responses import RedirectResponse, Response

from openlfr.api.security import SESSION_COOKIE
from openlfr.services.users import session_user

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]

HEADINGS = {
    400: "That could not be done",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    405: "Not possible here",
    409: "That could not be done",
    422: "That address or form was not understood",
    429: "Too many attempts",
}
#: What to do next, per status: the reason alone does not tell an officer where to go.
ADVICE = {
    401: "Sign in and try again.",
    403: "Your account does not give you access to this. If you need it, ask an administrator.",
    404: "The link may be out of date, or the record may have been deleted under the retention rules.",
    429: "Wait a moment before trying again.",
}
#: Headers of the original answer worth keeping on the page (a throttled sign-in says when to retry).
KEPT_HEADERS = ("retry-after", "www-authenticate", "allow")


def wants_html(request: Request) -> bool:
    """A browser asking for a page, not a program calling the API."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")


def _viewer(request: Request) -> None:
    """Sign in the page's header when the route never ran (an unknown address), so staff keep their menu."""
    if hasattr(request.state, "user"):
        return
    request.state.user, request.state.csrf = None, None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = session_user(request.app.state.store, cookie)
        if found:
            request.state.user, request.state.csrf = found


def _detail(response: Response) -> str:
    try:
        detail = json.loads(bytes(response.body)).get("detail", "")
    except (ValueError, AttributeError):
        return ""
    if isinstance(detail, list):  # a validation error: which field, and what was wrong with it
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg', '')}" for d in detail)
    return str(detail)


def error_page(request: Request, status: int, detail: str) -> Response:
    from openlfr.web.render import page  # the templates import the policy; imported when first needed

    _viewer(request)
    return page(
        request,
        "message.html",
        status_code=status,
        heading=HEADINGS.get(status, "Something went wrong"),
        message=detail or HEADINGS.get(status, ""),
        advice=ADVICE.get(status),
        status=status,
    )


def dressed(handler: Handler) -> Handler:
    """Wrap an exception handler: same status, but an HTML page when a browser asked for one."""

    async def wrapped(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        if response.status_code < 400 or not wants_html(request):
            return response
        if response.status_code == 401 and request.method == "GET":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        html = error_page(request, response.status_code, _detail(response))
        for name in KEPT_HEADERS:
            if name in response.headers:
                html.headers[name] = response.headers[name]
        return html

    return wrapped


def install(app: FastAPI) -> None:
    """Dress every exception handler registered so far (FastAPI's own and the application's)."""
    for exc_class, handler in list(app.exception_handlers.items()):
        if exc_class is not WebSocketRequestValidationError:  # no page to show on a socket
            app.add_exception_handler(exc_class, dressed(handler))
