"""Open-set 1:N identification as NPL measures live facial recognition, and the calibration file
that a deployment's threshold is chosen from.

Protocol, for a watchlist of W people (one draw; repeated over several seeds and averaged):

- *enrolled*: W people drawn at random from those with two or more usable images, so that every
  watchlisted person can be probed; the watchlist holds one image of each, drawn at random from the images
  that enrolment would accept (the default enrolment quality limits, :class:`openlfr.core.quality.QualityPolicy`:
  a watchlist cannot hold a photograph the product refuses);
- *mated probes*: other images of the enrolled people (at most ``per_person`` each, drawn at random,
  so that one much-photographed person cannot dominate); a mated probe without a detected face is a miss;
- *non-mated probes*: images of people not enrolled (also at most ``per_person`` each); images without a
  detected face are left out, as a camera that sees no face raises no alert;
- at threshold t: TPIR(t) = share of mated probes whose best watchlist match is their own image and
  scores at least t; FPIR(t) = share of non-mated probes with any watchlist score at least t.

Thresholds run over a grid of 0.001 steps. A target FPIR f is *supported* when the non-mated searches
would show at least 30 false positives at it (N·f >= 30, Doddington's "rule of 30"), *indicative only* when
1 <= N·f < 30, and *cannot be resolved* when N·f < 1. N counts the searches of all draws together: each
draw searches the non-mated probes against a different watchlist, so more draws resolve lower rates;
the same photographs recur across draws, which the spread of TPIR over draws (reported) makes visible.

Comparisons named by the alias list (:mod:`openlfr.evaluation.aliases`: one person under two names, one
photograph filed twice) are left out of every draw, and each draw counts how many were.

FPIR for watchlists larger than measured is extrapolated with one stated method: if each of the W
comparisons a non-mated probe makes exceeds t independently with probability p(t), the per-comparison
impostor rate measured over all (non-mated probe, watchlist entry) comparisons, then
FPIR(W, t) = 1 - (1 - p(t))^W. The report checks this against FPIR measured at the sizes run.

Calibration file (JSON; read with :func:`load_calibration`)::

    {
      "format": "openlfr-calibration/1",
      "pack_id": "yunet-sface:...",          # templates of other packs must not use this calibration
      "flip_averaging": true,
      "dataset": {"name": "LFW", "path": "...", "images": 13233, "people": 5749},
      "created": "2026-11-22T10:00:00+00:00",
      "protocol": "...",                      # the text above, in short
      "per_person": 10, "seeds": [0, 1, 2],
      "support_rule": "...",
      "thresholds": [0.0, 0.001, ..., 1.0],  # grid shared by every array below
      "watchlists": [
        {"size": 1000, "draws": 3,
         "mated_probes": 2870.0, "non_mated_probes": 6954.3,      # per draw, averaged
         "fpir": [...], "tpir": [...],                           # per threshold, averaged over draws
         "impostor_tail": {"comparisons": 6954333,                # (non-mated probe, entry) pairs per draw
                           "exceeding": [...]}}                  # per threshold: comparisons scoring >= t, per draw
      ]
    }

Per-comparison impostor rate p(t) = exceeding / comparisons; the (threshold, FPIR, TPIR) curve of a
watchlist is ``zip(thresholds, fpir, tpir)``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from openlfr import calibration as cal
from openlfr.calibration import GRID, RULE_OF, STEPS, exceeding, extrapolate
from openlfr.config import data_dir
from openlfr.core.engine import FaceEngine
from openlfr.core.quality import MEASURES, QualityPolicy
from openlfr.errors import OpenLFRError
from openlfr.evaluation import identification
from openlfr.evaluation.aliases import NONE, AliasList
from openlfr.evaluation.lfw import IMAGES_DIR, image_quality, image_templates

CALIBRATION_FORMAT = cal.FORMAT
load_calibration = cal.load
save_calibration = cal.save
PER_PERSON = 10
__all__ = ["GRID", "RULE_OF", "STEPS", "exceeding", "extrapolate"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
Progress = Callable[[int, int], None] | None


# ---------------------------------------------------------------------------------------------- templates


def default_cache_dir(home: str | Path | None = None) -> Path:
    return data_dir(home) / "cache"


def folder_names(images_dir: Path, limit_people: int | None = None) -> list[str]:
    """``<identity>/<file>`` for every image in a labelled folder (one sub-folder per person), sorted."""
    if not images_dir.is_dir():
        raise OpenLFRError(f"{images_dir} is not a folder of <identity>/<images>")
    people = sorted(p.name for p in images_dir.iterdir() if p.is_dir())[:limit_people]
    names = [f"{p}/{f.name}" for p in people for f in sorted((images_dir / p).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not names:
        raise OpenLFRError(f"{images_dir} holds no images in <identity>/ sub-folders")
    return names


def identity_of(name: str) -> str:
    return name.split("/")[0]


def cache_file(engine: FaceEngine, images_dir: Path, cache_dir: Path) -> Path:
    """One file per model pack, flip setting and image folder: templates of different packs never mix."""
    pack = re.sub(r"[^A-Za-z0-9_.-]+", "_", engine.pack_id)
    flip = "flip" if getattr(engine.recognizer, "flip", False) else "noflip"
    rule = "" if images_dir.name == IMAGES_DIR else "-mainface"  # LFW: central face; other folders: the main face
    folder = hashlib.sha1(str(images_dir.resolve()).encode()).hexdigest()[:12]
    return cache_dir / f"templates-{pack}-{flip}{rule}-{folder}.npz"


def _cached_rows(
    path: Path, key: str, images_dir: Path, names: list[str], empty: np.ndarray, compute: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """Rows for ``names`` from the npz cache at ``path`` (array ``key``); missing names are computed and added."""
    stored_names: list[str] = []
    stored = empty
    if path.is_file():
        with np.load(path) as z:
            stored_names, stored = [str(n) for n in z["names"]], z[key]
    row = {n: i for i, n in enumerate(stored_names)}
    todo = [n for n in dict.fromkeys(names) if n not in row]
    if todo:
        stored = np.vstack([stored, compute(todo)])
        stored_names += todo
        row = {n: i for i, n in enumerate(stored_names)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, names=np.array(stored_names), images_dir=str(images_dir.resolve()), **{key: stored})
        os.replace(tmp, path)
    return stored[[row[n] for n in names]]


def template_cache(
    engine: FaceEngine, images_dir: Path, names: list[str], cache_dir: Path | None = None, progress: Progress = None
) -> np.ndarray:
    """Templates for ``names`` (as ``lfw.image_templates`` makes them), computed once and read back after.

    Templating all of LFW takes minutes on two cores; every report reuses the same templates. Images
    not yet in the cache are computed and added; rows of images without a detected face are zero.
    """
    path = cache_file(engine, images_dir, cache_dir or default_cache_dir())
    return _cached_rows(path, "templates", images_dir, names, np.zeros((0, engine.dimension), np.float32),
                        lambda todo: image_templates(engine, images_dir, todo, progress)[0])  # fmt: skip


def quality_cache(
    engine: FaceEngine, images_dir: Path, names: list[str], cache_dir: Path | None = None, progress: Progress = None
) -> np.ndarray:
    """Quality measures for ``names`` (as ``lfw.image_quality`` makes them), cached beside the templates."""
    template_file = cache_file(engine, images_dir, cache_dir or default_cache_dir())
    path = template_file.with_name(template_file.name.replace("templates-", "quality-", 1))
    return _cached_rows(path, "quality", images_dir, names, np.zeros((0, len(MEASURES))),
                        lambda todo: image_quality(engine, images_dir, todo, progress))  # fmt: skip


def enrollable_images(
    engine: FaceEngine,
    images_dir: Path,
    names: list[str],
    cache_dir: Path | None = None,
    progress: Progress = None,
    policy: QualityPolicy | None = None,
) -> np.ndarray:
    """Per image: would enrolment accept its face as a watchlist reference (default quality limits)?"""
    return (policy or QualityPolicy()).accepts(quality_cache(engine, images_dir, names, cache_dir, progress))


def lfw_template_cache(
    engine: FaceEngine,
    lfw_root: str | Path,
    cache_dir: Path | None = None,
    limit_people: int | None = None,
    progress: Progress = None,
) -> tuple[np.ndarray, list[str]]:
    """(templates, image names) for every LFW image (or the first ``limit_people`` people), cached."""
    images_dir = Path(lfw_root) / IMAGES_DIR
    if not images_dir.is_dir():
        raise OpenLFRError(f"{lfw_root} must contain {IMAGES_DIR}/ (LFW deep-funneled)")
    names = folder_names(images_dir, limit_people)
    return template_cache(engine, images_dir, names, cache_dir, progress), names


def dataset_dir(path: Path) -> Path:
    """The folder of ``<identity>/<images>``: LFW's ``lfw-deepfunneled/`` when given LFW's root."""
    return path / IMAGES_DIR if (path / IMAGES_DIR).is_dir() else path


# ----------------------------------------------------------------------------------------------- open set


@dataclass
class Draw:
    """One watchlist draw: who was enrolled, and each probe's best match."""

    size: int
    seed: int
    mated_identity: np.ndarray  # per mated probe
    mated_score: np.ndarray  # best watchlist score
    mated_correct: np.ndarray  # best match is the probe's own watchlist image
    non_mated_identity: np.ndarray
    non_mated_score: np.ndarray  # best watchlist score
    non_mated_match: np.ndarray  # identity of that best watchlist entry
    impostor_exceeding: np.ndarray  # per grid threshold: (non-mated probe, entry) comparisons scoring >= t
    impostor_comparisons: int
    excluded_comparisons: int = 0  # (probe, entry) comparisons left out as label errors (alias list)
    reference_rows: np.ndarray | None = None  # the image (row) enrolled for each watchlisted person

    def tpir_counts(self) -> np.ndarray:
        return exceeding(np.where(self.mated_correct, self.mated_score, -1.0))

    def fpir_counts(self) -> np.ndarray:
        return exceeding(self.non_mated_score)


def _pick(rng: np.random.Generator, items: list[int], cap: int) -> list[int]:
    return items if len(items) <= cap else sorted(rng.choice(items, cap, replace=False).tolist())


def references_note(templates: np.ndarray, enrollable: np.ndarray | None) -> dict:
    """What a report says about the images watchlists were drawn from."""
    faces = int((np.linalg.norm(templates, axis=1) > 0).sum())
    if enrollable is None:
        return {"rule": "any image with a face (enrolment quality limits not applied)", "images_with_face": faces,
                "refused": 0}  # fmt: skip
    accepted = int(reference_rows(templates, enrollable).sum())
    return {"rule": "images the default enrolment quality limits accept (as a watchlist can hold no other)",
            "images_with_face": faces, "refused": faces - accepted}  # fmt: skip


def reference_rows(templates: np.ndarray, enrollable: np.ndarray | None = None) -> np.ndarray:
    """Per image: may it be a watchlist reference? It needs a face, and enrolment must accept it."""
    ok = np.linalg.norm(templates, axis=1) > 0
    return ok if enrollable is None else ok & np.asarray(enrollable, bool)


def eligible_people(templates: np.ndarray, names: list[str], enrollable: np.ndarray | None = None) -> list[str]:
    """People with two or more images, at least one a possible reference: they can be enrolled and probed."""
    by_person: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        by_person.setdefault(identity_of(n), []).append(i)
    ok = reference_rows(templates, enrollable)
    return sorted(p for p, rows in by_person.items() if len(rows) >= 2 and ok[rows].any())


def draw(
    templates: np.ndarray,
    names: list[str],
    size: int,
    seed: int,
    per_person: int = PER_PERSON,
    aliases: AliasList = NONE,
    enrollable: np.ndarray | None = None,
) -> Draw:
    """Enrol ``size`` people at random, probe with everyone's other images and score every probe.

    ``enrollable`` (per image; :func:`enrollable_images`) limits the watchlist images to those enrolment accepts;
    probes are every other image, good or bad, as a camera sees whoever passes.

    Comparisons that the alias list calls label errors (one person under two names, one photograph filed
    twice) are left out: they can neither raise a false alert nor beat a mated probe's own entry.
    """
    rng = np.random.default_rng(seed)
    ok = np.linalg.norm(templates, axis=1) > 0
    by_person: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        by_person.setdefault(identity_of(n), []).append(i)
    can_enrol = reference_rows(templates, enrollable)
    candidates = eligible_people(templates, names, enrollable)
    if size > len(candidates):
        raise OpenLFRError(f"a watchlist of {size} needs {size} people with 2+ images; the data has {len(candidates)}")
    enrolled = sorted(rng.choice(candidates, size, replace=False).tolist())
    gallery_rows, mated_rows, mated_owner = [], [], []
    for w, person in enumerate(enrolled):
        rows = by_person[person]
        g = int(rng.choice([r for r in rows if can_enrol[r]]))
        gallery_rows.append(g)
        picked = _pick(rng, [r for r in rows if r != g], per_person)
        mated_rows += picked
        mated_owner += [w] * len(picked)
    enrolled_set = set(enrolled)
    non_mated_rows = [
        r for p in sorted(by_person) if p not in enrolled_set for r in _pick(rng, [r for r in by_person[p] if ok[r]], per_person)
    ]
    gallery = templates[gallery_rows]
    gallery_names = [names[g] for g in gallery_rows]
    excluded = 0

    def scores(rows: list[int]) -> np.ndarray:
        nonlocal excluded
        s = templates[rows] @ gallery.T
        ii, jj = aliases.excluded_pairs([names[r] for r in rows], gallery_names)
        s[ii, jj] = -2.0  # below every score: never a match
        excluded += len(ii)
        return s

    mated_score, mated_correct = np.zeros(len(mated_rows), np.float32), np.zeros(len(mated_rows), bool)
    for start in range(0, len(mated_rows), 4096):
        s = scores(mated_rows[start : start + 4096])
        best = s.argmax(axis=1)
        mated_score[start : start + len(best)] = s[np.arange(len(best)), best]
        mated_correct[start : start + len(best)] = best == np.array(mated_owner[start : start + 4096])
    mated_correct &= ok[mated_rows]  # no face: a miss
    non_mated_score = np.zeros(len(non_mated_rows), np.float32)
    non_mated_best = np.zeros(len(non_mated_rows), np.int64)
    tail = np.zeros(STEPS + 1, np.int64)
    non_mated_excluded = 0
    for start in range(0, len(non_mated_rows), 2048):
        before = excluded
        s = scores(non_mated_rows[start : start + 2048])
        non_mated_excluded += excluded - before
        non_mated_best[start : start + len(s)] = s.argmax(axis=1)
        non_mated_score[start : start + len(s)] = s[np.arange(len(s)), non_mated_best[start : start + len(s)]]
        tail += exceeding(s[s > -2.0])
    return Draw(
        size=size,
        seed=seed,
        mated_identity=np.array([enrolled[w] for w in mated_owner]),
        mated_score=mated_score,
        mated_correct=mated_correct,
        non_mated_identity=np.array([identity_of(names[r]) for r in non_mated_rows]),
        non_mated_score=non_mated_score,
        non_mated_match=np.array([enrolled[b] for b in non_mated_best]),
        impostor_exceeding=tail,
        impostor_comparisons=len(non_mated_rows) * size - non_mated_excluded,
        excluded_comparisons=excluded,
        reference_rows=np.array(gallery_rows),
    )


def support(expected_errors: float) -> str:
    """The rule of 30 applied to the errors a measured rate stands on (N × rate)."""
    if expected_errors >= RULE_OF:
        return "supported"
    if expected_errors >= 1:
        return f"insufficient non-mated probes (N·FPIR = {expected_errors:.1f} < {RULE_OF}): indicative only"
    return f"insufficient non-mated probes (N·FPIR = {expected_errors:.2f} < 1): cannot be resolved"


@dataclass
class OpenSetResult:
    """Every draw for one watchlist size, and the curves averaged over them."""

    size: int
    draws: list[Draw]

    @property
    def mated_probes(self) -> float:
        return float(np.mean([len(d.mated_score) for d in self.draws]))

    @property
    def non_mated_probes(self) -> float:
        return float(np.mean([len(d.non_mated_score) for d in self.draws]))

    @property
    def non_mated_searches(self) -> int:
        """Non-mated searches over all draws: what the rule of 30 counts."""
        return int(sum(len(d.non_mated_score) for d in self.draws))

    @property
    def excluded_comparisons(self) -> int:
        return int(sum(d.excluded_comparisons for d in self.draws))

    def tpir(self) -> np.ndarray:
        return np.mean([d.tpir_counts() / max(len(d.mated_score), 1) for d in self.draws], axis=0)

    def fpir(self) -> np.ndarray:
        return np.mean([d.fpir_counts() / max(len(d.non_mated_score), 1) for d in self.draws], axis=0)

    def impostor_rate(self) -> np.ndarray:
        """p(t): the share of single (non-mated probe, watchlist entry) comparisons scoring at least t."""
        total = sum(d.impostor_comparisons for d in self.draws)
        return np.sum([d.impostor_exceeding for d in self.draws], axis=0) / max(total, 1)

    def at_fpir(self, target: float) -> dict:
        """The lowest grid threshold whose FPIR is at most ``target``, the TPIR there and how well it is supported."""
        fpir, tpir = self.fpir(), self.tpir()
        k = int(np.argmax(fpir <= target)) if (fpir <= target).any() else len(GRID) - 1
        per_draw = [d.tpir_counts()[k] / max(len(d.mated_score), 1) for d in self.draws]
        return {
            "target_fpir": target,
            "threshold": float(GRID[k]),
            "fpir": round(float(fpir[k]), 6),
            "tpir": round(float(tpir[k]), 5),
            "tpir_range_over_draws": [round(float(min(per_draw)), 5), round(float(max(per_draw)), 5)],
            "non_mated_probes_per_draw": round(self.non_mated_probes, 1),
            "non_mated_searches": self.non_mated_searches,
            "mated_probes_per_draw": round(self.mated_probes, 1),
            "status": support(self.non_mated_searches * target),
        }

    def as_dict(self, targets: tuple[float, ...]) -> dict:
        return {
            "size": self.size,
            "draws": len(self.draws),
            "seeds": [d.seed for d in self.draws],
            "mated_probes_per_draw": round(self.mated_probes, 1),
            "non_mated_probes_per_draw": round(self.non_mated_probes, 1),
            "impostor_comparisons_per_draw": round(float(np.mean([d.impostor_comparisons for d in self.draws])), 1),
            "excluded_comparisons": self.excluded_comparisons,
            "rank1_rate": round(float(np.mean([d.mated_correct.mean() if len(d.mated_correct) else 0 for d in self.draws])), 5),
            "at_fpir": [self.at_fpir(t) for t in targets],
        }


def highest_non_mated(d: Draw, count: int = 10) -> list[dict]:
    """The non-mated probes that score highest: they alone set the threshold at the lowest FPIRs, so a reader
    should see who they are (on LFW, several are one person filed under two names)."""
    order = np.argsort(-d.non_mated_score, kind="stable")[:count]
    return [
        {
            "probe_identity": str(d.non_mated_identity[i]),
            "best_match": str(d.non_mated_match[i]),
            "score": round(float(d.non_mated_score[i]), 4),
        }
        for i in order
    ]


def read_exclusions(path: Path) -> set[str]:
    """Identities to leave out, one a line (``#`` starts a comment): e.g. people a data set files under two names."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise OpenLFRError(f"cannot read {path}: {exc}") from exc
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def evaluate(
    templates: np.ndarray,
    names: list[str],
    sizes: list[int],
    seeds: list[int],
    per_person: int = PER_PERSON,
    aliases: AliasList = NONE,
    enrollable: np.ndarray | None = None,
) -> list[OpenSetResult]:
    return [OpenSetResult(w, [draw(templates, names, w, s, per_person, aliases, enrollable) for s in seeds]) for w in sizes]


def resolve_sizes(
    spec: str, templates: np.ndarray, names: list[str], enrollable: np.ndarray | None = None
) -> tuple[list[int], list[str]]:
    """Watchlist sizes from "100,1000,max"; sizes the data cannot fill are dropped with a note."""
    largest = len(eligible_people(templates, names, enrollable))
    sizes, notes = [], []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        w = largest if part == "max" else int(part)
        if w > largest or w < 1:
            notes.append(f"watchlist size {w} skipped: the data has {largest} people with two or more images, "
                         "one of them enrollable")
        elif w not in sizes:
            sizes.append(w)
    return sorted(sizes), notes


def extrapolation_check(result: OpenSetResult, targets: tuple[float, ...], rate: np.ndarray | None = None) -> list[dict]:
    """Predicted against measured FPIR at a measured size, at the thresholds chosen for each target.

    ``rate`` is the per-comparison impostor rate the extrapolation uses (that of the largest watchlist, whose
    non-mated probes are other people): predicting a smaller measured size from it tests the method honestly.
    """
    rate = result.impostor_rate() if rate is None else rate
    predicted, measured = extrapolate(rate, result.size), result.fpir()
    rows = []
    for t in targets:
        k = int(GRID.searchsorted(result.at_fpir(t)["threshold"]))
        rows.append(
            {
                "size": result.size,
                "threshold": float(GRID[k]),
                "measured_fpir": round(float(measured[k]), 6),
                "predicted_fpir": round(float(predicted[k]), 6),
            }
        )
    return rows


def extrapolated_thresholds(result: OpenSetResult, size: int, targets: tuple[float, ...]) -> list[dict]:
    """Thresholds meeting each target FPIR at a larger watchlist, with the impostor comparisons behind them."""
    rate = result.impostor_rate()
    predicted = extrapolate(rate, size)
    comparisons = float(np.mean([d.impostor_comparisons for d in result.draws]))
    rows = []
    for t in targets:
        ok = predicted <= t
        k = int(np.argmax(ok)) if ok.any() else len(GRID) - 1
        needed = 1 - (1 - t) ** (1 / size)  # the per-comparison rate the target implies
        errors = comparisons * needed
        status = (
            "supported"
            if errors >= RULE_OF
            else (
                f"insufficient impostor comparisons ({comparisons:,.0f} × p = {errors:.2f} < {RULE_OF}): "
                + ("indicative only" if errors >= 1 else "cannot be resolved")
            )
        )
        rows.append(
            {
                "size": size,
                "target_fpir": t,
                "threshold": float(GRID[k]) if errors >= 1 else None,  # unresolvable: no number to act on
                "per_comparison_rate": needed,
                "impostor_comparisons": int(comparisons),
                "status": status,
            }
        )
    return rows


# -------------------------------------------------------------------------------------------- calibration


def calibration(
    results: list[OpenSetResult],
    pack_id: str,
    flip: bool,
    dataset: dict,
    per_person: int,
    seeds: list[int],
    model: dict | None = None,
    aliases: dict | None = None,
    references: dict | None = None,
) -> dict:
    """The calibration record a threshold is later chosen from (format in :mod:`openlfr.calibration`).

    ``references`` says which images could be watchlist references (:func:`references_note`).

    ``model`` is the impostor/mated model with its bootstrap (:func:`openlfr.evaluation.calibrate.model`);
    without it the file holds the measured curves only (format version 1).
    """
    record = {
        "format": cal.FORMAT if model is not None else cal.FORMAT_V1,
        "pack_id": pack_id,
        "flip_averaging": flip,
        "dataset": dataset,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": "open-set 1:N: watchlist of W people with 2+ images, one image each; mated probes = their other "
        f"images, non-mated probes = images of people not enrolled; at most {per_person} probe images per person; "
        "TPIR = rank-1 and score >= t; FPIR = any score >= t; comparisons named by the alias list left out",
        "aliases": aliases or {"source": "none"},
        "references": references or {"rule": "any image with a face"},
        "per_person": per_person,
        "seeds": seeds,
        "support_rule": f"a target FPIR f is supported when the non-mated searches of all draws N give N*f >= {RULE_OF}",
        "extrapolation": "FPIR(W, t) = 1 - (1 - p(t))^W; see model.tail for how p(t) is estimated where it is not measured",
        "thresholds": GRID,
        "watchlists": [
            {
                "size": r.size,
                "draws": len(r.draws),
                "mated_probes": round(r.mated_probes, 1),
                "non_mated_probes": round(r.non_mated_probes, 1),
                "excluded_comparisons": r.excluded_comparisons,
                "fpir": np.round(r.fpir(), 7),
                "tpir": np.round(r.tpir(), 6),
                "impostor_tail": {
                    "comparisons": round(float(np.mean([d.impostor_comparisons for d in r.draws])), 1),
                    "exceeding": np.round(np.mean([d.impostor_exceeding for d in r.draws], axis=0), 2),
                },
            }
            for r in results
        ],
    }
    if model is not None:
        record["model"] = model
    return record


# ----------------------------------------------------------------------------- the rank-based protocol, cached


def closed_set(
    templates: np.ndarray, names: list[str], holdout: float, seed: int, aliases: AliasList = NONE
) -> identification.IdentificationResult:
    """``identification.evaluate``'s protocol on templates already computed (from the cache); comparisons the
    alias list names are left out (they can neither outrank a probe's own entry nor count as a stranger's best)."""
    row = {n: i for i, n in enumerate(names)}
    gallery_names, mated_names, non_mated_names = identification.split(names, holdout, seed)
    gallery = templates[[row[n] for n in gallery_names]]
    owner = {identity_of(n): i for i, n in enumerate(gallery_names)}
    truth = np.array([owner[identity_of(n)] for n in mated_names], dtype=np.int64)
    ranks = identification.RANKS
    excluded = 0

    def scores(probe_names: list[str]) -> np.ndarray:
        nonlocal excluded
        s = templates[[row[n] for n in probe_names]] @ gallery.T
        ii, jj = aliases.excluded_pairs(probe_names, gallery_names)
        s[ii, jj] = -2.0
        excluded += len(ii)
        return s

    m = len(mated_names)
    hits = dict.fromkeys(ranks, 0)
    genuine = np.zeros(0)
    for start in range(0, m, 2048):
        s = scores(mated_names[start : start + 2048])
        top = np.argsort(-s, axis=1, kind="stable")[:, : max(ranks)]
        t = truth[start : start + 2048]
        for r in ranks:
            hits[r] += int((top[:, :r] == t[:, None]).any(axis=1).sum())
        genuine = np.r_[genuine, s[np.arange(len(s)), t]]
    non_mated_best = np.zeros(0)
    for start in range(0, len(non_mated_names), 2048):
        non_mated_best = np.r_[non_mated_best, scores(non_mated_names[start : start + 2048]).max(axis=1)]
    return identification.IdentificationResult(
        gallery=len(gallery_names),
        distractors=0,
        mated_probes=m,
        non_mated_probes=len(non_mated_names),
        rank_hits={r: hits[r] / max(m, 1) for r in ranks},
        non_mated_best=non_mated_best,
        mated_best_genuine=genuine,
        images_without_face=int((np.linalg.norm(templates, axis=1) == 0).sum()),
        excluded_comparisons=excluded,
    )
