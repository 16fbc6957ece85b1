"""Differences in accuracy between groups of people, with intervals and a significance test.

Groups file: a CSV with a header row. The column ``identity`` names the person as the data set does
(LFW's folder name, e.g. ``Aaron_Peirsol``); every other column is one attribute (sex, age band,
ethnicity, skin tone — whatever the force records), its values the groups. Blank cells are "not
labelled" for that attribute; lines starting with ``#`` are comments. LFW carries no demographic
labels: a force supplies its own, for images it holds lawfully, and the report is only as good as them.

Figures per group, at one threshold T (a score at or above T is a match):

- verification: FNMR = share of mated comparisons (two images of one person, at most ``per_person``
  images per person) below T; FMR = share of non-mated comparisons between two *different people of the
  same group* at or above T (as NIST's demographic tests do: a search confuses look-alikes, who mostly
  share a group); all such pairs, or a uniform sample of ``max_non_mated`` per group;
- open-set identification (one watchlist draw over everybody, ``openset.draw``): TPIR = share of the
  group's mated probes identified at rank 1 at or above T; FPIR = share of its non-mated probes with any
  watchlist score at or above T.

Intervals: 95% Wilson score intervals. They treat comparisons as independent; comparisons that share a
person are not, so with few people the true uncertainty is wider: the number of people is shown too.

Test: a two-proportion z-test between every two groups of an attribute, for each figure; p-values are
Holm-corrected within each (attribute, figure) family and a difference is called significant when the
corrected p < 0.05. No significant difference is not evidence of equal accuracy when samples are small.

Too small to support a claim (stated on the report): fewer than 30 comparisons or probes behind the
figure, fewer than 10 people, or a 95% interval wider than 10 percentage points.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from openlfr.errors import OpenLFRError
from openlfr.evaluation import openset
from openlfr.evaluation.aliases import NONE, AliasList
from openlfr.evaluation.openset import identity_of
from openlfr.evaluation.verification import all_pairs

Z95 = 1.959963984540054
MIN_TRIALS, MIN_PEOPLE, MAX_CI_WIDTH = 30, 10, 0.10
FIGURES = ("fnmr", "fmr", "tpir", "fpir")
FIGURE_NAMES = {
    "fnmr": "false non-match rate (verification)",
    "fmr": "false match rate (verification)",
    "tpir": "true positive identification rate",
    "fpir": "false positive identification rate",
}
SMALL_RULE = (
    f"a figure is too small to support a claim when it rests on fewer than {MIN_TRIALS} comparisons or probes, on fewer "
    f"than {MIN_PEOPLE} people, or its 95% interval is wider than {MAX_CI_WIDTH * 100:.0f} percentage points"
)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (sound near 0 and 1, unlike the normal one)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """(z, two-sided p) for H0: both groups share one rate (pooled standard error)."""
    if not n1 or not n2:
        return 0.0, 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (k1 / n1 - k2 / n2) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def holm(pvalues: list[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def read_groups(path: Path) -> dict[str, dict[str, str]]:
    """{attribute: {identity: group}} from a groups CSV (format in the module docstring)."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip() and not line.startswith("#")]
    except OSError as exc:
        raise OpenLFRError(f"cannot read groups file {path}: {exc}") from exc
    rows = list(csv.DictReader(lines))
    if not rows or "identity" not in rows[0]:
        raise OpenLFRError(f"{path} needs a header row with an 'identity' column and one column per attribute")
    attributes = [c for c in rows[0] if c and c != "identity"]
    if not attributes:
        raise OpenLFRError(f"{path} has no attribute columns beside 'identity'")
    return {a: {r["identity"].strip(): (r[a] or "").strip() for r in rows if (r[a] or "").strip()} for a in attributes}


@dataclass
class Rate:
    """k of n, with its interval and whether it can support a claim."""

    errors: int
    trials: int
    people: int

    @property
    def rate(self) -> float | None:
        return self.errors / self.trials if self.trials else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.errors, self.trials)

    def too_small(self) -> list[str]:
        reasons = []
        if self.trials < MIN_TRIALS:
            reasons.append(f"{self.trials} < {MIN_TRIALS} comparisons/probes")
        if self.people < MIN_PEOPLE:
            reasons.append(f"{self.people} < {MIN_PEOPLE} people")
        lo, hi = self.interval
        if hi - lo > MAX_CI_WIDTH:
            reasons.append(f"95% interval {(hi - lo) * 100:.1f} points wide")
        return reasons

    def as_dict(self) -> dict:
        lo, hi = self.interval
        return {
            "errors_or_hits": self.errors,
            "trials": self.trials,
            "people": self.people,
            "rate": None if self.rate is None else round(self.rate, 6),
            "ci95": [round(lo, 6), round(hi, 6)],
            "too_small": self.too_small(),
        }


def capped_rows(names: list[str], ok: np.ndarray, people: set[str], per_person: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        if ok[i] and identity_of(n) in people:
            by_person.setdefault(identity_of(n), []).append(i)
    rows: list[int] = []
    for p in sorted(by_person):
        r = by_person[p]
        rows += r if len(r) <= per_person else sorted(rng.choice(r, per_person, replace=False).tolist())
    return rows


def verification_rates(
    templates: np.ndarray,
    names: list[str],
    people: set[str],
    threshold: float,
    per_person: int,
    max_non_mated: int,
    seed: int,
    aliases: AliasList = NONE,
) -> tuple[Rate, Rate]:
    """(FNMR, FMR) among one group's people at ``threshold``."""
    ok = np.linalg.norm(templates, axis=1) > 0
    rows = capped_rows(names, ok, people, per_person, seed)
    ids = [identity_of(names[r]) for r in rows]
    if len(rows) < 2:
        return Rate(0, 0, len(set(ids))), Rate(0, 0, len(set(ids)))
    mated, non_mated, _ = all_pairs(templates[rows], ids, max_non_mated, seed, [names[r] for r in rows], aliases)
    two_or_more = sum(1 for p in set(ids) if ids.count(p) >= 2)
    return (
        Rate(int((mated < threshold).sum()), len(mated), two_or_more),
        Rate(int((non_mated >= threshold).sum()), len(non_mated), len(set(ids))),
    )


def identification_rates(d: openset.Draw, people: set[str], threshold: float) -> tuple[Rate, Rate]:
    """(TPIR, FPIR) of one group's probes in a watchlist draw."""
    m = np.isin(d.mated_identity, list(people))
    n = np.isin(d.non_mated_identity, list(people))
    hits = d.mated_correct[m] & (d.mated_score[m] >= threshold)
    return (
        Rate(int(hits.sum()), int(m.sum()), len(set(d.mated_identity[m].tolist()))),
        Rate(int((d.non_mated_score[n] >= threshold).sum()), int(n.sum()), len(set(d.non_mated_identity[n].tolist()))),
    )


def significance(groups: dict[str, dict[str, Rate]]) -> list[dict]:
    """Pairwise two-proportion z-tests for each figure, Holm-corrected within the figure."""
    out = []
    for figure in FIGURES:
        tested = [(g, r[figure]) for g, r in sorted(groups.items()) if r[figure].trials]
        pairs = list(combinations(tested, 2))
        tests = [two_proportion_z(a.errors, a.trials, b.errors, b.trials) for (_, a), (_, b) in pairs]
        adjusted = holm([p for _, p in tests])
        for ((ga, a), (gb, b)), (z, p), padj in zip(pairs, tests, adjusted, strict=True):
            small = [g for g, r in ((ga, a), (gb, b)) if r.too_small()]
            out.append(
                {
                    "figure": figure,
                    "group_a": ga,
                    "group_b": gb,
                    "rate_a": round(a.rate or 0.0, 6),
                    "rate_b": round(b.rate or 0.0, 6),
                    "z": round(z, 3),
                    "p": round(p, 6),
                    "p_holm": round(padj, 6),
                    "significant": padj < 0.05,
                    "caution": f"too small to support a claim: {', '.join(small)}" if small else "",
                }
            )
    return out


def evaluate(
    templates: np.ndarray,
    names: list[str],
    groups: dict[str, dict[str, str]],
    threshold: float,
    watchlist_size: int,
    seed: int = 0,
    per_person: int = openset.PER_PERSON,
    max_non_mated: int = 1_000_000,
    aliases: AliasList = NONE,
    enrollable: np.ndarray | None = None,
) -> dict:
    """Every figure for every group of every attribute, with the tests between groups; comparisons the alias
    list names (label errors) are left out of the impostor figures; ``enrollable`` limits the watchlist's
    images to those enrolment accepts (:func:`openlfr.evaluation.openset.draw`)."""
    d = openset.draw(templates, names, watchlist_size, seed, per_person, aliases, enrollable)
    present = {identity_of(n) for n in names}
    result: dict = {"attributes": {}, "watchlist_size": watchlist_size, "seed": seed, "threshold": threshold,
                    "aliases": aliases.describe() | {"excluded_comparisons_in_draw": d.excluded_comparisons}}  # fmt: skip
    for attribute, labels in groups.items():
        members: dict[str, set[str]] = {}
        for identity, group in labels.items():
            if identity in present:
                members.setdefault(group, set()).add(identity)
        rates: dict[str, dict[str, Rate]] = {}
        for group, people in sorted(members.items()):
            fnmr, fmr = verification_rates(templates, names, people, threshold, per_person, max_non_mated, seed, aliases)
            tpir, fpir = identification_rates(d, people, threshold)
            rates[group] = {"fnmr": fnmr, "fmr": fmr, "tpir": tpir, "fpir": fpir}
        result["attributes"][attribute] = {
            "people_labelled": sum(len(p) for p in members.values()),
            "people_unlabelled": len(present) - sum(len(p) for p in members.values()),
            "groups": {g: {"people": len(members[g]), **{f: r.as_dict() for f, r in rs.items()}} for g, rs in rates.items()},
            "tests": significance(rates),
        }
    return result


def interval_figure(attribute: str, data: dict):
    """One panel per figure: each group's rate with its 95% interval."""
    from openlfr.evaluation.report import new_figure

    groups = list(data["groups"])
    fig = new_figure(8, 1.4 + 0.45 * max(len(groups), 1))
    axes = fig.subplots(1, len(FIGURES), sharey=True)
    for ax, figure in zip(axes, FIGURES, strict=True):
        for y, g in enumerate(groups):
            r = data["groups"][g][figure]
            if r["rate"] is None:
                continue
            lo, hi = r["ci95"]
            colour = "#b35900" if r["too_small"] else "#1f4e8c"
            ax.errorbar([r["rate"]], [y], xerr=[[r["rate"] - lo], [hi - r["rate"]]], fmt="o", color=colour, capsize=3)
        ax.set_title(figure.upper(), fontsize=9)
        ax.set_yticks(range(len(groups)), groups, fontsize=8)
        ax.set_ylim(-0.6, len(groups) - 0.4)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"{attribute}: rate and 95% Wilson interval per group (orange: too small to support a claim)", fontsize=9)
    return fig
