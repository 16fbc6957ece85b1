"""Opening the embedded store: the database (migrated to head), the data directory and the cipher.

Writes follow one rule so that nothing half-written survives: encrypted files are written under
their final name *before* the database transaction that references them commits, and any file
in the data directory that no committed row references is removed by :meth:`Store.sweep_orphans`
(run at every open). A crash between the two leaves only an orphan that the next open deletes.

The database is SQLite in the data directory by default, or the server ``$OPENLFR_DATABASE_URL``
names (PostgreSQL, ``postgresql+psycopg://…``, for a force's central server and several server
processes); the same models and migrations serve both. Keys never go into the database.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, create_engine, event, func, make_url, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from openlfr.config import data_dir
from openlfr.errors import StoreError
from openlfr.storage.crypto import Cipher, load_or_create_key
from openlfr.storage.models import Alert, CustodyImage, FootageSegment, ReferenceImage, RfrSearch, WatchlistEntry

ENV_DATABASE_URL = "OPENLFR_DATABASE_URL"
BLOB_DIRS = ("images", "watchlists", "alerts", "footage", "custody", "rfr")
#: Unreferenced files younger than this are assumed to be mid-write by another process.
ORPHAN_MIN_AGE_S = 120.0
#: Any constant will do: it names the schema migration's lock among PostgreSQL's advisory locks.
PG_MIGRATE_LOCK_ID = 0x6F6C6672_6D696772  # "olfrmigr"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def private_dir(path: Path) -> Path:
    """Create ``path`` owner-only (0700), tightening it if it already exists.

    The data folder holds biometric data and keys: nobody but the account running OpenLFR should
    list or open anything in it, whatever the process umask is.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid == os.getuid() and path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def _private_files(*paths: Path) -> None:
    """Create the database file 0600 before SQLite opens it (its journal files copy its mode) and
    tighten files a previous version left readable."""
    for path in paths:
        if path.name.endswith(".db") and not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(0o600)


def write_private(path: Path, data: bytes) -> None:
    """Write ``path`` owner-only (0600) whatever the umask is."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return config


def resolve_database_url(home: Path, explicit: str | None = None) -> str:
    """The database of the store on ``home``: ``explicit``, else ``$OPENLFR_DATABASE_URL``, else
    ``home/openlfr.db`` (SQLite, the embedded default)."""
    return explicit or os.environ.get(ENV_DATABASE_URL) or f"sqlite:///{home / 'openlfr.db'}"


def head_revision() -> str:
    """The newest migration this version of OpenLFR ships (fails if the migrations branch into several heads)."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise StoreError("no database migrations found in this installation")
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at; None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, cipher: Cipher | None = None, home: Path | None = None) -> None:
    """Bring the schema to the newest Alembic revision.

    ``cipher`` and ``home`` are for migrations that (re-)encrypt data: rows need the key, and
    encrypted files are found under the data directory. On PostgreSQL the whole upgrade holds an
    advisory lock, so several server processes starting at once on one database do not race to
    create the same tables: one migrates and the others, waiting, find the schema at head. (The
    embedded SQLite default, one server process, is migrated as before.)
    """
    config = _alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(PG_MIGRATE_LOCK_ID)))
        config.attributes["connection"] = connection
        config.attributes["cipher"] = cipher
        config.attributes["home"] = home
        command.upgrade(config, "head")


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def schema_status(home: str | os.PathLike[str] | None = None, database_url: str | None = None) -> dict:
    """Where the schema stands against the newest migration this version ships, read without opening
    the store (nothing is created, migrated or keyed): for operators upgrading servers that share a
    database, and for ``openlfr db check``.

    ``pending`` lists the migrations still to run, oldest first; ``current`` None is an empty (or, for
    the embedded default, missing) database; ``known`` False a revision this version does not ship
    (a newer OpenLFR migrated it).
    """
    root = data_dir(home)
    url = resolve_database_url(root, database_url)
    exists = url != f"sqlite:///{root / 'openlfr.db'}" or (root / "openlfr.db").is_file()
    current = None
    if exists:
        engine = create_engine(url, poolclass=NullPool)
        try:
            current = current_revision(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the database {_redacted(url)}: {getattr(exc, 'orig', None) or exc}") from None
        finally:
            engine.dispose()
    script = ScriptDirectory.from_config(_alembic_config())
    head = head_revision()
    known = current is None or current in {r.revision for r in script.walk_revisions()}
    pending = [r.revision for r in script.iterate_revisions(head, current)][::-1] if known else []
    return {
        "database": _redacted(url),
        "dialect": make_url(url).get_backend_name(),
        "current": current,
        "head": head,
        "known": known,
        "pending": pending,
        "up_to_date": current == head,
    }


class Store:
    def __init__(self, home: str | os.PathLike[str] | None = None, database_url: str | None = None) -> None:
        self.home = data_dir(home)
        private_dir(self.home)
        url = resolve_database_url(self.home, database_url)
        if url == f"sqlite:///{self.home / 'openlfr.db'}":  # the embedded default: owner-only files
            database = self.home / "openlfr.db"
            _private_files(database, database.with_name("openlfr.db-wal"), database.with_name("openlfr.db-shm"))
        if url.startswith("sqlite"):
            self.engine = create_engine(url)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:  # a server: a connection it dropped (restart, fail-over) is replaced rather than failing a request
            self.engine = create_engine(url, pool_pre_ping=True)
        key = load_or_create_key(self.home)
        self.cipher = Cipher(key)
        self._key = key
        migrate(self.engine, self.cipher, self.home)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.sweep_orphans()

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (e.g. the audit chain's HMAC), derived from the data key."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(self._key)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed if the block ends normally, rolled back otherwise."""
        with self._sessions() as session, session.begin():
            yield session

    def write_blob(self, folder: str, data: bytes, context: str) -> str:
        """Encrypt and write ``data``; returns the path relative to the data directory."""
        private_dir(self.home / folder)
        relative = f"{folder}/{uuid.uuid4().hex}.bin"
        tmp = self.home / f"{relative}.tmp"
        write_private(tmp, self.cipher.encrypt(data, context))
        os.replace(tmp, self.home / relative)
        return relative

    def read_blob(self, relative: str, context: str) -> bytes:
        return self.cipher.decrypt((self.home / relative).read_bytes(), context)

    def delete_blob(self, relative: str) -> None:
        (self.home / relative).unlink(missing_ok=True)

    def referenced_files(self) -> set[str]:
        with self.session() as s:
            files = set(s.scalars(select(ReferenceImage.file)))
            files |= set(s.scalars(select(WatchlistEntry.image_file)))
            files |= set(s.scalars(select(FootageSegment.file)))
            files |= set(s.scalars(select(CustodyImage.file)))
            files |= set(s.scalars(select(RfrSearch.probe_file)))
            for row in s.execute(select(Alert.probe_file, Alert.frame_file, Alert.reference_file)):
                files |= set(row)
        return {f for f in files if f}

    def sweep_orphans(self, min_age_s: float = ORPHAN_MIN_AGE_S) -> list[str]:
        """Delete files no committed row refers to (left by a crash mid-write). Returns what was removed.

        Files younger than ``min_age_s`` are left alone: another process (a live camera worker)
        may be between writing a file and committing the row that refers to it.
        """
        referenced = self.referenced_files()
        cutoff = time.time() - min_age_s
        removed = []
        for folder in BLOB_DIRS:
            directory = self.home / folder
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                relative = f"{folder}/{path.name}"
                try:
                    old_enough = path.stat().st_mtime <= cutoff
                except FileNotFoundError:
                    continue
                if relative not in referenced and old_enough:
                    path.unlink(missing_ok=True)
                    removed.append(relative)
        return removed

    def close(self) -> None:
        self.engine.dispose()
