"""``openlfr serve``: the REST API, the console and the public site, on the embedded defaults."""

from __future__ import annotations

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
    home: HomeOpt = None,
    pack: PackOpt = None,
) -> None:
    """Serve the API (/api/v1, OpenAPI at /api/v1/docs), the console (/console) and the public site (/public).

    Create the first administrator with 'openlfr users create' before signing in.
    """
    import uvicorn

    from openlfr.api.app import create_app
    from openlfr.services import users
    from openlfr.storage import Store

    store = Store(home)
    if not users.list_users(store):
        console.print(
            "[yellow]No accounts yet:[/] create an administrator with 'openlfr users create --username NAME --name \"…\"'."
        )
    app = create_app(store=store, pack=pack, secure_cookies=not http_cookies)
    console.print(f"OpenLFR on http://{host}:{port}  (console /console · public site /public · API docs /api/v1/docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
