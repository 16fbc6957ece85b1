"""Who is calling, and may they: one dependency that every route goes through.

Two ways in: a bearer token (``Authorization: Bearer …``, for programs) or the browser's session
cookie (HttpOnly, SameSite=Strict, Secure). Cookie-authenticated requests that change anything must
also carry the session's CSRF token (form field ``csrf_token`` or header ``X-CSRF-Token``); bearer
requests need none, since a browser never attaches them on its own. The route's rule comes from
:mod:`openlfr.api.policy`; a route without one is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from openlfr.api.policy import PUBLIC, rule_for
from openlfr.services import audit
from openlfr.services.users import CurrentUser, session_user, token_user

SESSION_COOKIE = "openlfr_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: Comma-separated addresses or networks of reverse proxies whose ``X-Forwarded-For`` is believed.
ENV_TRUSTED_PROXIES = "OPENLFR_TRUSTED_PROXIES"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class LoginRequired(Exception):
    """A page needs a signed-in user: the browser is sent to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def parse_trusted_proxies(spec: str | Iterable[str] | None = None) -> tuple[Network, ...]:
    """Parse proxies (``"127.0.0.1,10.0.0.0/8"`` or a list); ``None`` reads ``$OPENLFR_TRUSTED_PROXIES``.

    The default is to trust none: any client can send ``X-Forwarded-For``, so believing it from
    anyone but our own proxy would let a caller write whatever "source" it likes into the audit trail.
    """
    if spec is None:
        spec = os.environ.get(ENV_TRUSTED_PROXIES, "")
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())
    except ValueError as exc:
        raise ValueError(f"trusted proxies: {exc}") from exc


def _is_trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_source(request: Request) -> str:
    """The caller's address for the audit trail: the connecting peer, or — only when that peer is a
    configured proxy — the nearest address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    proxies: tuple[Network, ...] = getattr(request.app.state, "trusted_proxies", ())
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    source = peer
    for hop in reversed(hops):  # right to left: each entry was added by the hop after it
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage from a hop we do not trust: keep the last address we could vouch for
        source = hop
        if not _is_trusted(hop, proxies):
            break
    return source


def _credentials(request: Request) -> tuple[CurrentUser | None, str | None, bool]:
    """(user, csrf token of the session, whether the cookie was used)."""
    store = request.app.state.store
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = token_user(store, header[7:].strip())
        return user, None, False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = session_user(store, cookie)
        if found:
            return found[0], found[1], True
    return None, None, False


async def _csrf_ok(request: Request, expected: str | None) -> bool:
    if not expected:
        return False
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()  # Starlette caches it, so the route can still read the form
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent is not None and hmac.compare_digest(sent, expected)


async def authorize(request: Request) -> CurrentUser | None:
    """Applied to every route: authenticate, apply the route's rule, check CSRF, set the audit actor."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    rule = rule_for(request.method, path)
    is_page = not path.startswith("/api/")
    if rule is None:
        raise HTTPException(403, f"no access rule for {request.method} {path}: refused")
    user, csrf, by_cookie = _credentials(request)
    request.state.user = user
    request.state.csrf = csrf
    if rule is not PUBLIC:
        if user is None:
            if is_page:
                raise LoginRequired(str(request.url.path))
            raise HTTPException(401, "sign in first: send a bearer token or use the login page", {"WWW-Authenticate": "Bearer"})
        if user.role not in rule:
            raise HTTPException(403, f"your role ({user.role}) may not {request.method} {path}")
    if by_cookie and request.method not in SAFE_METHODS and not await _csrf_ok(request, csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    if user is not None:
        # Async dependency: the context variable is copied into the thread that runs the route.
        audit.set_actor(audit.Actor(user.username, user.role, client_source(request)))
    return user


def current_user(request: Request) -> CurrentUser:
    user = getattr(request.state, "user", None)
    if user is None:
        raise HTTPException(401, "sign in first")
    return user


#: A route parameter ``user: SignedIn`` receives the caller (the policy has already let them in).
SignedIn = Annotated[CurrentUser, Depends(current_user)]
