"""Bind every ciphertext to its record: table, row id and column in the AES-GCM associated data.

Until now a blob's associated data was only its purpose (``reference-image``, ``template:<pack>``,
…), so swapping two people's template columns or image files in the database still decrypted:
one person's face would be shown, matched or alerted on as another's. From this revision the
associated data is ``<purpose>|<table>:<row id>:<column>`` (see
:func:`openlfr.storage.crypto.record_context`) and existing data is re-encrypted.

Crash safety: database columns are rewritten inside the migration's transaction. A re-encrypted
file is written under a *new* name and the row is pointed at it in the same transaction, so a
failure rolls the rows back to the old files (still valid) and leaves only new orphans; after the
commit the old files are the orphans. :meth:`openlfr.storage.Store.sweep_orphans` removes both
kinds. A file already missing from the data directory is left as it is (it cannot be read either
way). Downgrading re-encrypts back to the purpose-only associated data in the same manner.

Revision ID: 0008
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: Rows read and re-encrypted per query (custody tables may hold millions of templates).
BATCH = 1000


def bound(purpose: str, table: str, row_id: int, column: str) -> str:
    """The associated data this revision introduces (frozen here: later code may change its helper)."""
    return f"{purpose}|{table}:{int(row_id)}:{column}"


# (table, column, is_file, purpose of a row given (row id, pack id)), pack id joined where needed.
_TEMPLATE = "template:{pack}"
SEALED: list[tuple[str, str, bool, str]] = [
    ("reference_images", "file", True, "reference-image"),
    ("reference_images", "template", False, _TEMPLATE),
    ("watchlist_entries", "image_file", True, "watchlist-image"),
    ("watchlist_entries", "template", False, _TEMPLATE),
    ("cameras", "source_sealed", False, "camera-source"),
    ("alerts", "probe_file", True, "alert-image"),
    ("alerts", "frame_file", True, "alert-image"),
    ("alerts", "reference_file", True, "alert-image"),
    ("footage_segments", "file", True, "footage"),
    ("custody_images", "file", True, "custody-image"),
    ("custody_images", "template", False, _TEMPLATE),
    ("rfr_searches", "probe_file", True, "rfr-probe"),
]


def _cipher():
    cipher = context.config.attributes.get("cipher")
    if cipher is None:
        raise RuntimeError("migration 0008 re-encrypts stored data: run it through openlfr (Store), which has the key")
    return cipher


def _home() -> Path:
    home = context.config.attributes.get("home")
    if home is None:
        raise RuntimeError("migration 0008 re-encrypts stored files: run it through openlfr (Store), which has the data folder")
    return Path(home)


def _select(table: str, column: str, is_file: bool) -> sa.Select:
    """id, sealed value and (for templates) the model pack of each row holding a value.

    Only file names are compared with "": PostgreSQL refuses comparing a bytea column with text.
    """
    t = sa.table(table, sa.column("id", sa.Integer), sa.column(column))
    if table == "watchlist_entries" and column == "template":
        wl = sa.table("watchlists", sa.column("id", sa.Integer), sa.column("pack_id", sa.String))
        t = sa.table(table, sa.column("id", sa.Integer), sa.column(column), sa.column("watchlist_id", sa.Integer))
        return (
            sa.select(t.c.id, t.c[column], wl.c.pack_id)
            .select_from(t.join(wl, wl.c.id == t.c.watchlist_id))
            .where(t.c[column].is_not(None))
        )
    if column == "template":
        t = sa.table(table, sa.column("id", sa.Integer), sa.column(column), sa.column("pack_id", sa.String))
        return sa.select(t.c.id, t.c[column], t.c.pack_id).where(t.c[column].is_not(None))
    present = [t.c[column].is_not(None)] + ([t.c[column] != ""] if is_file else [])
    return sa.select(t.c.id, t.c[column], sa.literal("")).where(*present)


def _rows(connection: sa.Connection, table: str, column: str, is_file: bool) -> Iterator[tuple[int, object, str]]:
    query = _select(table, column, is_file)
    id_column = query.selected_columns[0]
    last = 0
    while True:
        batch = connection.execute(query.where(id_column > last).order_by(id_column).limit(BATCH)).all()
        if not batch:
            return
        yield from batch
        last = batch[-1][0]


def _write_file(home: Path, old_relative: str, data: bytes) -> str:
    """Write ``data`` beside ``old_relative`` under a new name, owner-only; returns the new name."""
    folder = old_relative.rsplit("/", 1)[0] if "/" in old_relative else ""
    relative = f"{folder}/{uuid.uuid4().hex}.bin" if folder else f"{uuid.uuid4().hex}.bin"
    tmp = home / f"{relative}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, home / relative)
    return relative


def _reseal(old_context: Callable[[str, str, int, str], str], new_context: Callable[[str, str, int, str], str]) -> None:
    """Decrypt every sealed value under ``old_context`` and encrypt it again under ``new_context``."""
    connection = op.get_bind()
    cipher = home = None
    for table, column, is_file, purpose in SEALED:
        t = sa.table(table, sa.column("id", sa.Integer), sa.column(column))
        for row_id, value, pack in _rows(connection, table, column, is_file):
            cipher = cipher or _cipher()
            kind = purpose.format(pack=pack)
            old, new = old_context(kind, table, row_id, column), new_context(kind, table, row_id, column)
            if is_file:
                home = home or _home()
                path = home / str(value)
                if not path.is_file():
                    continue  # already gone: nothing to re-encrypt, nothing that could be read
                plain = cipher.decrypt(path.read_bytes(), old)
                sealed_value: object = _write_file(home, str(value), cipher.encrypt(plain, new))
            else:
                sealed_value = cipher.encrypt(cipher.decrypt(bytes(value), old), new)
            connection.execute(t.update().where(t.c.id == row_id).values({column: sealed_value}))


def _purpose_only(kind: str, table: str, row_id: int, column: str) -> str:
    return kind


def upgrade() -> None:
    _reseal(_purpose_only, bound)


def downgrade() -> None:
    _reseal(bound, _purpose_only)
