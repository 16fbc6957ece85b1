"""``/api/v1/docs`` in a real browser: Swagger UI renders every operation under the strict CSP.

Debian's Chromium, driven by Playwright, against ``openlfr serve`` (the same way as
``tests/test_e2e_browser.py``). The page was blank while Swagger UI came from a CDN: the
Content-Security-Policy refused it. Any console error, CSP violation or request to another host
fails the test. Skipped without Chromium unless ``OPENLFR_REQUIRE_BROWSER=1`` (set by CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from browser_helpers import ARTIFACTS, CHROMIUM_ARGS, PASSWORD, browser_or_skip, serving
from openlfr.services import users
from openlfr.storage import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[str]:
    """``openlfr serve`` over a data directory with one auditor; the docs need no model."""
    home = tmp_path_factory.mktemp("docs-home")
    store = Store(home)
    users.create_user(store, "aud-auditor", "Aud", "auditor", PASSWORD, "test-setup")
    store.close()
    with serving(home) as url:
        yield url


def test_swagger_ui_renders_every_operation_without_console_errors(served: str) -> None:
    from playwright.sync_api import sync_playwright

    executable = browser_or_skip()
    url = served
    errors: list[str] = []
    foreign: list[str] = []
    own_host = urlsplit(url).netloc
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
            page.goto(f"{url}/login")
            page.fill("#username", "aud-auditor")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            # From here on: the docs page only (the sign-in page's own errors are not its business).
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).scheme in ("http", "https")
                    and urlsplit(r.url).netloc != own_host else None)  # fmt: skip
            page.goto(f"{url}/api/v1/docs")
            page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
            page.wait_for_load_state("networkidle")
            shown = set(page.eval_on_selector_all(".swagger-ui .opblock-summary", """blocks => blocks.map(b =>
                b.querySelector('.opblock-summary-method').textContent.trim() + ' ' +
                b.querySelector('.opblock-summary-path').getAttribute('data-path'))"""))
            document = page.request.get(f"{url}/api/v1/openapi.json").json()
            operations = {f"{m.upper()} {path}" for path, ops in document["paths"].items() for m in ops}
            assert page.locator(".swagger-ui .info .title").inner_text().startswith("OpenLFR")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
            # "Try it out" from the cookie session: a POST must carry the CSRF token (403 without it).
            block = page.locator(".opblock", has=page.locator(".opblock-summary-path[data-path='/api/v1/auth/logout']"))
            block.locator(".opblock-summary").click()
            block.get_by_role("button", name="Try it out").click()
            block.get_by_role("button", name="Execute").click()
            status = block.locator(".live-responses-table tr.response .response-col_status").first
            status.wait_for(timeout=10_000)
            tried = status.inner_text().strip()
        finally:
            browser.close()
    assert not errors, f"console errors on /api/v1/docs: {errors}"
    assert not foreign, f"the docs page reached another host: {foreign}"
    assert shown == operations, f"operations Swagger UI does not show: {sorted(operations - shown)}"
    assert tried == "200", f"signing out through Swagger UI answered {tried} (CSRF token not sent?)"
