"""Watchlist subjects: people who may be placed on a deployment's watchlist, with why and on what authority.

Each subject records the reason they are sought, where the image came from and the lawful basis
for holding it, who added them and when their inclusion must be reviewed. People under 18 are
refused unless they are missing or vulnerable and a justification is given (PRODUCT.md §1.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from openlfr.core import FaceEngine
from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.services import audit
from openlfr.services.gallery import EnrolResult, enrol
from openlfr.storage import Store
from openlfr.storage.models import Gallery, Person, SubjectDetails

SUBJECTS_GALLERY = "watchlist-subjects"

CATEGORIES = {
    "serious-violence": "Wanted: serious violence",
    "gun-knife-crime": "Wanted: gun and knife crime",
    "child-sexual-exploitation": "Wanted: child sexual exploitation",
    "serious-offence": "Wanted by police or courts: other serious offence",
    "court-order": "Subject to a court order",
    "missing-person": "Missing person at risk of harm",
    "vulnerable-person": "Vulnerable person at risk of harm",
}
#: Categories for which a person under 18 may be included, with a justification.
PROTECTIVE_CATEGORIES = {"missing-person", "vulnerable-person"}


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass
class SubjectInfo:
    reference: str
    name: str
    category: str
    reason: str
    image_source: str
    lawful_basis: str
    added_by: str
    review_date: date
    date_of_birth: date | None = None
    under_18_justification: str | None = None

    def check(self, today: date) -> None:
        """Refuse incomplete or unlawful entries with the rule that is broken."""
        if self.category not in CATEGORIES:
            raise OpenLFRError(f"unknown category {self.category!r}; choose one of {', '.join(CATEGORIES)}")
        for field_name in ("reason", "image_source", "lawful_basis", "added_by"):
            if not str(getattr(self, field_name) or "").strip():
                raise OpenLFRError(f"a watchlist subject needs a {field_name.replace('_', ' ')}")
        if self.review_date < today:
            raise OpenLFRError(f"review date {self.review_date} is already past")
        if self.date_of_birth is not None and age_on(self.date_of_birth, today) < 18:
            if self.category not in PROTECTIVE_CATEGORIES:
                raise OpenLFRError(
                    f"{self.reference} is under 18; under-18s may only be included as missing or vulnerable people"
                )
            if not (self.under_18_justification or "").strip():
                raise OpenLFRError(f"{self.reference} is under 18: an explicit justification is required")


def add_subject(
    store: Store,
    engine: FaceEngine,
    info: SubjectInfo,
    images: list[str | Path | tuple[str, bytes]],
    today: date | None = None,
) -> EnrolResult:
    """Enrol a subject's reference images and record their details in one transaction."""
    info.check(today or date.today())

    def details(session: Session, person: Person) -> None:
        existing = session.get(SubjectDetails, person.id)
        if existing is not None:
            session.delete(existing)
            session.flush()
        session.add(
            SubjectDetails(
                person_id=person.id,
                category=info.category,
                reason=info.reason,
                image_source=info.image_source,
                lawful_basis=info.lawful_basis,
                date_of_birth=info.date_of_birth,
                under_18_justification=info.under_18_justification,
                added_by=info.added_by,
                review_date=info.review_date,
            )
        )

    result = enrol(
        store, engine, info.reference, info.name, images, gallery=SUBJECTS_GALLERY, on_person=details, actor=info.added_by
    )
    audit.record(
        store,
        "subject.add",
        "subject",
        info.reference,
        {
            "category": info.category,
            "reason": info.reason,
            "image_source": info.image_source,
            "lawful_basis": info.lawful_basis,
            "review_date": info.review_date.isoformat(),
            "images_added": len(result.images),
            "under_18_justification": bool((info.under_18_justification or "").strip()),
        },
        actor=info.added_by,
    )
    return result


def list_subjects(store: Store) -> list[dict]:
    with store.session() as s:
        rows = s.execute(
            select(Person, SubjectDetails)
            .join(Gallery)
            .join(SubjectDetails, SubjectDetails.person_id == Person.id)
            .where(Gallery.name == SUBJECTS_GALLERY)
            .order_by(Person.reference)
        ).all()
        return [
            {
                "reference": p.reference,
                "name": p.name,
                "category": d.category,
                "reason": d.reason,
                "images": len(p.images),
                "review_date": d.review_date.isoformat(),
                "added_by": d.added_by,
                "under_18": d.date_of_birth is not None and age_on(d.date_of_birth, date.today()) < 18,
            }
            for p, d in rows
        ]


def subject(session: Session, reference: str) -> tuple[Person, SubjectDetails]:
    row = session.execute(
        select(Person, SubjectDetails)
        .join(Gallery)
        .join(SubjectDetails, SubjectDetails.person_id == Person.id)
        .where(Gallery.name == SUBJECTS_GALLERY, Person.reference == reference)
    ).first()
    if row is None:
        raise NotFoundError(f"no watchlist subject with reference {reference!r}")
    return row[0], row[1]


def subject_summary(store: Store, reference: str) -> dict:
    """One subject's details and their reference images' quality (not the images themselves)."""
    with store.session() as s:
        person, d = subject(s, reference)
        return {
            "reference": person.reference,
            "name": person.name,
            "category": d.category,
            "category_label": CATEGORIES.get(d.category, d.category),
            "reason": d.reason,
            "image_source": d.image_source,
            "lawful_basis": d.lawful_basis,
            "added_by": d.added_by,
            "review_date": d.review_date.isoformat(),
            "date_of_birth": d.date_of_birth.isoformat() if d.date_of_birth else None,
            "under_18_justification": d.under_18_justification,
            "images": [{"id": i.id, "source": i.source_name, "quality": i.quality} for i in person.images],
        }


def reference_image(store: Store, reference: str, image_id: int) -> bytes:
    """A subject's reference image as stored (decrypted): a read of biometric data, so audited."""
    from openlfr.services.gallery import image_context

    with store.session() as s:
        person, _ = subject(s, reference)
        image = next((i for i in person.images if i.id == image_id), None)
        if image is None:
            raise NotFoundError(f"subject {reference!r} has no reference image {image_id}")
        data = store.read_blob(image.file, image_context(image.id))
    audit.record(store, "subject.view_image", "subject", reference, {"image_id": image_id})
    return data
