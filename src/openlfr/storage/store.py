"""Opening the embedded store: the database (migrated to head), the data directory and the cipher.

Writes follow one rule so that nothing half-written survives: encrypted files are written under
their final name *before* the database transaction that references them commits, and any file
in the data directory that no committed row references is removed by :meth:`Store.sweep_orphans`
(run at every open). A crash between the two leaves only an orphan that the next open deletes.
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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from openlfr.config import data_dir
from openlfr.storage.crypto import Cipher, load_or_create_key
from openlfr.storage.models import Alert, CustodyImage, FootageSegment, ReferenceImage, RfrSearch, WatchlistEntry

ENV_DATABASE_URL = "OPENLFR_DATABASE_URL"
BLOB_DIRS = ("images", "watchlists", "alerts", "footage", "custody", "rfr")
#: Unreferenced files younger than this are assumed to be mid-write by another process.
ORPHAN_MIN_AGE_S = 120.0


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Store:
    def __init__(self, home: str | os.PathLike[str] | None = None, database_url: str | None = None) -> None:
        self.home = data_dir(home)
        self.home.mkdir(parents=True, exist_ok=True)
        url = database_url or os.environ.get(ENV_DATABASE_URL) or f"sqlite:///{self.home / 'openlfr.db'}"
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        key = load_or_create_key(self.home)
        self.cipher = Cipher(key)
        self._key = key
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
        directory = self.home / folder
        directory.mkdir(parents=True, exist_ok=True)
        relative = f"{folder}/{uuid.uuid4().hex}.bin"
        tmp = self.home / f"{relative}.tmp"
        tmp.write_bytes(self.cipher.encrypt(data, context))
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
