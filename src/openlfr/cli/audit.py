"""``openlfr audit``: check that the audit trail is intact, search it, export it, and sign checkpoints of it.

The trail itself is written by the services (``services/audit.py``); these commands only read it,
except that an export is itself recorded, because whoever takes a copy of the trail is accountable too.
``init-key`` and ``checkpoint`` make the trail checkable by someone who does not trust the data folder:
signed checkpoints, kept elsewhere, that ``verify --checkpoints`` compares the database against.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from openlfr.cli.common import HomeOpt, JsonOpt, console, emit_json, friendly_errors
from openlfr.errors import OpenLFRError

if TYPE_CHECKING:
    from openlfr.services.audit import Verification

audit_app = typer.Typer(
    help="The tamper-evident audit trail: verify it, search it, export it, sign checkpoints.", no_args_is_help=True
)

ActorOpt = Annotated[str | None, typer.Option("--actor", help="Only events by this person (exact name).")]
ActionOpt = Annotated[str | None, typer.Option("--action", help="Action prefix, e.g. 'alert.' or 'deployment.authorise'.")]
RecordTypeOpt = Annotated[str | None, typer.Option("--record-type", help="e.g. deployment, watchlist, alert, subject.")]
RecordIdOpt = Annotated[str | None, typer.Option("--record-id", help="The record's id or reference.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="ISO 8601 time or date (naive times are UTC).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="ISO 8601 time, or a date (meaning the end of that day).")]

#: Events fetched per query while exporting the whole (filtered) trail.
EXPORT_PAGE = 1000
EXPORT_FORMATS = ("csv", "json")


def parse_when(value: str | None, option: str, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 time or date as an aware UTC datetime (the trail stores UTC)."""
    if value is None:
        return None
    try:
        if len(value) == 10:  # a plain date: the whole day, from its start or to its end
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.min, UTC)
            return moment + timedelta(days=1, microseconds=-1) if end_of_day else moment
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise OpenLFRError(f"{option} {value!r} is not a time: use ISO 8601, e.g. 2026-11-22 or 2026-11-22T14:00") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _filters(
    actor: str | None, action: str | None, record_type: str | None, record_id: str | None, since: str | None, until: str | None
) -> dict:
    start, end = parse_when(since, "--since"), parse_when(until, "--until", end_of_day=True)
    if start and end and end < start:
        raise OpenLFRError("--until is before --since")
    return {"actor": actor, "action": action, "record_type": record_type, "record_id": record_id, "since": start, "until": end}


CheckpointsOpt = Annotated[
    Path | None,
    typer.Option(
        "--checkpoints",
        envvar="OPENLFR_AUDIT_CHECKPOINTS",
        help="Folder of signed checkpoints kept outside the data folder ('audit checkpoint --to'); "
        "without it only the in-folder chain is checked.",
    ),
]
PublicKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--public-key",
        help="The checkpoints' public key (the .pub from 'audit init-key'); default: the configured signing "
        "key's, else the oldest checkpoint's.",
    ),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="The signing key (default: $OPENLFR_AUDIT_KEY, else ~/.config/openlfr/audit-signing.key)."),
]


def _print_broken(result: Verification) -> None:
    where = f"first broken event: seq {result.first_broken_seq}" if result.first_broken_seq else "the anchor"
    problem = escape(result.problem or "")
    console.print(
        f"[bold red]audit trail BROKEN[/] ({where}): {problem}; {result.checked} event(s) before it verified",
        highlight=False,
        soft_wrap=True,
    )


@audit_app.command("verify")
@friendly_errors
def verify(
    checkpoints: CheckpointsOpt = None,
    public_key: PublicKeyOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Walk the whole chain; exit 1 and name the first broken event if anything was changed, removed or added.

    With --checkpoints the trail must also hold, unchanged, every event the newest signed checkpoint
    covers: that is what catches a holder of the data folder who deleted events and recomputed the chain.
    """
    from openlfr.services import audit
    from openlfr.storage import Store

    store = Store(home)
    pinned = audit.pinned_public_key(store.home, public_key) if checkpoints is not None else None
    result = audit.verify(store, checkpoints, pinned)
    if as_json:
        emit_json(result.as_dict())
    else:
        for note in result.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
        if result.ok:
            console.print(
                f"audit trail intact: {result.checked} events ({escape(result.scope)})", highlight=False, soft_wrap=True
            )
        else:
            _print_broken(result)
            if result.checkpoint:
                console.print(f"({escape(result.scope)})", highlight=False, soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("init-key")
@friendly_errors
def init_key(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where to create the key (default: $OPENLFR_AUDIT_KEY, else ~/.config/openlfr/audit-signing.key)."
        ),
    ] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the Ed25519 key that signs audit checkpoints, outside the data folder (never replaces one).

    Keep it away from whoever holds the data folder; give the .pub file (or the key id) to auditors.
    """
    from openlfr.config import data_dir
    from openlfr.services import audit

    path, pub, kid = audit.init_key(data_dir(home), out)
    if as_json:
        emit_json({"key": str(path), "public_key": str(pub), "key_id": kid})
        return
    console.print(
        f"audit signing key created: {path} (mode 0600)\npublic key: {pub}\nkey id: {kid}", highlight=False, soft_wrap=True
    )
    if out is not None and audit.key_path() != path:
        hint = f"set {audit.ENV_AUDIT_KEY}={path} for 'audit checkpoint' and 'serve --audit-checkpoints'."
        console.print(hint, highlight=False, soft_wrap=True)


@audit_app.command("checkpoint")
@friendly_errors
def checkpoint(
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            envvar="OPENLFR_AUDIT_CHECKPOINTS",
            help="Folder outside the data folder (another disk, host or write-once store) to write the checkpoint to.",
        ),
    ],
    key: KeyOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify the trail, then sign its event count and head with the audit key and write that to --to.

    Refuses (exit 1) when the trail does not verify, against the in-folder chain and the folder's
    earlier checkpoints: a checkpoint must never vouch for tampering.
    """
    from openlfr.services import audit
    from openlfr.storage import Store

    store = Store(home)
    signing = audit.load_signing_key(store.home, key)
    try:
        cp = audit.write_checkpoint(store, to, signing)
    except audit.TrailBroken as exc:
        if as_json:
            emit_json({"written": False, **exc.verification.as_dict()})
        else:
            console.print("[bold red]no checkpoint written[/]: the trail does not verify", highlight=False, soft_wrap=True)
            _print_broken(exc.verification)
        raise typer.Exit(1) from None
    summary = {"written": True, **cp.summary(), "head": cp.head, "from_seq": cp.from_seq}
    if as_json:
        emit_json(summary)
    else:
        console.print(
            f"checkpoint {cp.number}: {cp.seq} events, head {cp.head[:16]}…, signed with key {summary['key_id']}, "
            f"written to {cp.file}",
            highlight=False,
            soft_wrap=True,
        )


@audit_app.command("search")
@friendly_errors
def search(
    actor: ActorOpt = None,
    action: ActionOpt = None,
    record_type: RecordTypeOpt = None,
    record_id: RecordIdOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100_000, help="At most this many, newest first.")] = 200,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Who did what to which record, newest first."""
    from openlfr.services import audit
    from openlfr.storage import Store

    events = audit.search(Store(home), **_filters(actor, action, record_type, record_id, since, until), limit=limit)
    if as_json:
        emit_json(events)
        return
    table = Table(title=f"Audit trail ({len(events)} event(s), newest first)")
    for col in ("seq", "time (UTC)", "actor", "role", "action", "record", "source"):
        table.add_column(col)
    for e in events:
        when = datetime.fromisoformat(e["at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        record = f"{e['record_type']} {e['record_id']}" if e["record_type"] else (e["record_id"] or "")
        table.add_row(str(e["seq"]), when, e["actor"], e["role"] or "", e["action"], record, e["source"] or "")
    console.print(table)


@audit_app.command("export")
@friendly_errors
def export(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    actor: ActorOpt = None,
    action: ActionOpt = None,
    record_type: RecordTypeOpt = None,
    record_id: RecordIdOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    by: Annotated[str | None, typer.Option("--by", help="Who is exporting (recorded; default: your login name).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the (filtered) trail, oldest first, to a file; the export itself is recorded in the trail."""
    from openlfr.services import audit
    from openlfr.storage import Store

    if fmt not in EXPORT_FORMATS:
        raise OpenLFRError(f"--format {fmt!r}: choose csv or json")
    filters = _filters(actor, action, record_type, record_id, since, until)
    store = Store(home)
    events: dict[int, dict] = {}
    offset = 0
    while True:  # newest first in pages; a row appended meanwhile only repeats one, deduplicated by seq
        page = audit.search(store, **filters, limit=EXPORT_PAGE, offset=offset)
        events.update((e["seq"], e) for e in page)
        if len(page) < EXPORT_PAGE:
            break
        offset += EXPORT_PAGE
    rows = [events[seq] for seq in sorted(events)]
    body = audit.to_csv(rows) if fmt == "csv" else json.dumps(rows, indent=2, default=str) + "\n"
    try:
        out.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise OpenLFRError(f"cannot write {out}: {exc.strerror or exc}") from exc
    used = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None}
    seq = audit.record(
        store,
        "audit.export",
        details={"format": fmt, "events": len(rows), "file": str(out.absolute()), "filters": used},
        actor=by or _login_name(),
        source="cli",
    )
    if as_json:
        emit_json({"file": str(out), "format": fmt, "events": len(rows), "export_event": seq})
    else:
        console.print(f"{len(rows)} event(s) written to {out} ({fmt}); the export is recorded as audit event {seq}.")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name for this uid (e.g. some containers)
        return "unknown-cli-user"


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
