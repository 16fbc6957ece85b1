"""Accounts, logins, lockout, sessions and API tokens — on a real SQLite store, through the service and the CLI."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import pg
from openlfr.api.app import create_app
from openlfr.api.signin import LoginThrottle
from openlfr.cli.main import app
from openlfr.errors import NotFoundError, StoreError
from openlfr.services import audit
from openlfr.services import users as u
from openlfr.storage import Store

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)

PASSWORD = "correct horse battery"
runner = CliRunner()


def db_bytes(store: Store) -> bytes:
    """Everything the database holds (SQLite: its files on disk, the write-ahead log included)."""
    return pg.stored_bytes(store)


def events(store: Store, action: str) -> list[dict]:
    """Events with exactly this action (``audit.search`` matches a prefix)."""
    return [e for e in audit.search(store, action=action) if e["action"] == action]


@pytest.fixture
def alice(store: Store) -> u.CurrentUser:
    return u.create_user(store, "Alice.Smith", "Alice Smith", "operator", PASSWORD, created_by="admin")


def test_create_user_and_what_is_stored(store: Store, alice: u.CurrentUser) -> None:
    assert alice == u.CurrentUser(alice.id, "alice.smith", "Alice Smith", "operator")
    assert alice.role_label == "Operator" and set(u.ROLE_LABELS) == set(u.ROLES)
    row = u.get_user(store, alice.id)
    assert row["username"] == "alice.smith" and row["active"] and row["created_by"] == "admin"
    assert not any("hash" in key or "password" in key for key in row)
    assert [r["username"] for r in u.list_users(store)] == ["alice.smith"]

    from openlfr.storage.models import User

    with store.session() as s:
        stored = s.get(User, alice.id).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PASSWORD.encode() not in db_bytes(store)

    created = events(store, "user.create")
    assert created[0]["actor"] == "admin" and created[0]["details"] == {"username": "alice.smith", "role": "operator"}
    with pytest.raises(NotFoundError):
        u.get_user(store, 999)


@pytest.mark.parametrize(
    ("username", "role", "password", "message"),
    [
        ("ab", "operator", PASSWORD, "3–50 characters"),
        ("bob smith", "operator", PASSWORD, "is not valid"),
        ("b" * 51, "operator", PASSWORD, "is not valid"),
        ("bob", "superuser", PASSWORD, "choose one of: administrator, authorising_officer, operator"),
        ("bob", "operator", "short-pass1", "at least 12 characters"),
        ("bob.the.builder", "operator", "Bob.The.Builder", "must not be the username"),
    ],
)
def test_create_user_refuses_bad_input(store: Store, username: str, role: str, password: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        u.create_user(store, username, "Bob", role, password, created_by="admin")
    assert u.list_users(store) == []


def test_duplicate_username_is_refused_clearly(store: Store, alice: u.CurrentUser) -> None:
    with pytest.raises(StoreError, match=r"'alice\.smith' is already taken"):
        u.create_user(store, "ALICE.smith", "Another Alice", "auditor", PASSWORD + "!", created_by="admin")


def test_login_refusals_do_not_reveal_who_exists(store: Store, alice: u.CurrentUser) -> None:
    ok = u.authenticate(store, "Alice.Smith", PASSWORD, source="10.0.0.7")
    assert ok == alice
    assert u.get_user(store, alice.id)["last_login_at"] is not None

    with pytest.raises(u.AuthError) as wrong:
        u.authenticate(store, "alice.smith", "not the password", source="10.0.0.7")
    with pytest.raises(u.AuthError) as unknown:
        u.authenticate(store, "mallory", PASSWORD, source="10.0.0.8")
    assert str(wrong.value) == str(unknown.value) == u.BAD_CREDENTIALS

    logins = events(store, "user.login")
    assert len(logins) == 1 and logins[0]["actor"] == "alice.smith" and logins[0]["source"] == "10.0.0.7"
    assert logins[0]["role"] == "operator"
    failed = events(store, "user.login_failed")
    assert [(e["actor"], e["details"]["reason"], e["source"]) for e in failed] == [
        ("mallory", "bad-credentials", "10.0.0.8"),
        ("alice.smith", "bad-credentials", "10.0.0.7"),
    ]
    assert len(audit.search(store, action="user.login")) == 3  # prefix: successes and failures alike
    assert audit.verify(store).ok


def test_lockout_after_five_failures_refuses_even_the_right_password(store: Store, alice: u.CurrentUser) -> None:
    t0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    for i in range(u.MAX_FAILED_LOGINS - 1):  # four failures, then a success: the count starts again
        with pytest.raises(u.AuthError):
            u.authenticate(store, "alice.smith", f"wrong password {i}", now=t0)
    u.authenticate(store, "alice.smith", PASSWORD, now=t0)
    assert u.get_user(store, alice.id)["failed_logins"] == 0

    for i in range(u.MAX_FAILED_LOGINS):
        with pytest.raises(u.AuthError, match=u.BAD_CREDENTIALS):
            u.authenticate(store, "alice.smith", f"wrong password {i}", now=t0)
    assert u.get_user(store, alice.id)["locked_until"] == (t0 + u.LOCKOUT).isoformat()

    with pytest.raises(u.AuthError) as locked:
        u.authenticate(store, "alice.smith", PASSWORD, now=t0 + timedelta(minutes=14))
    assert str(locked.value) == u.BAD_CREDENTIALS  # the same answer as for an unknown username
    assert events(store, "user.login_failed")[0]["details"] == {"reason": "locked",
                                                                "locked_until": (t0 + u.LOCKOUT).isoformat()}

    assert u.authenticate(store, "alice.smith", PASSWORD, now=t0 + u.LOCKOUT + timedelta(seconds=1)) == alice
    assert u.get_user(store, alice.id)["locked_until"] is None
    assert audit.verify(store).ok


def test_expired_lockout_gives_a_fresh_count_and_unlock_lifts_it(store: Store, alice: u.CurrentUser) -> None:
    t0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    for _ in range(u.MAX_FAILED_LOGINS):
        with pytest.raises(u.AuthError):
            u.authenticate(store, "alice.smith", "wrong password!", now=t0)
    later = t0 + u.LOCKOUT + timedelta(minutes=1)
    with pytest.raises(u.AuthError, match=u.BAD_CREDENTIALS):
        u.authenticate(store, "alice.smith", "wrong password!", now=later)
    assert u.get_user(store, alice.id)["failed_logins"] == 1  # not locked again by one more mistake
    assert u.get_user(store, alice.id)["locked_until"] is None

    for _ in range(u.MAX_FAILED_LOGINS - 1):
        with pytest.raises(u.AuthError):
            u.authenticate(store, "alice.smith", "wrong password!", now=later)
    with pytest.raises(u.AuthError, match="locked"):
        u.authenticate(store, "alice.smith", PASSWORD, now=later)
    u.unlock(store, alice.id, by="admin")
    assert u.authenticate(store, "alice.smith", PASSWORD, now=later) == alice
    assert events(store, "user.unlock")[0]["actor"] == "admin"


def test_disabled_account_is_refused_and_loses_its_credentials(store: Store, alice: u.CurrentUser) -> None:
    u.create_user(store, "admin", "Admin", "administrator", PASSWORD, created_by="cli-bootstrap")
    secret, _csrf = u.create_session(store, alice)
    token = u.create_token(store, alice.id, "display", created_by="admin")
    u.set_active(store, alice.id, False, by="admin")

    assert u.session_user(store, secret) is None
    assert u.token_user(store, token) is None
    assert [t["status"] for t in u.list_tokens(store, alice.id)] == ["revoked"]
    with pytest.raises(u.AuthError, match="disabled"):
        u.authenticate(store, "alice.smith", PASSWORD)
    with pytest.raises(u.AuthError) as wrong:
        u.authenticate(store, "alice.smith", "wrong password!")
    assert str(wrong.value) == u.BAD_CREDENTIALS  # a guesser learns nothing about a disabled account
    assert {e["details"]["reason"] for e in events(store, "user.login_failed")} == {"inactive"}
    assert events(store, "user.disable")[0]["details"]["credentials_revoked"] == 2
    with pytest.raises(u.AuthError):
        u.create_token(store, alice.id, "another", created_by="admin")

    u.set_active(store, alice.id, True, by="admin")
    assert u.authenticate(store, "alice.smith", PASSWORD) == alice
    assert u.token_user(store, token) is None  # revoked tokens stay revoked


def test_sessions_valid_expired_and_ended(store: Store, alice: u.CurrentUser) -> None:
    secret, csrf = u.create_session(store, alice, source="10.0.0.7", hours=12)
    assert secret != csrf and len(secret) >= 40
    assert u.session_user(store, secret) == (alice, csrf)
    assert u.session_user(store, secret, now=datetime.now(UTC) + timedelta(hours=11)) == (alice, csrf)
    assert u.session_user(store, secret, now=datetime.now(UTC) + timedelta(hours=12, seconds=5)) is None
    assert u.session_user(store, secret + "x") is None and u.session_user(store, "") is None
    assert u.token_user(store, secret) is None  # a session secret is not an API token

    assert u.end_session(store, secret) is True
    assert u.session_user(store, secret) is None
    assert u.end_session(store, secret) is False
    logout = events(store, "user.logout")
    assert len(logout) == 1 and logout[0]["actor"] == "alice.smith" and logout[0]["source"] == "10.0.0.7"
    assert audit.verify(store).ok


def test_tokens_valid_expired_revoked_and_listed(store: Store, alice: u.CurrentUser) -> None:
    token = u.create_token(store, alice.id, "control room", days=30, created_by="admin")
    assert u.token_user(store, token) == alice
    assert u.session_user(store, token) is None
    assert u.token_user(store, token, now=datetime.now(UTC) + timedelta(days=29)) == alice
    assert u.token_user(store, token, now=datetime.now(UTC) + timedelta(days=30, minutes=1)) is None

    [listed] = u.list_tokens(store)
    assert listed["name"] == "control room" and listed["username"] == "alice.smith" and listed["status"] == "active"
    assert listed["last_used_at"] is not None
    assert token not in json.dumps(listed) and not any("secret" in k or "hash" in k for k in listed)

    created = events(store, "token.create")[0]
    assert created["actor"] == "admin" and token not in json.dumps(created)
    assert u.revoke_token(store, listed["id"], by="admin") is True
    assert u.token_user(store, token) is None
    assert u.list_tokens(store, alice.id)[0]["status"] == "revoked"
    assert u.revoke_token(store, listed["id"], by="admin") is False
    assert len(events(store, "token.revoke")) == 1
    with pytest.raises(NotFoundError):
        u.revoke_token(store, 999, by="admin")
    with pytest.raises(StoreError, match="at most 365 days"):
        u.create_token(store, alice.id, "forever", days=10_000, created_by="admin")
    assert audit.verify(store).ok


def test_only_hashes_of_secrets_are_in_the_database(store: Store, alice: u.CurrentUser) -> None:
    import hashlib

    session_secret, _csrf = u.create_session(store, alice)
    token = u.create_token(store, alice.id, "script", created_by="admin")
    on_disk = db_bytes(store)
    for secret in (session_secret, token, PASSWORD):
        assert secret.encode() not in on_disk
    for secret in (session_secret, token):
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in on_disk


def test_password_change_ends_sessions(store: Store, alice: u.CurrentUser) -> None:
    secret, _ = u.create_session(store, alice)
    token = u.create_token(store, alice.id, "script", created_by="admin")
    with pytest.raises(StoreError, match="at least 12"):
        u.change_password(store, alice.id, "too short", by="alice.smith")
    u.change_password(store, alice.id, "a much better passphrase", by="alice.smith")
    assert u.session_user(store, secret) is None
    assert u.token_user(store, token) == alice
    with pytest.raises(u.AuthError):
        u.authenticate(store, "alice.smith", PASSWORD)
    assert u.authenticate(store, "alice.smith", "a much better passphrase") == alice
    assert events(store, "user.password")[0]["details"]["sessions_revoked"] == 1


def test_roles_and_the_last_administrator(store: Store, alice: u.CurrentUser) -> None:
    u.require_role(alice, "operator", "reviewing_officer")
    with pytest.raises(u.PermissionDenied, match=r"Authorising officer or Administrator; alice\.smith is Operator"):
        u.require_role(alice, "authorising_officer", "administrator")

    admin = u.create_user(store, "admin", "Admin", "administrator", PASSWORD, created_by="cli-bootstrap")
    with pytest.raises(StoreError, match="last active administrator"):
        u.set_active(store, admin.id, False, by="admin")
    with pytest.raises(StoreError, match="last active administrator"):
        u.set_role(store, admin.id, "auditor", by="admin")
    u.set_role(store, alice.id, "authorising_officer", by="admin")
    assert u.authenticate(store, "alice.smith", PASSWORD).role == "authorising_officer"
    assert events(store, "user.role")[0]["details"] == {"username": "alice.smith", "from": "operator",
                                                        "to": "authorising_officer"}
    with pytest.raises(StoreError, match="choose one of"):
        u.set_role(store, alice.id, "sheriff", by="admin")


def cli(*args: object, stdin: str | None = None):
    return runner.invoke(app, ["users", *(str(a) for a in args)], input=stdin)


def test_cli_create_list_token_and_disable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = cli("create", "--username", "Admin", "--name", "First Admin", "--password-stdin", "--home", home,
            stdin=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    assert "Created user admin (First Admin), Administrator" in r.stdout and PASSWORD not in r.output

    r = cli("create", "--username", "ops", "--name", "Op Erator", "--role", "operator", "--password-stdin", "--by", "admin",
            "--home", home, stdin=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = cli("list", "--json", "--home", home)
    rows = json.loads(r.stdout)
    assert [(x["username"], x["role"], x["created_by"]) for x in rows] == [
        ("admin", "administrator", "cli-bootstrap"),
        ("ops", "operator", "admin"),
    ]

    r = cli("token", "create", "ops", "--name", "wall display", "--days", "7", "--password-stdin", "--home", home,
            stdin=PASSWORD + "\n")  # ops's own password: the console mints no token for someone else
    assert r.exit_code == 0, r.output
    assert "shown only once" in r.stdout
    secret = r.stdout.splitlines()[1].strip()
    store = Store(home)
    try:
        assert u.token_user(store, secret).username == "ops"
        assert u.authenticate(store, "admin", PASSWORD).role == "administrator"
        r = cli("token", "list", "--json", "--home", home)
        [token] = json.loads(r.stdout)
        assert token["status"] == "active" and secret not in r.stdout
        assert cli("token", "revoke", token["id"], "--by", "admin", "--home", home).exit_code == 0
        assert u.token_user(store, secret) is None

        assert cli("disable", "ops", "--by", "admin", "--home", home).exit_code == 0
        assert u.get_user_by_username(store, "ops")["active"] is False
        r = cli("disable", "admin", "--by", "admin", "--home", home)
        assert r.exit_code == 2 and "last active administrator" in r.stderr
        assert cli("enable", "ops", "--home", home).exit_code == 0
        assert events(store, "user.enable")[0]["actor"].startswith("cli")
        assert audit.verify(store).ok
    finally:
        store.close()


def test_cli_token_needs_the_accounts_own_password(tmp_path: Path) -> None:
    """Whoever runs the CLI manages accounts but cannot mint a token that acts as someone else."""
    home = tmp_path / "home"
    for username, role in (("admin", "administrator"), ("ops", "operator")):
        r = cli("create", "--username", username, "--name", username, "--role", role, "--password-stdin", "--home", home,
                stdin=PASSWORD + "\n")
        assert r.exit_code == 0, r.output
    other = "the admins own password"
    store = Store(home)
    try:
        u.change_password(store, u.get_user_by_username(store, "admin")["id"], other, by="test")
        # The administrator's password (or none) does not get a token for the operator.
        for stdin in (other + "\n", "not the password at all\n"):
            r = cli("token", "create", "ops", "--name", "impersonate", "--password-stdin", "--home", home, stdin=stdin)
            assert r.exit_code == 2 and "username or password is not correct" in r.stderr, r.output
        assert u.list_tokens(store) == []
        refused = events(store, "user.login_failed")  # audited like any failed login, from the console
        assert len(refused) == 2 and all(e["source"].startswith("cli") for e in refused)
        r = cli("token", "create", "--help")
        assert "own password" in r.stdout
        r = cli("token", "create", "ops", "--name", "script", "--password-stdin", "--json", "--home", home,
                stdin=PASSWORD + "\n")
        assert r.exit_code == 0, r.output
        assert u.token_user(store, json.loads(r.stdout)["token"]).username == "ops"
        (created,) = events(store, "token.create")
        assert created["actor"] == "ops" and created["details"]["username"] == "ops"
    finally:
        store.close()


def test_cli_errors_are_one_line_with_exit_status_2(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = cli("create", "--username", "bob", "--name", "Bob", "--role", "sheriff", "--password-stdin", "--home", home,
            stdin=PASSWORD + "\n")
    assert r.exit_code == 2
    assert "role 'sheriff' does not exist; choose one of: administrator" in r.stderr
    assert "Traceback" not in r.output

    r = cli("create", "--username", "bob", "--name", "Bob", "--password-stdin", "--home", home, stdin="short\n")
    assert r.exit_code == 2 and "at least 12 characters" in r.stderr

    r = cli("create", "--username", "B", "--name", "Bob", "--home", home)  # refused before any password prompt
    assert r.exit_code == 2 and "username 'B' is not valid" in r.stderr and "Password" not in r.output

    r = cli("unlock", "nobody", "--home", home)
    assert r.exit_code == 2 and "user 'nobody' does not exist" in r.stderr


def test_weaker_hash_is_upgraded_at_login(store: Store, alice: u.CurrentUser) -> None:
    from argon2 import PasswordHasher

    from openlfr.storage.models import User

    with store.session() as s:
        s.get(User, alice.id).password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    assert u.authenticate(store, "alice.smith", PASSWORD) == alice
    with store.session() as s:
        upgraded = s.get(User, alice.id).password_hash
    assert not PasswordHasher().check_needs_rehash(upgraded)
    assert u.authenticate(store, "alice.smith", PASSWORD) == alice


# --- concurrent guessing, through the real application ----------------------------------------


class CountingHasher:
    """Wraps the argon2 hasher and counts verifications against one account's hash."""

    def __init__(self, inner, target_hash: str) -> None:
        self.inner, self.target_hash, self.checked = inner, target_hash, 0
        self._lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        if password_hash == self.target_hash:
            with self._lock:
                self.checked += 1
        return self.inner.verify(password_hash, password)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _stored_hash(store: Store, user_id: int) -> str:
    from openlfr.storage.models import User

    with store.session() as s:
        return s.get(User, user_id).password_hash


def test_concurrent_wrong_passwords_evaluate_at_most_the_limit(store: Store, alice: u.CurrentUser, monkeypatch) -> None:
    """Issue 12, finding 3: 50 parallel wrong passwords, then the right one. Reading the account state
    before the slow hash let every guess be evaluated (and a right one among them win a token)."""
    counter = CountingHasher(u._hasher, _stored_hash(store, alice.id))
    monkeypatch.setattr(u, "_hasher", counter)
    app = create_app(store=store, secure_cookies=False)
    app.state.login_throttle = LoginThrottle(burst=1000)  # the per-account lockout alone, not the throttle
    with TestClient(app) as client:

        def guess(i: int) -> int:
            body = {"username": "alice.smith", "password": f"wrong password {i}"}
            return client.post("/api/v1/auth/token", json=body).status_code

        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(guess, range(50)))
        assert statuses == [401] * 50
        assert counter.checked <= u.MAX_FAILED_LOGINS
        row = u.get_user(store, alice.id)
        assert row["locked_until"] is not None and row["failed_logins"] == u.MAX_FAILED_LOGINS

        right = client.post("/api/v1/auth/token", json={"username": "alice.smith", "password": PASSWORD})
        assert right.status_code == 401 and "access_token" not in right.json()
        assert counter.checked <= u.MAX_FAILED_LOGINS  # the right password was not even checked
        assert events(store, "user.login_failed")[0]["details"]["reason"] == "locked"

        # Unknown and known (locked) usernames get identical answers, on the API and the sign-in page.
        for password in (PASSWORD, "wrong password!"):
            known = client.post("/api/v1/auth/token", json={"username": "alice.smith", "password": password})
            unknown = client.post("/api/v1/auth/token", json={"username": "nobody.here", "password": password})
            assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (
                401, {"detail": u.BAD_CREDENTIALS})
            pages = [client.post("/login", data={"username": name, "password": password}, follow_redirects=False)
                     for name in ("alice.smith", "nobody.here")]
            assert [p.status_code for p in pages] == [401, 401]
            assert pages[0].text.replace("alice.smith", "nobody.here") == pages[1].text
    assert audit.verify(store).ok


def test_one_source_is_throttled_before_any_account_is_touched(store: Store, alice: u.CurrentUser) -> None:
    """Per-source throttling comes before the per-account lockout, answers alike for every username,
    and is not used up by successful sign-ins."""
    app = create_app(store=store, secure_cookies=False)
    app.state.login_throttle = LoginThrottle(burst=3, refill_s=3600)
    with TestClient(app) as client:
        for _ in range(5):  # successes give their attempt back
            ok = client.post("/api/v1/auth/token", json={"username": "alice.smith", "password": PASSWORD})
            assert ok.status_code == 200
        for name in ("nobody.here", "nobody.else", "alice.smith"):
            assert client.post("/api/v1/auth/token", json={"username": name, "password": "wrong!"}).status_code == 401
        answers = [client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
                   for name in ("alice.smith", "nobody.here")]
        assert [a.status_code for a in answers] == [429, 429]
        assert answers[0].json() == answers[1].json() and int(answers[0].headers["retry-after"]) > 0
        page = client.post("/login", data={"username": "alice.smith", "password": PASSWORD}, follow_redirects=False)
        assert page.status_code == 429 and "too many failed sign-ins" in page.text
    assert u.get_user(store, alice.id)["failed_logins"] == 1  # the throttled attempts never reached the account
    assert u.get_user(store, alice.id)["locked_until"] is None


def test_login_throttle_refills_and_forgets_sources() -> None:
    clock = [0.0]
    throttle = LoginThrottle(burst=2, refill_s=10, clock=lambda: clock[0])
    assert throttle.take("a") is None and throttle.take("a") is None
    assert throttle.take("a") == pytest.approx(10)
    assert throttle.take("b") is None  # sources are independent
    clock[0] = 5.0
    assert throttle.take("a") == pytest.approx(5)
    clock[0] = 10.0
    assert throttle.take("a") is None
    throttle.refund("a")
    assert throttle.take("a") is None
