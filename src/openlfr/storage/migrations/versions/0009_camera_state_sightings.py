"""Cameras keep their live state (and why, and since when) and the smallest face they must find;
alerts keep their merged repeat sightings.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cameras") as batch:
        batch.add_column(sa.Column("state", sa.String(20), nullable=True))
        batch.add_column(sa.Column("state_reason", sa.String(500), nullable=True))
        batch.add_column(sa.Column("state_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("min_face_px", sa.Float(), nullable=True))
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("sightings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("sightings")
    with op.batch_alter_table("cameras") as batch:
        batch.drop_column("min_face_px")
        batch.drop_column("state_at")
        batch.drop_column("state_reason")
        batch.drop_column("state")
