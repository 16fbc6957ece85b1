"""Building the impostor and mated model of a calibration (:mod:`openlfr.calibration`) from templates of a
labelled set, with bootstrap replicates over people and a generalised Pareto tail.

Protocol: at most ``per_person`` images of each person (drawn at random, as the open-set protocol does, so
that one much-photographed person cannot dominate). Impostor comparisons: every pair of images of two
different people, both with a detected face, less the pairs of the alias list (label errors). Mated
comparisons: every ordered (reference, probe) pair of one person's images; the reference needs a face that
enrolment accepts (when ``enrollable`` is given), a probe without a face is a miss. Impostor comparisons keep
every image, whatever its quality (on LFW, weighting each pair by how many of its two images enrolment
accepts changes the rates above 0.75 by less than 3%).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from openlfr import calibration as cal
from openlfr.evaluation.aliases import NONE, AliasList, identity_of

#: The tail is fitted to the impostor scores above the score that this many comparisons exceed: the largest
#: of these whose fit agrees with every measured exceedance count above it (the extreme tail of face
#: scores is often heavier than its bulk: twins, relatives, residual label errors).
TAIL_EVENTS = (3000, 1000, 300, 100)
#: Measured exceedance counts the fit is checked against (those that fall above u).
CHECK_EVENTS = (1000, 300, 100, 30, 10, 5)
#: Impostor scores kept for the bootstrap: those above the score that this many comparisons exceed.
KEPT_EVENTS = 100_000
REPLICATES = 200
COARSE_STEP = 0.01
BLOCK = 1024
Progress = Callable[[str], None] | None


@dataclass
class Comparisons:
    """What the bootstrap needs: impostor scores above ``floor`` with their two people, and per-person counts."""

    people: list[str]
    usable_images: np.ndarray  # per person: images with a face (impostor comparisons)
    comparisons: int  # impostor comparisons, aliases left out
    excluded: int  # impostor comparisons left out as label errors
    exceeding: np.ndarray  # per grid threshold: impostor comparisons scoring >= t
    floor: float
    event_score: np.ndarray
    event_a: np.ndarray  # person index
    event_b: np.ndarray
    mated_counts: np.ndarray  # people x coarse grid: mated probes scoring >= t (in probe units)
    mated_fine: np.ndarray  # fine grid, all people together
    mated_probes: np.ndarray  # per person: probes (k - 1)
    coarse: np.ndarray


def select(names: list[str], per_person: int, seed: int) -> list[int]:
    """At most ``per_person`` rows of each person, drawn at random (all of them when fewer)."""
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        by_person.setdefault(identity_of(n), []).append(i)
    rows: list[int] = []
    for person in sorted(by_person):
        r = by_person[person]
        rows += r if len(r) <= per_person else sorted(rng.choice(r, per_person, replace=False).tolist())
    return rows


def collect(
    templates: np.ndarray,
    names: list[str],
    aliases: AliasList = NONE,
    per_person: int = 10,
    seed: int = 0,
    progress: Progress = None,
    enrollable: np.ndarray | None = None,
) -> Comparisons:
    """Every impostor and mated comparison of the selected images (see the module docstring)."""
    rows = select(names, per_person, seed)
    names = [names[r] for r in rows]
    t = np.asarray(templates[rows], np.float32)
    face = np.linalg.norm(t, axis=1) > 0
    reference = face if enrollable is None else face & np.asarray(enrollable, bool)[rows]
    people = sorted({identity_of(n) for n in names})
    index = {p: i for i, p in enumerate(people)}
    person = np.array([index[identity_of(n)] for n in names])
    usable = np.flatnonzero(face)
    tu, pu, nu = t[usable], person[usable], [names[i] for i in usable]

    def blocks():
        for start in range(0, len(usable), BLOCK):
            s = tu[start : start + BLOCK] @ tu.T
            cols = np.arange(len(usable))
            keep = (cols[None, :] > np.arange(start, start + len(s))[:, None]) & (pu[start : start + BLOCK, None] != pu[None, :])
            ii, jj = aliases.excluded_pairs(nu[start : start + BLOCK], nu)
            listed = np.zeros_like(keep)
            listed[ii, jj] = True
            yield start, s, keep & ~listed, int((keep & listed).sum())

    if progress:
        progress("impostor comparisons: counting")
    exceeding = np.zeros(cal.STEPS + 1, np.int64)
    comparisons = excluded = 0
    for _start, s, keep, gone in blocks():
        exceeding += cal.exceeding(s[keep])
        comparisons += int(keep.sum())
        excluded += gone
    k = int(np.argmax(exceeding <= KEPT_EVENTS))
    floor = float(cal.GRID[k])
    if progress:
        progress(f"impostor comparisons: keeping the {int(exceeding[k]):,} above {floor:.3f}")
    scores, a, b = [], [], []
    for start, s, keep, _gone in blocks():
        ii, jj = np.nonzero(keep & (s >= floor))
        scores.append(s[ii, jj])
        a.append(pu[start + ii])
        b.append(pu[jj])
    usable_images = np.bincount(pu, minlength=len(people))
    coarse = np.round(np.arange(floor, 1.0 + 1e-9, COARSE_STEP), 3)
    mated_counts, mated_fine, mated_probes = _mated(t, face, reference, person, len(people), coarse)
    return Comparisons(
        people, usable_images, comparisons, excluded, exceeding, floor,
        np.concatenate(scores), np.concatenate(a), np.concatenate(b),
        mated_counts, mated_fine, mated_probes, coarse,
    )  # fmt: skip


def _mated(t: np.ndarray, face: np.ndarray, reference: np.ndarray, person: np.ndarray, people: int, coarse: np.ndarray):
    """Per person: mated probes (k − 1, as one reference would have) scoring at least each threshold.

    Every image that may be a reference serves as the reference in turn; the counts are averaged over references, so
    each person weighs k − 1 probes, as in the open-set protocol, with less noise than one reference.
    """
    counts = np.zeros((people, len(coarse)), np.float64)
    fine = np.zeros(cal.STEPS + 1, np.float64)
    probes = np.zeros(people, np.float64)
    members: dict[int, list[int]] = {}
    for row, p in enumerate(person.tolist()):
        members.setdefault(p, []).append(row)
    for p, listed in members.items():
        rows = np.asarray(listed)
        if len(rows) < 2 or not reference[rows].any():
            continue
        refs = rows[reference[rows]]
        s = t[refs] @ t[rows].T  # refs x all images of the person
        s[:, ~face[rows]] = -1.0  # a probe without a face is a miss
        same = refs[:, None] == rows[None, :]
        scores = s[~same]
        weight = 1.0 / len(refs)  # averaged over references: k - 1 probes in all
        probes[p] = len(rows) - 1
        counts[p] = (scores[:, None] >= coarse[None, :] - 1e-9).sum(axis=0) * weight
        fine += cal.exceeding(scores) * weight
    return counts, fine, probes


# --------------------------------------------------------------------------------------------------- model


def _fit_tail(excess: np.ndarray) -> tuple[float, float]:
    """GPD shape ξ and scale σ of the excesses over the tail threshold (maximum likelihood, location 0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xi, _loc, sigma = stats.genpareto.fit(excess, floc=0)
    return float(xi), float(sigma)


def _gpd_rate(grid: np.ndarray, u: float, p_u: float, xi: float, sigma: float) -> np.ndarray:
    return p_u * stats.genpareto.sf(np.maximum(grid - u, 0.0), xi, loc=0, scale=sigma)


def _tail_checks(c: Comparisons, u: float, p_u: float, xi: float, sigma: float) -> list[dict]:
    """The fit against measured exceedance counts above u, each with its Poisson 95% agreement."""
    rows = []
    for events in CHECK_EVENTS:
        k = int(np.argmax(c.exceeding <= events))
        t = float(cal.GRID[k])
        if t < u or c.exceeding[k] == 0:
            continue
        measured = int(c.exceeding[k])
        expected = float(_gpd_rate(np.array([t]), u, p_u, xi, sigma)[0] * c.comparisons)
        agrees = bool(stats.poisson.cdf(measured, expected) >= 0.025 and stats.poisson.sf(measured - 1, expected) >= 0.025)
        rows.append({"threshold": t, "comparisons_exceeding": measured, "fitted_count": round(expected, 2),
                     "measured_rate": measured / c.comparisons, "fitted_rate": expected / c.comparisons,
                     "agrees_at_95pct": agrees})  # fmt: skip
    return rows


def fit_tail(c: Comparisons) -> dict:
    """Peaks over threshold: the GPD fit whose u is as low as the measured extreme counts allow."""
    chosen = None
    for events in TAIL_EVENTS:
        k_u = int(np.argmax(c.exceeding <= events))
        u = float(cal.GRID[k_u])
        p_u = float(c.exceeding[k_u] / max(c.comparisons, 1))
        above = c.event_score[c.event_score >= u] - u
        if len(above) < 20:
            continue
        xi, sigma = _fit_tail(above)
        checks = _tail_checks(c, u, p_u, xi, sigma)
        chosen = {"u": u, "p_u": p_u, "shape_xi": xi, "scale_sigma": sigma, "exceedances": len(above), "check": checks}
        if all(row["agrees_at_95pct"] for row in checks):
            break
    if chosen is None:
        raise ValueError("too few impostor comparisons to fit the tail")
    return chosen


def model(c: Comparisons, replicates: int = REPLICATES, seed: int = 0, progress: Progress = None) -> dict:
    """The ``model`` block of a calibration: p(t) and T1(t) with their bootstrap replicates over people."""
    grid = cal.GRID
    empirical = c.exceeding / max(c.comparisons, 1)
    tail_fit = fit_tail(c)
    u, p_u, xi, sigma = tail_fit["u"], tail_fit["p_u"], tail_fit["shape_xi"], tail_fit["scale_sigma"]
    rate = np.where(grid >= u, _gpd_rate(grid, u, p_u, xi, sigma), empirical)
    t1 = c.mated_fine / max(c.mated_probes.sum(), 1)
    rng = np.random.default_rng(seed)
    people = len(c.people)
    n_imgs = c.usable_images.astype(np.float64)
    b_rate, b_t1 = [], []
    tail = c.event_score >= u
    order = np.argsort(-c.event_score, kind="stable")
    falling = c.event_score[order]
    reach = np.searchsorted(-falling, -(c.coarse - 1e-9), side="right")  # events scoring >= each coarse threshold
    for r in range(replicates):
        if progress and r % 50 == 0:
            progress(f"bootstrap over people: {r}/{replicates}")
        m = rng.multinomial(people, np.full(people, 1.0 / people)).astype(np.float64)
        total = ((m * n_imgs).sum() ** 2 - (m**2 * n_imgs**2).sum()) / 2.0
        w = m[c.event_a] * m[c.event_b]
        emp = np.r_[0.0, np.cumsum(w[order])][reach] / max(total, 1.0)
        p_u_r = float(w[tail].sum() / max(total, 1.0))
        counts = w[tail].astype(np.int64)
        excess = np.repeat(c.event_score[tail] - u, counts)
        xi_r, sigma_r = _fit_tail(excess) if len(excess) > 10 else (xi, sigma)
        b_rate.append(np.where(c.coarse >= u, _gpd_rate(c.coarse, u, p_u_r, xi_r, sigma_r), emp))
        b_t1.append((m[:, None] * c.mated_counts).sum(axis=0) / max((m * c.mated_probes).sum(), 1.0))
    return {
        "comparisons": c.comparisons,
        "excluded_as_aliases": c.excluded,
        "mated_probes": float(c.mated_probes.sum()),
        "people": people,
        "rate": rate,
        "t1": t1,
        "tail": {
            "method": "generalised Pareto distribution (GPD) fitted by maximum likelihood to the impostor scores above u; "
            "p(t) = p(u) * GPD survival(t - u) for t >= u, the measured share of comparisons below u. u is the lowest of the "
            f"scores exceeded by {', '.join(f'{n:,}' for n in TAIL_EVENTS)} comparisons whose fit agrees (Poisson, 95%) with "
            "every measured exceedance count above it",
            **tail_fit,
            "measured_down_to": cal.RULE_OF / max(c.comparisons, 1),
        },
        "bootstrap": {
            "replicates": replicates,
            "unit": "person (resampled with replacement; impostor pairs weighted by the product of both people's counts)",
            "grid": c.coarse,
            "rate": np.array(b_rate),
            "t1": np.array(b_t1),
        },
        "transfer": None,
    }


def transfer(cal_model: dict, other_model: dict, other_name: str) -> dict:
    """How far the calibration set's rates are from those measured on another population of photographs.

    FPIR factor: the geometric mean of p_other(t) / p_cal(t) (or its inverse, whichever is above 1) over the
    thresholds where the other set measures p with 30 to 300 comparisons exceeding, the highest it can
    measure. TPIR shift: the largest |T1_cal(t) − T1_other(t)| over thresholds whose calibrated p(t) lies
    between 1e-7 and 1e-4 (where deployments choose their thresholds).
    """
    grid = cal.GRID
    p_cal, p_other = cal_model["rate"], other_model["rate"]
    counts = p_other * other_model["comparisons"]
    band = (counts >= cal.RULE_OF) & (counts <= 10 * cal.RULE_OF) & (p_cal > 0)
    ratio = float(np.exp(np.mean(np.log(p_other[band] / p_cal[band])))) if band.any() else 1.0
    region = (p_cal <= 1e-4) & (p_cal >= 1e-7)
    diff = np.abs(cal_model["t1"] - other_model["t1"])[region]
    shift = float(diff.max()) if diff.size else 0.0
    return {
        "fpir_factor": max(ratio, 1.0 / ratio),
        "rate_ratio_other_over_calibration": ratio,
        "thresholds_compared": [float(grid[band].min()), float(grid[band].max())] if band.any() else [],
        "tpir_shift": shift,
        "basis": f"{other_name} against the calibration set (rates at thresholds {grid[band].min():.3f}-{grid[band].max():.3f}; "
        f"mated shares where p is 1e-7..1e-4)" if band.any() else f"{other_name}: too few comparisons to compare rates",
        "other_set": other_name,
    }


def wilson(k: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def validate(
    data: dict,
    templates: np.ndarray,
    names: list[str],
    threshold: float,
    size: int,
    draws: int = 20,
    name: str = "other set",
    aliases: AliasList = NONE,
    enrollable: np.ndarray | None = None,
) -> dict:
    """Predicted against measured FPIR and TPIR on photographs not used to make the calibration.

    Measured: open-set draws of ``size`` people on the other set (searches pooled over draws, Wilson intervals);
    predicted: :func:`openlfr.calibration.predict` with its 95% interval.
    """
    from openlfr.evaluation import openset

    predicted = cal.predict(data, threshold, size)
    results = openset.evaluate(templates, names, [size], list(range(draws)), aliases=aliases, enrollable=enrollable)[0]
    k = int(np.clip(np.searchsorted(cal.GRID, threshold + 1e-9, side="right") - 1, 0, len(cal.GRID) - 1))
    false_alerts = float(sum(d.fpir_counts()[k] for d in results.draws))
    searches = float(sum(len(d.non_mated_score) for d in results.draws))
    hits = float(sum(d.tpir_counts()[k] for d in results.draws))
    mated = float(sum(len(d.mated_score) for d in results.draws))
    fpir, tpir = false_alerts / max(searches, 1), hits / max(mated, 1)

    def inside(value: float, interval: tuple[float, float]) -> bool:
        return interval[0] <= value <= interval[1]

    return {
        "set": name,
        "threshold": threshold,
        "watchlist_size": size,
        "draws": draws,
        "predicted_fpir": predicted.fpir,
        "predicted_fpir_interval": predicted.fpir_interval,
        "measured_fpir": fpir,
        "measured_false_alerts": int(false_alerts),
        "non_mated_searches": int(searches),
        "measured_fpir_wilson": wilson(false_alerts, searches),
        "fpir_inside_prediction": inside(fpir, predicted.fpir_interval),
        "predicted_tpir": predicted.tpir,
        "predicted_tpir_interval": predicted.tpir_interval,
        "measured_tpir": tpir,
        "mated_searches": int(mated),
        "measured_tpir_wilson": wilson(hits, mated),
        "tpir_inside_prediction": inside(tpir, predicted.tpir_interval),
    }
