"""``openlfr users``: accounts and API tokens, for the administrator at the server's console.

The first administrator can only be created here (nobody can log in to the web console yet), so
``users create`` works without a login; who ran a command is recorded with ``--by``.

Whoever runs these commands holds the data folder and is trusted to manage accounts, but not to
act as anyone: ``users token create`` issues a token only to the account whose password is
typed (or piped with ``--password-stdin``), exactly as the API's ``POST /api/v1/me/tokens`` does,
so a token always belongs to the person who proved their password and the audit trail's names
stay true. Listing and revoking anyone's tokens needs no password.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table

from openlfr.cli.common import HomeOpt, JsonOpt, console, emit_json, friendly_errors
from openlfr.errors import OpenLFRError
from openlfr.services.users import (
    ROLE_LABELS,
    ROLES,
    change_password,
    create_own_token,
    create_user,
    get_user_by_username,
    list_tokens,
    list_users,
    revoke_token,
    set_active,
    set_role,
    validate_username,
)
from openlfr.services.users import unlock as unlock_user
from openlfr.storage import Store

users_app = typer.Typer(help="User accounts and API tokens.", no_args_is_help=True)
token_app = typer.Typer(
    help="API bearer tokens: create your own (needs your password), list and revoke anyone's.", no_args_is_help=True
)
users_app.add_typer(token_app, name="token")


def _default_by() -> str:
    """The operating-system account running the command, so console actions are attributable too."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


UsernameArg = Annotated[str, typer.Argument(help="The account's username.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who is doing this (recorded; default: cli:<os user>).")]
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")
]


def _read_password(from_stdin: bool, new: bool = True) -> str:
    """From stdin (for scripts) or prompted with hidden input (twice for a new password); never from
    an option (shell history)."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise OpenLFRError("--password-stdin: standard input held no password")
        return password
    return typer.prompt("Password", hide_input=True, confirmation_prompt=new)


def _user_id(store: Store, username: str) -> int:
    return int(get_user_by_username(store, username)["id"])


def _when(value: str | None) -> str:
    return "" if value is None else value[:16].replace("T", " ")


@users_app.command("create")
@friendly_errors
def create(
    username: Annotated[str, typer.Option("--username", help="3–50 characters: a-z, 0-9, '.', '_', '-'.")],
    name: Annotated[str, typer.Option("--name", help="The person's name as shown in the console and records.")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")] = "administrator",
    password_stdin: PasswordStdinOpt = False,
    by: Annotated[str, typer.Option("--by", help="Who is creating the account (recorded).")] = "cli-bootstrap",
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an account (the password is at least 12 characters and stored only as an argon2 hash)."""
    # Checked before asking for a password that would be thrown away.
    validate_username(username)
    if role not in ROLES:
        raise OpenLFRError(f"role {role!r} does not exist; choose one of: {', '.join(ROLES)}")
    password = _read_password(password_stdin)
    user = create_user(Store(home), username, name, role, password, by)
    if as_json:
        emit_json({"id": user.id, "username": user.username, "display_name": user.display_name, "role": user.role})
        return
    console.print(f"Created user [bold]{user.username}[/] ({user.display_name}), {ROLE_LABELS[user.role]}, id {user.id}.")


@users_app.command("list")
@friendly_errors
def list_(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """List accounts (never their passwords)."""
    rows = list_users(Store(home))
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Users")
    for col in ("id", "username", "name", "role", "active", "locked until", "last login", "created by"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["username"],
            r["display_name"],
            r["role_label"],
            "yes" if r["active"] else "no",
            _when(r["locked_until"]),
            _when(r["last_login_at"]),
            r["created_by"],
        )
    console.print(table)


@users_app.command("disable")
@friendly_errors
def disable(username: UsernameArg, by: ByOpt = None, home: HomeOpt = None) -> None:
    """Disable an account: it can no longer log in, and its sessions and tokens are revoked at once."""
    store = Store(home)
    set_active(store, _user_id(store, username), False, by or _default_by())
    console.print(f"Disabled {username}; its sessions and API tokens are revoked.")


@users_app.command("enable")
@friendly_errors
def enable(username: UsernameArg, by: ByOpt = None, home: HomeOpt = None) -> None:
    """Enable a disabled account (revoked tokens stay revoked)."""
    store = Store(home)
    set_active(store, _user_id(store, username), True, by or _default_by())
    console.print(f"Enabled {username}.")


@users_app.command("unlock")
@friendly_errors
def unlock(username: UsernameArg, by: ByOpt = None, home: HomeOpt = None) -> None:
    """Lift a lockout after repeated failed logins."""
    store = Store(home)
    unlock_user(store, _user_id(store, username), by or _default_by())
    console.print(f"Unlocked {username}.")


@users_app.command("role")
@friendly_errors
def role(
    username: UsernameArg,
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help=f"One of: {', '.join(ROLES)}.")],
    by: ByOpt = None,
    home: HomeOpt = None,
) -> None:
    """Change an account's role."""
    store = Store(home)
    set_role(store, _user_id(store, username), new_role, by or _default_by())
    console.print(f"{username} is now {new_role}.")


@users_app.command("password")
@friendly_errors
def password(username: UsernameArg, password_stdin: PasswordStdinOpt = False, by: ByOpt = None, home: HomeOpt = None) -> None:
    """Set a new password; the account's browser sessions end."""
    store = Store(home)
    user_id = _user_id(store, username)
    change_password(store, user_id, _read_password(password_stdin), by or _default_by())
    console.print(f"Password changed for {username}; their sessions are ended.")


@token_app.command("create")
@friendly_errors
def token_create(
    username: UsernameArg,
    name: Annotated[str, typer.Option("--name", help="What the token is for (e.g. 'control-room display').")],
    days: Annotated[float, typer.Option("--days", help="Days until it expires (at most 365).")] = 90,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the account's own password from the first line of standard input.")
    ] = False,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue an API token to USERNAME, who must give their own password (no token is minted for
    someone else, not even by an administrator). The check is a login: audited, and failures count
    towards the lockout. The secret is printed once and cannot be shown again."""
    store = Store(home)
    _user_id(store, username)  # an unknown account is named before a password is asked for
    password = _read_password(password_stdin, new=False)
    secret = create_own_token(store, username, password, name, days, source=_default_by())
    if as_json:
        emit_json({"username": username, "name": name, "days": days, "token": secret})
        return
    console.print(f"API token '{name}' for {username}, valid for {days:g} days:")
    sys.stdout.write(secret + "\n")  # plain, unwrapped, so it can be copied or piped
    console.print("[bold yellow]This token is shown only once:[/] store it now; only its hash is kept.")


@token_app.command("list")
@friendly_errors
def token_list(
    username: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens and whether each is active, expired or revoked (never the secrets)."""
    store = Store(home)
    rows = list_tokens(store, _user_id(store, username) if username else None)
    if as_json:
        emit_json(rows)
        return
    table = Table(title="API tokens")
    for col in ("id", "user", "name", "status", "created", "expires", "last used"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["username"],
            r["name"],
            r["status"],
            _when(r["created_at"]),
            _when(r["expires_at"]),
            _when(r["last_used_at"]),
        )
    console.print(table)


@token_app.command("revoke")
@friendly_errors
def token_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (see 'token list').")],
    by: ByOpt = None,
    home: HomeOpt = None,
) -> None:
    """Revoke an API token at once."""
    if revoke_token(Store(home), token_id, by or _default_by()):
        console.print(f"Revoked token {token_id}.")
    else:
        console.print(f"Token {token_id} was already revoked.")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
