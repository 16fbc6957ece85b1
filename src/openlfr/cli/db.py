"""``openlfr db check`` / ``db migrate``: the database schema, for operators.

Every ``openlfr`` command migrates the store to the newest schema when it opens it, which suits one
box. Where several servers share one PostgreSQL, operators upgrade deliberately: ``db check`` (no
changes, exit status 1 while migrations are pending, so a deployment script or a readiness probe can
wait on it) and ``db migrate`` (run once, from one place, before the new servers start).
"""

from __future__ import annotations

import typer
from rich.markup import escape

from openlfr.cli.common import HomeOpt, JsonOpt, console, emit_json, friendly_errors
from openlfr.errors import StoreError

db_app = typer.Typer(help="The database schema: check that it is current, or migrate it.", no_args_is_help=True)


def _describe(status: dict) -> str:
    current = status["current"] or "empty (no schema yet)"
    line = f"{escape(status['database'])}: schema {current}, newest {status['head']}"
    if not status["known"]:
        return f"{line}: [bold red]revision {status['current']} is unknown to this version[/] (migrated by a newer OpenLFR?)"
    if status["up_to_date"]:
        return f"{line}: up to date"
    pending = status["pending"]
    return f"{line}: [yellow]{len(pending)} migration(s) pending[/] ({', '.join(pending)}); run 'openlfr db migrate'"


@db_app.command("check")
@friendly_errors
def check(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Compare the schema with the newest migration; changes nothing. Exit status 1 when it is behind or unknown.

    The database is $OPENLFR_DATABASE_URL, else the SQLite file in the data directory.
    """
    from openlfr.storage.store import schema_status

    status = schema_status(home)
    if as_json:
        emit_json(status)
    else:
        console.print(_describe(status), highlight=False, soft_wrap=True)
    if not status["up_to_date"]:
        raise typer.Exit(1)


@db_app.command("migrate")
@friendly_errors
def migrate(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Bring the schema to the newest migration (safe to run from several places at once on PostgreSQL: one
    migrates, the others wait and find it done). Migrations that re-encrypt data need the data key."""
    from openlfr.storage import Store
    from openlfr.storage.store import schema_status

    before = schema_status(home)
    if not before["known"]:
        raise StoreError(f"the database is at revision {before['current']}, which this version does not know: "
                         "it was migrated by a newer OpenLFR; run that version")
    Store(home).close()
    after = schema_status(home)
    if as_json:
        emit_json({**after, "from": before["current"], "applied": before["pending"]})
        return
    applied = ", ".join(before["pending"]) or "none"
    console.print(f"{_describe(after)} (applied: {applied})", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
