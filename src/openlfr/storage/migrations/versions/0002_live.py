"""Live facial recognition: subjects' details, deployments, cameras, frozen watchlists, alerts,
footage segments and the deletion log.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deletion_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("location_name", sa.String(length=300), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("use_case", sa.String(length=40), nullable=False),
        sa.Column("planned_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("confirm_n", sa.Integer(), nullable=False),
        sa.Column("confirm_m", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authorised_by", sa.String(length=100), nullable=True),
        sa.Column("authorised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("authorisation_note", sa.String(length=1000), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("faces_seen", sa.Integer(), nullable=False),
        sa.Column("frames_processed", sa.Integer(), nullable=False),
        sa.Column("frames_dropped", sa.Integer(), nullable=False),
        sa.Column("watchlist_size", sa.Integer(), nullable=True),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("camera_name", sa.String(length=100), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("subject_reference", sa.String(length=100), nullable=False),
        sa.Column("subject_name", sa.String(length=200), nullable=False),
        sa.Column("subject_category", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("frame_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("probe_file", sa.String(length=200), nullable=True),
        sa.Column("frame_file", sa.String(length=200), nullable=True),
        sa.Column("reference_file", sa.String(length=200), nullable=True),
        sa.Column("images_deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_reason", sa.String(length=1000), nullable=True),
        sa.Column("hold_by", sa.String(length=100), nullable=True),
        sa.Column("hold_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("adjudication", sa.String(length=20), nullable=True),
        sa.Column("outcome_by", sa.String(length=100), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_note", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_alerts_deployment_id"), "alerts", ["deployment_id"], unique=False)
    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=1000), nullable=False),
        sa.Column("record", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id", "name"),
    )
    op.create_index(op.f("ix_cameras_deployment_id"), "cameras", ["deployment_id"], unique=False)
    op.create_table(
        "footage_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("camera_name", sa.String(length=100), nullable=False),
        sa.Column("file", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_footage_segments_deployment_id"), "footage_segments", ["deployment_id"], unique=False)
    op.create_table(
        "watchlists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("pack_id", sa.String(length=200), nullable=False),
        sa.Column("built_by", sa.String(length=100), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["deployment_id"], ["deployments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment_id"),
    )
    op.create_table(
        "subject_details",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("image_source", sa.String(length=500), nullable=False),
        sa.Column("lawful_basis", sa.String(length=500), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("under_18_justification", sa.String(length=1000), nullable=True),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("review_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "watchlist_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watchlist_id", sa.Integer(), nullable=False),
        sa.Column("subject_reference", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("image_file", sa.String(length=200), nullable=False),
        sa.Column("template", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["watchlist_id"], ["watchlists.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_watchlist_entries_watchlist_id"), "watchlist_entries", ["watchlist_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_watchlist_entries_watchlist_id"), table_name="watchlist_entries")
    op.drop_table("watchlist_entries")
    op.drop_table("subject_details")
    op.drop_table("watchlists")
    op.drop_index(op.f("ix_footage_segments_deployment_id"), table_name="footage_segments")
    op.drop_table("footage_segments")
    op.drop_index(op.f("ix_cameras_deployment_id"), table_name="cameras")
    op.drop_table("cameras")
    op.drop_index(op.f("ix_alerts_deployment_id"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("deployments")
    op.drop_table("deletion_log")
