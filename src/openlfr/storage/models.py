"""Tables of the embedded store.

A gallery is bound to one model pack (``pack_id``): templates of different packs are not
comparable, so a gallery refuses templates from any other pack. Templates and reference images
are stored encrypted (see :mod:`openlfr.storage.crypto`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
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
