"""``/api/v1/docs`` and the OpenAPI document: every operation described, Swagger UI served from this
server alone (the CSP forbids a CDN copy and inline script), behind the same access rule as before."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from openlfr.api.app import create_app
from openlfr.api.docs import DOCS_URL, OPENAPI_URL
from openlfr.api.openapi import WHO_MAY_CALL
from openlfr.api.operation_docs import OPERATIONS, who_may_call
from openlfr.api.policy import PUBLIC, rule_for
from openlfr.services import users

PASSWORD = "a long enough test password"


@pytest.fixture
def client(store) -> TestClient:
    users.create_user(store, "aud", "Aud", "auditor", PASSWORD, "test")
    return TestClient(create_app(store=store, secure_cookies=False))


def _token(client: TestClient) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"username": "aud", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _operations(document: dict) -> dict[str, dict]:
    return {f"{m.upper()} {path}": op for path, ops in document["paths"].items() for m, op in ops.items()}


def test_every_operation_has_a_summary_and_a_description(client: TestClient) -> None:
    operations = _operations(client.get(OPENAPI_URL, headers=_token(client)).json())
    assert len(operations) >= 57
    undescribed = []
    for key, op in operations.items():
        body, _, who = op.get("description", "").partition(WHO_MAY_CALL)
        if not op.get("summary", "").strip() or len(body.strip()) < 40 or key not in OPERATIONS:
            undescribed.append(key)
        assert who.strip() == who_may_call(rule_for(*key.split(" ", 1))), key
    assert undescribed == [], f"operations without a summary and description in api/operation_docs.py: {undescribed}"
    stale = sorted(set(OPERATIONS) - set(operations))
    assert stale == [], f"descriptions of operations the server no longer has: {stale}"


def test_who_may_call_reads_the_policy() -> None:
    assert who_may_call(rule_for("POST", "/api/v1/deployments/{deployment_id}/authorise")) == "Authorising officers only."
    assert who_may_call(rule_for("POST", "/api/v1/alerts/{alert_id}/outcome")) == "Operators and reviewing officers only."
    assert who_may_call(PUBLIC) == "Anyone, without signing in."
    assert who_may_call(rule_for("GET", "/api/v1/me")) == "Any signed-in member of staff."
    assert who_may_call(None).startswith("Nobody")


class _Page(HTMLParser):
    """The docs page's scripts, stylesheets and anything a CSP without 'unsafe-inline' would refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self.root: dict[str, str | None] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if "style" in values or tag == "style" or any(name.startswith("on") for name in values):
            self.inline.append(f"<{tag} {values}>")
        if tag == "script":
            self._in_script = True
            if not values.get("src"):
                self.inline.append("<script> without src")
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(values[name] or "")
        if values.get("id") == "swagger-ui":
            self.root = values

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"inline script: {data.strip()[:40]}")


def test_docs_page_loads_its_own_assets_and_nothing_from_another_host(client: TestClient) -> None:
    anonymous = TestClient(client.app)
    assert anonymous.get(DOCS_URL).status_code == 401  # the same rule as before: staff only
    response = client.get(DOCS_URL, headers=_token(client))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page = _Page()
    page.feed(response.text)
    assert page.inline == [], "the CSP refuses inline script and style"
    assert not re.search(r"https?:|//", " ".join(page.urls)), f"another host: {page.urls}"
    assert page.root.get("data-openapi-url") == OPENAPI_URL
    kinds = {".js": "javascript", ".css": "text/css"}
    assets = [u for u in page.urls if u.endswith(tuple(kinds))]
    assert len(assets) == 3  # Swagger UI's script and stylesheet, and our start-up script
    for url in assets:
        asset = anonymous.get(url)  # public code, like /static
        assert asset.status_code == 200, url
        assert kinds[url[url.rindex(".") :]] in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 200, url
    bundle = anonymous.get(next(u for u in assets if u.endswith("swagger-ui-bundle.js"))).text
    assert "SwaggerUIBundle" in bundle


def test_docs_page_gives_a_signed_in_browser_its_csrf_token(client: TestClient) -> None:
    """"Try it out" from a cookie session must send the CSRF token, or every POST is refused (403)."""
    signed_in = client.post("/login", data={"username": "aud", "password": PASSWORD}, follow_redirects=False)
    assert signed_in.status_code in (302, 303), signed_in.text
    page = _Page()
    page.feed(client.get(DOCS_URL).text)
    token = page.root.get("data-csrf-token") or ""
    assert len(token) >= 16
    assert client.post("/api/v1/auth/logout").status_code == 403  # without the token: refused
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": token}).status_code == 200
