"""The custody image database: bulk import from a folder or a CSV manifest, and its upkeep.

**Where each image's custody record id comes from.** A *folder* is walked recursively for image
files (by extension, hidden files skipped): an image inside a sub-folder belongs to the record
named by the folder that holds it (LFW's ``Name/Name_0001.jpg`` -> ``Name``); an image directly in
the source folder belongs to the record named by its file name without the extension
(``C-1234.jpg`` -> ``C-1234``). A *manifest* is a CSV file with the columns
``custody_id,image_path[,capture_date][,<attribute columns>]``: relative paths are relative to the
CSV's folder and every path must stay inside it (unless ``allow_outside``), ``capture_date`` is
``YYYY-MM-DD``, every other non-empty column is stored in the record's ``attributes``. Several
images may belong to one record either way. Only regular files are read, and a file over the size
limit is refused by its size before it is read.

**Resumable.** Each image is identified by (custody id, SHA-256 of the file's bytes). Rows are
committed in batches of ``batch_size`` with the import's counters, and the encrypted files of a
batch are written before its transaction commits (an interrupted batch leaves only orphans that
:class:`~openlfr.storage.Store` sweeps). Running the same source again continues its latest
unfinished import: images already stored or already rejected by it are skipped before they are
decoded, so a crash loses at most one batch of work and never duplicates one. Ctrl-C (or SIGTERM)
finishes the image in hand, commits the batch, and marks the import ``interrupted``.

**Both cores.** With ``workers >= 2`` a thread pool reads, hashes, decodes, detects and templates
images ahead of the main thread, which only encrypts, writes and commits (ONNX Runtime, OpenCV,
Pillow and hashlib release the GIL). ``workers=1`` does everything in the calling thread.
"""

from __future__ import annotations

import csv
import hashlib
import io
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from openlfr.core import FaceEngine, QualityPolicy
from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.media.images import decode_image, display_name, read_image_file
from openlfr.services import audit
from openlfr.services.gallery import reference_face
from openlfr.storage import Store
from openlfr.storage.crypto import custody_template_context, record_context
from openlfr.storage.models import CustodyImage, CustodyImport, CustodyRecord, CustodyReject, DeletionLog

IMAGE_CONTEXT = "custody-image"


def custody_image_context(image_id: int | None) -> str:
    """Associated data of custody image ``image_id``'s encrypted file."""
    return record_context(IMAGE_CONTEXT, "custody_images", image_id, "file")


BLOB_FOLDER = "custody"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".jp2"})
#: Images per transaction: a crash loses at most this much work.
BATCH_SIZE = 32
MAX_ID_LENGTH = 100
UNFINISHED = ("running", "interrupted")
IMPORT_COLUMNS = ("id", "source", "status", "started_by", "started_at", "finished_at", "total", "imported", "rejected", "skipped")


@dataclass
class ImportReport:
    """One run of an import. ``skipped`` counts images found already done (stored or rejected before)."""

    import_id: int
    source: str
    status: str
    resumed: bool
    total: int
    imported: int = 0
    skipped: int = 0
    rejected: int = 0
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.imported + self.skipped + self.rejected

    @property
    def images_per_s(self) -> float:
        """Images actually processed (imported or rejected) per second of this run."""
        return (self.imported + self.rejected) / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"done": self.done, "images_per_s": round(self.images_per_s, 2)}


@dataclass
class _Item:
    """One image named by the source, or a manifest row that cannot be used (``problem``)."""

    source: str
    path: Path | None
    custody_id: str | None
    capture_date: date | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class _Prepared:
    item: _Item
    sha: str = ""
    data: bytes = b""
    template: np.ndarray | None = None
    quality: dict[str, float] | None = None
    reason: str | None = None  # rejected, and why
    skip: bool = False  # rejected by an earlier run of this import
    existing: tuple[str, int | None] | None = None  # (source, import id) of the same image already stored
    file: str = ""  # the encrypted copy, written before its row commits


# --- Reading the source ------------------------------------------------------------------------


def _check_id(custody_id: str) -> str | None:
    if not custody_id:
        return "no custody_id"
    if len(custody_id) > MAX_ID_LENGTH:
        return f"custody_id is longer than {MAX_ID_LENGTH} characters"
    return None


def folder_items(root: Path) -> list[_Item]:
    """Images under ``root``, each with the custody id given by the rule in the module docstring.

    A name that is not UTF-8 is recorded with ``\\xff`` escapes (:func:`display_name`): stored as
    is it could not be written to the database, and the import would fail on it at every resume.
    A custody id taken from such a name is refused, as it would not match the custody record.
    """
    items = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.suffix.lower() not in IMAGE_SUFFIXES or any(p.startswith(".") for p in relative.parts) or not path.is_file():
            continue
        raw_id = relative.parent.name if len(relative.parts) > 1 else path.stem
        custody_id = display_name(raw_id)
        problem = _check_id(custody_id)
        if custody_id != raw_id:
            problem = f"the custody id {custody_id!r} (from the file or folder name) is not valid UTF-8 text; rename it"
        items.append(_Item(display_name(relative.as_posix()), path, custody_id, problem=problem))
    return items


def manifest_items(manifest: Path, allow_outside: bool = False) -> list[_Item]:
    """Rows of a CSV manifest; a row that cannot be used becomes an item with a ``problem``.

    Image paths must lie inside the manifest's folder (after resolving ``..`` and symbolic links)
    unless ``allow_outside``: a manifest is data from outside, and must not make the importer read
    (and report on) ``/etc/shadow`` or another user's files.
    """
    folder = manifest.parent.resolve()
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise OpenLFRError(f"cannot read the manifest {manifest}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    missing = [c for c in ("custody_id", "image_path") if c not in columns]
    if missing:
        found = ", ".join(columns) or "none"
        raise OpenLFRError(f"the manifest {manifest} has no {' or '.join(missing)} column (found: {found})")
    items: list[_Item] = []
    seen: dict[tuple[str, str], int] = {}
    sources: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        custody_id, image_path = row.pop("custody_id"), row.pop("image_path")
        # Every item's source is unique within the import (it keys the rejects and the resume).
        source = image_path if image_path and image_path not in sources else f"{image_path} (row {line})".lstrip()
        sources.add(source)
        item = _Item(source, None, custody_id or None, problem=_check_id(custody_id))
        if None in raw:
            item.problem = f"row {line} has more values than the header has columns"
        elif not image_path:
            item.problem = f"row {line} has no image_path"
        elif (custody_id, image_path) in seen:
            item.problem = f"row {line} repeats row {seen[custody_id, image_path]} (same custody_id and image_path)"
        if item.problem is None:
            seen[custody_id, image_path] = line
            path = (folder / image_path).resolve()  # an absolute image_path stays as it is
            item.path = path
            if not allow_outside and not path.is_relative_to(folder):
                item.problem = (f"row {line}: {image_path} is outside the manifest's folder {display_name(folder)} "
                                "(refused; pass --allow-outside to import from elsewhere)")
            captured = row.pop("capture_date", "")
            try:
                item.capture_date = date.fromisoformat(captured) if captured else None
            except ValueError:
                item.problem = f"row {line}: capture_date {captured!r} is not a date (use YYYY-MM-DD)"
            item.attributes = {k: v for k, v in row.items() if k and v}
        items.append(item)
    return items


# --- The import --------------------------------------------------------------------------------


class _StopRequest:
    """Turns the first Ctrl-C/SIGTERM into a request to stop after the image in hand (the batch is then
    committed); a second one raises KeyboardInterrupt at once. A no-op outside the main thread."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, _signum: int, _frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


@contextmanager
def _pipeline(fn: Callable[[_Item], _Prepared], items: list[_Item], workers: int) -> Iterator[Iterable[_Prepared]]:
    """``fn`` over ``items`` in order, computed up to ``4 * workers`` items ahead by a thread pool."""
    if workers <= 1:
        yield map(fn, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="custody-import")

    def results() -> Iterator[_Prepared]:
        pending = iter(items)
        ahead = deque(pool.submit(fn, i) for i in islice(pending, 4 * workers))
        while ahead:
            result = ahead.popleft().result()
            nxt = next(pending, None)
            if nxt is not None:
                ahead.append(pool.submit(fn, nxt))
            yield result

    try:
        yield results()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Importer:
    def __init__(self, store: Store, engine: FaceEngine, import_id: int, policy: QualityPolicy, batch_size: int) -> None:
        self.store, self.engine, self.import_id, self.policy, self.batch_size = store, engine, import_id, policy, batch_size
        with store.session() as s:
            self.rejected_sources = set(s.scalars(select(CustodyReject.source).where(CustodyReject.import_id == import_id)))
        self.images: list[_Prepared] = []
        self.rejects: list[tuple[_Item, str]] = []
        self.keys: dict[tuple[str, str], str] = {}  # (custody id, sha) -> source, for this batch
        self.skipped_elsewhere = 0  # already stored by another import: counted on the import row

    def stored(self, custody_id: str, sha: str) -> tuple[str, int | None] | None:
        with self.store.session() as s:
            row = s.execute(
                select(CustodyImage.source, CustodyImage.import_id)
                .join(CustodyRecord)
                .where(CustodyRecord.custody_id == custody_id, CustodyImage.source_sha256 == sha)
            ).first()
        return (row[0], row[1]) if row else None

    def prepare(self, item: _Item, check_stored: bool = True) -> _Prepared:
        """Everything that needs no database write (runs in the worker threads)."""
        p = _Prepared(item)
        if item.source in self.rejected_sources:
            p.skip = True
            return p
        if item.problem or item.path is None or item.custody_id is None:
            p.reason = item.problem or "no image"
            return p
        try:
            p.data = read_image_file(item.path)  # regular files only, size-checked before reading
        except FileNotFoundError:
            p.reason = f"{item.source}: file not found ({display_name(item.path)})"
            return p
        except OSError as exc:
            p.reason = f"{item.source} cannot be read: {exc.strerror or exc}"
            return p
        except OpenLFRError as exc:
            p.reason = str(exc)
            return p
        p.sha = hashlib.sha256(p.data).hexdigest()
        if check_stored:
            p.existing = self.stored(item.custody_id, p.sha)
            if p.existing:
                return p  # done before: no need to decode it
        try:
            image = decode_image(p.data, name=item.source)
            main = reference_face(self.engine.faces(image, with_templates=False), item.source)
            problems = self.policy.failures(main.quality)
            if problems:
                p.reason = f"{item.source} is not good enough: " + "; ".join(problems)
                return p
            (face,) = self.engine.describe(image, [main.detection])
        except OpenLFRError as exc:
            p.reason = str(exc)
            return p
        assert face.template is not None
        p.template, p.quality = face.template.astype(np.float32), face.quality.as_dict()
        return p

    def take(self, p: _Prepared, report: ImportReport) -> None:
        """Decide what becomes of one prepared image (main thread), and queue it for the batch."""
        item = p.item
        if p.skip:
            report.skipped += 1
            return
        if p.reason:
            self.reject(item, p.reason, report)
            return
        assert item.custody_id is not None
        key = (item.custody_id, p.sha)
        existing = (self.keys[key], self.import_id) if key in self.keys else p.existing or self.stored(*key)
        if existing is None and p.template is None:  # was stored when read, deleted since
            p = self.prepare(item, check_stored=False)
            self.take(p, report)
            return
        if existing is None:  # its file is written in flush(), sealed to its row's id
            self.images.append(p)
            self.keys[key] = item.source
            report.imported += 1
        elif existing[0] == item.source:
            report.skipped += 1
            self.skipped_elsewhere += existing[1] != self.import_id
        else:
            reason = f"duplicate: the same image is already stored for custody record {item.custody_id} as {existing[0]}"
            self.reject(item, reason, report)

    def reject(self, item: _Item, reason: str, report: ImportReport) -> None:
        if item.source in self.rejected_sources:  # sources are unique per import: a safeguard, never expected
            report.skipped += 1
            return
        self.rejected_sources.add(item.source)
        self.rejects.append((item, reason))
        report.rejected += 1

    def flush(self) -> None:
        """Commit the batch's rows (its files are already written) and the import's counters together."""
        if not (self.images or self.rejects or self.skipped_elsewhere):
            return
        try:
            with self.store.session() as s:
                ids = {p.item.custody_id for p in self.images}
                records = {r.custody_id: r for r in s.scalars(select(CustodyRecord).where(CustodyRecord.custody_id.in_(ids)))}
                rows: list[tuple[CustodyImage, _Prepared]] = []
                for p in self.images:
                    item = p.item
                    assert item.custody_id is not None and p.template is not None and p.quality is not None
                    record = records.get(item.custody_id)
                    if record is None:
                        record = records[item.custody_id] = CustodyRecord(custody_id=item.custody_id, attributes={})
                        s.add(record)
                    if item.attributes and {**record.attributes, **item.attributes} != record.attributes:
                        record.attributes = {**record.attributes, **item.attributes}
                    row = CustodyImage(
                        record=record,
                        source=item.source,
                        source_sha256=p.sha,
                        capture_date=item.capture_date,
                        file="",  # sealed below, once the row has its id
                        template=b"",
                        quality=p.quality,
                        pack_id=self.engine.pack_id,
                        import_id=self.import_id,
                    )
                    s.add(row)
                    rows.append((row, p))
                s.flush()
                for row, p in rows:
                    assert p.template is not None
                    p.file = row.file = self.store.write_blob(BLOB_FOLDER, p.data, custody_image_context(row.id))
                    p.data = b""
                    row.template = self.store.cipher.encrypt(p.template.tobytes(), custody_template_context(row.pack_id, row.id))
                for item, reason in self.rejects:
                    s.add(CustodyReject(import_id=self.import_id, source=item.source, custody_id=item.custody_id, reason=reason))
                imp = s.get_one(CustodyImport, self.import_id)
                imp.imported += len(self.images)
                imp.rejected += len(self.rejects)
                imp.skipped += self.skipped_elsewhere
        except IntegrityError as exc:
            self.discard()
            problem = f"another process stored some of the same custody images meanwhile ({exc.orig}); run the import again"
            raise StoreError(problem) from exc
        except BaseException:
            self.discard()
            raise
        self.images, self.rejects, self.keys, self.skipped_elsewhere = [], [], {}, 0

    def discard(self) -> None:
        """Delete the batch's files that no committed row refers to (whatever is missed, the orphan sweep takes)."""
        written = [p.file for p in self.images if p.file]
        with suppress(Exception), self.store.session() as s:
            kept = set(s.scalars(select(CustodyImage.file).where(CustodyImage.file.in_(written))))
            for file in written:
                if file not in kept:
                    self.store.delete_blob(file)


def _start(store: Store, source: str, started_by: str, resume: bool, total: int, pack_id: str) -> tuple[int, bool]:
    """Continue the latest unfinished import of ``source``, or begin a new one."""
    with store.session() as s:
        other = s.scalar(select(CustodyImage.pack_id).where(CustodyImage.pack_id != pack_id).limit(1))
        if other is not None:
            raise StoreError(f"the custody database holds templates of model pack {other}; this engine makes {pack_id}")
        imp = None
        if resume:
            imp = s.scalar(
                select(CustodyImport)
                .where(CustodyImport.source == source, CustodyImport.status.in_(UNFINISHED))
                .order_by(CustodyImport.id.desc())
                .limit(1)
            )
        resumed = imp is not None
        # Still "running" when resumed: the process that ran it was killed before it could record
        # anything (a clean stop marks it "interrupted" and audits it), so audit the interruption now.
        killed = {"imported": imp.imported, "rejected": imp.rejected, "started_by": imp.started_by} if (
            imp is not None and imp.status == "running") else None  # fmt: skip
        if imp is None:
            imp = CustodyImport(source=source, started_by=started_by, status="running")
            s.add(imp)
        imp.status, imp.total = "running", total
        s.flush()
        import_id = imp.id
    if killed is not None:
        details = {"source": source, "reason": "found unfinished (the importing process was killed)", **killed}
        audit.record(store, "custody.import_interrupted", "custody_import", import_id, details, actor="system")
    return import_id, resumed


def import_custody(
    store: Store,
    engine: FaceEngine,
    source: Path,
    started_by: str,
    resume: bool = True,
    workers: int = 2,
    on_progress: Callable[[ImportReport], None] | None = None,
    manifest: bool | None = None,
    batch_size: int = BATCH_SIZE,
    policy: QualityPolicy | None = None,
    allow_outside: bool = False,
) -> ImportReport:
    """Import a folder or CSV manifest of custody images (see the module docstring for the rules).

    ``manifest=None`` treats a ``.csv`` file as a manifest and a folder as a folder. ``on_progress``
    is called with the running report after every image. Returns with ``status`` ``completed`` or,
    after Ctrl-C/SIGTERM, ``interrupted`` (run again to continue).
    """
    source = Path(source).expanduser().resolve()
    is_manifest = source.is_file() and source.suffix.lower() == ".csv" if manifest is None else manifest
    name = display_name(source)  # the source as recorded: a non-UTF-8 path could not be stored
    if is_manifest:
        if not source.is_file():
            raise OpenLFRError(f"{source} is not a file; a manifest is a CSV file")
        items = manifest_items(source, allow_outside=allow_outside)
    elif source.is_dir():
        items = folder_items(source)
    else:
        if not source.exists():
            raise OpenLFRError(f"{source} does not exist")
        raise OpenLFRError(f"{source} is not a folder (pass --manifest for a CSV manifest)")
    import_id, resumed = _start(store, name, started_by, resume, len(items), engine.pack_id)
    report = ImportReport(import_id, name, "running", resumed, len(items))
    importer = _Importer(store, engine, import_id, policy or QualityPolicy(), max(1, batch_size))
    started = time.perf_counter()
    status = "interrupted"
    try:
        with _StopRequest() as stop, _pipeline(importer.prepare, items, workers) as prepared:
            for p in prepared:
                importer.take(p, report)
                if len(importer.images) + len(importer.rejects) >= importer.batch_size:
                    importer.flush()
                report.seconds = time.perf_counter() - started
                if on_progress is not None:
                    on_progress(report)
                if stop.requested:
                    break
            importer.flush()
        status = "interrupted" if stop.requested else "completed"
    except BaseException:
        importer.discard()
        raise
    finally:
        report.status, report.seconds = status, time.perf_counter() - started
        with store.session() as s:
            imp = s.get_one(CustodyImport, import_id)
            imp.status = status
            imp.finished_at = datetime.now(UTC) if status == "completed" else None
            totals = {"imported": imp.imported, "rejected": imp.rejected, "skipped": imp.skipped}
        details = report.as_dict() | {"import_totals": totals, "workers": workers, "pack_id": engine.pack_id}
        audit.record(store, "custody.import", "custody_import", import_id, details, actor=started_by)
    if status == "completed":
        _sync_index(store, engine.pack_id)
    return report


def _sync_index(store: Store, pack_id: str) -> None:
    """Bring the search index in step with the database, when the index module is installed."""
    try:
        from openlfr.index.custody_index import CustodyIndex
    except ImportError:
        return
    index = CustodyIndex.open(store, pack_id)
    index.sync(store, save=False)
    index.save(store)


# --- Reading and upkeep ------------------------------------------------------------------------


def list_records(store: Store, limit: int = 50, offset: int = 0) -> list[dict]:
    with store.session() as s:
        rows = s.execute(
            select(CustodyRecord, func.count(CustodyImage.id))
            .outerjoin(CustodyImage)
            .group_by(CustodyRecord.id)
            .order_by(CustodyRecord.custody_id)
            .limit(limit)
            .offset(offset)
        ).all()
        return [
            {"custody_id": r.custody_id, "attributes": r.attributes, "images": n, "created_at": r.created_at.isoformat()}
            for r, n in rows
        ]


def stats(store: Store) -> dict:
    with store.session() as s:
        latest = s.scalars(select(CustodyImport).order_by(CustodyImport.id.desc()).limit(1)).first()
        return {
            "records": s.scalar(select(func.count(CustodyRecord.id))) or 0,
            "images": s.scalar(select(func.count(CustodyImage.id))) or 0,
            "imports": s.scalar(select(func.count(CustodyImport.id))) or 0,
            "rejects": s.scalar(select(func.count(CustodyReject.id))) or 0,
            "packs": sorted(s.scalars(select(CustodyImage.pack_id).distinct())),
            "latest_import": None if latest is None else {c: getattr(latest, c) for c in IMPORT_COLUMNS},
        }


def imports(store: Store) -> list[dict]:
    with store.session() as s:
        rows = s.scalars(select(CustodyImport).order_by(CustodyImport.id)).all()
        return [{c: getattr(r, c) for c in IMPORT_COLUMNS} for r in rows]


def delete_record(store: Store, custody_id: str, by: str, reason: str = "deleted on request") -> int:
    """Delete a custody record with its images and templates; returns how many images went.

    Rows go first and files after the commit (a crash between leaves only orphans to sweep). The
    search index drops the images at its next sync.
    """
    with store.session() as s:
        record = s.scalar(select(CustodyRecord).where(CustodyRecord.custody_id == custody_id))
        if record is None:
            raise NotFoundError(f"custody record {custody_id!r} does not exist")
        files = [i.file for i in record.images]
        s.add(DeletionLog(kind="custody-record", record_id=record.id, files=len(files), reason=reason))
        s.delete(record)
    for file in files:
        store.delete_blob(file)
    audit.record(store, "custody.delete", "custody_record", custody_id, {"images": len(files), "reason": reason}, actor=by)
    return len(files)


def rejects(store: Store, import_id: int | None = None) -> list[dict]:
    """Rejected images and why, of one import or (``None``) of all, oldest first."""
    with store.session() as s:
        query = select(CustodyReject).order_by(CustodyReject.import_id, CustodyReject.id)
        if import_id is not None:
            if s.get(CustodyImport, import_id) is None:
                raise NotFoundError(f"custody import {import_id} does not exist")
            query = query.where(CustodyReject.import_id == import_id)
        return [
            {"import_id": r.import_id, "source": r.source, "custody_id": r.custody_id, "reason": r.reason, "at": r.at.isoformat()}
            for r in s.scalars(query)
        ]


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (file names come from outside)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def rejects_csv(store: Store, import_id: int | None = None) -> str:
    out = io.StringIO()
    columns = ["import_id", "source", "custody_id", "reason", "at"]
    writer = csv.writer(out)
    writer.writerow(columns)
    for r in rejects(store, import_id):
        writer.writerow([_cell(r[c]) for c in columns])
    return out.getvalue()


def custody_image_bytes(store: Store, image_id: int, actor: str | None = None) -> bytes:
    """A stored custody image as it was imported (decrypted). Every view is audited."""
    with store.session() as s:
        image = s.get(CustodyImage, image_id)
        if image is None:
            raise NotFoundError(f"custody image {image_id} does not exist")
        file, custody_id = image.file, image.record.custody_id
    data = store.read_blob(file, custody_image_context(image_id))
    audit.record(store, "custody.view_image", "custody_image", image_id, {"custody_id": custody_id}, actor=actor)
    return data


def image_template(store: Store, image_id: int) -> np.ndarray:
    """A stored image's template (decrypted), e.g. to check an import."""
    with store.session() as s:
        image = s.get(CustodyImage, image_id)
        if image is None:
            raise NotFoundError(f"custody image {image_id} does not exist")
        return np.frombuffer(
            store.cipher.decrypt(image.template, custody_template_context(image.pack_id, image.id)), dtype=np.float32
        )
