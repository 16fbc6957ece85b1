"""Enrolment and identification against the embedded store, including what must never be half-written."""

from __future__ import annotations

import base64
import io
import os
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from openlfr.core import QualityPolicy
from openlfr.errors import ImageError, NoFaceError, NotFoundError, OpenLFRError, QualityError, StoreError
from openlfr.models import load_engine
from openlfr.models.packs import SFACE_PACK
from openlfr.services import demo_images
from openlfr.services.gallery import enrol, identify, image_context, list_people
from openlfr.storage import Store
from openlfr.storage.models import ReferenceImage


def png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def stored_files(store: Store) -> list[Path]:
    folder = store.home / "images"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def count_rows(store: Store, table: str) -> int:
    with sqlite3.connect(store.home / "openlfr.db") as db:
        return db.execute(f"select count(*) from {table}").fetchone()[0]


def test_enrol_then_identify_finds_the_right_person(store: Store, engine) -> None:
    result = enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    assert result.total_images == 1 and result.images[0].quality["inter_eye_px"] > 40
    faces = identify(store, engine, demo_images.camera_scene())
    assert len(faces) == 2
    matched = [f for f in faces if f.candidates]
    assert len(matched) == 1
    assert matched[0].candidates[0].reference == "GH-1"
    assert matched[0].candidates[0].score > 0.8
    assert list_people(store) == [{"reference": "GH-1", "name": "Grace Hopper", "images": 1}]


def test_unenrolled_person_is_not_matched(store: Store, engine) -> None:
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    faces = identify(store, engine, demo_images.eileen_collins())
    assert len(faces) == 1 and faces[0].candidates == []


def test_more_images_of_the_same_person_add_up(store: Store, engine) -> None:
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    flipped = ("mirror.png", png(cv2.flip(demo_images.grace_hopper(), 1)))
    result = enrol(store, engine, "GH-1", "Grace Hopper", [flipped])
    assert result.total_images == 2
    # Each person is listed once per face, with their best score.
    faces = identify(store, engine, demo_images.grace_hopper(), threshold=0.0)
    assert [c.reference for c in faces[0].candidates] == ["GH-1"]


def test_reference_reused_for_someone_else_is_refused(store: Store, engine) -> None:
    enrol(store, engine, "P-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    with pytest.raises(StoreError, match="already enrolled as 'Grace Hopper'"):
        enrol(store, engine, "P-1", "Eileen Collins", [("a.png", png(demo_images.eileen_collins()))])


def test_identify_unknown_gallery(store: Store, engine) -> None:
    with pytest.raises(NotFoundError, match="gallery 'missing' does not exist"):
        identify(store, engine, demo_images.grace_hopper(), gallery="missing")


def test_no_face_in_enrolment_image(store: Store, engine) -> None:
    blank = np.full((300, 300, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match=r"no face found in blank\.png"):
        enrol(store, engine, "X", "Nobody", [("blank.png", png(blank))])


def test_no_face_when_identifying_is_an_answer_not_an_error(store: Store, engine) -> None:
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    assert identify(store, engine, np.full((300, 300, 3), 128, np.uint8)) == []


def test_several_faces_refused_for_enrolment_but_all_identified(store: Store, engine) -> None:
    scene = ("crowd.png", png(demo_images.camera_scene()))
    # Another face in a reference image is a quality refusal, of the same type as blur or a small face.
    with pytest.raises(QualityError, match="shows 2 faces"):
        enrol(store, engine, "X", "Someone", [scene])
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    faces = identify(store, engine, demo_images.camera_scene())
    assert len(faces) == 2
    # The main face (largest box, then detector score: the one rule of openlfr.core.main_face) comes first.
    assert [f.main for f in faces] == [True, False]
    assert faces[0].box[2] * faces[0].box[3] >= faces[1].box[2] * faces[1].box[3]
    assert faces[0].as_dict()["main"] is True


def test_identify_defaults_to_the_pack_alert_threshold(store: Store, engine) -> None:
    """Searches and alerts share one default: the pack's alert threshold, not its lower native one."""
    from openlfr.services import audit

    assert engine.native_threshold < engine.alert_threshold  # yunet-sface: 0.363 against 0.45
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    identify(store, engine, demo_images.eileen_collins())
    (event,) = audit.search(store, action="gallery.identify")
    assert event["details"]["threshold"] == round(engine.alert_threshold, 4)


def test_poor_quality_names_the_measure_and_limit(store: Store, engine) -> None:
    blurred = cv2.GaussianBlur(demo_images.grace_hopper(), (0, 0), 6)
    with pytest.raises(QualityError, match=r"sharpness .* is below the minimum 20"):
        enrol(store, engine, "GH-1", "Grace Hopper", [("blurred.png", png(blurred))])
    small = cv2.resize(demo_images.grace_hopper(), (102, 120), interpolation=cv2.INTER_AREA)
    canvas = np.full((400, 400, 3), 120, np.uint8)
    canvas[100:220, 100:202] = small
    with pytest.raises(QualityError, match=r"inter_eye_px .* is below the minimum 20"):
        enrol(store, engine, "GH-1", "Grace Hopper", [("small.png", png(canvas))])
    # A lenient policy lets the same image through: the limits are policy, not hard-wired.
    lenient = QualityPolicy(min_inter_eye_px=5, min_sharpness=None)
    enrol(store, engine, "GH-1", "Grace Hopper", [("small.png", png(canvas))], policy=lenient)


def test_one_bad_image_means_nothing_is_stored(store: Store, engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ImageError):
        enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path(), bad])
    assert stored_files(store) == []
    assert count_rows(store, "persons") == 0 and count_rows(store, "reference_images") == 0


def test_failure_inside_the_transaction_removes_written_files(store: Store, engine) -> None:
    enrol(store, engine, "P-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    before = stored_files(store)
    # The reference clash is only found inside the transaction, after the new files were written.
    with pytest.raises(StoreError):
        enrol(store, engine, "P-1", "Someone Else", [("h.png", png(demo_images.grace_hopper()))])
    assert stored_files(store) == before
    assert count_rows(store, "reference_images") == 1


def test_orphan_files_from_a_crash_are_swept_on_open(tmp_path: Path, engine) -> None:
    store = Store(tmp_path / "home")
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    kept = stored_files(store)
    orphan = store.write_blob("images", b"written just before a crash", "reference-image")
    store.close()
    # A fresh unreferenced file may belong to another process mid-write: it is left alone...
    assert Store(tmp_path / "home").sweep_orphans() == []
    # ...until it is old enough to be a crash's leftover.
    old = time.time() - 3600
    os.utime(tmp_path / "home" / orphan, (old, old))
    reopened = Store(tmp_path / "home")
    assert stored_files(reopened) == kept
    assert not (reopened.home / orphan).exists()


def test_biometric_data_is_encrypted_at_rest(store: Store, engine) -> None:
    original = demo_images.grace_hopper_path().read_bytes()
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    (blob,) = stored_files(store)
    data = blob.read_bytes()
    assert original[:64] not in data and not data.startswith(b"\xff\xd8")
    template = engine.faces(demo_images.grace_hopper())[0].template.astype(np.float32).tobytes()
    database = (store.home / "openlfr.db").read_bytes() + (store.home / "openlfr.db-wal").read_bytes()
    assert template[:32] not in database
    with store.session() as s:
        (image_id,) = s.scalars(select(ReferenceImage.id)).all()
    assert store.read_blob(blob.relative_to(store.home).as_posix(), image_context(image_id)) == original


def test_key_from_environment_and_wrong_key_refused(tmp_path: Path, engine, monkeypatch) -> None:
    monkeypatch.setenv("OPENLFR_KEY", base64.urlsafe_b64encode(b"k" * 32).decode())
    store = Store(tmp_path / "home")
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    assert not (tmp_path / "home" / "keys").exists()
    store.close()
    monkeypatch.setenv("OPENLFR_KEY", base64.urlsafe_b64encode(b"x" * 32).decode())
    with pytest.raises(OpenLFRError, match="wrong key or altered data"):
        identify(Store(tmp_path / "home"), engine, demo_images.grace_hopper())


def test_templates_from_another_model_pack_are_never_mixed(store: Store, engine, model_home: Path) -> None:
    enrol(store, engine, "GH-1", "Grace Hopper", [demo_images.grace_hopper_path()])
    other = load_engine(SFACE_PACK, home=model_home)
    other.pack_id = "another-pack:000000000000"
    with pytest.raises(StoreError, match="must not be mixed"):
        enrol(store, other, "EC-1", "Eileen Collins", [("ec.png", png(demo_images.eileen_collins()))])
    with pytest.raises(StoreError, match="was built with model pack"):
        identify(store, other, demo_images.grace_hopper())


def test_rgba_and_grayscale_references_enrol(store: Store, engine) -> None:
    img = Image.open(demo_images.grace_hopper_path())
    for mode, fmt in (("RGBA", "PNG"), ("L", "JPEG")):
        buf = io.BytesIO()
        img.convert(mode).save(buf, format=fmt)
        enrol(store, engine, "GH-1", "Grace Hopper", [(f"hopper.{fmt.lower()}", buf.getvalue())])
    faces = identify(store, engine, demo_images.grace_hopper())
    assert faces[0].candidates[0].score > 0.9
