"""Retrospective facial recognition: the custody image database, imports and their rejects,
case-bound searches and their candidates with examiners' decisions.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "custody_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("custody_id", sa.String(length=100), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("custody_id"),
    )
    op.create_table(
        "custody_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("imported", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "custody_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("capture_date", sa.Date(), nullable=True),
        sa.Column("file", sa.String(length=200), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.JSON(), nullable=False),
        sa.Column("pack_id", sa.String(length=200), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["record_id"], ["custody_records.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["import_id"], ["custody_imports.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "source_sha256"),
    )
    op.create_index("ix_custody_images_record_id", "custody_images", ["record_id"])
    op.create_table(
        "custody_rejects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("custody_id", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["custody_imports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("import_id", "source"),
    )
    op.create_index("ix_custody_rejects_import_id", "custody_rejects", ["import_id"])
    op.create_table(
        "rfr_searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_reference", sa.String(length=100), nullable=False),
        sa.Column("justification", sa.String(length=2000), nullable=False),
        sa.Column("examiner", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("probe_kind", sa.String(length=20), nullable=False),
        sa.Column("probe_source", sa.String(length=500), nullable=False),
        sa.Column("probe_file", sa.String(length=200), nullable=True),
        sa.Column("face", sa.JSON(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=False),
        sa.Column("pack_id", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rfr_searches_case_reference", "rfr_searches", ["case_reference"])
    op.create_table(
        "rfr_candidates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("custody_image_id", sa.Integer(), nullable=True),
        sa.Column("custody_id", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("confirmation", sa.String(length=20), nullable=True),
        sa.Column("confirmed_by", sa.String(length=100), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmation_note", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(["search_id"], ["rfr_searches.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["custody_image_id"], ["custody_images.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("search_id", "rank"),
    )
    op.create_index("ix_rfr_candidates_search_id", "rfr_candidates", ["search_id"])


def downgrade() -> None:
    op.drop_table("rfr_candidates")
    op.drop_table("rfr_searches")
    op.drop_table("custody_rejects")
    op.drop_table("custody_images")
    op.drop_table("custody_imports")
    op.drop_table("custody_records")
