"""Every route × every role (and anonymous): who is let in, checked against the running server.

The expected matrix below is written out by hand, independently of ``api/policy.py``: a route
added to the server without a row here fails :func:`test_matrix_covers_every_route`, and a rule
that drifts from this table fails :func:`test_role_matrix`. "Allowed" means the request got past
authentication and authorisation (any status but 401/403 and the login redirect); the handler
may still answer 404 or 422 for the dummy ids and empty bodies used here.
"""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
import uvicorn

from browser_helpers import free_port
from openlfr.api.app import create_app
from openlfr.services import users
from openlfr.services.users import ROLES

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)

AD, AU, OP, RV, EX, AT = "administrator", "authorising_officer", "operator", "reviewing_officer", "examiner", "auditor"
PUBLIC = "public"
STAFF = {AD, AU, OP, RV, EX, AT}
OVERSIGHT = {AD, AU, OP, RV, AT}
PLANNERS = {OP, AU}
VIEWERS = {AU, OP, RV}

EXPECTED: dict[str, set[str]] = {
    "POST /api/v1/auth/token": {PUBLIC},
    "POST /api/v1/auth/logout": STAFF,
    "GET /api/v1/me": STAFF,
    "POST /api/v1/me/tokens": STAFF,
    "GET /api/v1/subjects": PLANNERS,
    "POST /api/v1/subjects": PLANNERS,
    "GET /api/v1/subjects/{reference}": PLANNERS,
    "GET /api/v1/subjects/{reference}/images/{image_id}": PLANNERS,
    "GET /api/v1/deployments": OVERSIGHT,
    "POST /api/v1/deployments": PLANNERS,
    "GET /api/v1/deployments/{deployment_id}": OVERSIGHT,
    "POST /api/v1/deployments/{deployment_id}/watchlist": PLANNERS,
    "POST /api/v1/deployments/{deployment_id}/watchlist/approve": {AU},
    "POST /api/v1/deployments/{deployment_id}/authorise": {AU},
    "POST /api/v1/deployments/{deployment_id}/start": PLANNERS,
    "POST /api/v1/deployments/{deployment_id}/stop": PLANNERS,
    "POST /api/v1/deployments/{deployment_id}/close": PLANNERS,
    "GET /api/v1/deployments/{deployment_id}/record": OVERSIGHT,
    "GET /api/v1/deployments/{deployment_id}/cameras": VIEWERS,
    "POST /api/v1/deployments/{deployment_id}/cameras": PLANNERS,
    "GET /api/v1/live": {AD, AU, OP, RV},
    "GET /api/v1/live/{deployment_id}/cameras/{camera}/view.jpg": VIEWERS,
    "GET /api/v1/alerts": {AU, OP, RV, AT},
    "GET /api/v1/alerts/stream": VIEWERS,
    "GET /api/v1/alerts/{alert_id}": {AU, OP, RV, AT},
    "GET /api/v1/alerts/{alert_id}/images/{kind}": VIEWERS,
    "POST /api/v1/alerts/{alert_id}/outcome": {OP, RV},
    "POST /api/v1/alerts/{alert_id}/hold": {AU},
    "POST /api/v1/alerts/{alert_id}/release": {AU},
    "POST /api/v1/retention/run": {AD, AU},
    "GET /api/v1/retention/log": {AD, AU, AT},
    "GET /api/v1/retention/holds": {AU, AT},
    "GET /api/v1/records": OVERSIGHT,
    "GET /api/v1/audit": {AT},
    "GET /api/v1/audit/export": {AT},
    "GET /api/v1/audit/verify": {AT, AD},
    "GET /api/v1/users": {AD},
    "POST /api/v1/users": {AD},
    "POST /api/v1/users/{user_id}/active": {AD},
    "POST /api/v1/users/{user_id}/role": {AD},
    "POST /api/v1/users/{user_id}/unlock": {AD},
    "GET /api/v1/tokens": {AD},
    "DELETE /api/v1/tokens/{token_id}": {AD},
    "GET /api/v1/rfr/searches": {EX},
    "POST /api/v1/rfr/searches": {EX},
    "GET /api/v1/rfr/searches/{search_id}": {EX},
    "POST /api/v1/rfr/searches/{search_id}/face": {EX},
    "GET /api/v1/rfr/searches/{search_id}/probe/{number}": {EX},
    "POST /api/v1/rfr/searches/{search_id}/complete": {EX},
    "GET /api/v1/rfr/searches/{search_id}/report": {EX},
    "GET /api/v1/rfr/candidates/{candidate_id}": {EX},
    "GET /api/v1/rfr/candidates/{candidate_id}/image": {EX},
    "POST /api/v1/rfr/candidates/{candidate_id}/decision": {EX},
    "POST /api/v1/rfr/candidates/{candidate_id}/confirmation": {EX},
    "GET /api/v1/custody/stats": {EX, AD},
    "GET /api/v1/public/deployments": {PUBLIC},
    "GET /api/v1/public/records": {PUBLIC},
    "GET /api/v1/openapi.json": STAFF,
    "GET /api/v1/docs": STAFF,
    "GET /login": {PUBLIC},
    "POST /login": {PUBLIC},
    "POST /logout": STAFF,
    "GET /": STAFF,
    "GET /console": VIEWERS,
    "GET /console/alerts/{alert_id}": VIEWERS,
    "POST /console/alerts/{alert_id}/outcome": {OP, RV},
    "GET /console/live/{deployment_id}": VIEWERS,
    "GET /ops/subjects": PLANNERS,
    "POST /ops/subjects": PLANNERS,
    "GET /ops/deployments": OVERSIGHT,
    "POST /ops/deployments": PLANNERS,
    "GET /ops/deployments/{deployment_id}": OVERSIGHT,
    "POST /ops/deployments/{deployment_id}/watchlist": PLANNERS,
    "POST /ops/deployments/{deployment_id}/approve": {AU},
    "POST /ops/deployments/{deployment_id}/authorise": {AU},
    "POST /ops/deployments/{deployment_id}/start": PLANNERS,
    "POST /ops/deployments/{deployment_id}/stop": PLANNERS,
    "POST /ops/deployments/{deployment_id}/close": PLANNERS,
    "GET /ops/retention": {AD, AU, AT},
    "POST /ops/retention/run": {AD, AU},
    "POST /ops/alerts/{alert_id}/hold": {AU},
    "POST /ops/alerts/{alert_id}/release": {AU},
    "GET /ops/records": OVERSIGHT,
    "GET /audit": {AT},
    "GET /admin/users": {AD},
    "POST /admin/users": {AD},
    "POST /admin/users/{user_id}/active": {AD},
    "POST /admin/users/{user_id}/role": {AD},
    "GET /rfr": {EX},
    "POST /rfr/searches": {EX},
    "GET /rfr/searches/{search_id}": {EX},
    "POST /rfr/searches/{search_id}/face": {EX},
    "POST /rfr/searches/{search_id}/complete": {EX},
    "GET /rfr/candidates/{candidate_id}": {EX},
    "POST /rfr/candidates/{candidate_id}/decision": {EX},
    "POST /rfr/candidates/{candidate_id}/confirmation": {EX},
    "GET /public": {PUBLIC},
    "GET /public/deployments/{deployment_id}/leaflet": {PUBLIC},
    "GET /public/deployments/{deployment_id}/poster": {PUBLIC},
    "GET /favicon.ico": {PUBLIC},
    "GET /healthz": {PUBLIC},
    "GET /readyz": {PUBLIC},
    "GET /metrics": {PUBLIC},
}
PASSWORD = "a long enough test password"
DUMMY = {
    "deployment_id": "999999",
    "alert_id": "999999",
    "user_id": "999999",
    "token_id": "999999",
    "reference": "NOBODY",
    "image_id": "999999",
    "kind": "probe",
    "camera": "cam-x",
    "search_id": "999999",
    "candidate_id": "999999",
    "number": "1",
}


def _walk(routes):
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI keeps included routers as branches
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def app_routes(app) -> set[str]:
    """Every method × path the application answers (the static files excepted)."""
    found = set()
    for route in _walk(app.routes):
        methods = getattr(route, "methods", None)
        if not methods or route.path.startswith("/static"):
            continue
        for method in methods - {"HEAD", "OPTIONS"}:
            found.add(f"{method} {route.path}")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine, module_database):
    """The real application under uvicorn in a thread, one account per role."""
    from openlfr.storage import Store

    store = Store(tmp_path_factory.mktemp("access-home"))
    for role in ROLES:
        users.create_user(store, f"user-{role.replace('_', '-')}", role, role, PASSWORD, "test")
    app = create_app(store=store, engine=engine, secure_cookies=False)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "the test server did not start"
    yield app, store, f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)
    store.close()


def test_matrix_covers_every_route(server) -> None:
    app, _store, _url = server
    routes = app_routes(app)
    openapi = {f"{m.upper()} {p}" for p, ops in app.openapi()["paths"].items() for m in ops}
    assert openapi <= routes
    missing = sorted(routes - set(EXPECTED))
    assert not missing, f"routes without an expected access rule in this test: {missing}"
    stale = sorted(set(EXPECTED) - routes)
    assert not stale, f"expected rules for routes the server no longer has: {stale}"


def _call(client: httpx.Client, method: str, path: str, token: str | None) -> int:
    url = re.sub(r"{(\w+)}", lambda m: DUMMY[m.group(1)], path)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if path.endswith("/stream"):
        with client.stream(method, url, headers=headers, timeout=5) as response:
            return response.status_code
    body = {"json": {}} if method in ("POST", "DELETE") and path.startswith("/api/") else {}
    if method == "POST" and not path.startswith("/api/"):
        body = {"data": {}}
    response = client.request(method, url, headers=headers, follow_redirects=False, timeout=30, **body)
    if response.status_code == 303 and response.headers.get("location", "").startswith("/login?next="):
        return 401  # a page sends the anonymous visitor to sign in
    return response.status_code


def test_role_matrix(server) -> None:
    _app, store, url = server
    accounts = {u["role"]: u["id"] for u in users.list_users(store)}
    mismatches = []
    with httpx.Client(base_url=url) as client:
        for key in sorted(EXPECTED):
            method, path = key.split(" ", 1)
            allowed = EXPECTED[key]
            for role in (None, *ROLES):
                token = users.create_token(store, accounts[role], "matrix", days=1) if role else None
                status = _call(client, method, path, token)
                let_in = status not in (401, 403)
                should = PUBLIC in allowed or (role in allowed)
                if let_in != should:
                    mismatches.append(
                        f"{key} as {role or 'anonymous'}: got {status}, expected {'allowed' if should else 'denied'}"
                    )
    assert not mismatches, "\n".join(mismatches)


def test_unknown_route_rule_is_denied(server) -> None:
    """Deny by default: a route the policy does not know is refused even to an administrator."""
    from fastapi import APIRouter

    from openlfr.api.security import authorize

    app, store, url = server
    router = APIRouter()

    @router.get("/api/v1/unruled")
    def unruled() -> dict:
        return {"leak": True}

    from fastapi import Depends

    app.include_router(router, dependencies=[Depends(authorize)])
    admin = next(u["id"] for u in users.list_users(store) if u["role"] == AD)
    token = users.create_token(store, admin, "deny-default", days=1)
    response = httpx.get(f"{url}/api/v1/unruled", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "no access rule" in response.json()["detail"]


def test_cookie_session_needs_csrf_for_changes(server) -> None:
    _app, _store, url = server
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        login = client.post("/login", data={"username": "user-administrator", "password": PASSWORD})
        assert login.status_code == 303
        assert "openlfr_session" in client.cookies
        cookie_header = login.headers["set-cookie"].lower()
        assert "httponly" in cookie_header and "samesite=strict" in cookie_header
        page = client.get("/admin/users")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        refused = client.post("/api/v1/retention/run")
        assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post("/api/v1/retention/run", headers={"X-CSRF-Token": token}).status_code == 200
        assert client.post("/api/v1/retention/run", headers={"X-CSRF-Token": "forged"}).status_code == 403


def test_failed_logins_lock_the_account(server) -> None:
    _app, store, url = server
    users.create_user(store, "lockme", "Lock Me", OP, PASSWORD, "test")
    with httpx.Client(base_url=url) as client:
        for _ in range(users.MAX_FAILED_LOGINS):
            assert (
                client.post("/api/v1/auth/token", json={"username": "lockme", "password": "wrong password!"}).status_code == 401
            )
        locked = client.post("/api/v1/auth/token", json={"username": "lockme", "password": PASSWORD})
        assert locked.status_code == 401 and "locked" in locked.json()["detail"]
