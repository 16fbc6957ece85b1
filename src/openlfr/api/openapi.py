"""The OpenAPI document: FastAPI's description of the routes, completed from the access policy.

FastAPI knows each route's parameters and bodies but nothing of :func:`openlfr.api.security.authorize`,
which every route goes through. This module adds, in one place rather than per route:

* the security schemes (a bearer token, or the console's session cookie) and, per operation, whether
  it needs them (public routes declare ``security: []``);
* each operation's summary and description (:mod:`openlfr.api.operation_docs`) and who may call it;
* the error responses each operation really returns, derived from its rule in
  :data:`openlfr.api.policy.RULES` and its parameters: **401** without valid credentials (every
  non-public route), **403** when the policy refuses the caller's role (every route not open to all
  staff) or a cookie session's CSRF token is missing (every staff route that changes something),
  **404** for an unknown record (every route with a path parameter), **422** for a request that does
  not validate (every route with parameters or a body), plus the few route-specific answers in
  :data:`EXTRA_RESPONSES` (a rule the service enforces, a conflict, a deleted image, throttling).

``tests/test_api_fuzz.py`` checks the result against the running server: every status it answers
must be one the document declares.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from openlfr.api.operation_docs import OPERATIONS, who_may_call
from openlfr.api.policy import ANY_STAFF, PUBLIC, rule_for

BEARER = "bearerAuth"
COOKIE = "sessionCookie"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: Starts the last paragraph of every description, which names the roles that may call the operation.
WHO_MAY_CALL = "**Who may call it:**"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: `POST /api/v1/auth/token` (username and password) or `POST /api/v1/me/tokens`.",
    },
    COOKIE: {
        "type": "apiKey",
        "in": "cookie",
        "name": "openlfr_session",
        "description": "The console's session (sign in at /login); requests that change anything must also send "
        "the session's CSRF token as the `X-CSRF-Token` header.",
    },
}

_ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}
ERROR_MODEL = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"title": "Detail", "type": "string"}},
    "required": ["detail"],
}

DESCRIPTIONS = {
    400: "Refused by a rule of the service (e.g. a wrong state for this step, an unusable image or value).",
    401: "No valid credentials: send `Authorization: Bearer <token>` (or sign in at /login).",
    403: "Your role may not call this route under the access policy, or a rule of the service forbids it "
    "to you (e.g. separation of duties), or a cookie session sent no valid CSRF token.",
    404: "No such record.",
    409: "Conflicts with a stored record (e.g. a username or reference already in use).",
    410: "The image was deleted under the retention rules.",
    422: "The request does not validate (a missing or malformed parameter or body).",
    429: "Too many failed sign-ins from this address; retry after the `Retry-After` seconds.",
}

#: Answers particular to a route beyond the ones derived from the policy and its parameters.
#: Keys are ``"METHOD path"`` as in the policy table; ``tests/test_api_fuzz.py`` checks each key is a route.
_CHANGES = (400, 409)
EXTRA_RESPONSES: dict[str, tuple[int, ...]] = {
    "POST /api/v1/auth/token": (400, 401, 429),
    "POST /api/v1/me/tokens": (400, 429),
    "POST /api/v1/subjects": _CHANGES,
    "POST /api/v1/deployments": _CHANGES,
    "POST /api/v1/deployments/{deployment_id}/watchlist": _CHANGES,
    "POST /api/v1/deployments/{deployment_id}/watchlist/approve": _CHANGES,
    "POST /api/v1/deployments/{deployment_id}/authorise": _CHANGES,
    "POST /api/v1/deployments/{deployment_id}/start": _CHANGES,
    "POST /api/v1/deployments/{deployment_id}/stop": _CHANGES,
    "POST /api/v1/deployments/{deployment_id}/close": _CHANGES,
    "POST /api/v1/deployments/{deployment_id}/cameras": _CHANGES,
    "GET /api/v1/alerts/{alert_id}/images/{kind}": (410,),
    "POST /api/v1/alerts/{alert_id}/outcome": _CHANGES,
    "POST /api/v1/alerts/{alert_id}/hold": _CHANGES,
    "POST /api/v1/alerts/{alert_id}/release": _CHANGES,
    "POST /api/v1/users": _CHANGES,
    "POST /api/v1/users/{user_id}/active": _CHANGES,
    "POST /api/v1/users/{user_id}/role": _CHANGES,
    "POST /api/v1/users/{user_id}/unlock": _CHANGES,
    "POST /api/v1/rfr/searches": _CHANGES,
    "POST /api/v1/rfr/searches/{search_id}/face": _CHANGES,
    "POST /api/v1/rfr/searches/{search_id}/complete": _CHANGES,
    "POST /api/v1/rfr/candidates/{candidate_id}/decision": _CHANGES,
    "POST /api/v1/rfr/candidates/{candidate_id}/confirmation": _CHANGES,
}


def error_statuses(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from its access rule, its parameters and its body."""
    method = method.upper()
    rule = rule_for(method, path)
    statuses = set(EXTRA_RESPONSES.get(f"{method} {path}", ()))
    if rule is None:  # deny by default: authorize() refuses a route without a rule
        return statuses | {403}
    if rule is not PUBLIC:
        statuses.add(401)
        if rule != ANY_STAFF or method not in SAFE_METHODS:
            statuses.add(403)
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if parameters or "requestBody" in operation:
        statuses.add(422)
    return statuses


def describe(operation: dict[str, Any], key: str, rule: frozenset[str] | None) -> None:
    """The operation's summary and description from :data:`OPERATIONS` (the route's docstring where it
    has no entry), ending with who may call it, in words, from the policy table."""
    summary, text = OPERATIONS.get(key, (None, None))
    if summary:
        operation["summary"] = summary
    body = (text or operation.get("description") or "").strip()
    operation["description"] = f"{body}\n\n{WHO_MAY_CALL} {who_may_call(rule)}".lstrip()


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the security schemes, each operation's description and the derived error responses to
    FastAPI's document (in place)."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    components.setdefault("schemas", {}).setdefault("Error", ERROR_MODEL)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            rule = rule_for(method.upper(), path)
            operation["security"] = [] if rule is PUBLIC else [{BEARER: []}, {COOKIE: []}]
            describe(operation, f"{method.upper()} {path}", rule)
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(method, path, operation)):
                if str(status) in responses:
                    continue  # FastAPI's own 422 keeps its validation-error schema
                responses[str(status)] = {
                    "description": DESCRIPTIONS.get(status, "Error."),
                    "content": {"application/json": {"schema": _ERROR_SCHEMA}},
                }
    return document


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the completed document (built once, then cached like FastAPI's)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                    servers=app.servers,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
