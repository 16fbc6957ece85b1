"""Encrypted data is bound to its record (issue 12, finding 7).

Someone with write access to the database (or the data folder) who swaps two people's template
columns or image files must not get one person's face read, matched or shown as the other's:
decryption fails and names the record, while data left in place still decrypts. Migration 0008
re-encrypts data sealed the old way (purpose-only associated data) and back.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

import openlfr.storage.store as store_module
from openlfr.services import custody, demo_images, deployments
from openlfr.services.gallery import gallery_matrix
from openlfr.services.subjects import SUBJECTS_GALLERY, SubjectInfo, add_subject, reference_image
from openlfr.storage import Store
from openlfr.storage.crypto import KeyError_
from openlfr.storage.models import CustodyImage, Person, ReferenceImage
from rfr_helpers import seed_custody

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)


def _subject(store: Store, engine, reference: str, name: str, path: Path) -> None:
    info = SubjectInfo(
        reference, name, "serious-offence", "test subject", "demo image", "test", "officer-a", date.today() + timedelta(days=30)
    )
    add_subject(store, engine, info, [path])


def _two_subjects(store: Store, engine, tmp_path: Path) -> dict[str, int]:
    """Hopper and Collins enrolled; their reference image ids by reference."""
    collins = tmp_path / "collins.png"
    cv2.imwrite(str(collins), demo_images.eileen_collins())
    _subject(store, engine, "GH-1", "Grace Hopper", demo_images.grace_hopper_path())
    _subject(store, engine, "EC-1", "Eileen Collins", collins)
    with store.session() as s:
        return dict(s.execute(select(Person.reference, ReferenceImage.id).join(ReferenceImage.person)).all())


def _swap(store: Store, table: str, column: str, a: int, b: int) -> None:
    """What an insider with the database file could do: exchange one column between two rows."""
    with store.engine.begin() as c:
        va = c.execute(text(f"SELECT {column} FROM {table} WHERE id = :i"), {"i": a}).scalar_one()
        vb = c.execute(text(f"SELECT {column} FROM {table} WHERE id = :i"), {"i": b}).scalar_one()
        c.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :i"), {"v": vb, "i": a})
        c.execute(text(f"UPDATE {table} SET {column} = :v WHERE id = :i"), {"v": va, "i": b})


def test_swapped_reference_templates_and_images_fail_to_decrypt(store: Store, engine, tmp_path: Path) -> None:
    ids = _two_subjects(store, engine, tmp_path)
    hopper, collins = ids["GH-1"], ids["EC-1"]
    before = {ref: reference_image(store, ref, i) for ref, i in ids.items()}
    matrix, _ = gallery_matrix(store, engine, SUBJECTS_GALLERY)

    _swap(store, "reference_images", "template", hopper, collins)
    with pytest.raises(KeyError_, match=rf"reference_images:({hopper}|{collins}):template"):
        gallery_matrix(store, engine, SUBJECTS_GALLERY)
    assert reference_image(store, "GH-1", hopper) == before["GH-1"]  # the images were not touched
    _swap(store, "reference_images", "template", hopper, collins)
    assert (gallery_matrix(store, engine, SUBJECTS_GALLERY)[0] == matrix).all()  # put back: readable again

    _swap(store, "reference_images", "file", hopper, collins)
    with pytest.raises(KeyError_, match=rf"reference_images:{hopper}:file"):
        reference_image(store, "GH-1", hopper)
    with pytest.raises(KeyError_, match=rf"reference_images:{collins}:file"):
        reference_image(store, "EC-1", collins)
    assert gallery_matrix(store, engine, SUBJECTS_GALLERY)[0].shape == matrix.shape  # templates still in place
    _swap(store, "reference_images", "file", hopper, collins)

    # Swapping the files' contents in the data folder instead of the rows: the same refusal.
    with store.session() as s:
        path_h, path_c = (store.home / s.get_one(ReferenceImage, i).file for i in (hopper, collins))
    blob_h, blob_c = path_h.read_bytes(), path_c.read_bytes()
    path_h.write_bytes(blob_c)
    path_c.write_bytes(blob_h)
    with pytest.raises(KeyError_, match=rf"reference_images:{hopper}:file"):
        reference_image(store, "GH-1", hopper)
    path_h.write_bytes(blob_h)
    path_c.write_bytes(blob_c)
    assert {ref: reference_image(store, ref, i) for ref, i in ids.items()} == before


def test_swapped_custody_templates_and_images_fail_to_decrypt(store: Store, engine) -> None:
    ids = seed_custody(store, engine, fillers=2)
    a, b, untouched = sorted(ids.values())[:3]
    image_a, template_untouched = custody.custody_image_bytes(store, a), custody.image_template(store, untouched)

    _swap(store, "custody_images", "template", a, b)
    with pytest.raises(KeyError_, match=rf"custody_images:{a}:template"):
        custody.image_template(store, a)
    _swap(store, "custody_images", "file", a, b)
    with pytest.raises(KeyError_, match=rf"custody_images:{b}:file"):
        custody.custody_image_bytes(store, b)
    assert (custody.image_template(store, untouched) == template_untouched).all()
    _swap(store, "custody_images", "file", a, b)
    assert custody.custody_image_bytes(store, a) == image_a


def test_swapped_camera_addresses_fail_to_decrypt(store: Store) -> None:
    now = datetime.now(UTC)
    cams = [
        deployments.CameraSpec("north", "rtsp://u:north-pw@10.0.0.1/s"),
        deployments.CameraSpec("south", "rtsp://u:south-pw@10.0.0.2/s"),
    ]
    deployment_id = deployments.plan(store, "T", "Street", "crime-hotspot", now, now + timedelta(hours=1), 0.45, cams, "planner")
    assert [c.source for c in deployments.camera_sources(store, deployment_id)] == [c.source for c in cams]
    with store.session() as s:
        a, b = s.scalars(text("SELECT id FROM cameras ORDER BY id")).all()
    _swap(store, "cameras", "source_sealed", a, b)
    with pytest.raises(KeyError_, match=rf"cameras:({a}|{b}):source_sealed"):
        deployments.camera_sources(store, deployment_id)


def _alembic(store: Store, action: str, revision: str) -> None:
    """Run one Alembic step on ``store`` the way Store does, with the key and the data folder."""
    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    with store.engine.begin() as connection:
        config.attributes.update(connection=connection, cipher=store.cipher, home=store.home)
        getattr(command, action)(config, revision)


def test_migration_reencrypts_old_data_and_back(tmp_path: Path, engine) -> None:
    store = Store(tmp_path / "home")
    ids = _two_subjects(store, engine, tmp_path)
    seed_custody(store, engine, fillers=1)
    now = datetime.now(UTC)
    cams = [deployments.CameraSpec("north", "rtsp://u:pw@10.0.0.1/s")]
    deployment_id = deployments.plan(store, "T", "Street", "crime-hotspot", now, now + timedelta(hours=1), 0.45, cams, "planner")
    images = {ref: reference_image(store, ref, i) for ref, i in ids.items()}
    matrix, _ = gallery_matrix(store, engine, SUBJECTS_GALLERY)
    with store.session() as s:
        custody_ids = list(s.scalars(select(CustodyImage.id)))
    custody_images = {i: custody.custody_image_bytes(store, i) for i in custody_ids}

    # Back to 0007: everything sealed the old way, with the purpose alone as associated data.
    _alembic(store, "downgrade", "0007")
    with store.session() as s:
        image = s.get_one(ReferenceImage, ids["GH-1"])
        assert store.read_blob(image.file, "reference-image") == images["GH-1"]
        assert store.cipher.decrypt(image.template, f"template:{image.pack_id}")
        custody_row = s.get_one(CustodyImage, custody_ids[0])
        assert store.read_blob(custody_row.file, "custody-image") == custody_images[custody_ids[0]]
        sealed = s.execute(text("SELECT source_sealed FROM cameras")).scalar_one()
        assert store.cipher.decrypt(sealed, "camera-source") == b"rtsp://u:pw@10.0.0.1/s"
    store.close()

    # Opening the store upgrades to 0008: read the new way, old files swept as orphans.
    reopened = Store(tmp_path / "home")
    assert {ref: reference_image(reopened, ref, i) for ref, i in ids.items()} == images
    assert (gallery_matrix(reopened, engine, SUBJECTS_GALLERY)[0] == matrix).all()
    assert {i: custody.custody_image_bytes(reopened, i) for i in custody_ids} == custody_images
    assert [c.source for c in deployments.camera_sources(reopened, deployment_id)] == ["rtsp://u:pw@10.0.0.1/s"]
    with reopened.session() as s:
        new_file = s.get_one(ReferenceImage, ids["GH-1"]).file
    with pytest.raises(KeyError_):  # the old associated data no longer opens it
        reopened.read_blob(new_file, "reference-image")
    # The files sealed the old way are orphans now; sweeping them leaves the new ones readable.
    assert reopened.sweep_orphans(min_age_s=0)
    assert {ref: reference_image(reopened, ref, i) for ref, i in ids.items()} == images
    assert {i: custody.custody_image_bytes(reopened, i) for i in custody_ids} == custody_images
