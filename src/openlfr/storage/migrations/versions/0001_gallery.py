"""Galleries, persons and encrypted reference images with templates.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "galleries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("pack_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "persons",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("gallery_id", sa.Integer, sa.ForeignKey("galleries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("gallery_id", "reference"),
    )
    op.create_index("ix_persons_gallery_id", "persons", ["gallery_id"])
    op.create_table(
        "reference_images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("persons.id", ondelete="CASCADE"), nullable=False),
        sa.Column("file", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source_name", sa.String(500), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("quality", sa.JSON, nullable=False),
        sa.Column("pack_id", sa.String(200), nullable=False),
        sa.Column("template", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reference_images_person_id", "reference_images", ["person_id"])


def downgrade() -> None:
    op.drop_table("reference_images")
    op.drop_table("persons")
    op.drop_table("galleries")
