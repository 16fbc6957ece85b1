"""PostgreSQL for the tests: a fresh database per test (or per module), created and dropped here.

The storage, service and API tests run on SQLite and on PostgreSQL (modules marked
``pytest.mark.both_databases``). The PostgreSQL variants need a server to create databases on,
named by ``OPENLFR_TEST_POSTGRES_URL`` (a SQLAlchemy URL whose user may ``CREATE DATABASE``, e.g.
``postgresql+psycopg://postgres@/postgres?host=/tmp/pg&port=55432``); without it they skip, unless
``OPENLFR_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where they fail: CI must not pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

PG_ENV = "OPENLFR_TEST_POSTGRES_URL"
REQUIRE_ENV = "OPENLFR_REQUIRE_POSTGRES"
BACKENDS = ("sqlite", "postgresql")


def server_url() -> str | None:
    """The PostgreSQL server the tests may create databases on; skips (or fails when required) without one."""
    url = os.environ.get(PG_ENV, "").strip()
    if url:
        return url
    reason = (
        f"PostgreSQL variant: set {PG_ENV}=postgresql+psycopg://USER@/postgres?host=SOCKETDIR&port=PORT "
        "(a user allowed to CREATE DATABASE; README: 'Tests on PostgreSQL')"
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {PG_ENV} is not set: {reason}", pytrace=False)
    pytest.skip(reason)
    return None


def _admin(url: str):
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _admin_execute(url: str, statement: str) -> None:
    """Run one statement that cannot run in a transaction (CREATE/DROP DATABASE) on the server."""
    admin = _admin(url)
    try:
        with admin.connect() as c:
            c.execute(text(statement))
    finally:
        admin.dispose()


#: This session's database already migrated to head, copied for each test (copying is ~6× quicker than
#: migrating a new database; tests/test_storage.py migrates new ones). Dropped at the session's end.
_template: str | None = None


def _migrated_template(server: str) -> str:
    global _template
    if _template is None:
        import tempfile

        from openlfr.storage import Store

        name = f"openlfr_template_{uuid.uuid4().hex[:12]}"
        _admin_execute(server, f'CREATE DATABASE "{name}"')
        with tempfile.TemporaryDirectory() as home:
            Store(home, make_url(server).set(database=name).render_as_string(hide_password=False)).close()
        _template = name
    return _template


def drop_template() -> None:
    """End of the session: drop the migrated template, if one was made."""
    global _template
    server = os.environ.get(PG_ENV, "").strip()
    if _template is None or not server:
        return
    try:
        _admin_execute(server, f'DROP DATABASE IF EXISTS "{_template}" WITH (FORCE)')
    finally:
        _template = None


@contextmanager
def fresh_database(label: str = "t", migrated: bool = True) -> Iterator[str]:
    """Create a database on the test server (a copy of one at the newest schema, or with ``migrated=False``
    an empty one), yield its URL, drop it (and its connections) after."""
    server = server_url()
    assert server is not None
    name = f"openlfr_{label}_{uuid.uuid4().hex[:12]}"
    admin = _admin(server)
    try:
        template = f' TEMPLATE "{_migrated_template(server)}"' if migrated else ""
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"{template}'))
    except Exception as exc:
        admin.dispose()
        if os.environ.get(REQUIRE_ENV) == "1":
            raise
        pytest.skip(f"PostgreSQL variant: cannot create a database on {PG_ENV}: {exc}")
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def own_copy() -> Iterator[None]:
    """Within the block ``OPENLFR_DATABASE_URL`` names a copy of the PostgreSQL database it names now
    (``CREATE DATABASE … TEMPLATE``), as copying a data folder copies its SQLite file; unset: nothing to do.

    The database copied must have no open connections (close its stores first).
    """
    from openlfr.storage.store import ENV_DATABASE_URL

    current = os.environ.get(ENV_DATABASE_URL)
    if not current:
        yield
        return
    source = make_url(current)
    name = f"openlfr_copy_{uuid.uuid4().hex[:12]}"
    admin = _admin(server_url() or "")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"'))
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(ENV_DATABASE_URL, source.set(database=name).render_as_string(hide_password=False))
            yield
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def stored_bytes(store) -> bytes:
    """Everything the store's database holds, to search for what must never be stored.

    SQLite: its files as they lie on disk (free pages and the write-ahead log included). Any other
    database: every value of every table, binary values as they are and everything else as text.
    """
    from sqlalchemy import MetaData, select

    if store.engine.dialect.name == "sqlite":
        return b"".join(p.read_bytes() for p in sorted(store.home.glob("openlfr.db*")))
    meta = MetaData()
    meta.reflect(bind=store.engine)
    out = bytearray()
    with store.engine.connect() as c:
        for table in meta.sorted_tables:
            for row in c.execute(select(table)):
                for value in row:
                    out += bytes(value) if isinstance(value, bytes | memoryview) else str(value).encode()
                    out += b"\x00"
    return bytes(out)
