"""The custody search index: exact and approximate search agree, ids stay consistent through adds,
deletions and syncs with the database, the encrypted file round-trips, and synthetic templates keep
the score distribution of what they were fitted on. Small galleries only: the scale figures come
from ``benchmarks/rfr.py``."""

from __future__ import annotations

import itertools
import threading
import time
import warnings

import numpy as np
import pytest
from sqlalchemy import delete, select, text, update

from openlfr.index import CustodyIndex, IndexParams, custody_index, synthetic
from openlfr.index.custody_index import index_path
from openlfr.services.custody import custody_template_context
from openlfr.storage import Store
from openlfr.storage.models import CustodyGeneration, CustodyImage, CustodyRecord

PACK = "test-pack:0000"
DIM = 32
#: Approximate from 500 templates on, in blocks of 2,048 rows, so every path runs on a small gallery.
SMALL = IndexParams(exact_below=500, block_rows=2048, shortlist=400, shortlist_exponent=0.0, train_rows=4096, threads=2)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def gallery(n: int, seed: int = 0) -> np.ndarray:
    """Templates with an uneven spectrum and a common mean, like real ones."""
    rng = np.random.default_rng(seed)
    scales = np.linspace(1.0, 0.3, DIM)
    return unit(rng.standard_normal((n, DIM)) * scales + 0.3)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist(), strict=True)]))


def test_exact_and_approximate_agree() -> None:
    x = gallery(12_000)
    ids = np.arange(12_000, dtype=np.int64) * 3 + 7
    index = CustodyIndex(PACK, SMALL)
    for start in range(0, len(x), 5000):
        index.add(ids[start : start + 5000], x[start : start + 5000])
    assert index.description.startswith("faiss PQ")
    probes = gallery(60, seed=1)
    _, exact_ids = index.search_exact(probes, 20)
    truth = np.argsort(-(probes @ x.T), axis=1)[:, :20] * 3 + 7
    assert np.array_equal(exact_ids, truth)
    for one_at_a_time in (False, True):  # batched (FAISS threads) and single queries (blocks over threads)
        if one_at_a_time:
            results = [index.search(p[None], 20) for p in probes]
            scores, found = np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])
        else:
            scores, found = index.search(probes, 20)
        assert recall(found, exact_ids) >= 0.95
        # re-ranking gives true cosine scores, best first
        true = np.einsum("qd,qkd->qk", probes, x[(found - 7) // 3])
        np.testing.assert_allclose(scores, true, atol=1e-5)
        assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_small_gallery_is_exact_and_padded() -> None:
    index = CustodyIndex(PACK, SMALL)
    x = gallery(30)
    index.add(np.arange(30), x)
    assert index.description == "exact"
    scores, ids = index.search(x[:2], 40)
    assert scores.shape == ids.shape == (2, 40)
    assert list(ids[:, 0]) == [0, 1] and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert np.all(ids[:, 30:] == -1) and np.all(np.isneginf(scores[:, 30:]))
    assert CustodyIndex(PACK).search(x[:1], 5)[1].tolist() == [[-1] * 5]


def test_add_and_remove_keep_ids_consistent() -> None:
    for params in (SMALL, IndexParams(exact_below=10**9, block_rows=2048)):
        x = gallery(5000, seed=2)
        index = CustodyIndex(PACK, params)
        index.add(np.arange(5000)[::-1], x)  # ids out of order
        with pytest.raises(ValueError):
            index.add([10], x[:1])
        gone = np.arange(0, 5000, 7)
        assert index.remove(np.concatenate([gone, [99_999]])) == len(gone)
        assert index.remove(gone) == 0
        assert len(index) == 5000 - len(gone)
        # searching with the deleted templates themselves never brings them back
        _, found = index.search(x[4999 - gone], 20)
        assert not np.isin(found, gone).any()
        later = gallery(50, seed=3)
        index.add(np.arange(10_000, 10_050), later)
        _, found = index.search(later, 1)
        assert found[:, 0].tolist() == list(range(10_000, 10_050))


def add_rows(store, templates: np.ndarray, pack: str = PACK) -> list[int]:
    """Custody images as the import writes them: templates encrypted under the pack's context."""
    with store.session() as s:
        return add_rows_in(s, store, templates, pack)


def add_rows_in(s, store, templates: np.ndarray, pack: str = PACK) -> list[int]:
    """:func:`add_rows` inside the caller's transaction (committed when the caller's block ends)."""
    record = CustodyRecord(custody_id=f"C{np.random.default_rng().integers(1 << 40)}")
    s.add(record)
    for i in range(len(templates)):
        record.images.append(
            CustodyImage(
                source=f"img{i}.jpg",
                source_sha256=f"{np.random.default_rng().integers(1 << 60):064x}",
                file="custody/none.bin",
                template=b"",
                quality={},
                pack_id=pack,
            )
        )
    s.flush()  # templates are sealed to their row ids
    for image, t in zip(record.images, templates, strict=True):
        image.template = store.cipher.encrypt(t.astype(np.float32).tobytes(), custody_template_context(pack, image.id))
    return [image.id for image in record.images]


@pytest.mark.both_databases  # on SQLite and PostgreSQL (tests/pg.py)
def test_sync_follows_the_database(store) -> None:
    x = gallery(1200, seed=4)
    first = add_rows(store, x[:700])
    add_rows(store, gallery(5, seed=9), pack="another-pack")
    index = CustodyIndex.open(store, PACK, SMALL)
    assert index.sync(store)["added"] == 700 and index.description.startswith("faiss")
    assert index.sync(store)["added"] == 0  # nothing changed: the fingerprint says so
    second = add_rows(store, x[700:])
    counts = index.sync(store)
    assert (counts["added"], counts["removed"], counts["total"]) == (500, 0, 1200)
    deleted = first[:50] + second[-1:]
    with store.session() as s:
        s.execute(delete(CustodyImage).where(CustodyImage.id.in_(deleted)))
    assert index.sync(store)["removed"] == 51
    # SQLite hands the deleted newest id out again: the new row must replace the old template
    (reused,) = add_rows(store, gallery(1, seed=11))
    assert reused == second[-1] or store.engine.dialect.name != "sqlite"  # PostgreSQL's sequences never reuse one
    assert index.sync(store)["added"] == 1
    _, found = index.search(x[:50], 20)
    assert not np.isin(found, first[:50]).any()
    assert index.search(x[-1:], 1)[1][0, 0] != reused  # the old template under that id is gone
    scores, found = index.search(gallery(1, seed=11), 1)
    assert found[0, 0] == reused and scores[0, 0] > 0.999
    with store.session() as s:
        assert set(s.scalars(select(CustodyImage.id).where(CustodyImage.pack_id == PACK))) == set(index._ids.tolist())


@pytest.mark.both_databases
def test_save_open_round_trip_is_encrypted(store) -> None:
    x = gallery(3000, seed=5)
    add_rows(store, x)
    index = CustodyIndex.open(store, PACK, SMALL)
    index.sync(store)  # saves
    assert CustodyIndex.open(store, PACK, SMALL) is index  # held in memory while the file is unchanged
    reopened = CustodyIndex.open(store, PACK, SMALL, cached=False)
    assert reopened is not index and reopened.description == index.description
    probes = gallery(30, seed=6)
    for a, b in zip(index.search(probes, 20), reopened.search(probes, 20), strict=True):
        assert np.array_equal(a, b)
    assert reopened.sync(store)["added"] == 0  # the saved fingerprint still matches
    custody_index._CACHE.clear()  # as in a new process: the file is loaded once, then held
    loaded = CustodyIndex.open(store, PACK, SMALL)
    assert loaded is not index and len(loaded) == 3000
    assert CustodyIndex.open(store, PACK, SMALL) is loaded and CustodyIndex.open(store, PACK) is loaded
    data = index_path(store, PACK).read_bytes()
    for t in x[::97]:
        raw = t.tobytes()
        assert all(raw[i : i + 16] not in data for i in range(0, len(raw) - 16, 16))
    # a damaged file is ignored (the database is the source of truth) and sync rebuilds it
    path = index_path(store, PACK)
    path.write_bytes(data[:-100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        damaged = CustodyIndex.open(store, PACK, SMALL, cached=False)
    assert len(damaged) == 0 and caught
    assert damaged.rebuild(store)["added"] == 3000
    assert np.array_equal(damaged.search(probes, 20)[1], index.search(probes, 20)[1])


def test_synthetic_templates_match_their_model() -> None:
    truth = synthetic.fit(gallery(3000, seed=7), labels=None)
    people = np.repeat(np.arange(1500), 2)
    real = synthetic.sample_array(truth, 3000, seed=1, per_identity=1)
    model = synthetic.fit(real)
    a = synthetic.score_stats(real, seed=1)
    b = synthetic.score_stats(synthetic.sample_array(model, 3000, seed=2), seed=2)
    report = synthetic.compare(a, b)
    assert report["impostor"]["ks"] < 0.03 and report["nn"]["ks"] < 0.1
    assert np.allclose(report["impostor"]["real"], report["impostor"]["synthetic"], atol=0.02)
    # identities: mated scores are fitted to the real ones
    noise = np.random.default_rng(3).standard_normal((3000, DIM)) * 0.08
    real_people = unit(np.repeat(gallery(1500, seed=3), 2, axis=0) + noise)
    fitted = synthetic.fit(real_people, people)
    again = synthetic.sample_array(fitted, 3000, seed=4, per_identity=2)
    m = synthetic.compare(synthetic.score_stats(real_people, people), synthetic.score_stats(again, people))["mated"]
    assert abs(m["real"][2] - m["synthetic"][2]) < 0.02
    # chunks are reproducible and identities can be drawn again as fresh probes
    chunks = list(synthetic.sample(fitted, 1000, seed=5, chunk=256, per_identity=2))
    assert [len(c) for c in chunks] == [256, 256, 256, 232]
    assert np.array_equal(np.concatenate(chunks), synthetic.sample_array(fitted, 1000, seed=5, per_identity=2, chunk=256))
    probes = synthetic.new_images(fitted, np.array([0, 300]), seed=5, image_seed=1, chunk=256, per_identity=2)
    scores = probes @ np.concatenate(chunks).T
    assert (scores.argmax(axis=1) // 2).tolist() == [0, 300]


# --- several processes on one database: the generation (migration 0011) --------------------------


def generation(store) -> int:
    with store.session() as s:
        return s.scalar(select(CustodyGeneration.generation))


def index_ids(index: CustodyIndex) -> set[int]:
    return set(index._ids.tolist())


def db_ids(store) -> set[int]:
    with store.session() as s:
        return set(s.scalars(select(CustodyImage.id).where(CustodyImage.pack_id == PACK)))


@pytest.mark.both_databases
def test_every_change_to_custody_images_moves_the_generation(store) -> None:
    """Triggers in the database move it, so every writer does: inserts, updates, deletes and a record's cascade."""
    seen = [generation(store)]
    ids = add_rows(store, gallery(3, seed=1))
    seen.append(generation(store))
    with store.session() as s:
        s.execute(update(CustodyImage).where(CustodyImage.id == ids[0]).values(quality={"checked": True}))
    seen.append(generation(store))
    with store.session() as s:
        s.execute(delete(CustodyImage).where(CustodyImage.id == ids[1]))
    seen.append(generation(store))
    with store.session() as s:
        s.execute(delete(CustodyRecord))  # the database cascades to the remaining image
    seen.append(generation(store))
    assert db_ids(store) == set()
    assert all(later > earlier for earlier, later in itertools.pairwise(seen)), seen


@pytest.mark.both_databases
def test_an_index_held_by_another_process_follows_additions_and_deletions(tmp_path, database: str) -> None:
    """Two stores on one database, as two server processes: each syncs its own in-memory index before searching."""
    writer, reader = Store(tmp_path / "home"), Store(tmp_path / "home")
    try:
        index = CustodyIndex.open(reader, PACK, SMALL, cached=False)  # the other process's own copy
        assert index.sync(reader, save=False)["total"] == 0
        x = gallery(40, seed=21)
        ids = add_rows(writer, x)
        assert index.sync(reader, save=False)["added"] == 40
        assert index.search(x[:1], 1)[1][0, 0] == ids[0]
        with writer.session() as s:
            s.execute(delete(CustodyImage).where(CustodyImage.id.in_(ids[:10])))
        assert index.sync(reader, save=False)["removed"] == 10
        assert index_ids(index) == db_ids(writer) == set(ids[10:])
    finally:
        writer.close()
        reader.close()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_row_committed_late_beside_a_deletion_is_not_missed(store) -> None:
    """PostgreSQL takes ids at insert but shows rows at commit. Writer A inserts (the lower id) and commits
    last; B inserts (a higher id) and would commit first; a search syncs in between; then A commits and an
    older row is deleted: row count and newest id are what they were at that sync, so an index trusting
    them stays stale. The generation's row lock makes B wait for A, and every commit moves it."""
    x = gallery(6, seed=31)
    older = add_rows(store, x[:3])
    index = CustodyIndex.open(store, PACK, SMALL, cached=False)
    index.sync(store, save=False)
    a_inserted, a_may_commit, b_done = threading.Event(), threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def writer_a() -> None:
        try:
            with store.session() as s:
                add_rows_in(s, store, x[3:4])
                a_inserted.set()
                assert a_may_commit.wait(120), "the test never let writer A commit"
        except BaseException as exc:
            failures.append(exc)
            a_inserted.set()

    def writer_b() -> None:
        try:
            add_rows(store, x[4:5])
        except BaseException as exc:
            failures.append(exc)
        finally:
            b_done.set()

    a = threading.Thread(target=writer_a)
    a.start()
    assert a_inserted.wait(120) and not failures, failures
    b = threading.Thread(target=writer_b)
    b.start()
    deadline = time.monotonic() + 120
    while not b_done.is_set() and not waiting_on_a_lock(store):  # B committed, or B waits for A
        assert time.monotonic() < deadline, "writer B neither committed nor waited"
        time.sleep(0.01)
    index.sync(store, save=False)  # a search between the two commits
    a_may_commit.set()
    a.join()
    b.join()
    assert not failures, failures
    with store.session() as s:
        s.execute(delete(CustodyImage).where(CustodyImage.id == older[0]))
    index.sync(store, save=False)
    assert index_ids(index) == db_ids(store)


def waiting_on_a_lock(store) -> bool:
    """Whether a session of this database waits for a row lock (PostgreSQL's own view of its sessions)."""
    with store.engine.connect() as c:
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        return bool(c.execute(text(query)).scalar())
