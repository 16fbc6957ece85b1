"""A small custody image database for the RFR tests: real faces from the demo images plus filler records."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np

from openlfr.services import demo_images
from openlfr.services.custody import custody_image_context, custody_template_context
from openlfr.storage import Store
from openlfr.storage.models import CustodyImage, CustodyRecord


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def seed_custody(store: Store, engine, fillers: int = 30, seed: int = 0) -> dict[str, int]:
    """Custody records for Grace Hopper (C-HOPPER) and Eileen Collins (C-COLLINS), each templated by the
    engine from their demo image, and ``fillers`` records with random unit templates and plain images.
    Returns custody id -> custody image id."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, bytes, np.ndarray]] = []
    for custody_id, image in (("C-HOPPER", demo_images.grace_hopper()), ("C-COLLINS", demo_images.eileen_collins())):
        (face,) = engine.faces(image)
        rows.append((custody_id, _jpeg(image), face.template))
    for i in range(fillers):
        t = rng.normal(size=engine.dimension).astype(np.float32)
        picture = np.full((160, 128, 3), 60 + (i * 7) % 150, np.uint8)
        rows.append((f"C-{i:05d}", _jpeg(picture), t / np.linalg.norm(t)))
    ids: dict[str, int] = {}
    with store.session() as s:
        for custody_id, data, template in rows:
            record = CustodyRecord(custody_id=custody_id, attributes={})
            s.add(record)
            s.flush()
            image = CustodyImage(
                record_id=record.id, source=f"{custody_id}.jpg", source_sha256=hashlib.sha256(data).hexdigest(),
                file="", template=b"", quality={}, pack_id=engine.pack_id,
            )  # fmt: skip
            s.add(image)
            s.flush()  # sealed to the row's id, as the import does
            image.file = store.write_blob("custody", data, custody_image_context(image.id))
            image.template = store.cipher.encrypt(
                template.astype(np.float32).tobytes(), custody_template_context(engine.pack_id, image.id)
            )
            ids[custody_id] = image.id
    return ids


def two_faces() -> np.ndarray:
    """Hopper and Collins side by side: a probe in which the examiner must choose the face."""
    hopper = cv2.resize(demo_images.grace_hopper(), (300, 352))
    collins = cv2.resize(demo_images.eileen_collins(), (300, 300))
    canvas = np.full((380, 640, 3), 200, np.uint8)
    canvas[10:362, 10:310] = hopper
    canvas[40:340, 330:630] = collins
    return canvas
