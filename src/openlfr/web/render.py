"""Rendering pages: one Jinja2 environment (with the wording filters of :mod:`openlfr.web.formatting`),
the signed-in user and CSRF token in every page."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from openlfr.api.policy import rule_for
from openlfr.services.users import ROLE_LABELS, CurrentUser
from openlfr.web import formatting

STATIC_DIR = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters.update(formatting.FILTERS)
templates.env.globals.update(formatting.GLOBALS)

#: The navigation bar: (label, path); a link is shown only to roles allowed to open it.
NAV = [
    ("Alerts", "/console"),
    ("Searches", "/rfr"),
    ("Deployments", "/ops/deployments"),
    ("Subjects", "/ops/subjects"),
    ("Retention", "/ops/retention"),
    ("Records", "/ops/records"),
    ("Audit", "/audit"),
    ("Users", "/admin/users"),
    ("Public site", "/public"),
]


def nav_for(role: str | None) -> list[tuple[str, str]]:
    links = []
    for label, path in NAV:
        rule = rule_for("GET", path) or frozenset()
        if "public" in rule or (role and role in rule):
            links.append((label, path))
    return links


def may(user: CurrentUser | None, method: str, path: str) -> bool:
    """Whether the policy lets this user call the route (``path`` as written in policy.py): pages offer
    only the buttons their viewer may press."""
    rule = rule_for(method, path) or frozenset()
    return user is not None and user.role in rule


def page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    """Render a page. ``form`` (what was typed) and ``errors`` (field name → message) refill a form
    that was refused, so nobody types it all again; every template may read both."""
    user = getattr(request.state, "user", None)
    context.setdefault("form", {})
    context.setdefault("errors", {})
    context.update(
        user=user,
        role_label=ROLE_LABELS.get(user.role, user.role) if user else None,
        csrf=getattr(request.state, "csrf", None),
        nav=nav_for(user.role if user else None),
        flash=request.query_params.get("flash"),
        error=context.get("error") or request.query_params.get("error"),
    )
    return templates.TemplateResponse(request, template, context, status_code=status_code)
