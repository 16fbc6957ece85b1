"""Property-based fuzzing of the whole REST API against a real ``openlfr serve``, as every role.

A fresh data folder, one account per role (the administrator created with ``openlfr users create
--password-stdin`` as the README says, the others through the API, each signing in for its own
token), then schemathesis generates valid and invalid requests for every operation in the
server's own OpenAPI document and sends them with each role's token and with none (schemathesis
fills the declared credentials with junk then, which must still get 401). Every answer
must be below 500 and one of the statuses the document declares for that operation (see
:mod:`openlfr.api.openapi`). Generation is derandomized (Hypothesis's ``derandomize``: the same
examples on every run, no example database, no shrinking) and bounded (ten examples per operation,
role and mode for a role the policy lets in, one for the others; a wall-clock cap for the whole
run): about 3,000 requests in under a minute here, the same every time.

Two things are kept from sabotaging the run itself: ``GET /alerts/stream`` is left out (it never
ends; the access matrix test covers it), and requests that would disable, re-role or sign out the
fuzzing accounts or revoke their tokens are pointed at a spare account and token instead, with
``POST /auth/logout`` sent last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from browser_helpers import free_port
from openlfr.api.openapi import EXTRA_RESPONSES
from openlfr.api.policy import RULES
from openlfr.services.users import ROLES

pytestmark = pytest.mark.slow

PASSWORD = "fuzzing password, long enough"
#: Generated examples per operation × generation mode for a role the policy lets in; a role it refuses,
#: and the anonymous caller, get one valid example each (the answer is 401/403 whatever the input).
EXAMPLES = 10
#: The whole fuzzing loop stops starting new operations after this many seconds.
WALL_CLOCK_S = 150.0
SKIPPED = {"GET /api/v1/alerts/stream"}  # Server-Sent Events: the response never ends
LAST = {"POST /api/v1/auth/logout"}  # revokes the token it is sent with


def _openlfr() -> list[str]:
    found = Path(sys.executable).with_name("openlfr")
    if found.exists():
        return [str(found)]
    which = shutil.which("openlfr")
    assert which, "the openlfr command is not installed"
    return [which]


@dataclass
class Server:
    url: str
    tokens: dict[str, str]  # role -> bearer token
    protected_users: set[int]
    protected_tokens: set[int]
    spare_user: int
    spare_token: int
    log: Path
    schema: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("fuzz-home")
    env = {**os.environ, "OPENLFR_HOME": str(home)}
    env.pop("OPENLFR_TRUSTED_PROXIES", None)
    subprocess.run(
        [*_openlfr(), "users", "create", "--username", "fuzz-administrator", "--name", "Fuzz Admin", "--role", "administrator",
         "--password-stdin"],
        input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    log = home.parent / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*_openlfr(), "serve", "--host", "127.0.0.1", "--port", str(port), "--pack", "yunet-sface"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"openlfr serve exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/api/v1/public/deployments", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "openlfr serve did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=60) as client:

            def sign_in(username: str) -> str:
                r = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD, "name": "fuzz"})
                assert r.status_code == 200, r.text
                return str(r.json()["access_token"])

            tokens = {"administrator": sign_in("fuzz-administrator")}
            admin = {"Authorization": f"Bearer {tokens['administrator']}"}
            for role in [*ROLES, "spare"]:
                if role == "administrator":
                    continue
                name = f"fuzz-{role.replace('_', '-')}"
                body = {"username": name, "display_name": name, "role": "operator" if role == "spare" else role,
                        "password": PASSWORD}  # fmt: skip
                assert client.post("/api/v1/users", json=body, headers=admin).status_code == 201
                tokens[role] = sign_in(name)
            accounts = {u["username"]: u["id"] for u in client.get("/api/v1/users", headers=admin).json()}
            spare_user = accounts.pop("fuzz-spare")
            issued = client.get("/api/v1/tokens", headers=admin).json()
            spare_token = next(t["id"] for t in issued if t["username"] == "fuzz-spare")
            tokens.pop("spare")
            schema = client.get("/api/v1/openapi.json", headers=admin).json()
        yield Server(
            url=url,
            tokens=tokens,
            protected_users=set(accounts.values()),
            protected_tokens={t["id"] for t in issued if t["username"] != "fuzz-spare"},
            spare_user=spare_user,
            spare_token=spare_token,
            log=log,
            schema=schema,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_openapi_declares_security_and_errors(server: Server) -> None:
    doc = server.schema
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            key = f"{method.upper()} {path}"
            rule = RULES[key]
            declared = set(op["responses"])
            if "public" in rule:
                assert op["security"] == [], key
            else:
                assert {"bearerAuth": []} in op["security"], key
                assert "401" in declared, key
                if len(rule) < len(ROLES):
                    assert "403" in declared, key
            if "{" in path:
                assert "404" in declared, key
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in declared, key
    routes = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert set(EXTRA_RESPONSES) <= routes, sorted(set(EXTRA_RESPONSES) - routes)


@dataclass
class Tally:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _fuzz(
    server: Server, operation: Any, role: str | None, mode: GenerationMode, examples: int, tally: Tally, session: Any
) -> None:
    key = f"{operation.method.upper()} {operation.path}"
    declared = {int(code) for code in operation.definition.raw["responses"] if code.isdigit()}
    headers = {"Authorization": f"Bearer {server.tokens[role]}"} if role else {}

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not raised
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        params = case.path_parameters or {}
        if _int(params.get("user_id")) in server.protected_users:
            params["user_id"] = server.spare_user
        if _int(params.get("token_id")) in server.protected_tokens:
            params["token_id"] = server.spare_token
        response = case.call(base_url=server.url, session=session, headers=headers, timeout=60)
        tally.requests += 1
        status = response.status_code
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status >= 500 or status not in declared:
            what = "server error" if status >= 500 else f"undeclared status (declared {sorted(declared)})"
            tally.failures.append(
                f"{key} as {role or 'anonymous'} ({mode.value}): {status} {what}: {response.text[:300]!r}\n"
                f"    reproduce: {case.as_curl_command(headers=headers, base_url=server.url)}"
            )

    run()


def test_fuzz_every_operation_as_every_role(server: Server) -> None:
    schema = schemathesis.openapi.from_dict(server.schema)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if f"{op.method.upper()} {op.path}" not in SKIPPED]
    operations.sort(key=lambda op: f"{op.method.upper()} {op.path}" in LAST)
    assert len(operations) >= 50
    tally = Tally()
    started = time.monotonic()
    with requests.Session() as session:
        for operation in operations:
            rule = RULES[f"{operation.method.upper()} {operation.path}"]
            for role in (None, *ROLES):
                let_in = "public" in rule or role in rule
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if let_in else (GenerationMode.POSITIVE,):
                    if time.monotonic() - started > WALL_CLOCK_S:
                        tally.unfinished.append(f"{operation.method.upper()} {operation.path} as {role} ({mode.value})")
                        continue
                    _fuzz(server, operation, role, mode, EXAMPLES if let_in else 1, tally, session)
    elapsed = time.monotonic() - started
    print(
        f"\nschemathesis: {tally.requests} requests to {len(operations)} operations in {elapsed:.0f} s; "
        f"statuses {dict(sorted(tally.statuses.items()))}; {len(tally.unfinished)} runs left for lack of time"
    )
    server_errors = [f for f in tally.failures if "server error" in f]
    assert not tally.failures, (
        f"{len(server_errors)} server errors, {len(tally.failures) - len(server_errors)} undeclared statuses:\n"
        + "\n".join(tally.failures[:40])
        + f"\n--- server log ---\n{server.log.read_text()[-3000:]}"
    )
    assert tally.requests >= 500, f"too few requests made ({tally.requests}): the fuzz did not run"
