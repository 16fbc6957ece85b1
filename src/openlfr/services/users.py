"""User accounts, logins, browser sessions and API tokens.

Who may do what is decided by a person's *role*, so every account is one named person and every
action can be attributed to them in the audit trail. Passwords are kept only as argon2 hashes; a
session or token secret is kept only as its SHA-256, so a copy of the database lets nobody log in.
A login refusal reads the same for an unknown username and a wrong password (and costs the same
time), so the login form cannot be used to find out who has an account. Five failures in a row lock
an account for fifteen minutes, which turns password guessing into a slow, audited affair; each
attempt is counted atomically before its password is checked, so parallel guesses cannot overtake
the count (:func:`_reserve_attempt`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import and_, case, literal, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openlfr import metrics
from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.services import audit
from openlfr.storage import Store
from openlfr.storage.models import Credential, User

ROLES = ("administrator", "authorising_officer", "operator", "reviewing_officer", "examiner", "auditor")
ROLE_LABELS = {
    "administrator": "Administrator",
    "authorising_officer": "Authorising officer",
    "operator": "Operator",
    "reviewing_officer": "Reviewing officer",
    "examiner": "Examiner",
    "auditor": "Auditor",
}
#: Consecutive failed logins after which an account is locked.
MAX_FAILED_LOGINS = 5
#: How long a locked account stays locked (the right password is refused meanwhile).
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
#: Upper bound so that hashing cannot be used to tie up the server with megabyte "passwords".
MAX_PASSWORD_LENGTH = 1024
#: Longest an API token may live: a forgotten token should not grant access for years.
MAX_TOKEN_DAYS = 365
#: ``last_used_at`` is written at most this often, so every API call is not also a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
SESSION, TOKEN = "session", "token"
USERNAME_PATTERN = re.compile(r"[a-z0-9._-]{3,50}")
#: The one refusal for an unknown username, a wrong password, a locked account or a disabled account
#: (wrong password): identical for all, so it cannot tell anyone which usernames exist or are locked.
BAD_CREDENTIALS = (
    "the username or password is not correct, or the account is locked for a while after repeated failed sign-ins"
)

_hasher = PasswordHasher()
_dummy_hash: str | None = None


class AuthError(OpenLFRError):
    """A login was refused. The message never says whether the username exists."""


class PermissionDenied(OpenLFRError):
    """The user's role does not allow this action."""


@dataclass(frozen=True)
class CurrentUser:
    """Who is making a request: what the API and web console carry, and what the audit trail names."""

    id: int
    username: str
    display_name: str
    role: str

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


# --- helpers -------------------------------------------------------------------------------------


def _now(now: datetime | None = None) -> datetime:
    """An aware UTC time; naive values are taken to be UTC (SQLite returns them naive)."""
    value = now or datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else _now(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _now(value).isoformat()


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _current(user: User) -> CurrentUser:
    return CurrentUser(user.id, user.username, user.display_name, user.role)


def _clip(text: str, limit: int = 100) -> str:
    """Audit columns are bounded; a username typed into a login form is not."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def normalise_username(username: str) -> str:
    return username.strip().lower()


def validate_username(username: str) -> str:
    """The stored form of a username (lower-cased), or a StoreError saying what is allowed."""
    name = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(name):
        raise StoreError(
            f"username {username!r} is not valid: use 3–50 characters, lower-case letters, digits, '.', '_' or '-'"
        )
    return name


def _valid_role(role: str) -> str:
    if role not in ROLES:
        raise StoreError(f"role {role!r} does not exist; choose one of: {', '.join(ROLES)}")
    return role


def _valid_password(password: str, username: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StoreError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise StoreError(f"the password must be at most {MAX_PASSWORD_LENGTH} characters long")
    if password.strip().lower() == username.lower():
        raise StoreError("the password must not be the username")
    return password


def _valid_by(by: str, what: str = "--by") -> str:
    """Who did it is part of the record: it may not be blank."""
    if not by or not by.strip():
        raise StoreError(f"{what} must name who is doing this")
    if len(by) > 100:
        raise StoreError(f"{what} must be at most 100 characters")
    return by.strip()


def _dummy() -> str:
    """A hash with the same parameters as real ones, verified when the username is unknown (equal timing)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hash


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(f"user {user_id} does not exist")
    return user


def _revoke_credentials(session: Session, user_id: int, kinds: tuple[str, ...], at: datetime) -> int:
    rows = session.scalars(
        select(Credential).where(Credential.user_id == user_id, Credential.kind.in_(kinds), Credential.revoked_at.is_(None))
    ).all()
    for row in rows:
        row.revoked_at = at
    return len(rows)


def _active_admins(session: Session) -> int:
    return len(session.scalars(select(User.id).where(User.role == "administrator", User.active.is_(True))).all())


def _user_dict(u: User) -> dict:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role,
        "role_label": ROLE_LABELS.get(u.role, u.role),
        "active": u.active,
        "failed_logins": u.failed_logins,
        "locked_until": _iso(u.locked_until),
        "created_by": u.created_by,
        "created_at": _iso(u.created_at),
        "last_login_at": _iso(u.last_login_at),
    }


# --- accounts ------------------------------------------------------------------------------------


def create_user(store: Store, username: str, display_name: str, role: str, password: str, created_by: str) -> CurrentUser:
    """Create an account for one named person; the password is stored only as an argon2 hash."""
    name = validate_username(username)
    _valid_role(role)
    display = display_name.strip()
    if not display or len(display) > 200:
        raise StoreError("the display name must be 1–200 characters")
    _valid_password(password, name)
    by = _valid_by(created_by, "created_by")
    password_hash = _hasher.hash(password)
    try:
        with store.session() as s:
            if s.scalar(select(User.id).where(User.username == name)) is not None:
                raise StoreError(f"username {name!r} is already taken")
            user = User(username=name, display_name=display, role=role, password_hash=password_hash, active=True,
                        failed_logins=0, created_by=by)
            s.add(user)
            s.flush()
            current = _current(user)
    except IntegrityError as exc:  # another process created the same username in between
        raise StoreError(f"username {name!r} is already taken") from exc
    audit.record(store, "user.create", "user", current.id, {"username": name, "role": role}, actor=by)
    return current


def list_users(store: Store) -> list[dict]:
    """Every account, without password hashes."""
    with store.session() as s:
        return [_user_dict(u) for u in s.scalars(select(User).order_by(User.username))]


def get_user(store: Store, user_id: int) -> dict:
    with store.session() as s:
        return _user_dict(_user(s, user_id))


def get_user_by_username(store: Store, username: str) -> dict:
    """For interfaces that name people by username (the CLI)."""
    name = normalise_username(username)
    with store.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        if user is None:
            raise NotFoundError(f"user {name!r} does not exist")
        return _user_dict(user)


def set_active(store: Store, user_id: int, active: bool, by: str) -> None:
    """Enable or disable an account. Disabling ends its sessions and revokes its tokens at once."""
    by = _valid_by(by)
    now = _now()
    with store.session() as s:
        user = _user(s, user_id)
        if not active and user.active and user.role == "administrator" and _active_admins(s) <= 1:
            raise StoreError(f"{user.username} is the last active administrator; create or enable another first")
        changed = user.active != active
        user.active = active
        revoked = 0 if active else _revoke_credentials(s, user_id, (SESSION, TOKEN), now)
        username = user.username
    if changed:
        audit.record(store, "user.enable" if active else "user.disable", "user", user_id,
                     {"username": username, "credentials_revoked": revoked}, actor=by)


def set_role(store: Store, user_id: int, role: str, by: str) -> None:
    """Change what a person may do; takes effect on their next request."""
    _valid_role(role)
    by = _valid_by(by)
    with store.session() as s:
        user = _user(s, user_id)
        old = user.role
        if old == role:
            return
        if old == "administrator" and user.active and _active_admins(s) <= 1:
            raise StoreError(f"{user.username} is the last active administrator; make someone else one first")
        user.role = role
        username = user.username
    audit.record(store, "user.role", "user", user_id, {"username": username, "from": old, "to": role}, actor=by)


def change_password(store: Store, user_id: int, new_password: str, by: str) -> None:
    """Set a new password and end every browser session (tokens are separate credentials and stay)."""
    by = _valid_by(by)
    with store.session() as s:
        username = _user(s, user_id).username
    _valid_password(new_password, username)
    password_hash = _hasher.hash(new_password)
    with store.session() as s:
        user = _user(s, user_id)
        user.password_hash = password_hash
        revoked = _revoke_credentials(s, user_id, (SESSION,), _now())
    audit.record(store, "user.password", "user", user_id, {"username": username, "sessions_revoked": revoked}, actor=by)


def unlock(store: Store, user_id: int, by: str) -> None:
    """Lift a lockout early (after checking with the person that the failures were theirs)."""
    by = _valid_by(by)
    with store.session() as s:
        user = _user(s, user_id)
        user.failed_logins = 0
        user.locked_until = None
        username = user.username
    audit.record(store, "user.unlock", "user", user_id, {"username": username}, actor=by)


def require_role(user: CurrentUser, *roles: str) -> None:
    """Refuse unless the user holds one of ``roles``. No role is implied by another (an administrator
    manages accounts but does not thereby authorise deployments)."""
    if not roles:
        raise ValueError("require_role needs at least one role")
    if user.role not in roles:
        needed = " or ".join(ROLE_LABELS.get(r, r) for r in roles)
        raise PermissionDenied(f"this needs the role {needed}; {user.username} is {user.role_label}")


# --- logging in ----------------------------------------------------------------------------------


def _refuse(store: Store, tried: str, reason: str, source: str | None, message: str, user_id: int | None = None,
            extra: dict | None = None) -> AuthError:
    audit.record(store, "user.login_failed", "user", user_id, {"reason": reason, **(extra or {})},
                 actor=_clip(tried or "(blank)"), source=source)
    metrics.login_failed(store, reason)
    return AuthError(message)


def _reserve_attempt(store: Store, user_id: int, at: datetime) -> tuple[bool, int, datetime | None]:
    """Count an attempt *before* its password is checked: ``(allowed, failures, locked_until)``.

    One conditional UPDATE both tests and takes the account's remaining allowance, so however many
    requests race, at most :data:`MAX_FAILED_LOGINS` passwords are checked per lockout period (the
    database serialises the writes; reading the state first and hashing afterwards let every
    parallel guess through). The attempt that uses up the allowance sets the lockout at once, so a
    crash in the middle of hashing cannot leave the account without one. A right password resets
    the count (:func:`authenticate`); an expired lockout starts a fresh count.
    """
    expired = and_(User.locked_until.is_not(None), User.locked_until <= at)
    count = case((expired, 1), else_=User.failed_logins + 1)
    lock = case((count >= MAX_FAILED_LOGINS, literal(at + LOCKOUT, User.locked_until.type)), else_=null())
    with store.session() as s:
        result = s.execute(
            update(User)
            .where(User.id == user_id,
                   or_(and_(User.locked_until.is_(None), User.failed_logins < MAX_FAILED_LOGINS), expired))
            .values(failed_logins=count, locked_until=lock)
            .execution_options(synchronize_session=False)
        )
        failures, locked_until = s.execute(select(User.failed_logins, User.locked_until).where(User.id == user_id)).one()
    return result.rowcount == 1, failures, _utc(locked_until)


def authenticate(store: Store, username: str, password: str, source: str | None = None,
                 now: datetime | None = None) -> CurrentUser:
    """Check a username and password; returns the user or raises :class:`AuthError`. Every attempt is audited.

    Unknown usernames, wrong passwords and locked accounts all get :data:`BAD_CREDENTIALS` after one
    argon2 verification (against a dummy hash where there is nothing to check), so neither the
    answer nor its timing says who has an account or whose account is locked. Only the right
    password of a disabled account is told so.
    """
    at = _now(now)
    tried = normalise_username(username or "")
    password = password or ""
    with store.session() as s:
        row = s.execute(select(User.id, User.password_hash, User.active).where(User.username == tried)).first() if tried else None
    if row is None:
        _verify(_dummy(), password)  # same cost as a real check: timing does not reveal who exists
        raise _refuse(store, tried, "bad-credentials", source, BAD_CREDENTIALS)
    user_id, password_hash, active = row

    allowed, failures, locked_until = _reserve_attempt(store, user_id, at)
    if not allowed:
        _verify(_dummy(), password)  # the right password is not even checked while locked
        raise _refuse(store, tried, "locked", source, BAD_CREDENTIALS, user_id, {"locked_until": _iso(locked_until)})
    correct = _verify(password_hash, password)
    if not correct:
        extra: dict = {"failures": failures} | ({"locked_until": _iso(locked_until)} if locked_until else {})
        if locked_until:  # this attempt used up the allowance and set the lockout
            metrics.account_locked(store)
        raise _refuse(store, tried, "inactive" if not active else "bad-credentials", source, BAD_CREDENTIALS,
                      user_id, extra)

    with store.session() as s:
        user = _user(s, user_id)
        user.failed_logins = 0  # the password is proven: the reserved attempt and earlier failures are cleared
        user.locked_until = None
        if not user.active:
            active = False
        else:
            user.last_login_at = at
            if _hasher.check_needs_rehash(user.password_hash):  # parameters were raised since it was hashed
                user.password_hash = _hasher.hash(password)
        current = _current(user)
    if not active:
        # Only someone who knows the password learns that the account exists but is disabled.
        raise _refuse(store, tried, "inactive", source, "this account is disabled; ask an administrator", user_id)
    audit.record(store, "user.login", "user", user_id, {}, actor=current.username, role=current.role, source=source)
    return current


# --- sessions and tokens -------------------------------------------------------------------------


def _new_secret() -> tuple[str, str]:
    secret = secrets.token_urlsafe(32)
    return secret, _sha256(secret)


def _active_user(session: Session, user_id: int) -> User:
    user = _user(session, user_id)
    if not user.active:
        raise AuthError(f"the account {user.username!r} is disabled")
    return user


def create_session(store: Store, user: CurrentUser, source: str | None = None, hours: float = 12) -> tuple[str, str]:
    """Start a browser session after a login; returns ``(session_secret, csrf_token)``.

    Only the secret's SHA-256 is stored; the CSRF token is not a credential on its own (it is
    useless without the session cookie) and is stored as is, so it can be handed back to the page.
    """
    if not hours > 0:
        raise StoreError("a session must last a positive number of hours")
    secret, digest = _new_secret()
    csrf = secrets.token_urlsafe(32)
    now = _now()
    with store.session() as s:
        _active_user(s, user.id)
        s.add(Credential(user_id=user.id, kind=SESSION, name="", secret_sha256=digest, csrf_token=csrf, created_at=now,
                         expires_at=now + timedelta(hours=hours), source=_clip(source, 200) if source else None))
    return secret, csrf


def _credential_user(store: Store, kind: str, secret: str | None, now: datetime | None) -> tuple[CurrentUser, str | None] | None:
    if not secret:
        return None
    at = _now(now)
    with store.session() as s:
        row = s.scalar(select(Credential).where(Credential.secret_sha256 == _sha256(secret), Credential.kind == kind))
        if row is None or row.revoked_at is not None or _now(row.expires_at) <= at:
            return None
        user = row.user
        if not user.active:
            return None
        last = _utc(row.last_used_at)
        if last is None or at - last >= LAST_USED_RESOLUTION:
            row.last_used_at = at
        return _current(user), row.csrf_token


def session_user(store: Store, secret: str, now: datetime | None = None) -> tuple[CurrentUser, str] | None:
    """The user behind a session cookie and the session's CSRF token; None when unknown, expired,
    revoked or the account is disabled."""
    found = _credential_user(store, SESSION, secret, now)
    if found is None:
        return None
    user, csrf = found
    return user, csrf or ""


def end_session(store: Store, secret: str) -> bool:
    """Log out: the session is revoked, not just forgotten by the browser. False if there was none."""
    if not secret:
        return False
    with store.session() as s:
        row = s.scalar(select(Credential).where(Credential.secret_sha256 == _sha256(secret), Credential.kind == SESSION))
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = _now()
        user_id, username, role, source = row.user_id, row.user.username, row.user.role, row.source
    audit.record(store, "user.logout", "user", user_id, {}, actor=username, role=role, source=source)
    return True


def create_token(store: Store, user_id: int, name: str, days: float = 90, created_by: str | None = None) -> str:
    """Issue an API bearer token for a user; returns the secret, which cannot be shown again.

    ``created_by`` defaults to the actor set with :func:`audit.acting_as`.
    """
    label = name.strip()
    if not label or len(label) > 200:
        raise StoreError("a token needs a name of 1–200 characters (what it is for)")
    if not 0 < days <= MAX_TOKEN_DAYS:
        raise StoreError(f"a token must last more than 0 and at most {MAX_TOKEN_DAYS} days")
    by = _valid_by(created_by, "created_by") if created_by is not None else None
    secret, digest = _new_secret()
    now = _now()
    expires = now + timedelta(days=days)
    with store.session() as s:
        user = _active_user(s, user_id)
        row = Credential(user_id=user_id, kind=TOKEN, name=label, secret_sha256=digest, created_at=now, expires_at=expires)
        s.add(row)
        s.flush()
        token_id, username = row.id, user.username
    audit.record(store, "token.create", "token", token_id,
                 {"username": username, "name": label, "expires_at": expires.isoformat()}, actor=by)
    return secret


def create_own_token(store: Store, username: str, password: str, name: str, days: float = 90,
                     source: str | None = None) -> str:
    """Issue an API token to the account whose password is given, and to no other.

    Used by ``POST /api/v1/me/tokens`` and ``openlfr users token create`` (the API's sign-in checks
    the password the same way): a credential is minted only against the account's own password,
    so nobody, an administrator included, can hold a token that acts as another officer and have
    the audit trail name that officer. The check is a full login (:func:`authenticate`): it is
    audited and failures count towards the lockout.
    """
    user = authenticate(store, username, password, source=source)
    return create_token(store, user.id, name, days=days, created_by=user.username)


def token_user(store: Store, secret: str, now: datetime | None = None) -> CurrentUser | None:
    """The user behind an API bearer token; None when unknown, expired, revoked or the account is disabled."""
    found = _credential_user(store, TOKEN, secret, now)
    return None if found is None else found[0]


def revoke_token(store: Store, token_id: int, by: str) -> bool:
    """Revoke an API token at once. False (and nothing audited) if it was already revoked."""
    by = _valid_by(by)
    with store.session() as s:
        row = s.get(Credential, token_id)
        if row is None or row.kind != TOKEN:
            raise NotFoundError(f"token {token_id} does not exist")
        if row.revoked_at is not None:
            return False
        row.revoked_at = _now()
        username, label = row.user.username, row.name
    audit.record(store, "token.revoke", "token", token_id, {"username": username, "name": label}, actor=by)
    return True


def revoke_presented_token(store: Store, secret: str, by: str) -> bool:
    """Sign out a program: revoke the token it authenticated with (found by the secret's hash)."""
    with store.session() as s:
        row = s.scalar(select(Credential).where(Credential.kind == TOKEN, Credential.secret_sha256 == _sha256(secret)))
        token_id = None if row is None else row.id
    return False if token_id is None else revoke_token(store, token_id, by)


def list_tokens(store: Store, user_id: int | None = None) -> list[dict]:
    """API tokens, newest first, with their state; never their secrets or hashes."""
    now = _now()
    query = select(Credential).where(Credential.kind == TOKEN).order_by(Credential.id.desc())
    if user_id is not None:
        query = query.where(Credential.user_id == user_id)
    with store.session() as s:
        out = []
        for row in s.scalars(query):
            if row.revoked_at is not None:
                state = "revoked"
            elif _now(row.expires_at) <= now:
                state = "expired"
            else:
                state = "active"
            out.append({
                "id": row.id,
                "user_id": row.user_id,
                "username": row.user.username,
                "name": row.name,
                "status": state,
                "created_at": _iso(row.created_at),
                "expires_at": _iso(row.expires_at),
                "revoked_at": _iso(row.revoked_at),
                "last_used_at": _iso(row.last_used_at),
            })
        return out
