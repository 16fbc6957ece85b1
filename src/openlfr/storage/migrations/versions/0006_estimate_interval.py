"""Deployments keep the 95% interval of their estimated FPIR and the method behind the estimate.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("estimated_fpir_low", sa.Float(), nullable=True))
        batch.add_column(sa.Column("estimated_fpir_high", sa.Float(), nullable=True))
        batch.add_column(sa.Column("estimate_method", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("estimate_method")
        batch.drop_column("estimated_fpir_high")
        batch.drop_column("estimated_fpir_low")
