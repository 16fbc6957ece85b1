"""Integers from the URL are bounded: an id or limit beyond what SQLite stores is refused with 422.

Before, 2^64 as an id reached the database driver and came back as ``OverflowError`` (HTTP 500) on
17 endpoints. The bounds live in ``openlfr.api.params``; these tests find every route and page that
takes an integer from the path or the query string, check that it declares them, and call each
one, with a role the policy lets in, using out-of-range values.
"""

from __future__ import annotations

import re
from typing import get_args

import pytest
from fastapi.testclient import TestClient

from openlfr.api.app import create_app
from openlfr.api.params import MAX_ID
from openlfr.api.policy import PUBLIC, rule_for
from openlfr.services import users
from openlfr.services.users import ROLES
from test_api_access import DUMMY, _walk

PASSWORD = "a long enough test password"
TOO_BIG = 2**64


def _fields(dependant):
    """Path and query parameters of a route, its dependencies' included."""
    yield from ((f, "path") for f in dependant.path_params)
    yield from ((f, "query") for f in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _fields(sub)


def _is_int(annotation) -> bool:
    """``int`` or ``int | None``."""
    return annotation is int or set(get_args(annotation)) == {int, type(None)}


def integer_params(app) -> list[tuple[str, str, list[str], list[str], list]]:
    """(method, path, int path params, int query params, their field infos) for every route taking one."""
    found = []
    for route in _walk(app.routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            continue
        ints = [(f, where) for f, where in _fields(dependant) if _is_int(f.field_info.annotation)]
        if not ints:
            continue
        path_ints = [f.name for f, where in ints if where == "path"]
        query_ints = [f.name for f, where in ints if where == "query"]
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((method, route.path, path_ints, query_ints, [f.field_info for f, _ in ints]))
    return found


@pytest.fixture(scope="module")
def app_and_tokens(tmp_path_factory):
    from openlfr.storage import Store

    store = Store(tmp_path_factory.mktemp("params-home"))
    tokens = {}
    for role in ROLES:
        user = users.create_user(store, f"p-{role.replace('_', '-')}", role, role, PASSWORD, "test")
        tokens[role] = users.create_token(store, user.id, "params", days=1)
    yield create_app(store=store, secure_cookies=False), tokens
    store.close()


def test_every_integer_path_and_query_parameter_is_bounded(app_and_tokens) -> None:
    app, _tokens = app_and_tokens
    routes = integer_params(app)
    assert len(routes) > 40  # ids of deployments, alerts, users, tokens, images, searches, candidates; limits
    unbounded = []
    for method, path, _p, _q, infos in routes:
        for info in infos:
            ge = next((m.ge for m in info.metadata if hasattr(m, "ge")), None)
            le = next((m.le for m in info.metadata if hasattr(m, "le")), None)
            if ge is None or le is None or le > MAX_ID:
                unbounded.append(f"{method} {path}")
    assert not unbounded, f"integer parameters without bounds: {sorted(set(unbounded))}"


def _url(path: str, values: dict[str, str]) -> str:
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), DUMMY[m.group(1)]), path)


@pytest.mark.parametrize("value", [TOO_BIG, 2**63, 0, -1])
def test_out_of_range_integers_get_422_not_a_server_error(app_and_tokens, value: int) -> None:
    app, tokens = app_and_tokens
    client = TestClient(app, raise_server_exceptions=False)
    wrong = []
    for method, path, path_ints, query_ints, _infos in integer_params(app):
        rule = rule_for(method, path)
        assert rule is not None, f"{method} {path} has no access rule"
        role = None if rule is PUBLIC else sorted(rule)[0]
        headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
        body = {"json": {}} if path.startswith("/api/") else {"data": {}}
        tries = [(_url(path, {name: str(value)}), {}) for name in path_ints]
        tries += [(_url(path, {}), {name: str(value)}) for name in query_ints]
        for url, params in tries:
            response = client.request(method, url, params=params, headers=headers, follow_redirects=False,
                                      **(body if method != "GET" else {}))  # fmt: skip
            if response.status_code != 422:
                wrong.append(f"{method} {url} {params or ''} as {role or 'anonymous'}: {response.status_code}")
    assert not wrong, "\n".join(wrong)
