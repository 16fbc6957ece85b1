"""Deployments remember the calibration their threshold rests on, its estimated FPIR and any override.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("calibration_reference", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("estimated_fpir", sa.Float(), nullable=True))
        batch.add_column(sa.Column("threshold_override", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("threshold_override")
        batch.drop_column("estimated_fpir")
        batch.drop_column("calibration_reference")
