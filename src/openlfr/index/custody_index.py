"""The custody gallery's search index: exact search for small galleries; for large ones a compressed
scan of every template followed by an exact re-rank of a shortlist.

Why this design (measured; figures and the sweep in docs/scaling.md): face templates are close to
isotropic (the 128-d SFace templates of LFW spread their variance over ~113 of 128 dimensions), so
indexes that *partition* the space lose the true neighbours: IVF had to visit half its lists for
recall@20 of 0.97 at 10⁶, and HNSW32 reached 0.80 at efSearch 1024 after a 135 s build. What works
on two cores is to scan *every* template as a 32-byte 4-bit product-quantisation code (FAISS
``PQ64x4fs``, SIMD lookup tables), keep the best few thousand by approximate score, and re-score
that shortlist exactly from the float32 templates held in memory. Scores returned are therefore
true cosine similarities, and the shortlist length sets recall.

Rows live in blocks of 2²⁰: each block holds its float32 templates and its own code index, so one
query's scan is spread over the cores block by block, a deletion re-encodes one block only, and
the file is written and read a piece at a time (never one 5 GB buffer). A deleted row's template is
zeroed and its block re-encoded at once, so nothing of a deleted custody image stays in the index.

At rest the index is a sequence of AES-GCM pieces (≤ 4 MiB each) encrypted with the data key;
each piece is bound to the pack and to its position (``custody-index:<pack>:<n>``) and a final
piece marks the end, so pieces cannot be altered, reordered or cut off unnoticed. It is written to
a temporary file and moved into place. The database stays the source of truth: an unreadable index
file is ignored (with a warning) and :meth:`CustodyIndex.sync` re-reads everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from openlfr.storage import Store
from openlfr.storage.crypto import Cipher, custody_template_context
from openlfr.storage.models import CustodyGeneration, CustodyImage

INDEX_CONTEXT = "custody-index"
MAGIC = b"OLFRIDX1"
FORMAT_VERSION = 1
#: Small pieces: big ones cost a fresh allocation (page faults) per piece, measured 4× slower at 64 MiB.
PIECE_BYTES = 4 << 20
#: Rows decrypted and added per step when syncing with the database.
SYNC_BATCH = 20_000
#: Above this many new rows, sync scans the table in id order instead of asking for ids in lists.
SCAN_ABOVE = 50_000
NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class IndexParams:
    """How the index searches. Defaults chosen by measurement (docs/scaling.md)."""

    #: Galleries smaller than this are searched exactly (≈2 ms a query at 10⁵ on two cores).
    exact_below: int = 100_000
    #: FAISS factory string of the codes scanned in full; by default two dimensions per 4-bit
    #: sub-quantiser (``PQ64x4fs`` for 128-d templates: 32 bytes a template).
    codes: str | None = None
    #: Candidates re-scored exactly at 10⁷ templates, scaled by (size / 10⁷) ** shortlist_exponent and
    #: at least 1,000: recall@20 ≥ 0.99 needed ≈1,000 at 10⁵, ≈2,000 at 10⁶ and ≈3,000 at 10⁷.
    shortlist: int = 3000
    shortlist_exponent: float = 0.25
    #: Each block returns this multiple of its share of the shortlist (plus 64).
    block_margin: float = 2.0
    #: Templates the codebooks are trained on (a sample spread over the gallery).
    train_rows: int = 65_536
    block_rows: int = 1 << 20
    #: Threads one query's scan is split over; defaults to the machine's cores.
    threads: int = max(1, os.cpu_count() or 1)


#: Indexes held by this process: (home, pack) → (file stat when loaded or saved, params asked for, index).
_CACHE: dict[tuple[str, str], tuple[tuple[int, int] | None, IndexParams | None, CustodyIndex]] = {}
_CACHE_LOCK = threading.Lock()


def index_path(store: Store, pack_id: str) -> Path:
    return store.home / "index" / f"custody-{hashlib.sha256(pack_id.encode()).hexdigest()[:16]}.idx"


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


class CustodyIndex:
    """Top-k cosine search over one model pack's custody templates, keyed by ``custody_images.id``."""

    def __init__(self, pack_id: str, params: IndexParams | None = None, dim: int | None = None) -> None:
        self.pack_id = pack_id
        self.params = params or IndexParams()
        self.dim = dim
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None
        self._reset()

    def _reset(self) -> None:
        self._blocks: list[np.ndarray] = []  # float32 (block_rows, dim), filled from the front
        self._dead: list[int] = []  # deleted rows per block
        self._codes: list[faiss.Index] = []  # one code index per block, once trained
        self._trained: faiss.Index | None = None  # empty trained code index, cloned for each block
        self._rows = 0  # rows used, deleted ones included
        self._row_ids = np.empty(0, np.int64)  # custody image id of each row, -1 once deleted
        self._ids = np.empty(0, np.int64)  # ids present, sorted
        self._id_rows = np.empty(0, np.int64)  # the row of each of _ids
        self._fingerprint: list | None = None  # the database's state at the last sync
        self._defer_training = False

    # ----------------------------------------------------------------------------------------
    # Opening, syncing, saving

    @classmethod
    def open(cls, store: Store, pack_id: str, params: IndexParams | None = None, cached: bool = True) -> CustodyIndex:
        """The index of ``pack_id``: the one this process already holds, else loaded from disk, else empty.

        A held index is reused while its file is unchanged, so searching again costs nothing to load.
        """
        path = index_path(store, pack_id)
        key = (str(store.home.resolve()), pack_id)
        with _CACHE_LOCK:
            held = _CACHE.get(key)
            stat = _stat(path)
            if cached and held is not None and held[0] == stat and (params is None or params == held[1]):
                return held[2]
            index = cls(pack_id, params)
            if stat is not None:
                try:
                    index._load(store, path, params)
                except Exception as exc:  # derived data: the database can always rebuild it
                    warnings.warn(f"custody index {path} is unreadable ({exc}); starting empty", stacklevel=2)
                    index = cls(pack_id, params)
            if cached:
                _CACHE[key] = (stat, params, index)
            return index

    def sync(self, store: Store, save: bool = True) -> dict:
        """Bring the index in step with ``custody_images`` of this pack; saved when anything changed.

        Cheap when nothing changed: the custody gallery's generation, which every change moves (in
        the database, whichever process made it), is compared with the one seen at the last sync.
        """
        start = time.perf_counter()
        added = removed = 0
        with self._lock, store.session() as s:
            fingerprint = _fingerprint(s)
            if fingerprint != self._fingerprint:
                query = select(CustodyImage.id).where(CustodyImage.pack_id == self.pack_id).order_by(CustodyImage.id)
                db_ids = np.fromiter(s.scalars(query), np.int64)
                removed = self.remove(np.setdiff1d(self._ids, db_ids, assume_unique=True))
                new = np.setdiff1d(db_ids, self._ids, assume_unique=True)
                for ids, templates in _read_templates(s, store.cipher, self.pack_id, new):
                    added += self.add(ids, templates)
                self._fingerprint = fingerprint
        if save and (added or removed):
            self.save(store)
        return {
            "added": added,
            "removed": removed,
            "total": len(self),
            "method": self.description,
            "seconds": round(time.perf_counter() - start, 3),
        }

    def rebuild(self, store: Store) -> dict:
        """Re-read every template from the database, retrain the codebooks on all of them, and save."""
        start = time.perf_counter()
        with self._lock:
            self._reset()
            self._defer_training = True
            try:
                counts = self.sync(store, save=False)
            finally:
                self._defer_training = False
            if len(self) >= self.params.exact_below:
                self._train()
            self.save(store)
        return counts | {"method": self.description, "seconds": round(time.perf_counter() - start, 3)}

    def save(self, store: Store) -> Path:
        """Write the index encrypted, a piece at a time, to a temporary file moved into place."""
        path = index_path(store, self.pack_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Unique to this process and thread: server processes sharing a data folder may save at once.
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with self._lock:
            try:
                with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                    out = _Writer(fh, store.cipher, self.pack_id)
                    header = {
                        "version": FORMAT_VERSION,
                        "pack_id": self.pack_id,
                        "dim": self.dim,
                        "rows": self._rows,
                        "codes": self.codes,
                        "block_rows": self.params.block_rows,
                        "trained": self._trained is not None,
                        "fingerprint": self._fingerprint,
                    }
                    out.item(json.dumps(header).encode())
                    out.item(self._row_ids[: self._rows])
                    if self._trained is not None:
                        out.item(faiss.serialize_index(self._trained))
                    for b in range(len(self._blocks)):
                        out.item(self._blocks[b][: self._used(b)])
                        if self._trained is not None:
                            out.item(faiss.serialize_index(self._codes[b]))
                    out.finish()
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
            with _CACHE_LOCK:
                key = (str(store.home.resolve()), self.pack_id)
                if key in _CACHE and _CACHE[key][2] is self:
                    _CACHE[key] = (_stat(path), _CACHE[key][1], self)
        return path

    def _load(self, store: Store, path: Path, params: IndexParams | None) -> None:
        with open(path, "rb") as fh:
            reader = _Reader(fh, store.cipher, self.pack_id)
            header = json.loads(reader.item())
            if header["version"] != FORMAT_VERSION or header["pack_id"] != self.pack_id:
                raise ValueError("written by another version or for another pack")
            self.params = replace(params or IndexParams(), codes=header["codes"], block_rows=header["block_rows"])
            self.dim, self._rows, self._fingerprint = header["dim"], header["rows"], header["fingerprint"]
            self._row_ids = np.frombuffer(reader.item(), np.int64).copy()
            if header["trained"]:
                self._trained = faiss.deserialize_index(np.frombuffer(reader.item(), np.uint8))
            for b in range((self._rows + self.params.block_rows - 1) // self.params.block_rows):
                block = np.zeros((self.params.block_rows, self.dim), np.float32)
                reader.item(into=block.reshape(-1).view(np.uint8))
                self._blocks.append(block)
                if self._trained is not None:
                    self._codes.append(faiss.deserialize_index(np.frombuffer(reader.item(), np.uint8)))
                ids = self._row_ids[b * self.params.block_rows : b * self.params.block_rows + self._used(b)]
                self._dead.append(int(np.count_nonzero(ids < 0)))
            reader.end()
        alive = np.flatnonzero(self._row_ids >= 0)
        order = np.argsort(self._row_ids[alive], kind="stable")
        self._ids, self._id_rows = self._row_ids[alive][order], alive[order]

    # ----------------------------------------------------------------------------------------
    # Adding and removing

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def description(self) -> str:
        """How searches are run, as recorded with each search."""
        if self._trained is None:
            return "exact"
        return f"faiss {self.codes} full scan, exact re-rank of {self.shortlist()}"

    def shortlist(self, k: int = 0) -> int:
        """Candidates re-scored exactly at the present size (at least ``2 k``)."""
        scaled = self.params.shortlist * (max(self._rows, 1) / 1e7) ** self.params.shortlist_exponent
        if self.params.shortlist_exponent:
            scaled = max(scaled, 1000)
        return max(round(scaled), 2 * k)

    @property
    def codes(self) -> str:
        """The FAISS factory string of the codes (two dimensions per 4-bit sub-quantiser unless set)."""
        if self.params.codes:
            return self.params.codes
        dim = self.dim or 128
        return f"PQ{dim // 2 if dim % 2 == 0 else dim}x4fs"

    def add(self, ids: np.ndarray, templates: np.ndarray) -> int:
        """Add unit-length templates under their custody image ids (ids must be new)."""
        ids = np.asarray(ids, np.int64).ravel()
        x = np.ascontiguousarray(templates, np.float32)
        if x.ndim != 2 or len(x) != len(ids):
            raise ValueError(f"need one template row per id, got {x.shape} for {len(ids)} ids")
        if not len(ids):
            return 0
        if np.any(np.abs(np.linalg.norm(x, axis=1) - 1) > NORM_TOLERANCE):
            raise ValueError("templates must be unit length")
        if np.any(ids < 0) or len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be non-negative and distinct")
        with self._lock:
            if self.dim is None:
                self.dim = x.shape[1]
            if x.shape[1] != self.dim:
                raise ValueError(f"templates have {x.shape[1]} dimensions, this index {self.dim}")
            if len(self._find(ids)[0]):
                raise ValueError("some ids are already in the index")
            n, first = len(ids), self._rows
            if len(self._row_ids) < first + n:  # grow geometrically: ids are 8 bytes a row
                grown = np.empty(max(first + n, 2 * len(self._row_ids)), np.int64)
                grown[:first] = self._row_ids[:first]
                self._row_ids = grown
            self._row_ids[first : first + n] = ids
            done, size = 0, self.params.block_rows
            while done < n:
                b, offset = divmod(first + done, size)
                if b == len(self._blocks):
                    self._blocks.append(np.zeros((size, self.dim), np.float32))  # pages are only touched as rows arrive
                    self._dead.append(0)
                take = min(n - done, size - offset)
                self._blocks[b][offset : offset + take] = x[done : done + take]
                if self._trained is not None:
                    if b == len(self._codes):
                        self._codes.append(faiss.clone_index(self._trained))
                    self._codes[b].add(x[done : done + take])
                done += take
            self._rows += n
            rows = np.arange(first, first + n, dtype=np.int64)
            order = np.argsort(ids, kind="stable")
            if len(self._ids) and ids[order[0]] < self._ids[-1]:  # out of id order: merge
                all_ids, all_rows = np.concatenate([self._ids, ids]), np.concatenate([self._id_rows, rows])
                order = np.argsort(all_ids, kind="stable")
                self._ids, self._id_rows = all_ids[order], all_rows[order]
            else:
                self._ids, self._id_rows = np.concatenate([self._ids, ids[order]]), np.concatenate([self._id_rows, rows[order]])
            self._fingerprint = None
            if self._trained is None and not self._defer_training and len(self) >= self.params.exact_below:
                self._train()
        return n

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (unknown ones are ignored); their templates are zeroed and their blocks re-encoded."""
        with self._lock:
            positions, rows = self._find(np.unique(np.asarray(ids, np.int64).ravel()))
            if not len(positions):
                return 0
            self._ids, self._id_rows = np.delete(self._ids, positions), np.delete(self._id_rows, positions)
            self._row_ids[rows] = -1
            size = self.params.block_rows
            for b in np.unique(rows // size).tolist():
                in_block = rows[rows // size == b] - b * size
                self._blocks[b][in_block] = 0.0
                self._dead[b] += len(in_block)
                if self._trained is not None:
                    self._codes[b] = self._encode(b)
            self._fingerprint = None
            return len(positions)

    def _find(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``_ids`` and rows of those ``ids`` that are present."""
        pos = np.searchsorted(self._ids, ids)
        hit = pos < len(self._ids)
        hit[hit] = self._ids[pos[hit]] == ids[hit]
        return pos[hit], self._id_rows[pos[hit]]

    def _used(self, b: int) -> int:
        return min(self.params.block_rows, self._rows - b * self.params.block_rows)

    def _encode(self, b: int) -> faiss.Index:
        assert self._trained is not None
        codes = faiss.clone_index(self._trained)
        codes.add(self._blocks[b][: self._used(b)])
        return codes

    def _train(self) -> None:
        """Train the codebooks on a sample spread over the gallery (in id order), then encode every block."""
        take = min(len(self._ids), self.params.train_rows)
        sample = self._gather(np.sort(self._id_rows[np.linspace(0, len(self._ids) - 1, take).astype(np.int64)]))
        trained = faiss.index_factory(self.dim, self.codes, faiss.METRIC_INNER_PRODUCT)
        trained.train(sample)
        self._trained = trained
        self._codes = [self._encode(b) for b in range(len(self._blocks))]

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), self.dim or 0), np.float32)
        size = self.params.block_rows
        blocks = rows // size
        for b in np.unique(blocks).tolist():
            sel = blocks == b
            out[sel] = self._blocks[b][rows[sel] - b * size]
        return out

    # ----------------------------------------------------------------------------------------
    # Searching

    def search(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` per probe: cosine scores (q, k) float32, best first, and ids (q, k) int64.

        Rows past the gallery's size are padded with id -1 and score -inf.
        """
        with self._lock:
            return self._search(probes, k, exact=self._trained is None)

    def search_exact(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact brute force (a NumPy matrix product per block), whatever the size: the reference for recall."""
        with self._lock:
            return self._search(probes, k, exact=True)

    def _search(self, probes: np.ndarray, k: int, exact: bool) -> tuple[np.ndarray, np.ndarray]:
        probes = np.atleast_2d(np.asarray(probes, np.float32))
        k = max(int(k), 0)
        scores = np.full((len(probes), k), -np.inf, np.float32)
        ids = np.full((len(probes), k), -1, np.int64)
        if k == 0 or not len(self):
            return scores, ids
        if self.dim is not None and probes.shape[1] != self.dim:
            raise ValueError(f"probes have {probes.shape[1]} dimensions, this index {self.dim}")
        found_scores, found_rows = self._exact(probes, k) if exact else self._approximate(probes, k)
        kk = found_scores.shape[1]
        scores[:, :kk] = found_scores
        ids[:, :kk] = np.where(found_rows >= 0, self._row_ids[np.maximum(found_rows, 0)], -1)
        ids[~np.isfinite(scores)] = -1
        return scores, ids

    def _exact(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        best_scores = np.full((len(probes), 0), -np.inf, np.float32)
        best_rows = np.zeros((len(probes), 0), np.int64)
        size = self.params.block_rows
        for b, block in enumerate(self._blocks):
            used = self._used(b)
            scores = probes @ block[:used].T
            if self._dead[b]:
                scores[:, self._row_ids[b * size : b * size + used] < 0] = -np.inf
            kk = min(k, used)
            part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
            best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
            best_rows = np.concatenate([best_rows, part + b * size], axis=1)
            best_scores, best_rows = _top(best_scores, best_rows, k)
        return _sorted(best_scores, best_rows)

    def _approximate(self, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        shortlist = self.shortlist(k)
        size = self.params.block_rows
        per_block = min(shortlist, int(np.ceil(shortlist * self.params.block_margin * size / self._rows)) + 64)

        def scan(blocks: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
            found = []
            for b in blocks:
                distances, labels = self._codes[b].search(probes, min(per_block, self._codes[b].ntotal))
                found.append((distances, np.where(labels >= 0, labels + b * size, -1)))
            return found

        threads = min(self.params.threads, len(self._codes))
        if len(probes) == 1 and threads > 1:  # one query: split its blocks over the cores
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.params.threads, thread_name_prefix="custody-index")
            groups = [list(range(t, len(self._codes), threads)) for t in range(threads)]
            parts = [p for group in self._pool.map(scan, groups) for p in group]
        else:  # several queries: FAISS spreads them over its OpenMP threads
            parts = scan(list(range(len(self._codes))))
        approx = np.concatenate([d for d, _ in parts], axis=1)
        rows = np.concatenate([r for _, r in parts], axis=1)
        approx, rows = _top(np.where(rows >= 0, approx, -np.inf), rows, shortlist)
        kk = min(k, len(self))
        out_scores = np.full((len(probes), kk), -np.inf, np.float32)
        out_rows = np.full((len(probes), kk), -1, np.int64)
        for i, probe in enumerate(probes):
            candidates = rows[i][rows[i] >= 0]
            candidates = candidates[self._row_ids[candidates] >= 0]
            exact = self._gather(candidates) @ probe
            best = np.argsort(-exact)[:kk]
            out_scores[i, : len(best)], out_rows[i, : len(best)] = exact[best], candidates[best]
        return out_scores, out_rows


def _top(scores: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if scores.shape[1] <= k:
        return scores, rows
    keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, keep, axis=1), np.take_along_axis(rows, keep, axis=1)


def _sorted(scores: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)


# --------------------------------------------------------------------------------------------
# The database side


def _fingerprint(s: Session) -> list:
    """The custody gallery's generation (migration 0011): equal means unchanged, in any process.

    Read before the ids it vouches for: a change committed in between moves it again, so the next
    sync looks once more rather than trusting a stale index. (Row count and newest id, compared before,
    miss a row committed late beside a deletion on PostgreSQL, whose ids are not in commit order.)
    """
    return ["generation", s.scalar(select(CustodyGeneration.generation).where(CustodyGeneration.id == 1))]


def _read_templates(s: Session, cipher: Cipher, pack_id: str, ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Decrypted templates of ``ids`` (sorted), SYNC_BATCH rows at a time."""

    def decrypt(rows: list) -> tuple[np.ndarray, np.ndarray]:
        found = np.array([r[0] for r in rows], np.int64)
        templates = np.stack(
            [np.frombuffer(cipher.decrypt(r[1], custody_template_context(pack_id, r[0])), np.float32) for r in rows]
        )
        return found, templates

    columns = select(CustodyImage.id, CustodyImage.template)
    if len(ids) <= SCAN_ABOVE:
        for start in range(0, len(ids), SYNC_BATCH):
            rows = []
            batch = ids[start : start + SYNC_BATCH].tolist()
            for i in range(0, len(batch), 500):
                rows += s.execute(columns.where(CustodyImage.id.in_(batch[i : i + 500]))).all()
            if rows:
                yield decrypt(rows)
        return
    low, wanted = int(ids[0]), ids
    while True:
        query = columns.where(CustodyImage.pack_id == pack_id, CustodyImage.id >= low).order_by(CustodyImage.id).limit(SYNC_BATCH)
        rows = s.execute(query).all()
        if not rows:
            return
        low = rows[-1][0] + 1
        keep = [r for r, w in zip(rows, np.isin([r[0] for r in rows], wanted), strict=True) if w]
        if keep:
            yield decrypt(keep)


# --------------------------------------------------------------------------------------------
# The encrypted file: MAGIC, then pieces of (u64 length, AES-GCM blob); an item is a piece holding
# its byte length followed by its data in pieces of at most PIECE_BYTES; a last piece says "end".


class _Writer:
    def __init__(self, fh: BinaryIO, cipher: Cipher, pack_id: str) -> None:
        self.fh, self.cipher, self.pack_id, self.count = fh, cipher, pack_id, 0
        fh.write(MAGIC)

    def _piece(self, data: bytes | memoryview) -> None:
        blob = self.cipher.encrypt(bytes(data), f"{INDEX_CONTEXT}:{self.pack_id}:{self.count}")
        self.fh.write(struct.pack("<Q", len(blob)) + blob)
        self.count += 1

    def item(self, data: bytes | np.ndarray) -> None:
        if isinstance(data, np.ndarray):
            data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        view = memoryview(data)
        self._piece(struct.pack("<Q", len(view)))
        for start in range(0, len(view), PIECE_BYTES):
            self._piece(view[start : start + PIECE_BYTES])

    def finish(self) -> None:
        self._piece(b"end")


class _Reader:
    def __init__(self, fh: BinaryIO, cipher: Cipher, pack_id: str) -> None:
        self.fh, self.cipher, self.pack_id, self.count = fh, cipher, pack_id, 0
        if fh.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a custody index file")

    def _piece(self) -> bytes:
        head = self.fh.read(8)
        if len(head) != 8:
            raise ValueError("the file ends early")
        (length,) = struct.unpack("<Q", head)
        blob = self.fh.read(length)
        plain = self.cipher.decrypt(blob, f"{INDEX_CONTEXT}:{self.pack_id}:{self.count}")
        self.count += 1
        return plain

    def item(self, into: np.ndarray | None = None) -> bytes:
        (length,) = struct.unpack("<Q", self._piece())
        if into is None:
            return b"".join(self._piece() for _ in range((length + PIECE_BYTES - 1) // PIECE_BYTES))
        if length > len(into):
            raise ValueError("an item is larger than its place")
        done = 0
        while done < length:
            piece = self._piece()
            into[done : done + len(piece)] = np.frombuffer(piece, np.uint8)
            done += len(piece)
        return b""

    def end(self) -> None:
        if self._piece() != b"end":
            raise ValueError("the file does not end where it should")


__all__ = ["INDEX_CONTEXT", "CustodyIndex", "IndexParams", "index_path"]
