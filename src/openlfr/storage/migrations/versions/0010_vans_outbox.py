"""Central and van roles: the centre's vans, packages and what vans delivered; a van's identity,
imported packages and outbox (models in ``storage/sync_models.py``).

Revision ID: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "vans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("package_key", sa.String(100), nullable=False),
        sa.Column("tls_public_key", sa.Text, nullable=False),
        sa.Column("certificate", sa.Text, nullable=False),
        sa.Column("certificate_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("registered_by", sa.String(100), nullable=False),
        _when("registered_at"),
        _when("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(100), nullable=True),
    )
    op.create_table(
        "deployment_packages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("package_id", sa.String(40), nullable=False, unique=True),
        sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("van_id", sa.Integer, sa.ForeignKey("vans.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("created_by", sa.String(100), nullable=False),
        _when("created_at"),
        _when("not_before"),
        _when("not_after"),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "sync_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("van_id", sa.Integer, sa.ForeignKey("vans.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("stream", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        _when("received_at"),
        sa.UniqueConstraint("van_id", "stream", "seq"),
    )
    op.create_table(
        "synced_alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("van_id", sa.Integer, sa.ForeignKey("vans.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("van_alert_id", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.UniqueConstraint("van_id", "van_alert_id"),
    )
    op.create_table(
        "van_identity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        _when("created_at"),
        sa.Column("centre_signing_key", sa.String(100), nullable=True),
        sa.Column("ca_certificate", sa.Text, nullable=True),
        sa.Column("client_certificate", sa.Text, nullable=True),
        sa.Column("centre_url", sa.String(500), nullable=True),
        _when("enrolled_at", nullable=True),
        sa.Column("audit_cursor", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "imported_packages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("package_id", sa.String(40), nullable=False, unique=True),
        sa.Column("deployment_id", sa.Integer, sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False, unique=True),
        _when("not_before"),
        _when("not_after"),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("imported_by", sa.String(100), nullable=False),
        _when("imported_at"),
    )
    op.create_table(
        "outbox_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("stream", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False, index=True),
        sa.Column("payload", sa.JSON, nullable=False),
        _when("created_at"),
        _when("acked_at", nullable=True),
        sa.UniqueConstraint("stream", "seq"),
    )


def downgrade() -> None:
    for table in (
        "outbox_items",
        "imported_packages",
        "van_identity",
        "synced_alerts",
        "sync_items",
        "deployment_packages",
        "vans",
    ):
        op.drop_table(table)
