"""Enrolment into, and identification against, a gallery of known people.

Enrolment checks *every* image (readable, exactly one clear face, quality limits) before anything
is written; then the encrypted images and templates are committed in one transaction. A failure
at any point leaves the store as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from openlfr.core import FaceEngine, QualityPolicy, by_prominence, main_face, top_k
from openlfr.core.types import Face
from openlfr.errors import ImageError, NoFaceError, NotFoundError, OpenLFRError, QualityError, StoreError
from openlfr.media.images import decode_image, display_name, load_image, read_image_file
from openlfr.services import audit
from openlfr.storage import Store
from openlfr.storage.crypto import record_context, template_context
from openlfr.storage.models import Gallery, Person, ReferenceImage

DEFAULT_GALLERY = "default"
IMAGE_CONTEXT = "reference-image"

#: A second face counts as "another person in the picture" when its eyes are at least this
#: fraction as far apart as the main face's; smaller faces far in the background are ignored.
SECOND_FACE_RATIO = 0.5


def image_context(image_id: int | None, column: str = "file") -> str:
    """Associated data of reference image ``image_id``'s encrypted file."""
    return record_context(IMAGE_CONTEXT, "reference_images", image_id, column)


def reference_template_context(pack_id: str, image_id: int | None) -> str:
    """Associated data of reference image ``image_id``'s encrypted template."""
    return record_context(template_context(pack_id), "reference_images", image_id, "template")


@dataclass
class EnrolledImage:
    source: str
    quality: dict[str, float]


@dataclass
class EnrolResult:
    gallery: str
    reference: str
    name: str
    images: list[EnrolledImage]
    total_images: int

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Candidate:
    reference: str
    name: str
    score: float


@dataclass
class FaceResult:
    box: tuple[float, float, float, float]
    quality: dict[str, float]
    candidates: list[Candidate] = field(default_factory=list)
    #: The image's main face (:func:`openlfr.core.main_face`); results list it first.
    main: bool = False

    def as_dict(self) -> dict:
        return {
            "box": [round(v, 1) for v in self.box],
            "quality": self.quality,
            "main": self.main,
            "candidates": [asdict(c) for c in self.candidates],
        }


def reference_face(faces: list[Face], source: str) -> Face:
    """The single face of a reference image (the main face, by the one rule of :func:`openlfr.core.main_face`),
    or a clear error. Another face nearly as large is a quality refusal like any other: the image is not
    fit to be a reference, and callers that list refusals (custody import) treat it as one."""
    if not faces:
        raise NoFaceError(f"no face found in {source}")
    main = main_face(faces)
    others = [f for f in faces if f is not main and f.detection.inter_eye_px >= SECOND_FACE_RATIO * main.detection.inter_eye_px]
    if others:
        raise QualityError(f"{source} shows {len(others) + 1} faces; a reference image must show only the person enrolled")
    return main


def enrol(
    store: Store,
    engine: FaceEngine,
    reference: str,
    name: str,
    images: list[str | Path | tuple[str, bytes]],
    gallery: str = DEFAULT_GALLERY,
    policy: QualityPolicy | None = None,
    on_person: Callable[[Session, Person], None] | None = None,
    actor: str | None = None,
) -> EnrolResult:
    """Add a person (or more images of an existing one) to a gallery.

    ``images`` are file paths or ``(name, encoded bytes)`` pairs. ``on_person`` runs inside the
    same transaction (e.g. to store a watchlist subject's details), so it commits or fails with it.
    ``actor`` names who enrolled them in the audit trail (default: the interface's, see ``audit.acting_as``).
    """
    if not images:
        raise OpenLFRError("at least one image is needed to enrol a person")
    if not reference.strip() or not name.strip():
        raise OpenLFRError("a person needs a non-empty reference and name")
    policy = policy or QualityPolicy()
    prepared = []
    for item in images:
        if isinstance(item, tuple):
            source, data = display_name(item[0]), item[1]
        else:
            # A name that is not UTF-8 is stored and shown escaped (it would not encode otherwise).
            source, path = display_name(item), Path(item)
            if not path.exists():
                raise ImageError(f"{source} does not exist")
            try:
                data = read_image_file(path)  # regular files only, size-checked before reading
            except OSError as exc:
                raise ImageError(f"{source} cannot be read: {exc.strerror or exc}") from exc
        image = decode_image(data, name=source)
        face = reference_face(engine.faces(image), source)
        problems = policy.failures(face.quality)
        if problems:
            raise QualityError(f"{source} is not good enough to enrol: " + "; ".join(problems))
        prepared.append((source, data, image.shape, face))

    written: list[str] = []
    try:
        with store.session() as s:
            g = s.scalar(select(Gallery).where(Gallery.name == gallery))
            if g is None:
                g = Gallery(name=gallery, pack_id=engine.pack_id)
                s.add(g)
            elif g.pack_id != engine.pack_id:
                raise StoreError(
                    f"gallery {gallery!r} holds templates of model pack {g.pack_id}; "
                    f"this engine makes {engine.pack_id}, and the two must not be mixed"
                )
            person = s.scalar(select(Person).where(Person.gallery == g, Person.reference == reference))
            if person is None:
                person = Person(gallery=g, reference=reference, name=name)
                s.add(person)
            elif person.name != name:
                raise StoreError(f"{reference!r} is already enrolled as {person.name!r}, not {name!r}")
            added = []
            for source, data, shape, face in prepared:
                image = ReferenceImage(
                    file="",  # sealed below, once the row has its id
                    sha256=hashlib.sha256(data).hexdigest(),
                    source_name=Path(source).name,
                    width=int(shape[1]),
                    height=int(shape[0]),
                    quality=face.quality.as_dict(),
                    pack_id=engine.pack_id,
                    template=b"",
                )
                person.images.append(image)
                added.append(image)
            s.flush()
            for image, (_, data, _, face) in zip(added, prepared, strict=True):
                assert face.template is not None
                image.file = store.write_blob("images", data, image_context(image.id, "file"))
                written.append(image.file)
                image.template = store.cipher.encrypt(
                    face.template.astype(np.float32).tobytes(), reference_template_context(image.pack_id, image.id)
                )
            s.flush()
            if on_person is not None:
                on_person(s, person)
            total = len(person.images)
    except BaseException:
        for relative in written:
            store.delete_blob(relative)
        raise
    details = {"gallery": gallery, "images_added": len(prepared), "total_images": total}
    audit.record(store, "gallery.enrol", "person", reference, details, actor=actor)
    return EnrolResult(
        gallery=gallery,
        reference=reference,
        name=name,
        images=[EnrolledImage(src, face.quality.as_dict()) for src, _, _, face in prepared],
        total_images=total,
    )


def gallery_matrix(store: Store, engine: FaceEngine, gallery: str) -> tuple[np.ndarray, list[Person]]:
    """All templates of a gallery (decrypted, in memory only) and the person each row belongs to."""
    with store.session() as s:
        g = s.scalar(select(Gallery).where(Gallery.name == gallery))
        if g is None:
            raise NotFoundError(f"gallery {gallery!r} does not exist; enrol someone into it first")
        if g.pack_id != engine.pack_id:
            raise StoreError(f"gallery {gallery!r} was built with model pack {g.pack_id}, not {engine.pack_id}")
        rows = s.execute(
            select(ReferenceImage.id, ReferenceImage.template, Person).join(Person).where(Person.gallery_id == g.id)
        ).all()
        matrix = (
            np.stack(
                [
                    np.frombuffer(store.cipher.decrypt(t, reference_template_context(g.pack_id, i)), dtype=np.float32)
                    for i, t, _ in rows
                ]
            )
            if rows
            else np.zeros((0, engine.dimension), np.float32)
        )
        return matrix, [p for _, _, p in rows]


def identify(
    store: Store,
    engine: FaceEngine,
    image: str | Path | np.ndarray,
    gallery: str = DEFAULT_GALLERY,
    threshold: float | None = None,
    k: int = 5,
) -> list[FaceResult]:
    """Candidates at or above the threshold for every face in the image, best first.

    Faces come main face first (:func:`openlfr.core.by_prominence`). Each person appears at most once per
    face, with the best score over their reference images. The default threshold is the pack's alert
    threshold, the one live alerts use: a lower "native" one lets far more strangers through as candidates.
    Nothing about the probe is stored.
    """
    threshold = engine.alert_threshold if threshold is None else threshold
    matrix, persons = gallery_matrix(store, engine, gallery)
    picture = load_image(image) if not isinstance(image, np.ndarray) else image
    faces = by_prominence(engine.faces(picture))
    results: list[FaceResult] = []
    if not faces:
        _audit_search(store, gallery, results, threshold, k)
        return results
    probes = np.stack([f.template for f in faces if f.template is not None])
    scores, rows = top_k(probes, matrix, k=k * 4)
    for face, face_scores, face_rows in zip(faces, scores, rows, strict=True):
        seen: set[int] = set()
        candidates = []
        for score, row in zip(face_scores, face_rows, strict=True):
            person = persons[row]
            if score < threshold or person.id in seen:
                continue
            seen.add(person.id)
            candidates.append(Candidate(person.reference, person.name, round(float(score), 4)))
            if len(candidates) == k:
                break
        results.append(FaceResult(face.detection.box, face.quality.as_dict(), candidates, main=face is faces[0]))
    _audit_search(store, gallery, results, threshold, k)
    return results


def _audit_search(store: Store, gallery: str, results: list[FaceResult], threshold: float, k: int) -> None:
    """A search is audited by what was searched and how much came back, never by the probe's face."""
    details = {
        "gallery": gallery,
        "faces": len(results),
        "candidates": sum(len(r.candidates) for r in results),
        "threshold": round(float(threshold), 4),
        "top_k": k,
    }
    audit.record(store, "gallery.identify", "gallery", gallery, details)


def list_people(store: Store, gallery: str = DEFAULT_GALLERY) -> list[dict]:
    with store.session() as s:
        g = s.scalar(select(Gallery).where(Gallery.name == gallery))
        if g is None:
            raise NotFoundError(f"gallery {gallery!r} does not exist")
        return [
            {"reference": p.reference, "name": p.name, "images": len(p.images)}
            for p in s.scalars(select(Person).where(Person.gallery_id == g.id).order_by(Person.reference))
        ]
