"""Custody gallery import: killed and resumed it ends identical to an uninterrupted import; every
unusable image or manifest row is a reject with its reason; manifests carry attributes and several
images per record. Real engine, real SQLite, the real CLI in a subprocess where a kill is needed."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from openlfr.cli.main import app
from openlfr.services import audit, custody, demo_images
from openlfr.storage import Store
from openlfr.storage.models import CustodyImage, CustodyImport, CustodyRecord

PEOPLE, PER_PERSON, BATCH = 20, 3, 8


@pytest.fixture
def make_home(tmp_path: Path, model_home: Path, engine):
    """Data directories that start with the session's cleaned model cache (``engine`` builds it)."""

    def make(name: str) -> Path:
        target = tmp_path / name
        (target / "models").mkdir(parents=True)
        for f in (model_home / "models").iterdir():
            (target / "models" / f.name).symlink_to(f)
        return target

    return make


@pytest.fixture(scope="module")
def lfw_tree(lfw_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 LFW images of 20 people (3 each), laid out as LFW is: ``Name/Name_0001.jpg``."""
    target = tmp_path_factory.mktemp("lfw-custody")
    people = [d for d in sorted((lfw_root / "lfw-deepfunneled").iterdir()) if len(list(d.glob("*.jpg"))) >= PER_PERSON]
    for person in people[:PEOPLE]:
        (target / person.name).mkdir()
        for image in sorted(person.glob("*.jpg"))[:PER_PERSON]:
            shutil.copy(image, target / person.name / image.name)
    return target


def cli_import(home: Path, source: Path, log: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-c", "from openlfr.cli.main import app; app()", "custody", "import", str(source)]
    command += ["--home", str(home), "--batch-size", str(BATCH), *extra]
    with log.open("a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def db_scalar(home: Path, sql: str) -> object:
    """Read the database from outside the importing process, as an operator would."""
    try:
        with sqlite3.connect(f"file:{home / 'openlfr.db'}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute(sql).fetchone()
            return row[0] if row else None
    except sqlite3.OperationalError:  # not created or not migrated yet
        return None


def wait_for_images(home: Path, at_least: int, process: subprocess.Popen, log: Path) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        count = db_scalar(home, "SELECT count(*) FROM custody_images") or 0
        if count >= at_least:
            return int(count)
        assert process.poll() is None, f"the import ended before {at_least} images were committed:\n{log.read_text()}"
        time.sleep(0.01)
    raise AssertionError(f"no {at_least} images committed in time:\n{log.read_text()}")


def gallery(home: Path) -> tuple[dict[tuple[str, str], np.ndarray], Store]:
    """Every stored image keyed by (custody id, sha256): checked to decrypt to the original bytes."""
    store = Store(home)
    templates: dict[tuple[str, str], np.ndarray] = {}
    with store.session() as s:
        rows = s.execute(select(CustodyRecord.custody_id, CustodyImage).join(CustodyImage.record)).all()
    for custody_id, image in rows:
        key = (custody_id, image.source_sha256)
        assert key not in templates, f"duplicate {key}"
        original = store.read_blob(image.file, custody.custody_image_context(image.id))
        assert hashlib.sha256(original).hexdigest() == image.source_sha256
        templates[key] = custody.image_template(store, image.id)
    return templates, store


def assert_no_orphans(store: Store) -> None:
    """What a crash left unreferenced is swept (the store does it at open once it is 2 minutes old);
    after that the folder holds exactly the files the database refers to."""
    swept = store.sweep_orphans(min_age_s=0)
    assert all(f.startswith("custody/") for f in swept)
    on_disk = {f"custody/{p.name}" for p in (store.home / "custody").iterdir()}
    assert on_disk == store.referenced_files()


def import_row(store: Store) -> tuple:
    with store.session() as s:
        (imp,) = s.scalars(select(CustodyImport)).all()
        return imp.status, imp.total, imp.imported, imp.rejected, imp.skipped


def reject_set(store: Store) -> set[tuple]:
    return {(r["source"], r["custody_id"], r["reason"]) for r in custody.rejects(store)}


@pytest.mark.data
@pytest.mark.slow
def test_killed_interrupted_and_resumed_import_equals_an_uninterrupted_one(lfw_tree, make_home, engine, tmp_path) -> None:
    total = PEOPLE * PER_PERSON
    home, log = make_home("resumed"), tmp_path / "import.log"

    # 1. SIGKILL once some batches are committed: nothing runs on the way out.
    process = cli_import(home, lfw_tree, log)
    killed_at = wait_for_images(home, BATCH, process, log)
    process.send_signal(signal.SIGKILL)
    assert process.wait(30) == -signal.SIGKILL
    assert db_scalar(home, "SELECT status FROM custody_imports") == "running"

    # 2. Resume, then Ctrl-C: the batch in hand is committed and the import marked interrupted.
    process = cli_import(home, lfw_tree, log)
    interrupted_at = wait_for_images(home, killed_at + BATCH, process, log)
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130, log.read_text()
    assert "Interrupted" in log.read_text() and "(resumed)" in log.read_text()
    assert db_scalar(home, "SELECT status FROM custody_imports") == "interrupted"
    assert db_scalar(home, "SELECT count(*) FROM custody_imports") == 1

    # 3. Resume to the end.
    process = cli_import(home, lfw_tree, log, "--json")
    assert process.wait(120) == 0, log.read_text()
    final = json.loads(log.read_text()[log.read_text().rindex('{\n  "import_id"') :])
    assert final["status"] == "completed" and final["resumed"] and final["skipped"] >= interrupted_at

    # The same import into another home, in one go.
    clean_home = make_home("uninterrupted")
    clean_store = Store(clean_home)
    report = custody.import_custody(clean_store, engine, lfw_tree, "test", workers=2, batch_size=BATCH)
    assert report.status == "completed" and report.done == total and report.imported > interrupted_at

    resumed, store = gallery(home)
    clean, clean_store = gallery(clean_home)
    assert killed_at < interrupted_at < len(resumed)
    assert set(resumed) == set(clean) and len(resumed) == report.imported
    for key, template in clean.items():
        np.testing.assert_allclose(resumed[key], template, atol=1e-5)
    assert import_row(store) == import_row(clean_store) == ("completed", total, report.imported, report.rejected, 0)
    assert reject_set(store) == reject_set(clean_store) and len(reject_set(store)) == report.rejected
    assert_no_orphans(store)
    assert_no_orphans(clean_store)
    assert audit.verify(store).ok
    events = sorted(audit.search(store, action="custody.import"), key=lambda e: e["seq"])  # a prefix: both actions
    # the SIGKILL left no event of its own: the resuming run records it (issue 12, finding 10)
    assert [(e["action"], e["details"].get("status")) for e in events] == [
        ("custody.import_interrupted", None), ("custody.import", "interrupted"), ("custody.import", "completed"),
    ]  # fmt: skip


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def test_every_unusable_image_is_a_reject_with_its_reason(store: Store, engine, tmp_path: Path) -> None:
    hopper_bytes = demo_images.grace_hopper_path().read_bytes()
    hopper, collins = demo_images.grace_hopper(), demo_images.eileen_collins()
    files = {
        "good/hopper.jpg": hopper_bytes,
        "good/hopper2.jpg": hopper_bytes,  # the same image twice for one record (sorted after hopper.jpg)
        "fake/notes.jpg": b"custody notes, not a photograph\n" * 20,
        "truncated/half.jpg": hopper_bytes[: len(hopper_bytes) // 2],
        "noface/noise.png": cv2.imencode(".png", np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8))[1].tobytes(),
        "two/pair.jpg": jpeg(np.hstack([cv2.resize(hopper, (341, 400)), cv2.resize(collins, (400, 400))])),
        "blurred/hopper.jpg": jpeg(cv2.GaussianBlur(hopper, (0, 0), 8)),
        "C-77.png": cv2.imencode(".png", collins)[1].tobytes(),  # directly in the folder: record "C-77"
        ".hidden/skip.jpg": hopper_bytes,
        "readme.txt": b"not an image file name",
    }
    root = tmp_path / "custody"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    report = custody.import_custody(store, engine, root, "officer-1", workers=2)
    assert (report.status, report.total, report.imported, report.rejected, report.skipped) == ("completed", 8, 2, 6, 0)
    reasons = {r["source"]: r["reason"] for r in custody.rejects(store, report.import_id)}
    expected = {
        "good/hopper2.jpg": "duplicate: the same image is already stored for custody record good as good/hopper.jpg",
        "fake/notes.jpg": "not an image",
        "truncated/half.jpg": "corrupt or truncated",
        "noface/noise.png": "no face found",
        "two/pair.jpg": "shows 2 faces",
        "blurred/hopper.jpg": "not good enough: sharpness",
    }
    assert set(reasons) == set(expected)
    for source, text in expected.items():
        assert text in reasons[source], reasons[source]
    rows = list(csv.DictReader(io.StringIO(custody.rejects_csv(store, report.import_id))))
    assert {r["source"] for r in rows} == set(expected) and all(r["reason"] for r in rows)

    assert {(r["custody_id"], r["images"]) for r in custody.list_records(store)} == {("good", 1), ("C-77", 1)}
    assert_no_orphans(store)
    with store.session() as s:
        image_id = s.scalar(select(CustodyImage.id).where(CustodyImage.source == "good/hopper.jpg"))
    assert custody.custody_image_bytes(store, image_id, actor="examiner-1") == hopper_bytes
    assert audit.search(store, action="custody.view_image")[0]["actor"] == "examiner-1"

    # A finished import run again is a new import: what is stored is skipped, rejects are re-examined.
    again = custody.import_custody(store, engine, root, "officer-1", workers=1)
    assert again.import_id != report.import_id
    assert (again.imported, again.skipped, again.rejected) == (0, 2, 6)
    assert custody.stats(store) | {"latest_import": None} == {
        "records": 2, "images": 2, "imports": 2, "rejects": 12, "packs": [engine.pack_id], "latest_import": None,
    }  # fmt: skip


def test_manifest_with_attributes_several_images_per_record_and_bad_rows(make_home, tmp_path: Path) -> None:
    home = make_home("home")
    images = tmp_path / "batch" / "img"
    images.mkdir(parents=True)
    shutil.copy(demo_images.grace_hopper_path(), images / "hopper.jpg")
    cv2.imwrite(str(images / "hopper-small.png"), cv2.resize(demo_images.grace_hopper(), None, fx=0.6, fy=0.6))
    cv2.imwrite(str(images / "collins.png"), demo_images.eileen_collins())
    manifest = tmp_path / "batch" / "manifest.csv"
    manifest.write_text(
        "custody_id,image_path,capture_date,surname,force\n"
        "C-1,img/hopper.jpg,2020-01-02,Hopper,Met\n"
        "C-1,img/hopper-small.png,2021-03-04,,\n"
        "C-2,img/collins.png,,Collins,Kent\n"
        "C-3,img/missing.jpg,2020-01-01,Nobody,Met\n"
        "C-4,img/hopper.jpg,2020-02-30,Hopper,Met\n"
        ",img/collins.png,,,\n"
    )
    runner = CliRunner()
    out = tmp_path / "rejects.csv"
    args = ["custody", "import", str(manifest), "--home", str(home), "--by", "officer-2", "--rejects-out", str(out), "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert (report["imported"], report["rejected"], report["total"]) == (3, 3, 6)

    reasons = {row["custody_id"]: row["reason"] for row in csv.DictReader(out.open())}
    assert "file not found" in reasons["C-3"]
    assert "capture_date '2020-02-30' is not a date" in reasons["C-4"]
    assert "no custody_id" in reasons[""]

    store = Store(home)
    records = {r["custody_id"]: r for r in custody.list_records(store)}
    assert {k: (v["images"], v["attributes"]) for k, v in records.items()} == {
        "C-1": (2, {"surname": "Hopper", "force": "Met"}),
        "C-2": (1, {"surname": "Collins", "force": "Kent"}),
    }
    with store.session() as s:
        dates = {i.source: i.capture_date.isoformat() if i.capture_date else None for i in s.scalars(select(CustodyImage))}
    assert dates == {"img/hopper.jpg": "2020-01-02", "img/hopper-small.png": "2021-03-04", "img/collins.png": None}
    assert audit.search(store, action="custody.import")[0]["actor"] == "officer-2"

    r = runner.invoke(app, ["custody", "rejects", "--import", str(report["import_id"]), "--home", str(home), "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 3
    r = runner.invoke(app, ["custody", "delete", "C-1", "--by", "supervisor", "--home", str(home)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["custody", "stats", "--home", str(home), "--json"])
    assert (json.loads(r.stdout)["records"], json.loads(r.stdout)["images"]) == (1, 1)
    assert {f"custody/{p.name}" for p in (home / "custody").iterdir()} == store.referenced_files()
    assert audit.search(store, action="custody.delete")[0]["details"]["images"] == 2
    r = runner.invoke(app, ["custody", "delete", "C-1", "--by", "supervisor", "--home", str(home)])
    assert r.exit_code == 2 and "does not exist" in r.output
    assert os.path.exists(home / "openlfr.db")


# --- hostile names and manifests (issue 12, finding 8) -------------------------------------------


def write_named(folder: Path, name: bytes, data: bytes) -> bytes:
    """Create a file whose name is raw bytes (not necessarily UTF-8); returns its path as bytes."""
    path = os.path.join(os.fsencode(folder), name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def test_names_that_are_not_utf8_are_recorded_escaped(store: Store, engine, tmp_path: Path) -> None:
    """Such a name used to raise UnicodeEncodeError when its row was written, at every resume."""
    from openlfr.services.gallery import enrol
    from openlfr.storage.models import ReferenceImage

    root = tmp_path / "custody"
    (root / "P-1").mkdir(parents=True)
    photo = write_named(root / "P-1", b"photo-\xff.jpg", demo_images.grace_hopper_path().read_bytes())
    write_named(root, b"C-\xe9.png", cv2.imencode(".png", demo_images.eileen_collins())[1].tobytes())

    report = custody.import_custody(store, engine, root, "officer-1", workers=1)
    assert (report.status, report.imported, report.rejected) == ("completed", 1, 1)
    with store.session() as s:
        assert list(s.scalars(select(CustodyImage.source))) == ["P-1/photo-\\xff.jpg"]
    (reject,) = custody.rejects(store, report.import_id)
    assert reject["source"] == "C-\\xe9.png" and "not valid UTF-8" in reject["reason"]
    assert "C-\\xe9.png" in custody.rejects_csv(store)
    again = custody.import_custody(store, engine, root, "officer-1", workers=2)
    assert (again.status, again.skipped, again.rejected) == ("completed", 1, 1)

    enrol(store, engine, "R-1", "Grace Hopper", [os.fsdecode(photo)])
    with store.session() as s:
        assert list(s.scalars(select(ReferenceImage.source_name))) == ["photo-\\xff.jpg"]
    assert audit.verify(store).ok


def finished_within(seconds: float, work) -> object:
    """``work()``'s result, failing (instead of hanging the suite) when it takes longer than ``seconds``."""
    import threading

    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(value=work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it hangs"
    return result["value"]


def test_manifest_rows_naming_devices_pipes_folders_or_huge_files_are_refused_unread(
    store: Store, engine, tmp_path: Path
) -> None:
    """A FIFO blocked the import for ever and /dev/zero was read until memory ran out; the size limit
    was checked only after reading the whole file."""
    from openlfr.media.images import MAX_BYTES

    batch = tmp_path / "batch"
    batch.mkdir()
    os.mkfifo(batch / "pipe.jpg")
    with open(batch / "huge.jpg", "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: costs no disk
    (batch / "folder.jpg").mkdir()
    manifest = batch / "manifest.csv"
    manifest.write_text("custody_id,image_path\nC-1,pipe.jpg\nC-2,huge.jpg\nC-3,folder.jpg\nC-4,/dev/zero\n")

    report = finished_within(60, lambda: custody.import_custody(store, engine, manifest, "officer-1", workers=1))
    reasons = {r["custody_id"]: r["reason"] for r in custody.rejects(store, report.import_id)}
    assert "pipe.jpg is not a file (only regular files" in reasons["C-1"]
    assert f"{MAX_BYTES + 1} bytes, larger than" in reasons["C-2"] and "not read" in reasons["C-2"]
    assert "folder.jpg is not a file" in reasons["C-3"]
    assert "outside the manifest's folder" in reasons["C-4"]

    again = finished_within(60, lambda: custody.import_custody(
        store, engine, manifest, "officer-1", workers=2, allow_outside=True))
    reasons = {r["custody_id"]: r["reason"] for r in custody.rejects(store, again.import_id)}
    assert "/dev/zero is not a file" in reasons["C-4"] and len(reasons) == 4


def test_manifest_paths_stay_inside_the_manifests_folder_unless_allowed(make_home, tmp_path: Path) -> None:
    """``../``, absolute paths and symbolic links out of the folder are refused before anything is read."""
    home = make_home("home")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(demo_images.grace_hopper_path(), outside / "hopper.jpg")
    images = tmp_path / "batch" / "img"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "collins.png"), demo_images.eileen_collins())
    (images / "link.jpg").symlink_to(outside / "hopper.jpg")
    manifest = tmp_path / "batch" / "manifest.csv"
    manifest.write_text(
        "custody_id,image_path\n"
        "C-1,img/collins.png\n"
        "C-2,../elsewhere/hopper.jpg\n"
        f"C-3,{outside / 'hopper.jpg'}\n"
        "C-4,img/link.jpg\n"
        "C-5,/etc/shadow\n"
    )
    runner = CliRunner()
    args = ["custody", "import", str(manifest), "--home", str(home), "--by", "officer-2", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert (report["imported"], report["rejected"]) == (1, 4)
    store = Store(home)
    reasons = {x["custody_id"]: x["reason"] for x in custody.rejects(store, report["import_id"])}
    assert set(reasons) == {"C-2", "C-3", "C-4", "C-5"}
    for reason in reasons.values():
        assert "outside the manifest's folder" in reason and "--allow-outside" in reason, reason
    assert [x["custody_id"] for x in custody.list_records(store)] == ["C-1"]

    r = runner.invoke(app, [*args, "--allow-outside"])
    assert r.exit_code == 0, r.output
    again = json.loads(r.stdout)
    assert (again["imported"], again["skipped"], again["rejected"]) == (3, 1, 1)  # /etc/shadow: not an image
    assert [x["custody_id"] for x in custody.list_records(store)] == ["C-1", "C-2", "C-3", "C-4"]
