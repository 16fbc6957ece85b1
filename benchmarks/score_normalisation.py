"""Does score normalisation help open-set identification? Measured, not assumed.

- Subject-side (cohort Z-norm): at watchlist build time every reference image is scored against a cohort
  of templates of people who are not on the watchlist; a probe's score against that reference is then
  normalised as (s − μ_ref) / σ_ref, so that references whose photographs attract impostors ("lambs") stop
  dominating false alerts. The cohort comes from *another* data set than the one evaluated (celeba-dev for
  LFW, LFW for celeba-dev), so nothing is tuned on the data it is reported on. Two variants: all cohort
  scores and the 50 highest.
- Probe-side (T-norm): a probe's scores against the whole watchlist are normalised by their own mean and
  spread, so that probes that resemble everyone ("wolves") stop dominating.

    python benchmarks/score_normalisation.py --data ../shared/data [--pack yunet-sface-dlib] [--cache-dir DIR]

Prints, for raw and normalised scores, TPIR at FPIR 1/100, 1/1000 and 1/6000 (thresholds set on the
non-mated searches of all draws) for LFW at W = 1,000 and celeba-dev at W = 100. Templates come from the
evaluation cache (``openlfr evaluate identification`` fills it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from openlfr.cli.common import engine_for
from openlfr.evaluation import aliases, openset

TARGETS = (1 / 100, 1 / 1000, 1 / 6000)


def searches(templates, names, alias_list, size, seed, cohort, tail):
    """(mated best scores, non-mated best scores) of one draw for raw and normalised scores."""
    rng = np.random.default_rng(seed)
    ok = np.linalg.norm(templates, axis=1) > 0
    by_person: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        by_person.setdefault(openset.identity_of(n), []).append(i)
    enrolled = sorted(rng.choice(openset.eligible_people(templates, names), size, replace=False).tolist())
    gallery, mated, owner = [], [], []
    for w, person in enumerate(enrolled):
        rows = by_person[person]
        g = int(rng.choice([r for r in rows if ok[r]]))
        gallery.append(g)
        picked = openset._pick(rng, [r for r in rows if r != g], openset.PER_PERSON)
        mated += picked
        owner += [w] * len(picked)
    taken = set(enrolled)
    non_mated = [
        r for p in sorted(by_person) if p not in taken for r in openset._pick(rng, [r for r in by_person[p] if ok[r]], 10)
    ]
    refs = templates[gallery]
    cohort_scores = cohort @ refs.T
    if tail:
        cohort_scores = np.sort(cohort_scores, axis=0)[-tail:]
    mu, sd = cohort_scores.mean(axis=0), cohort_scores.std(axis=0) + 1e-6
    ref_names = [names[g] for g in gallery]
    out = {}

    def t_norm(s: np.ndarray) -> np.ndarray:
        return (s - s.mean(axis=1, keepdims=True)) / (s.std(axis=1, keepdims=True) + 1e-6)

    for key, norm in (("raw", lambda s: s), ("Z-norm", lambda s: (s - mu) / sd), ("T-norm", t_norm)):
        best_scores = []
        for rows, is_mated in ((mated, True), (non_mated, False)):
            s = templates[rows] @ refs.T
            listed = np.zeros_like(s, bool)
            ii, jj = alias_list.excluded_pairs([names[r] for r in rows], ref_names)
            listed[ii, jj] = True
            n = np.where(listed, -np.inf, norm(s))
            best = n.argmax(axis=1)
            value = n[np.arange(len(n)), best]
            if is_mated:
                value = np.where((best == np.array(owner)) & ok[rows], value, -np.inf)
            best_scores.append(value)
        out[key] = best_scores
    return out


def report(label, templates, names, alias_list, size, draws, cohort, tail):
    pooled: dict[str, list[list[np.ndarray]]] = {}
    for seed in range(draws):
        for key, (m, n) in searches(templates, names, alias_list, size, seed, cohort, tail).items():
            pooled.setdefault(key, [[], []])
            pooled[key][0].append(m)
            pooled[key][1].append(n)
    for key, (m, n) in pooled.items():
        mated, non_mated = np.concatenate(m), np.concatenate(n)
        cells = []
        for f in TARGETS:
            t = np.quantile(non_mated, 1 - f)
            cells.append(f"TPIR {np.mean(mated > t) * 100:.2f}% at FPIR 1/{round(1 / f):,}")
        print(f"  {label}, W = {size:,}, {key:7s}: " + "; ".join(cells) + f"  ({len(non_mated):,} non-mated searches)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="The shared data folder (lfw/, celeba-dev/).")
    parser.add_argument("--pack", default=None)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    engine = engine_for(args.pack, None)
    cache = args.cache_dir or openset.default_cache_dir()
    lfw_t, lfw_n = openset.lfw_template_cache(engine, args.data / "lfw", cache)
    celeba_dir = args.data / "celeba-dev"
    celeba_n = openset.folder_names(celeba_dir)
    celeba_t = openset.template_cache(engine, celeba_dir, celeba_n, cache)
    lfw_aliases = aliases.for_dataset(args.data / "lfw" / "lfw-deepfunneled")
    celeba_aliases = aliases.for_dataset(celeba_dir)
    lfw_cohort = lfw_t[np.random.default_rng(9).choice(len(lfw_t), 3000, replace=False)]
    print(f"Model pack {engine.pack_id}; cohort Z-norm, cohort from the other data set")
    for tail, name in ((0, "all cohort scores"), (50, "the 50 highest cohort scores")):
        print(f"Z-norm with {name} (T-norm needs no cohort: the same in both blocks):")
        report("LFW (cohort: celeba-dev)", lfw_t, lfw_n, lfw_aliases, 1000, args.draws, celeba_t, tail)
        report("celeba-dev (cohort: LFW)", celeba_t, celeba_n, celeba_aliases, 100, 4 * args.draws, lfw_cohort, tail)


if __name__ == "__main__":
    main()
