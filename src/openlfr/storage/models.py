"""Tables of the embedded store.

A gallery is bound to one model pack (``pack_id``): templates of different packs are not
comparable, so a gallery refuses templates from any other pack. Templates and reference images
are stored encrypted (see :mod:`openlfr.storage.crypto`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Gallery(Base):
    __tablename__ = "galleries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    pack_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    persons: Mapped[list[Person]] = relationship(back_populates="gallery", cascade="all, delete-orphan")


class Person(Base):
    __tablename__ = "persons"
    __table_args__ = (UniqueConstraint("gallery_id", "reference"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gallery_id: Mapped[int] = mapped_column(ForeignKey("galleries.id", ondelete="CASCADE"), index=True)
    reference: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    gallery: Mapped[Gallery] = relationship(back_populates="persons")
    images: Mapped[list[ReferenceImage]] = relationship(back_populates="person", cascade="all, delete-orphan")


class ReferenceImage(Base):
    __tablename__ = "reference_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), index=True)
    file: Mapped[str] = mapped_column(String(200))  # relative to the data directory, encrypted
    sha256: Mapped[str] = mapped_column(String(64))  # of the original bytes, for provenance
    source_name: Mapped[str] = mapped_column(String(500))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    quality: Mapped[dict] = mapped_column(JSON)
    pack_id: Mapped[str] = mapped_column(String(200))
    template: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted float32 vector
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    person: Mapped[Person] = relationship(back_populates="images")


# --- Live facial recognition ---------------------------------------------------------------------
#
# A watchlist *subject* is a Person in the subjects gallery (so enrolment, quality checks and
# encryption are shared) with the details the law asks for in ``SubjectDetails``. A deployment
# gets its own *frozen* copy of the chosen subjects' templates and images (``WatchlistEntry``),
# deleted when the deployment closes. Alerts keep a snapshot of who matched, so the deployment
# record survives the watchlist's deletion.


class SubjectDetails(Base):
    __tablename__ = "subject_details"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True)
    category: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(1000))
    image_source: Mapped[str] = mapped_column(String(500))
    lawful_basis: Mapped[str] = mapped_column(String(500))
    date_of_birth: Mapped[date | None] = mapped_column(Date, nullable=True)
    under_18_justification: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    added_by: Mapped[str] = mapped_column(String(100))
    review_date: Mapped[date] = mapped_column(Date)

    person: Mapped[Person] = relationship()


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    location_name: Mapped[str] = mapped_column(String(300))
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    use_case: Mapped[str] = mapped_column(String(40))
    planned_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    planned_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    threshold: Mapped[float] = mapped_column(Float)
    confirm_n: Mapped[int] = mapped_column(Integer, default=2)
    confirm_m: Mapped[int] = mapped_column(Integer, default=5)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    authorised_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    authorised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    authorisation_note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Aggregate counts only: nothing about any individual who raised no alert.
    faces_seen: Mapped[int] = mapped_column(Integer, default=0)
    frames_processed: Mapped[int] = mapped_column(Integer, default=0)
    frames_dropped: Mapped[int] = mapped_column(Integer, default=0)
    watchlist_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    record: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # Set at authorisation from the model pack's calibration (services.thresholds).
    calibration_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    estimated_fpir: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimated_fpir_low: Mapped[float | None] = mapped_column(Float, nullable=True)  # 95% interval
    estimated_fpir_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    estimate_method: Mapped[str | None] = mapped_column(Text, nullable=True)
    threshold_override: Mapped[str | None] = mapped_column(String(1000), nullable=True)

    cameras: Mapped[list[Camera]] = relationship(back_populates="deployment", cascade="all, delete-orphan")
    watchlist: Mapped[Watchlist | None] = relationship(back_populates="deployment", cascade="all, delete-orphan")


class Camera(Base):
    __tablename__ = "cameras"
    __table_args__ = (UniqueConstraint("deployment_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # What may be shown: the address with any password redacted (crypto.redact_source). The full
    # address, credentials included, only encrypted (CAMERA_SOURCE_CONTEXT), for the live runner.
    source: Mapped[str] = mapped_column(String(1000))
    source_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    record: Mapped[bool] = mapped_column(Boolean, default=False)
    # The smallest face (px wide) this camera must find; None: the pipeline's default (40 px). Smaller
    # means detection on a larger copy of each frame, so fewer frames a second.
    min_face_px: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What the camera is doing now (connecting, up, reconnecting, failed, ended, stopped), why, and
    # since when: written by the process running it, read by every page and by other processes.
    state: Mapped[str | None] = mapped_column(String(20), nullable=True)
    state_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    state_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    deployment: Mapped[Deployment] = relationship(back_populates="cameras")


class Watchlist(Base):
    __tablename__ = "watchlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), unique=True)
    pack_id: Mapped[str] = mapped_column(String(200))
    built_by: Mapped[str] = mapped_column(String(100))
    built_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    deployment: Mapped[Deployment] = relationship(back_populates="watchlist")
    entries: Mapped[list[WatchlistEntry]] = relationship(back_populates="watchlist", cascade="all, delete-orphan")


class WatchlistEntry(Base):
    __tablename__ = "watchlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"), index=True)
    subject_reference: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(1000))
    image_file: Mapped[str] = mapped_column(String(200))  # encrypted copy of the reference image
    template: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted

    watchlist: Mapped[Watchlist] = relationship(back_populates="entries")


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    camera_name: Mapped[str] = mapped_column(String(100))
    track_id: Mapped[int] = mapped_column(Integer)
    subject_reference: Mapped[str] = mapped_column(String(100))
    subject_name: Mapped[str] = mapped_column(String(200))
    subject_category: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    frame_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    latency_ms: Mapped[float] = mapped_column(Float)
    probe_file: Mapped[str | None] = mapped_column(String(200), nullable=True)  # encrypted crop
    frame_file: Mapped[str | None] = mapped_column(String(200), nullable=True)  # encrypted frame
    reference_file: Mapped[str | None] = mapped_column(String(200), nullable=True)  # encrypted watchlist image
    images_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_reason: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    hold_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    hold_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The officer's judgement from comparing the two images: "match" or "no-match".
    adjudication: Mapped[str | None] = mapped_column(String(20), nullable=True)
    outcome_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    outcome_note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    # Later sightings of the same subject on the same deployment, merged into this alert instead of
    # raising new ones: [{"time", "camera", "score"}], no images.
    sightings: Mapped[list | None] = mapped_column(JSON, nullable=True)


class FootageSegment(Base):
    __tablename__ = "footage_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    camera_name: Mapped[str] = mapped_column(String(100))
    file: Mapped[str | None] = mapped_column(String(200), nullable=True)  # encrypted segment
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    frames: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DeletionLog(Base):
    """Every deletion of biometric data: what, which record, when, why. Never holds the data itself."""

    __tablename__ = "deletion_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))  # alert-images | footage | watchlist
    record_id: Mapped[int] = mapped_column(Integer)
    files: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(500))


# --- People who use the system, and what they did ----------------------------------------------


class User(Base):
    """An account. Passwords are stored only as argon2 hashes; ``role`` is one of ``services.users.ROLES``."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Credential(Base):
    """A login session (``kind='session'``, for the browser) or an API bearer token (``kind='token'``).

    Only the SHA-256 of the secret is stored, so a copy of the database does not let anyone log in.
    """

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), default="")
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)

    user: Mapped[User] = relationship()


class AuditEvent(Base):
    """One entry of the append-only, hash-chained audit trail (see ``services.audit``).

    ``seq`` is contiguous from 1; ``hash`` is an HMAC over this entry's fields and ``prev_hash``, so
    changing, removing or inserting a row breaks the chain at that row.
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    record_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# --- Retrospective facial recognition ------------------------------------------------------------
#
# The custody image database: records (one per custody record id) with one or more images, each
# stored encrypted with its encrypted template. Searches are bound to a case and a justification;
# their candidates are reviewed by examiners, and a possible match needs a second examiner.


class CustodyRecord(Base):
    __tablename__ = "custody_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    custody_id: Mapped[str] = mapped_column(String(100), unique=True)
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    images: Mapped[list[CustodyImage]] = relationship(back_populates="record", cascade="all, delete-orphan")


class CustodyImage(Base):
    __tablename__ = "custody_images"
    __table_args__ = (UniqueConstraint("record_id", "source_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("custody_records.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(1000))
    source_sha256: Mapped[str] = mapped_column(String(64))
    capture_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    file: Mapped[str] = mapped_column(String(200))  # encrypted image
    template: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted float32 vector
    quality: Mapped[dict] = mapped_column(JSON)
    pack_id: Mapped[str] = mapped_column(String(200))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("custody_imports.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    record: Mapped[CustodyRecord] = relationship(back_populates="images")


class CustodyImport(Base):
    __tablename__ = "custody_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(1000))
    started_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    total: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)


class CustodyReject(Base):
    __tablename__ = "custody_rejects"
    __table_args__ = (UniqueConstraint("import_id", "source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("custody_imports.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(1000))
    custody_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str] = mapped_column(String(1000))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CustodyGeneration(Base):
    """One row (id 1) that triggers move forward at every change to ``custody_images`` (migration 0011):
    each process's in-memory search index compares it before searching and syncs when it moved."""

    __tablename__ = "custody_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class RfrSearch(Base):
    __tablename__ = "rfr_searches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_reference: Mapped[str] = mapped_column(String(100), index=True)
    justification: Mapped[str] = mapped_column(String(2000))
    examiner: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    probe_kind: Mapped[str] = mapped_column(String(20))  # image | video
    probe_source: Mapped[str] = mapped_column(String(500))
    probe_file: Mapped[str | None] = mapped_column(String(200), nullable=True)  # encrypted probe face crop
    face: Mapped[dict] = mapped_column(JSON, default=dict)  # which face: box, frame time, quality
    top_k: Mapped[int] = mapped_column(Integer)
    pack_id: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(100))  # exact | faiss index description
    status: Mapped[str] = mapped_column(String(20), default="awaiting-review")
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    candidates: Mapped[list[RfrCandidate]] = relationship(back_populates="search", cascade="all, delete-orphan")


class RfrCandidate(Base):
    __tablename__ = "rfr_candidates"
    __table_args__ = (UniqueConstraint("search_id", "rank"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    search_id: Mapped[int] = mapped_column(ForeignKey("rfr_searches.id", ondelete="CASCADE"), index=True)
    rank: Mapped[int] = mapped_column(Integer)
    custody_image_id: Mapped[int | None] = mapped_column(ForeignKey("custody_images.id", ondelete="SET NULL"), nullable=True)
    custody_id: Mapped[str] = mapped_column(String(100))
    score: Mapped[float] = mapped_column(Float)
    decision: Mapped[str | None] = mapped_column(String(20), nullable=True)  # not-a-match | possible-match
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    note: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    confirmation: Mapped[str | None] = mapped_column(String(20), nullable=True)  # confirmed | not-confirmed
    confirmed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    confirmation_note: Mapped[str | None] = mapped_column(String(2000), nullable=True)

    search: Mapped[RfrSearch] = relationship(back_populates="candidates")
