"""Operating a node: the systemd units and the centre's container start a server that answers /healthz,
and `openlfr serve --role` is accepted and reported. Each check runs where its tool exists and skips,
saying why, where it does not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from browser_helpers import free_port
from openlfr.cli.main import app as cli
from openlfr.services import audit

ROOT = Path(__file__).resolve().parent.parent
UNITS = {role: ROOT / "deploy" / "systemd" / f"openlfr-{role}.service" for role in ("central", "van")}
DOCKERFILE = ROOT / "Dockerfile"
OPENLFR = Path(sys.executable).parent / "openlfr"
INSTALLED = "/opt/openlfr/venv/bin/openlfr"  # where the units expect OpenLFR (README)
START_S = 120  # a bound on waiting for a server to answer, so a broken start fails instead of hanging


def directives(path: Path) -> list[tuple[str, str, str]]:
    """``(section, key, value)`` in order; systemd allows a key more than once, so no dict."""
    found, section = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(path: Path, key: str) -> list[str]:
    return [v for _s, k, v in directives(path) if k == key]


def wait_for_healthz(url: str, process: subprocess.Popen | None = None) -> httpx.Response:
    """Poll until the server answers (or its process exits): a condition with a bound, not a pause."""
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"the server exited with {process.returncode}: {output}")
        try:
            return httpx.get(f"{url}/healthz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url}/healthz did not answer within {START_S} s")


@pytest.mark.parametrize("role", ["central", "van"])
def test_units_are_hardened_and_run_serve_with_their_role(role: str) -> None:
    unit = UNITS[role]
    service = {k: v for s, k, v in directives(unit) if s == "Service"}
    assert service["User"] == "openlfr" and service["Group"] == "openlfr"
    for key, expected in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "UMask": "0077",
        "CapabilityBoundingSet": "",
    }.items():
        assert service.get(key) == expected, f"{unit.name}: {key}={service.get(key)!r}, expected {expected!r}"
    assert "/var/lib/openlfr" in values(unit, "ReadWritePaths")
    assert values(unit, "EnvironmentFile") == [f"/etc/openlfr/{role}.env"]
    assert "OPENLFR_HOME=/var/lib/openlfr" in values(unit, "Environment")
    assert service["ExecStart"].startswith(f"{INSTALLED} serve --role {role} ")
    if role == "central":
        assert service["PrivateDevices"] == "yes"  # no cameras at the centre
    else:
        assert service["DevicePolicy"] == "closed" and values(unit, "DeviceAllow") == ["char-video4linux rw"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
@pytest.mark.parametrize("role", ["central", "van"])
def test_systemd_analyze_verifies_the_unit(role: str, tmp_path: Path) -> None:
    """The units as shipped, but with ExecStart pointing at this checkout's openlfr (verify checks it exists)."""
    unit = tmp_path / UNITS[role].name
    unit.write_text(UNITS[role].read_text().replace(INSTALLED, str(OPENLFR)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120)
    about_unit = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    assert result.returncode == 0 and not about_unit, result.stdout + result.stderr


@pytest.mark.parametrize("role", ["central", "van"])
def test_the_units_command_line_starts_a_server_that_answers_healthz(role: str, tmp_path: Path) -> None:
    """ExecStart as systemd would run it, with its Environment= defaults, and only the machine-specific
    values replaced: the program's place, the data folder, the port and the audit key's place."""
    unit = UNITS[role]
    port = free_port()
    key = tmp_path / "etc" / "audit-signing.key"  # outside the data folder, as /etc/openlfr is
    home = tmp_path / "var-lib-openlfr"
    audit.init_key(home, key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLFR_")}
    env.update(v.split("=", 1) for v in values(unit, "Environment"))
    env.update(OPENLFR_HOME=str(home), HOME=str(home), OPENLFR_LISTEN_PORT=str(port), OPENLFR_AUDIT_KEY=str(key))
    command = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], values(unit, "ExecStart")[0]).split()
    assert command[0] == INSTALLED
    command[0] = str(OPENLFR)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        health = wait_for_healthz(url, process)
        assert health.status_code == 200 and health.json()["role"] == role
        ready = httpx.get(f"{url}/readyz", timeout=60)
        # A van is ready once it holds a deployment package ('openlfr van import'); this fresh one does not.
        assert ready.status_code == (503 if role == "van" else 200), ready.text
        assert ready.json()["failed"] == (["deployment_package"] if role == "van" else [])
        assert ready.json()["role"] == role and ready.json()["checks"]["audit_key"]["detail"].startswith("present")
        assert f'role="{role}"' in httpx.get(f"{url}/metrics", timeout=30).text
    finally:
        process.terminate()
        process.wait(30)


def test_serve_refuses_an_unknown_role(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--role", "truck", "--home", str(tmp_path / "home")])
    assert result.exit_code == 2 and "--role" in result.output
    assert not (tmp_path / "home").exists()  # refused before anything was opened


def test_dockerfile_runs_the_centre_unprivileged_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base  # Debian slim Python from the registry
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("root", "0")), user
    assert re.search(r"^HEALTHCHECK .*/healthz", text, re.M | re.S)
    assert '"--role", "central"' in re.search(r"^CMD (.+)$", text, re.M).group(1)
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "OPENLFR_DATABASE_URL" not in instructions  # from the environment at `docker run`, never baked in


def _docker_unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed on this machine"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        return f"docker is installed but no daemon answers: {(info.stderr or info.stdout).strip().splitlines()[-1:]}"
    return None


@pytest.mark.slow
def test_docker_image_starts_and_answers_healthz() -> None:
    reason = _docker_unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"openlfr-central-test:{os.getpid()}"
    build = subprocess.run(["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=3600)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    name = f"openlfr-test-{os.getpid()}"
    try:
        # The embedded SQLite store stands in for PostgreSQL here: /healthz needs no database.
        run = subprocess.run(
            ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8000", tag], capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stderr
        port = subprocess.run(["docker", "port", name, "8000/tcp"], capture_output=True, text=True, timeout=60).stdout
        url = "http://" + port.strip().splitlines()[0]
        health = wait_for_healthz(url)
        assert health.status_code == 200 and health.json()["role"] == "central"
        user = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True, timeout=60).stdout.strip()
        assert user != "0", "the server runs as root"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=120)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=300)
