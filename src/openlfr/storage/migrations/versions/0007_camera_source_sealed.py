"""Camera addresses are kept encrypted; the stored plain column keeps only the redacted form.

An address such as ``rtsp://user:pass@host/stream`` carries the camera's password: existing rows
are encrypted into ``source_sealed`` with the data key and their ``source`` is replaced by
``rtsp://user:***@host/stream``. Downgrading cannot restore the passwords without the key, so it
decrypts them back when the key is at hand.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import context, op

from openlfr.storage.crypto import CAMERA_SOURCE_CONTEXT, redact_source

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

cameras = sa.table(
    "cameras",
    sa.column("id", sa.Integer),
    sa.column("source", sa.String),
    sa.column("source_sealed", sa.LargeBinary),
)


def _cipher():
    cipher = context.config.attributes.get("cipher")
    if cipher is None:
        raise RuntimeError("migration 0007 encrypts camera addresses: run it through openlfr (Store), which has the key")
    return cipher


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("source_sealed", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(sa.select(cameras.c.id, cameras.c.source)).all()
    if not rows:
        return
    cipher = _cipher()
    for camera_id, source in rows:
        sealed = cipher.encrypt(source.encode(), CAMERA_SOURCE_CONTEXT)
        connection.execute(
            cameras.update().where(cameras.c.id == camera_id).values(source=redact_source(source), source_sealed=sealed)
        )


def downgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(cameras.c.id, cameras.c.source_sealed)).all()
    sealed_rows = [(i, blob) for i, blob in rows if blob is not None]
    if sealed_rows:
        cipher = _cipher()
        for camera_id, blob in sealed_rows:
            source = cipher.decrypt(blob, CAMERA_SOURCE_CONTEXT).decode()
            connection.execute(cameras.update().where(cameras.c.id == camera_id).values(source=source))
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("source_sealed")
