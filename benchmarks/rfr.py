"""Retrospective search at custody-database scale: the custody index against exact brute force.

For each gallery size (default 10⁵, 10⁶, 10⁷ templates) one run measures, in the same process:

- build: time to add every template to :class:`openlfr.index.CustodyIndex` (codebook training
  and encoding included; generating the synthetic templates is timed apart), the process's RSS
  increase, and the encrypted file's size and save / load times (searches then run on the index
  loaded back from disk);
- search latency p50/p95 of one query at a time (as an examiner searches), for exact brute force in
  NumPy (the baseline: one matrix product per block of 2²⁰ templates, what ``core.compare.top_k``
  does) and for the index, in interleaved turns so outside load hits both alike, and their ratio;
- recall@k of the index against exact search, overall and per kind of query.

Galleries are synthetic templates fitted to real LFW templates (``openlfr.index.synthetic``: a
Gaussian with their mean and covariance, identities with two images each whose within-person
noise is fitted to LFW's mated scores); the fit is made on half of the LFW people and checked
against the other half, and the quantiles and KS distances are printed. Queries: 40% fresh images
of gallery identities, 40% new identities, and 20% real LFW templates of held-out people — half of
them with another image of themselves inserted into the gallery.

At sizes ≥ 5×10⁶ exact search takes a quarter of a second a query, so its latency is timed on
``--exact-queries`` queries only (said in the output); recall always uses exact results for all.

    python benchmarks/rfr.py --data ../shared/data --cache /tmp/rfr-cache [--sizes 1e5,1e6,1e7] [--queries 1000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from openlfr.index import CustodyIndex, IndexParams, synthetic
from openlfr.storage import Store

TARGETS = {10**6: (5.0, 0.99, None), 10**7: (20.0, 0.99, 8.0)}  # p50 ms, recall@20, GB
PACK = "benchmark:synthetic"
PER_IDENTITY = 2
GALLERY_SEED, NEW_PEOPLE_SEED = 11, 12


def lfw_templates(data: Path, cache: Path, n: int = 8000, seed: int = 0, per_person: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Templates of ``n`` LFW images (up to ``per_person`` each, people in random order) and their person labels.

    Computed once with the default engine and cached in ``cache`` (never in the repository): about
    fifty images a second on two cores.
    """
    path = cache / f"lfw-templates-{n}-{seed}-{per_person}.npz"
    if path.is_file():
        saved = np.load(path)
        return saved["templates"], saved["labels"]
    from openlfr.evaluation.lfw import central_face
    from openlfr.media.images import load_image
    from openlfr.models import CUSTODY_PACK, load_engine

    engine = load_engine(CUSTODY_PACK, home=cache / "home")
    root = data / "lfw" / "lfw-deepfunneled"
    people = sorted(p for p in root.iterdir() if p.is_dir())
    rng = np.random.default_rng(seed)
    templates, labels = [], []
    start = time.perf_counter()
    for label, i in enumerate(rng.permutation(len(people))):
        for image_path in sorted(people[int(i)].glob("*.jpg"))[:per_person]:
            image = load_image(image_path)
            face = central_face(engine.detect(image), image.shape[1], image.shape[0])
            if face is None:
                continue
            (described,) = engine.describe(image, [face])
            templates.append(described.template)
            labels.append(label)
        if len(templates) >= n:
            break
        if label % 200 == 0:
            print(f"  LFW templates: {len(templates)}/{n} ({time.perf_counter() - start:.0f} s)", flush=True)
    out = np.stack(templates[:n]).astype(np.float32), np.asarray(labels[:n], np.int64)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, templates=out[0], labels=out[1])
    return out


# --------------------------------------------------------------------------------------------
# Small helpers


def rss_bytes(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def busy_percent(seconds: float = 1.0) -> float | None:
    """Share of all CPU time spent busy over the next ``seconds`` while this process sleeps (Linux only)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:9]]
        return sum(values), values[3] + values[4]

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 100.0 * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def recall(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per query: the share of the exact top-k that the index returned."""
    return np.array([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist(), strict=True)])


# --------------------------------------------------------------------------------------------
# Templates: the fitted model, its check against held-out LFW people, and the queries


def split_people(templates: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, held out): half of the people each."""
    people = np.unique(labels)
    held = np.random.default_rng(seed).choice(people, len(people) // 2, replace=False)
    out = np.isin(labels, held)
    return ~out, out


def realism_report(model: synthetic.TemplateModel, real: np.ndarray, labels: np.ndarray) -> dict:
    people = len(np.unique(labels))
    synth = synthetic.sample_array(model, 2 * people, seed=99, per_identity=2)
    report = synthetic.compare(synthetic.score_stats(real, labels), synthetic.score_stats(synth, np.arange(len(synth)) // 2))
    print(f"\n### Synthetic templates against {len(real)} held-out real LFW templates ({people} people)\n")
    rows = []
    for kind, r in report.items():
        for q, a, b in zip(r["quantiles"], r["real"], r["synthetic"], strict=True):
            rows.append([kind, f"{q:g}", f"{a:.3f}", f"{b:.3f}", f"{b - a:+.3f}"])
        rows.append([kind, "**KS distance**", "", f"**{r['ks']:.3f}**", ""])
    print(table(["Scores", "Quantile", "Real LFW", "Synthetic", "Difference"], rows))
    print(
        "\n(impostor: random pairs of different people; mated: pairs of one person's images; nn: each person's best "
        f"score against the other {people - 1} people, i.e. the top impostor in a gallery of that size)"
    )
    return report


def make_queries(
    model: synthetic.TemplateModel, real: np.ndarray, labels: np.ndarray, size: int, count: int, chunk: int, seed: int
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(queries, kind of each, real templates to insert into the gallery, their mates' query rows)."""
    rng = np.random.default_rng(seed)
    n_real = min(count // 5, len(np.unique(labels)))
    groups = {label: np.flatnonzero(labels == label) for label in np.unique(labels).tolist()}
    with_two = [g for g in groups.values() if len(g) >= 2]
    singles = [g for g in groups.values() if len(g) < 2] + with_two[n_real // 2 :]
    picked_two = [with_two[i] for i in rng.choice(len(with_two), min(n_real // 2, len(with_two)), replace=False)]
    picked_one = [singles[i] for i in rng.choice(len(singles), n_real - len(picked_two), replace=False)]
    inserted = np.stack([real[g[0]] for g in picked_two])
    real_mated = np.stack([real[g[1]] for g in picked_two])
    real_other = np.stack([real[g[0]] for g in picked_one])
    n_syn = count - n_real
    synthetic_people = (size - len(inserted)) // PER_IDENTITY
    mates = rng.choice(synthetic_people, n_syn // 2, replace=False)
    syn_mated = synthetic.new_images(model, mates, GALLERY_SEED, image_seed=seed, chunk=chunk, per_identity=PER_IDENTITY)
    syn_other = synthetic.sample_array(model, n_syn - n_syn // 2, seed=NEW_PEOPLE_SEED)
    queries = np.concatenate([syn_mated, syn_other, real_mated, real_other]).astype(np.float32)
    kinds = (
        ["synthetic, in gallery"] * len(syn_mated)
        + ["synthetic, not in gallery"] * len(syn_other)
        + ["LFW, in gallery"] * len(real_mated)
        + ["LFW, not in gallery"] * len(real_other)
    )
    mate_ids = np.full(len(queries), -1, np.int64)
    mate_ids[len(syn_mated) + len(syn_other) : len(syn_mated) + len(syn_other) + len(real_mated)] = (
        size - len(inserted) + np.arange(len(inserted))
    )
    return queries, kinds, inserted, mate_ids


# --------------------------------------------------------------------------------------------
# One gallery size


def build(
    size: int, model: synthetic.TemplateModel, inserted: np.ndarray, params: IndexParams, chunk: int
) -> tuple[CustodyIndex, dict]:
    gc.collect()
    rss0 = rss_bytes()
    index = CustodyIndex(PACK, params)
    generate_s = add_s = 0.0
    n_synthetic = size - len(inserted)
    start = time.perf_counter()
    row = 0
    for templates in synthetic.sample(model, n_synthetic, seed=GALLERY_SEED, chunk=chunk, per_identity=PER_IDENTITY):
        generate_s += time.perf_counter() - start
        start = time.perf_counter()
        index.add(np.arange(row, row + len(templates)), templates)
        add_s += time.perf_counter() - start
        row += len(templates)
        start = time.perf_counter()
    start = time.perf_counter()
    index.add(np.arange(row, row + len(inserted)), inserted)
    add_s += time.perf_counter() - start
    return index, {"generate_s": generate_s, "build_s": add_s, "rss_increase": rss_bytes() - rss0, "rss0": rss0}


def save(index: CustodyIndex, cache: Path) -> tuple[Store, dict]:
    """Save to a scratch store (its file is then loaded back and searched, after this copy is dropped)."""
    store = Store(Path(tempfile.mkdtemp(prefix="rfr-store-", dir=cache)))
    start = time.perf_counter()
    path = index.save(store)
    return store, {"file_bytes": path.stat().st_size, "save_s": time.perf_counter() - start}


def load(store: Store, params: IndexParams) -> tuple[CustodyIndex, float]:
    gc.collect()
    start = time.perf_counter()
    index = CustodyIndex.open(store, PACK, params, cached=False)
    return index, time.perf_counter() - start


def exact_truth(index: CustodyIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of every query, batched (32 at a time keeps the score matrix at 128 MB per block)."""
    parts = [index.search_exact(queries[i : i + 32], k) for i in range(0, len(queries), 32)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def time_searches(index: CustodyIndex, queries: np.ndarray, k: int, exact_rows: set[int], seed: int) -> tuple[dict, np.ndarray]:
    """Single-query latencies (ms) of the index and of exact search, interleaved query by query."""
    for q in queries[:5]:  # warm-up: thread pool, caches, page faults
        index.search(q[None], k)
        index.search_exact(q[None], k)
    found = np.full((len(queries), k), -1, np.int64)
    times: dict[str, list[float]] = {"index": [], "exact": []}
    for i in np.random.default_rng(seed).permutation(len(queries)).tolist():
        start = time.perf_counter()
        _, ids = index.search(queries[i : i + 1], k)
        times["index"].append((time.perf_counter() - start) * 1e3)
        found[i] = ids[0]
        if i in exact_rows:
            start = time.perf_counter()
            index.search_exact(queries[i : i + 1], k)
            times["exact"].append((time.perf_counter() - start) * 1e3)
    return times, found


def shortlist_sweep(index: CustodyIndex, queries: np.ndarray, truth: np.ndarray, k: int, shortlists: list[int]) -> list[dict]:
    original = index.params
    out = []
    for shortlist in shortlists:
        index.params = replace(original, shortlist=shortlist, shortlist_exponent=0.0)
        times, found = time_searches(index, queries, k, set(), seed=shortlist)
        out.append({"shortlist": shortlist, "p50_ms": pct(times["index"], 50), "recall": float(recall(found, truth).mean())})
    index.params = original
    return out


def alternatives(
    size: int, model: synthetic.TemplateModel, inserted: np.ndarray, queries: np.ndarray, truth: np.ndarray, k: int
) -> list[dict]:
    """Other FAISS indexes on the same gallery and queries, for the record (docs/scaling.md)."""
    gallery = np.concatenate(
        [synthetic.sample_array(model, size - len(inserted), seed=GALLERY_SEED, per_identity=PER_IDENTITY), inserted]
    )
    configs = [
        ("IVF1024,Flat", "nprobe", [128, 256, 512], 0),
        ("IVF256,PQ64x4fs", "nprobe", [128, 192], 2000),
        ("PQ32x4fs", None, [None], 3000),
        ("PQ64x4fs", None, [None], 3000),
        ("PQ128x4fs", None, [None], 1000),
        ("HNSW32,Flat", "efSearch", [256, 1024], 0),
    ]
    out = []
    for factory, knob, values, rerank in configs:
        index = faiss.index_factory(gallery.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        start = time.perf_counter()
        index.train(gallery[:200_000])
        index.add(gallery)
        build_s = time.perf_counter() - start
        for value in values:
            if knob == "nprobe":
                faiss.extract_index_ivf(index).nprobe = value
            elif knob == "efSearch":
                index.hnsw.efSearch = value

            def search(q: np.ndarray, index: faiss.Index = index, rerank: int = rerank) -> np.ndarray:
                _, labels = index.search(q, rerank or k)
                if not rerank:
                    return labels[0]
                rows = labels[0][labels[0] >= 0]
                return rows[np.argsort(-(gallery[rows] @ q[0]))[:k]]

            times, found = [], []
            for q in queries:
                start = time.perf_counter()
                found.append(search(q[None]))
                times.append((time.perf_counter() - start) * 1e3)
            name = factory + (f" {knob}={value}" if knob else "") + (f", exact re-rank of {rerank}" if rerank else "")
            r = float(recall(np.stack(found), truth).mean())
            out.append({"index": name, "build_s": build_s, "p50_ms": pct(times, 50), "recall": r})
            print(f"  {name}: build {build_s:.1f} s, p50 {pct(times, 50):.2f} ms, recall@{k} {r:.4f}", flush=True)
        del index
    return out


def run_size(size: int, args: argparse.Namespace, model: synthetic.TemplateModel, real: np.ndarray, labels: np.ndarray) -> dict:
    k = args.k
    params = IndexParams(threads=args.threads, **({"shortlist": args.shortlist} if args.shortlist else {}))
    queries, kinds, inserted, mate_ids = make_queries(model, real, labels, size, args.queries, args.chunk, seed=size % 9973)
    print(f"\n### {size:,} templates\n", flush=True)
    index, built = build(size, model, inserted, params, args.chunk)
    print(
        f"- built: {built['build_s']:.1f} s to add (generating the templates: {built['generate_s']:.1f} s apart);",
        index.description,
    )
    store, saved = save(index, args.cache)
    del index  # only the copy loaded from disk is searched: no two copies in memory
    index, saved["open_s"] = load(store, params)
    print(
        f"- saved {saved['file_bytes'] / 1e9:.2f} GB encrypted in {saved['save_s']:.1f} s,",
        f"loaded back in {saved['open_s']:.1f} s",
        flush=True,
    )
    start = time.perf_counter()
    truth_scores, truth = exact_truth(index, queries, k)
    print(f"- exact top-{k} of all {len(queries)} queries (batched) in {time.perf_counter() - start:.1f} s", flush=True)
    n_exact = len(queries) if size < 5_000_000 else min(args.exact_queries, len(queries))
    exact_rows = set(np.linspace(0, len(queries) - 1, n_exact).astype(int).tolist())
    times, found = time_searches(index, queries, k, exact_rows, seed=size)
    rss_after = rss_bytes() - built["rss0"]
    per_query = recall(found, truth)
    by_kind = {kind: float(per_query[[i for i, x in enumerate(kinds) if x == kind]].mean()) for kind in dict.fromkeys(kinds)}
    mated = mate_ids >= 0
    result = {
        "size": size,
        "method": index.description,
        "queries": len(queries),
        "exact_timed_queries": n_exact,
        **built,
        **saved,
        "rss_increase_after_load": rss_after,
        "peak_rss": rss_bytes("VmHWM"),
        "exact_p50_ms": pct(times["exact"], 50),
        "exact_p95_ms": pct(times["exact"], 95),
        "index_p50_ms": pct(times["index"], 50),
        "index_p95_ms": pct(times["index"], 95),
        "recall": float(per_query.mean()),
        "recall_min": float(per_query.min()),
        "queries_below_0.9": int(np.sum(per_query < 0.9)),
        "recall_by_kind": by_kind,
        "lfw_mate_rank1_exact": float(np.mean(truth[mated, 0] == mate_ids[mated])),
        "lfw_mate_rank1_index": float(np.mean(found[mated, 0] == mate_ids[mated])),
        "top1_not_in_gallery_median": {
            kind: float(np.median(truth_scores[[i for i, x in enumerate(kinds) if x == kind], 0]))
            for kind in ("synthetic, not in gallery", "LFW, not in gallery")
        },
    }
    result["speedup_p50"] = result["exact_p50_ms"] / result["index_p50_ms"]
    if args.shortlists:
        result["shortlist_sweep"] = shortlist_sweep(
            index, queries[: args.sweep_queries], truth[: args.sweep_queries], k, args.shortlists
        )
        for row in result["shortlist_sweep"]:
            print(f"  shortlist {row['shortlist']}: p50 {row['p50_ms']:.2f} ms, recall@{k} {row['recall']:.4f}", flush=True)
    del index
    gc.collect()
    store.close()
    shutil.rmtree(store.home, ignore_errors=True)
    if size in args.alternatives:
        print(f"- other FAISS indexes on the same {size:,} templates and the first {args.sweep_queries} queries:", flush=True)
        result["alternatives"] = alternatives(
            size, model, inserted, queries[: args.sweep_queries], truth[: args.sweep_queries], k
        )
    print(
        f"- index p50 {result['index_p50_ms']:.2f} ms, p95 {result['index_p95_ms']:.2f} ms; "
        f"exact p50 {result['exact_p50_ms']:.2f} ms "
        f"({n_exact} queries); recall@{k} {result['recall']:.4f}; RSS +{built['rss_increase'] / 1e9:.2f} GB",
        flush=True,
    )
    return result


def bench_sync(rows: int, model: synthetic.TemplateModel, cache: Path) -> dict:
    """Keeping the index in step with the database: first sync, a sync with nothing changed, and after deletions."""
    from sqlalchemy import delete, insert

    from openlfr.services.custody import custody_template_context
    from openlfr.storage.models import CustodyImage, CustodyRecord

    store = Store(Path(tempfile.mkdtemp(prefix="rfr-sync-", dir=cache)))
    templates = synthetic.sample_array(model, rows, seed=GALLERY_SEED, per_identity=PER_IDENTITY)
    start = time.perf_counter()
    with store.session() as s:
        s.execute(insert(CustodyRecord), [{"id": i + 1, "custody_id": f"C{i}", "attributes": {}} for i in range(rows // 2)])
        s.execute(
            insert(CustodyImage),
            [
                {
                    "id": i + 1,  # explicit: the template is sealed to its row id
                    "record_id": i // 2 + 1,
                    "source": f"{i}.jpg",
                    "source_sha256": f"{i:064x}",
                    "file": "custody/none.bin",
                    "template": store.cipher.encrypt(t.tobytes(), custody_template_context(PACK, i + 1)),
                    "quality": {},
                    "pack_id": PACK,
                }
                for i, t in enumerate(templates)
            ],
        )
    insert_s = time.perf_counter() - start
    index = CustodyIndex.open(store, PACK, cached=False)
    first = index.sync(store)
    unchanged = index.sync(store)
    with store.session() as s:
        s.execute(delete(CustodyRecord).where(CustodyRecord.id <= 10))
    after_delete = index.sync(store)
    _, found = index.search(templates[:20], 20)
    assert not np.isin(found, np.arange(1, 21)).any() and after_delete["removed"] == 20
    start = time.perf_counter()
    CustodyIndex.open(store, PACK, cached=False)
    open_s = time.perf_counter() - start
    store.close()
    shutil.rmtree(store.home, ignore_errors=True)
    result = {
        "rows": rows,
        "insert_s": insert_s,
        "first": first,
        "unchanged": unchanged,
        "after_delete": after_delete,
        "open_s": open_s,
    }
    print(f"\n### Sync with the database ({rows:,} custody images in SQLite)\n")
    print(
        f"- first sync (decrypt every template, train, encode, save): {first['seconds']:.1f} s "
        f"({rows / first['seconds']:,.0f} templates/s); nothing changed: {unchanged['seconds'] * 1e3:.1f} ms; "
        f"after deleting 10 records (20 images): {after_delete['seconds']:.2f} s (re-encode the block, save); "
        f"open from disk: {open_s:.2f} s"
    )
    return result


def summary(results: list[dict], k: int) -> None:
    print("\n### Results (one query at a time)\n")
    rows = []
    for r in results:
        rows.append(
            [
                f"{r['size']:,}",
                r["method"],
                f"{r['build_s']:.1f} s",
                f"{r['rss_increase'] / 1e9:.2f} GB / {r['file_bytes'] / 1e9:.2f} GB",
                f"{r['open_s']:.1f} s",
                f"{r['exact_p50_ms']:.2f} / {r['exact_p95_ms']:.2f}"
                + ("" if r["exact_timed_queries"] == r["queries"] else f" ({r['exact_timed_queries']} q)"),
                f"**{r['index_p50_ms']:.2f}** / {r['index_p95_ms']:.2f}",
                f"{r['speedup_p50']:.1f}×",
                f"**{r['recall']:.4f}** (min {r['recall_min']:.2f})",
            ]
        )
    header = [
        "Templates",
        "Index",
        "Build",
        "RSS / file",
        "Load",
        "Exact p50/p95 ms",
        "Index p50/p95 ms",
        "Speed-up",
        f"Recall@{k}",
    ]
    print(table(header, rows))
    print(
        "\nRecall by kind of query: "
        + "; ".join(f"{r['size']:,}: " + ", ".join(f"{a} {b:.4f}" for a, b in r["recall_by_kind"].items()) for r in results)
    )
    print(
        "LFW probes whose other image is in the gallery, found at rank 1: "
        + "; ".join(
            f"{r['size']:,}: exact {r['lfw_mate_rank1_exact']:.0%}, index {r['lfw_mate_rank1_index']:.0%}" for r in results
        )
    )
    print(
        "Best score of people not in the gallery (median; the synthetic gallery is realistic for real probes when they agree): "
        + "; ".join(
            f"{r['size']:,}: " + ", ".join(f"{a} {b:.3f}" for a, b in r["top1_not_in_gallery_median"].items()) for r in results
        )
    )
    verdicts = []
    for r in results:
        if r["size"] in TARGETS:
            ms, rec, gb = TARGETS[r["size"]]
            ok = r["index_p50_ms"] <= ms and r["recall"] >= rec and (gb is None or r["peak_rss"] / 1e9 <= gb)
            memory = "" if gb is None else f", peak RSS {r['peak_rss'] / 1e9:.2f} GB ≤ {gb:g} GB"
            verdicts.append(
                [
                    f"{r['size']:,}: p50 ≤ {ms:g} ms, recall@20 ≥ {rec}" + ("" if gb is None else f", ≤ {gb:g} GB"),
                    f"{r['index_p50_ms']:.2f} ms, {r['recall']:.4f}{memory}",
                    "**met**" if ok else "**MISSED**",
                ]
            )
    if verdicts:
        print("\n### Targets\n")
        print(table(["Target", "Measured", "Verdict"], verdicts))


def bench_import(data: Path, cache: Path, images: int) -> dict:
    """Custody import rate on real LFW images: one worker (baseline) against two, same images, fresh stores."""
    import shutil
    import tempfile

    from openlfr.models import CUSTODY_PACK, load_engine
    from openlfr.services.custody import import_custody

    source = cache / f"import-{images}"
    if not source.is_dir():
        people = sorted(p for p in (data / "lfw" / "lfw-deepfunneled").iterdir() if p.is_dir())
        copied = 0
        for person in people:
            for image in sorted(person.glob("*.jpg"))[:4]:
                (source / person.name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(image, source / person.name / image.name)
                copied += 1
            if copied >= images:
                break
    engine = load_engine(CUSTODY_PACK, home=cache / "home")
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory(prefix="openlfr-import-") as home:
            report = import_custody(Store(home), engine, source, "benchmark", workers=workers)
            rates[workers] = report.as_dict() | {"images_per_s": round(report.images_per_s, 1)}
    print(f"\n### Custody import ({rates[1]['total']} LFW images)\n")
    rows = [[str(w), str(r["imported"]), str(r["rejected"]), f"{r['images_per_s']:.1f}"] for w, r in rates.items()]
    print(table(["Workers", "Imported", "Rejected", "Images/s"], rows))
    print(f"\nTwo workers: {rates[2]['images_per_s'] / max(rates[1]['images_per_s'], 1e-9):.2f}× one worker.")
    return {str(w): r for w, r in rates.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("OPENLFR_TEST_DATA"), help="shared data folder (holds lfw/)")
    parser.add_argument("--cache", type=Path, required=True, help="folder for cached LFW templates and scratch index files")
    parser.add_argument("--sizes", default="1e5,1e6,1e7", help="gallery sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--exact-queries", type=int, default=50, help="queries timed with exact search at sizes ≥ 5e6")
    parser.add_argument("--lfw-images", type=int, default=8000, help="LFW images templated for fitting and real queries")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shortlist", type=int, default=None, help="override the index's shortlist")
    parser.add_argument("--shortlists", default="", help="also sweep these shortlist lengths, e.g. 1000,2000,3000,4000")
    parser.add_argument("--sweep-queries", type=int, default=300)
    parser.add_argument("--alternatives", default="", help="sizes at which to also measure other FAISS indexes, e.g. 1e6")
    parser.add_argument(
        "--sync-rows", type=float, default=1e5, help="custody images in SQLite for the sync measurement (0: skip)"
    )
    parser.add_argument("--chunk", type=int, default=1 << 18, help="templates generated at a time")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: CACHE/rfr-results.json)")
    parser.add_argument("--import-images", type=int, default=200, help="LFW images for the import-rate measurement (0: skip)")
    args = parser.parse_args(argv)
    if not args.data or not (Path(args.data) / "lfw" / "lfw-deepfunneled").is_dir():
        parser.error("--data must be the shared data folder holding lfw/lfw-deepfunneled (or set OPENLFR_TEST_DATA)")
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    args.sync_rows = int(args.sync_rows)
    args.shortlists = [int(s) for s in args.shortlists.split(",") if s]
    args.alternatives = {int(float(s)) for s in args.alternatives.split(",") if s}
    args.cache.mkdir(parents=True, exist_ok=True)
    faiss.omp_set_num_threads(args.threads)

    print("## OpenLFR retrospective search benchmark\n")
    print(
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM; Python {platform.python_version()}; "
        f"NumPy {np.__version__}; FAISS {faiss.__version__} ({args.threads} threads)"
    )
    busy = busy_percent()
    print(
        f"- other load before the run: {'unknown' if busy is None else f'{busy:.0f}% CPU busy'}",
        "(other processes skew every figure)",
    )
    print(f"- command: {' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}", flush=True)
    start = time.perf_counter()
    real, labels = lfw_templates(Path(args.data), args.cache, n=args.lfw_images)
    fit_mask, held_mask = split_people(real, labels)
    model = synthetic.fit(real[fit_mask], labels[fit_mask])
    print(
        f"- {len(real)} LFW templates ({len(np.unique(labels))} people); model fitted on {fit_mask.sum()} "
        f"in {time.perf_counter() - start:.0f} s"
    )
    realism = realism_report(model, real[held_mask], labels[held_mask])
    imports = bench_import(Path(args.data), args.cache, args.import_images) if args.import_images else None
    sync = bench_sync(args.sync_rows, model, args.cache) if args.sync_rows else None
    results = [run_size(size, args, model, real[held_mask], labels[held_mask]) for size in sizes]
    summary(results, args.k)
    busy = busy_percent()
    print(f"\nOther load after the run: {'unknown' if busy is None else f'{busy:.0f}% CPU busy'}")
    out = args.out or args.cache / "rfr-results.json"
    out.write_text(
        json.dumps(
            {"realism": realism, "import": imports, "sync": sync, "results": results, "argv": sys.argv[1:]},
            indent=1,
            default=float,
        )
    )
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
