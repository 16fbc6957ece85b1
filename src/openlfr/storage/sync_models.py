"""Tables of the central and van roles (migration 0010).

A force runs one *centre* (planning, authorisation, records, audit, the public site) and several
*vans* (standalone nodes at deployments). The centre knows its vans (``vans``), the deployment
packages it issued (``deployment_packages``) and what each van reported (``sync_items``, with the
alerts they became: ``synced_alerts``). A van knows itself and the centre it trusts
(``van_identity``), the packages it imported (``imported_packages``) and what it still has to tell
the centre (``outbox_items``). Private keys are never in these tables: they are files
(:mod:`openlfr.services.vans`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openlfr.storage.models import Base, utcnow

#: The outbox stream of events that concern no deployment (the van's enrolment, refused packages,
#: sign-ins): deployments' streams are named by their package id.
VAN_STREAM = "van"


# --- At the centre --------------------------------------------------------------------------------


class Van(Base):
    """A van the centre registered: its public keys and the client certificate the centre issued it."""

    __tablename__ = "vans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    package_key: Mapped[str] = mapped_column(String(100))  # X25519 public key, raw, base64: packages are sealed to it
    tls_public_key: Mapped[str] = mapped_column(Text)  # PEM
    certificate: Mapped[str] = mapped_column(Text)  # PEM, issued by the centre's CA
    certificate_sha256: Mapped[str] = mapped_column(String(64), unique=True)  # of the DER: how the sync listener knows it
    registered_by: Mapped[str] = mapped_column(String(100))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class DeploymentPackage(Base):
    """A package issued for one deployment to one van; its id names the deployment's outbox stream."""

    __tablename__ = "deployment_packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(String(40), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    van_id: Mapped[int] = mapped_column(ForeignKey("vans.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str] = mapped_column(String(64))  # of the package file


class SyncItem(Base):
    """One outbox item a van delivered, stored once: (van, stream, seq) is unique and contiguous from 1."""

    __tablename__ = "sync_items"
    __table_args__ = (UniqueConstraint("van_id", "stream", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    van_id: Mapped[int] = mapped_column(ForeignKey("vans.id", ondelete="CASCADE"), index=True)
    stream: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(60))
    digest: Mapped[str] = mapped_column(String(64))  # SHA-256 of the canonical payload: a resend must match it
    payload: Mapped[dict] = mapped_column(JSON)  # no images: those become the centre's own encrypted alert files
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SyncedAlert(Base):
    """Which centre alert a van's alert became, so a resent or updated alert changes that one row."""

    __tablename__ = "synced_alerts"
    __table_args__ = (UniqueConstraint("van_id", "van_alert_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    van_id: Mapped[int] = mapped_column(ForeignKey("vans.id", ondelete="CASCADE"), index=True)
    van_alert_id: Mapped[int] = mapped_column(Integer)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)


# --- On a van -------------------------------------------------------------------------------------


class VanIdentity(Base):
    """This node is a van (the row exists), named so; after enrolment, the centre it trusts (pinned)."""

    __tablename__ = "van_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    centre_signing_key: Mapped[str | None] = mapped_column(String(100), nullable=True)  # Ed25519, raw, base64
    ca_certificate: Mapped[str | None] = mapped_column(Text, nullable=True)  # PEM: the centre's CA
    client_certificate: Mapped[str | None] = mapped_column(Text, nullable=True)  # PEM: this van's, from the centre
    centre_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    enrolled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The newest audit event already turned into an outbox item.
    audit_cursor: Mapped[int] = mapped_column(Integer, default=0)


class ImportedPackage(Base):
    __tablename__ = "imported_packages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    package_id: Mapped[str] = mapped_column(String(40), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), unique=True)
    not_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_after: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str] = mapped_column(String(64))
    imported_by: Mapped[str] = mapped_column(String(100))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxItem(Base):
    """What the centre must know, in order: one item per audit event, numbered per stream from 1."""

    __tablename__ = "outbox_items"
    __table_args__ = (UniqueConstraint("stream", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(60))
    audit_seq: Mapped[int] = mapped_column(Integer, index=True)
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
