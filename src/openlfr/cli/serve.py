"""``openlfr serve``: the REST API, the console and the public site, on the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openlfr.cli.common import HomeOpt, PackOpt, console, friendly_errors


@friendly_errors
def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on. Put a TLS-terminating proxy in front for anything but localhost.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    http_cookies: Annotated[
        bool,
        typer.Option(
            "--http-cookies", help="Send the session cookie over plain HTTP too (only for testing on a private network)."
        ),
    ] = False,
    audit_checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--audit-checkpoints",
            envvar="OPENLFR_AUDIT_CHECKPOINTS",
            help="Write a signed audit checkpoint to this folder (outside the data folder) at start, on a schedule "
            "and at shutdown; needs the audit key ('openlfr audit init-key', $OPENLFR_AUDIT_KEY).",
        ),
    ] = None,
    checkpoint_every: Annotated[
        float, typer.Option("--checkpoint-every", min=1.0, help="Seconds between audit checkpoints (when the trail grew).")
    ] = 300.0,
    trusted_proxies: Annotated[
        str,
        typer.Option(
            "--trusted-proxies",
            envvar="OPENLFR_TRUSTED_PROXIES",
            help="Comma-separated addresses or networks of your reverse proxies (e.g. 127.0.0.1,10.0.0.0/8): only "
            "their X-Forwarded-For is believed as the audited source. Default: none.",
        ),
    ] = "",
    role: Annotated[
        str,
        typer.Option(
            "--role",
            envvar="OPENLFR_ROLE",
            help="What this node is: 'central' (the force's server: planning, records, audit, public site, "
            "retrospective search) or 'van' (a standalone node at a deployment: delivers its outbox to the centre "
            "every --sync-every seconds). Reported by /readyz and /metrics.",
        ),
    ] = "central",
    sync_port: Annotated[
        int | None,
        typer.Option(
            "--sync-port", help="Centre: also serve the vans' sync listener on this port (mutual TLS; 'openlfr centre init')."
        ),
    ] = None,
    sync_host: Annotated[
        str | None,
        typer.Option(
            "--sync-host", help="Centre: the address the sync listener binds (default: --host). Vans connect to it "
            "directly: no TLS-terminating proxy may stand in between.",
        ),
    ] = None,
    sync_every: Annotated[
        float, typer.Option("--sync-every", min=0.05, help="Van: seconds between deliveries of its outbox to the centre.")
    ] = 30.0,
    node_keys: Annotated[
        Path | None,
        typer.Option("--keys", help="Folder of the node's private keys (default $OPENLFR_NODE_KEYS, else <home>/keys/node)."),
    ] = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
) -> None:
    """Serve the API (/api/v1, OpenAPI at /api/v1/docs), the console (/console) and the public site (/public).

    Create the first administrator with 'openlfr users create' before signing in.
    """
    import uvicorn
    from rich.markup import escape

    from openlfr.api.app import create_app
    from openlfr.api.health import ROLES
    from openlfr.api.security import parse_trusted_proxies
    from openlfr.services import audit, users
    from openlfr.storage import Store

    if role not in ROLES:
        raise typer.BadParameter(f"one of {', '.join(ROLES)}, not {role!r}", param_hint="--role")
    try:
        proxies = [str(n) for n in parse_trusted_proxies(trusted_proxies)]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--trusted-proxies") from exc
    store = Store(home)
    schedule = None
    if audit_checkpoints is not None:  # load the key first: a missing key stops the start, not the first tick
        key = audit.load_signing_key(store.home)

        def report(exc: Exception) -> None:
            console.print(f"[bold red]audit checkpoint not written:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)

        schedule = audit.CheckpointScheduler(store, audit_checkpoints, key, checkpoint_every, report)
        first = schedule.start()
        if first is not None:
            line = f"audit checkpoints every {checkpoint_every:g} s to {audit_checkpoints} (now: {first.seq} events)"
            console.print(line, highlight=False, soft_wrap=True)
    if not users.list_users(store):
        console.print(
            "[yellow]No accounts yet:[/] create an administrator with 'openlfr users create --username NAME --name \"…\"'."
        )
    app = create_app(
        store=store, pack=pack, secure_cookies=not http_cookies, trusted_proxies=proxies, role=role,
        audit_checkpoints=audit_checkpoints,
    )  # fmt: skip
    console.print(
        f"OpenLFR ({role}) on http://{host}:{port}  (console /console · public site /public · API docs /api/v1/docs"
        " · /healthz /readyz /metrics)"
    )
    from openlfr.cli.vans import start_node_services

    stop_node = start_node_services(store, role, sync_host or host, sync_port, sync_every, node_keys)
    try:
        # uvicorn's own proxy handling believes X-Forwarded-For from 127.0.0.1 by default: turned off,
        # so the application sees the real peer and applies --trusted-proxies itself.
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False)
    finally:
        stop_node()
        if schedule is not None:  # sign what was appended since the last tick
            schedule.stop(final=True)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
