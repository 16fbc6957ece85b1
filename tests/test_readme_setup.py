"""The README's set-up section does what it says: it names every system package ``.ci/run`` installs
for the tests, lists the exact role values, and its commands creating the first accounts work."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from openlfr.cli.main import app
from openlfr.services.users import ROLES, list_users
from openlfr.storage import Store

ROOT = Path(__file__).resolve().parent.parent


def setup_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("## Set-up") : text.index("\n## ", text.index("## Set-up") + 1)]


def ci_packages() -> set[str]:
    """The system packages ``.ci/run`` installs with apt-get."""
    packages: set[str] = set()
    for match in re.finditer(r"apt-get install([^\n>&|;]*)", (ROOT / ".ci" / "run").read_text(encoding="utf-8")):
        packages |= {word for word in match.group(1).split() if not word.startswith(("-", "$"))}
    return packages


def test_readme_names_every_system_package_ci_installs() -> None:
    section = setup_section()
    assert ci_packages(), ".ci/run installs no system package? then this test reads it wrongly"
    missing = sorted(p for p in ci_packages() if f"`{p}`" not in section and f" {p}" not in section)
    assert missing == [], f"system packages .ci/run installs that the README's set-up does not name: {missing}"


def test_readme_lists_the_exact_role_values() -> None:
    listed = re.search(r"`--role` is exactly one of ([^(]+)", setup_section())
    assert listed is not None
    assert re.findall(r"`([a-z_]+)`", listed.group(1)) == list(ROLES)


def test_readme_commands_create_the_first_accounts(tmp_path: Path) -> None:
    """Run each ``printf … | openlfr users create …`` line of the set-up section as written."""
    commands = re.findall(r"printf '%s\\n' '([^']+)' \| \.venv/bin/openlfr (users create[^\n\\]*(?:\\\n[^\n\\]*)*)",
                          setup_section())  # fmt: skip
    assert len(commands) >= 2
    home = tmp_path / "home"
    runner = CliRunner()
    for password, command in commands:
        args = shlex.split(command.replace("\\\n", " "))
        result = runner.invoke(app, [*args, "--home", str(home)], input=password + "\n")
        assert result.exit_code == 0, result.output
    store = Store(home)
    try:
        roles = {u["username"]: u["role"] for u in list_users(store)}
    finally:
        store.close()
    assert roles == {"admin": "administrator", "olive": "operator"}
