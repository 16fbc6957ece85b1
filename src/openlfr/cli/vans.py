"""Commands of the central and van roles: the centre's keys and vans, deployment packages, a van's
enrolment, imports and delivery to the centre."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from openlfr.cli.common import HomeOpt, JsonOpt, console, emit_json, friendly_errors

if TYPE_CHECKING:
    from openlfr.storage import Store

centre_app = typer.Typer(
    help="The centre's keys: package signing, its CA, the sync listener's certificate.", no_args_is_help=True
)
vans_app = typer.Typer(help="The vans this centre knows (run at the centre).", no_args_is_help=True)
van_app = typer.Typer(help="This node as a van: keys, enrolment, packages, delivery (run on the van).", no_args_is_help=True)

KeysOpt = Annotated[
    Path | None,
    typer.Option("--keys", help="Folder of this node's private keys (default: $OPENLFR_NODE_KEYS, else <home>/keys/node)."),
]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who is doing this (recorded; default: the operating-system user).")]


def _by(by: str | None) -> str:
    from openlfr.services import audit

    actor = audit.current_actor()
    return by or (actor.name if actor else "cli")


@centre_app.command("init")
@friendly_errors
def centre_init(
    host: Annotated[list[str], typer.Option("--host", help="A name or address vans reach the sync listener at (repeat).")],
    keys: KeysOpt = None,
    home: HomeOpt = None,
) -> None:
    """Make the centre's signing key, CA and sync certificate (once; never replaced)."""
    from openlfr.services import vans
    from openlfr.storage import Store

    made = vans.init_centre(Store(home), host, keys)
    console.print(f"Centre keys in {made.folder}; package signing key id [bold]{made.signing_key_id}[/]")
    console.print(f"Sync certificate for: {', '.join(made.hosts)}. Back the folder up apart from the data folder.")


@vans_app.command("register")
@friendly_errors
def vans_register(
    name: Annotated[str, typer.Argument(help="The van's name (as given to 'openlfr van init').")],
    public_key: Annotated[Path, typer.Option("--public-key", help="The public key file 'openlfr van init' wrote.")],
    out: Annotated[Path | None, typer.Option("--out", help="Enrolment file to write (default NAME.enrol.json).")] = None,
    by: ByOpt = None,
    keys: KeysOpt = None,
    home: HomeOpt = None,
) -> None:
    """Register a van and issue its client certificate; writes the enrolment file the van needs."""
    from openlfr.services import vans
    from openlfr.storage import Store

    bundle = vans.register_van(Store(home), name, public_key.read_bytes(), _by(by), keys)
    target = out or Path(f"{name}.enrol.json")
    target.write_text(json.dumps(bundle, indent=1) + "\n")
    console.print(
        f"Van {name} registered. Enrolment file: {target} (public, but carry it by hand: it tells the van which "
        f"centre to trust). Centre key id {bundle['centre_key_id']}."
    )


@vans_app.command("list")
@friendly_errors
def vans_list(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """The registered vans, and what each has delivered per stream."""
    from openlfr.services import outbox, vans
    from openlfr.storage import Store

    store = Store(home)
    rows, intake = vans.list_vans(store), outbox.intake_status(store)
    if as_json:
        emit_json({"vans": rows, "streams": intake})
        return
    table = Table(title="Vans")
    for col in ("name", "package key id", "registered", "by", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["package_key_id"], r["registered_at"], r["registered_by"], "yes" if r["revoked"] else "")
    console.print(table)
    for i in intake:
        console.print(f"{i['van']} · stream {i['stream']}: {i['held']} item(s), last at {i['last_received']}")


@vans_app.command("revoke")
@friendly_errors
def vans_revoke(name: Annotated[str, typer.Argument()], by: ByOpt = None, home: HomeOpt = None) -> None:
    """Refuse a van's certificate from now on (lost or stolen)."""
    from openlfr.services import vans
    from openlfr.storage import Store

    vans.revoke_van(Store(home), name, _by(by))
    console.print(f"Van {name} revoked: the sync listener refuses it.")


@friendly_errors
def deployments_package(
    deployment: Annotated[int, typer.Argument(help="An authorised deployment.")],
    van: Annotated[str, typer.Option("--van", help="The registered van that will run it.")],
    out: Annotated[Path, typer.Option("--out", help="The package file to write.")],
    by: ByOpt = None,
    keys: KeysOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Seal an authorised deployment (watchlist, cameras, threshold) for one van and sign it; audited."""
    from openlfr.services import packages
    from openlfr.storage import Store
    from openlfr.storage.store import write_private

    made = packages.export_package(Store(home), deployment, van, _by(by), keys)
    write_private(out, made.data)
    summary = {k: v for k, v in made.__dict__.items() if k != "data"} | {"file": str(out)}
    if as_json:
        emit_json(summary)
        return
    console.print(
        f"Package {made.package_id} for van {van}: deployment {deployment}, {made.subjects} subject(s), {made.images} "
        f"image(s); valid {made.not_before} to {made.not_after}. Written to {out} (encrypted to the van, signed)."
    )


@van_app.command("init")
@friendly_errors
def van_init(
    name: Annotated[str, typer.Option("--name", help="This van's name (lower-case letters, digits, hyphens).")],
    keys: KeysOpt = None,
    home: HomeOpt = None,
) -> None:
    """Make this node a van: its keys (files outside the database) and the public key file for the centre."""
    from openlfr.services import vans
    from openlfr.storage import Store

    made = vans.init_van(Store(home), name, keys)
    console.print(made.public_text, highlight=False, markup=False)
    console.print(
        f"Van {name}: keys in {made.folder}; public keys written to {made.public_file} (package key id "
        f"{made.package_key_id}). At the centre: openlfr vans register {name} --public-key {made.public_file.name}"
    )


@van_app.command("enrol")
@friendly_errors
def van_enrol(
    file: Annotated[Path, typer.Argument(help="The enrolment file 'openlfr vans register' wrote.")],
    centre_url: Annotated[str, typer.Option("--centre-url", help="The centre's sync listener, https://HOST:PORT.")],
    keys: KeysOpt = None,
    home: HomeOpt = None,
) -> None:
    """Pin the centre's signing key and CA, and keep this van's client certificate."""
    from openlfr.services import vans
    from openlfr.storage import Store

    me = vans.enrol(Store(home), file.read_bytes(), centre_url, keys)
    console.print(f"Van {me.name} enrolled: trusts centre key [bold]{me.centre_key_id}[/] (compare it with the centre's); "
                  f"delivers to {me.centre_url}.")  # fmt: skip


@van_app.command("import")
@friendly_errors
def van_import(
    file: Annotated[Path, typer.Argument(help="A deployment package from the centre.")],
    by: ByOpt = None,
    keys: KeysOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check and open a deployment package: it becomes a local authorised deployment with its frozen watchlist."""
    from openlfr.services import packages
    from openlfr.storage import Store

    result = packages.import_package(Store(home), file.read_bytes(), _by(by), keys)
    if as_json:
        emit_json(result.__dict__)
        return
    console.print(
        f"Imported package {result.package_id}: deployment {result.deployment_id} ({result.name}), {result.subjects} "
        f"subject(s), cameras {', '.join(result.cameras)}; valid until {result.not_after}. "
        f"Go live with: openlfr live --deployment {result.deployment_id}"
    )


@van_app.command("sync")
@friendly_errors
def van_sync(
    url: Annotated[str | None, typer.Option("--url", help="The centre's sync address (default: the enrolled one).")] = None,
    keys: KeysOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One delivery pass: send the centre everything it does not hold yet, in order."""
    from openlfr.services import outbox
    from openlfr.storage import Store

    report = outbox.sync_once(Store(home), keys, url)
    if as_json:
        emit_json(report.as_dict())
        return
    console.print(f"Delivered {report.sent} item(s) to {report.centre}; {report.pending} still queued.")


@van_app.command("status")
@friendly_errors
def van_status(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """This van's identity, the centre it trusts and its outbox."""
    from openlfr.services import outbox, packages, vans
    from openlfr.storage import Store

    store = Store(home)
    me = vans.identity(store)
    streams = outbox.outbox_status(store)
    count, age = outbox.backlog(store)
    data = {
        "van": me.name if me else None,
        "enrolled": bool(me and me.enrolled),
        "centre_key_id": me.centre_key_id if me else None,
        "centre_url": me.centre_url if me else None,
        "package_problem": packages.van_package_problem(store),
        "pending": count,
        "oldest_pending_s": round(age, 1),
        "streams": [s.__dict__ for s in streams],
    }
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        if key != "streams":
            console.print(f"{key}: {value}")
    for s in streams:
        console.print(f"stream {s.stream}: {s.items} item(s), {s.acked} acknowledged, {s.pending} pending")


def register(app: typer.Typer) -> None:
    # Loading the outbox registers its audit hook, so every command run on a van queues what it does
    # for the centre in the same transaction as its audit event.
    import openlfr.services.outbox  # noqa: F401
    from openlfr.cli.lfr import deployments_app

    deployments_app.command("package")(deployments_package)
    app.add_typer(centre_app, name="centre")
    app.add_typer(vans_app, name="vans")
    app.add_typer(van_app, name="van")


def start_node_services(
    store: Store, role: str, host: str, sync_port: int | None, sync_every: float, keys: Path | None
) -> Callable[[], None]:
    """What ``openlfr serve`` runs beside the API for its role: at a centre given ``--sync-port``, the
    vans' sync listener; on a van, the loop delivering its outbox. Returns what stops them."""
    from rich.markup import escape

    from openlfr.errors import OpenLFRError
    from openlfr.services import outbox, vans

    me = vans.identity(store)
    if role == "van":
        if sync_port is not None:
            raise OpenLFRError("--sync-port is the centre's listener; a van delivers to the centre instead")
        if me is None or not me.enrolled:
            what = "not a van yet ('openlfr van init --name NAME')" if me is None else f"van {me.name} is not enrolled"
            console.print(f"[yellow]{what}:[/] nothing is delivered to a centre until 'openlfr van enrol'")
            return lambda: None

        def report(exc: Exception) -> None:
            console.print(f"[yellow]outbox not delivered:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)

        loop = outbox.SyncLoop(store, sync_every, keys, report)
        loop.start()
        console.print(f"van {me.name}: delivering its outbox to {me.centre_url} every {sync_every:g} s")
        return loop.stop
    if me is not None:
        console.print(f"[yellow]this data folder is van {me.name}'s:[/] serve it with --role van to deliver its outbox")
    if sync_port is None:
        return lambda: None
    from openlfr.api.sync import SyncListener, sync_server

    listener = SyncListener(sync_server(store, host, sync_port, keys))
    listener.start()
    console.print(f"sync listener for vans on https://{host}:{sync_port} (client certificates required)")
    return listener.stop
