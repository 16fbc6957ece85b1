"""Identification (1:N) on LFW or any labelled folder: the closed-set rank figures, and the open-set report
(TPIR against FPIR per watchlist size, extrapolation to larger watchlists) with the calibration file that
thresholds are chosen from (``openlfr evaluate identification``).

The protocols are in :mod:`openlfr.evaluation.openset` and :mod:`openlfr.evaluation.identification`; this
module runs them and writes the report, so the command line only parses options and prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from openlfr.core.engine import FaceEngine
from openlfr.errors import OpenLFRError
from openlfr.evaluation import openset
from openlfr.evaluation import report as rep

#: The false-alert rates every open-set report gives TPIR at: South Wales Police's former cap and NPL's Met figure.
FPIR_TARGETS = (1 / 1000, 1 / 6000)


def check_source(data: Path | None, folder: Path | None) -> None:
    """Exactly one data set: LFW (``data``) or a labelled folder; two at once would mix their people."""
    if (data is None) == (folder is None):
        raise OpenLFRError("give exactly one of --data (LFW) and --folder (a labelled folder DIR/<identity>/<images>)")


def load_templates(
    engine: FaceEngine,
    data: Path | None,
    folder: Path | None,
    people: int | None,
    cache_dir: Path | None,
    progress: openset.Progress = None,
) -> tuple[np.ndarray, list[str], dict]:
    """(templates, image names, dataset description) of LFW (``data``) or a labelled folder; exactly one.

    A folder is ``DIR/<identity>/<images>`` and is named after itself; its templates are cached like LFW's.
    """
    check_source(data, folder)
    if data is not None:
        templates, names = openset.lfw_template_cache(engine, data, cache_dir, people, progress)
        name, path = "LFW", data
    else:
        assert folder is not None
        names = openset.folder_names(folder, people)
        templates = openset.template_cache(engine, folder, names, cache_dir, progress)
        name, path = folder.resolve().name, folder
    dataset = {"name": name + (f" (first {people} people)" if people else ""), "path": str(path)}
    return templates, names, dataset


def evaluate_identification(
    engine: FaceEngine,
    out: Path,
    data: Path | None = None,
    folder: Path | None = None,
    holdout: float = 0.1,
    seed: int = 0,
    people: int | None = None,
    report: bool = True,
    sizes: str = "100,1000,max",
    draws: int = 5,
    per_person: int = openset.PER_PERSON,
    extrapolate_to: Sequence[int] = (10_000,),
    calibration: Path | None = None,
    exclude: Path | None = None,
    cache_dir: Path | None = None,
    progress: openset.Progress = None,
) -> dict:
    """Rank-1/5/10/20 hit rates and non-mated best scores, and (``report``) the open-set report and calibration
    file, on LFW (``data``) or a labelled folder; writes OUT/identification_result.json and returns it.

    The non-mated probes' share at or above the pack's alert threshold is part of the result: it is the
    threshold searches and alerts use by default.
    """
    started = time.perf_counter()
    templates, names, dataset = load_templates(engine, data, folder, people, cache_dir, progress)
    excluded = sorted(openset.read_exclusions(exclude)) if exclude else []
    if excluded:
        keep = [i for i, n in enumerate(names) if openset.identity_of(n) not in set(excluded)]
        templates, names = templates[keep], [names[i] for i in keep]
    dataset |= {"images": len(names), "people": len({openset.identity_of(n) for n in names}), "excluded": excluded}
    result = openset.closed_set(templates, names, holdout, seed)
    result.pack_threshold = engine.alert_threshold
    result.dataset = "LFW" if data is not None else dataset["name"]
    summary = result.as_dict() | {"model_pack": engine.pack_id, "holdout": holdout, "seed": seed, "dataset": dataset}
    if excluded:
        summary["excluded_identities"] = excluded
    out.mkdir(parents=True, exist_ok=True)
    if report:
        open_set = openset_report(
            out, templates, names, dataset, engine.pack_id, engine.recognizer.flip, sizes,
            list(range(seed, seed + draws)), per_person, list(extrapolate_to), calibration or out / "calibration.json",
        )  # fmt: skip
        summary["open_set"] = {"watchlists": open_set["watchlists"], "report": str(out / "identification.html"),
                               "calibration_file": open_set["calibration_file"]}  # fmt: skip
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "identification_result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def leave_strangers(sizes: list[int], notes: list[str], templates: np.ndarray, names: list[str]) -> tuple[list[int], list[str]]:
    """Drop watchlist sizes that would enrol everyone with a usable image, with a note saying so.

    In a folder where every person has two or more images (not LFW, where most have one), "max" enrols
    everybody: no non-mated probe is left, FPIR reads 0 at every threshold, and a calibration made from it
    would promise no false alerts at threshold 0.
    """
    with_face = {openset.identity_of(n) for n, ok in zip(names, np.linalg.norm(templates, axis=1) > 0, strict=True) if ok}
    kept = [w for w in sizes if w < len(with_face)]
    notes = notes + [
        f"watchlist size {w} skipped: it would enrol all {len(with_face)} people with a usable image, "
        "leaving no non-mated probes (passers-by) to measure false alerts with"
        for w in sizes
        if w >= len(with_face)
    ]
    return kept, notes


def openset_report(
    out: Path,
    templates: np.ndarray,
    names: list[str],
    dataset: dict,
    pack_id: str,
    flip: bool,
    sizes_spec: str,
    seeds: list[int],
    per_person: int,
    extrapolate_to: list[int],
    calibration_path: Path,
) -> dict:
    """Open-set 1:N for each watchlist size: the HTML/JSON report and the calibration file; returns the summary."""
    sizes, notes = openset.resolve_sizes(sizes_spec, templates, names)
    sizes, notes = leave_strangers(sizes, notes, templates, names)
    if not sizes:
        raise OpenLFRError("no watchlist size fits the data: " + "; ".join(notes))
    results = openset.evaluate(templates, names, sizes, seeds, per_person)
    cal = openset.calibration(results, pack_id, flip, dataset, per_person, seeds)
    openset.save_calibration(cal, calibration_path)
    largest = results[-1]
    summary = {
        "model_pack": pack_id,
        "dataset": dataset,
        "seeds": seeds,
        "per_person": per_person,
        "notes": notes,
        "watchlists": [r.as_dict(FPIR_TARGETS) for r in results],
        "extrapolation_method": "FPIR(W, t) = 1 - (1 - p(t))^W, p(t) = per-comparison impostor rate measured at the "
        f"largest watchlist (W = {largest.size})",
        "extrapolation_check": [
            row for r in results for row in openset.extrapolation_check(r, (1 / 100, *FPIR_TARGETS), largest.impostor_rate())
        ],
        "extrapolated": [row for w in extrapolate_to for row in openset.extrapolated_thresholds(largest, w, FPIR_TARGETS)],
        "calibration_file": str(calibration_path),
        "highest_non_mated": {str(r.size): openset.highest_non_mated(r.draws[0]) for r in results},
    }
    body = [rep.heading("TPIR against FPIR"), rep.image(tpir_fpir_figure(results), "TPIR against FPIR per watchlist size")]
    rows = []
    for w in summary["watchlists"]:
        for a in w["at_fpir"]:
            rows.append(
                [
                    w["size"],
                    f"1/{round(1 / a['target_fpir']):,}",
                    f"{a['threshold']:.3f}",
                    rep.percent(a["tpir"]),
                    f"{rep.percent(a['tpir_range_over_draws'][0])}–{rep.percent(a['tpir_range_over_draws'][1])}",
                    f"{a['fpir']:.5f}",
                    f"{a['non_mated_probes_per_draw']:,.0f}",
                    f"{a['mated_probes_per_draw']:,.0f}",
                    a["status"],
                ]
            )
    body += [
        rep.heading("TPIR at the false-alert targets"),
        rep.table(
            [
                "watchlist W",
                "target FPIR",
                "threshold",
                "TPIR (mean)",
                "TPIR over draws",
                "FPIR measured",
                "non-mated probes per draw",
                "mated probes per draw",
                "support",
            ],
            rows,
        ),
        rep.paragraph(
            f"{len(seeds)} draws per size (seeds {', '.join(map(str, seeds))}); at most {per_person} probe images "
            "per person. Thresholds run in steps of 0.001; each row gives the lowest with FPIR at most the target."
        ),
    ]
    body += [
        rep.heading("Larger watchlists (extrapolated)"),
        rep.paragraph(
            "Method: " + summary["extrapolation_method"] + ". It assumes a stranger's comparisons with different "
            "watchlist entries exceed the threshold independently. Check: FPIR predicted for each measured size from the "
            "largest watchlist's per-comparison rate, against FPIR measured at that size (its own non-mated probes)."
        ),
        rep.image(extrapolation_figure(results), "Measured and predicted FPIR against threshold"),
        rep.table(
            ["W", "threshold", "FPIR measured", "FPIR predicted"],
            [
                [c["size"], f"{c['threshold']:.3f}", f"{c['measured_fpir']:.5f}", f"{c['predicted_fpir']:.5f}"]
                for c in summary["extrapolation_check"]
            ],
        ),
        rep.table(
            ["W (extrapolated)", "target FPIR", "threshold", "per-comparison rate needed", "impostor comparisons", "support"],
            [
                [
                    e["size"],
                    f"1/{round(1 / e['target_fpir']):,}",
                    "—" if e["threshold"] is None else f"{e['threshold']:.3f}",
                    f"{e['per_comparison_rate']:.2e}",
                    e["impostor_comparisons"],
                    e["status"],
                ]
                for e in summary["extrapolated"]
            ],
        ),
    ]
    body += [
        rep.heading("What sets the threshold at the lowest FPIRs"),
        rep.paragraph(
            "At FPIR 1/1000 or 1/6000 the threshold is fixed by the handful of non-mated probes that score highest. "
            "Here they are for the first draw of each size: a probe image, the watchlisted person it resembled most, and "
            "the score. Check them: a data set's labelling errors (one person filed under two names) count as false alerts "
            "here and raise the threshold; leave such identities out with --exclude FILE, and say so."
        ),
        rep.table(
            ["W", "non-mated probe (identity)", "best watchlist match", "score"],
            [
                [w, h["probe_identity"], h["best_match"], f"{h['score']:.3f}"]
                for w, rows in summary["highest_non_mated"].items()
                for h in rows
            ],
        ),
    ]
    if dataset.get("excluded"):
        notes = [*notes, f"identities left out (--exclude): {', '.join(dataset['excluded'])}"]
    if notes:
        body.append(rep.bullets(notes))
    headline = [
        f"Data: {dataset['name']} ({dataset['images']:,} images, {dataset['people']:,} people); model pack {pack_id}.",
        *[
            f"W = {w['size']:,}: "
            + "; ".join(
                f"TPIR {rep.percent(a['tpir'])} at FPIR 1/{round(1 / a['target_fpir']):,} (threshold {a['threshold']:.3f}, "
                f"{a['status']})"
                for a in w["at_fpir"]
            )
            + f" — {w['non_mated_probes_per_draw']:,.0f} non-mated probes per draw."
            for w in summary["watchlists"]
        ],
        f"Calibration file: {calibration_path}",
    ]
    how = [
        "A watchlist holds one image of each of W people. A mated probe is another image of a watchlisted person; a "
        "non-mated probe is an image of someone not on the watchlist — a passer-by.",
        "TPIR (true positive identification rate): the share of mated probes whose best match is the right person and "
        "scores at least the threshold — the chance a watchlisted person walking past is alerted correctly.",
        "FPIR (false positive identification rate): the share of non-mated probes with any watchlist score at least the "
        "threshold — the chance a passer-by raises a false alert. 1/6000 is the NPL figure for the Met at threshold 0.6 "
        "with 10,000 people on the watchlist; 1/1000 is South Wales Police's former cap.",
        "A larger watchlist gives each passer-by more chances to resemble someone, so FPIR grows with W at a fixed threshold.",
        f"Support rule: a target FPIR is supported when one draw's non-mated probes N give N × FPIR >= {openset.RULE_OF} "
        f"(at least {openset.RULE_OF} false alerts behind it); indicative when 1 <= N × FPIR < {openset.RULE_OF}; it cannot "
        "be resolved when there are fewer non-mated probes than 1/FPIR. Repeated draws reuse the same people, so they do "
        "not add evidence for this rule.",
        data_caution(dataset),
    ]
    rep.write(out, "identification", f"Open-set identification — model pack {pack_id}", headline, body, how, summary)
    return summary


def data_caution(dataset: dict) -> str:
    """What the figures say about other images: LFW's own caveat, or the labelled folder's."""
    if str(dataset.get("name", "")).startswith("LFW"):
        return (
            "LFW people are mostly public figures photographed by the press; use the force's own images for deployment decisions."
        )
    return (
        f"These figures hold for the images of {dataset.get('name')} and people like them; a deployment's threshold "
        "should come from images like the ones its cameras and watchlist will see."
    )


def tpir_fpir_figure(results: list[openset.OpenSetResult]) -> Figure:
    fig = rep.new_figure()
    ax = fig.subplots()
    for r in results:
        fpir, tpir = r.fpir(), r.tpir()
        floor = 1 / max(r.non_mated_probes, 1)
        ax.plot(np.maximum(fpir, floor), tpir, lw=1.6, drawstyle="steps-post", label=f"W = {r.size:,}")
    for f, name in zip(FPIR_TARGETS, ("1/1000", "1/6000"), strict=True):
        ax.axvline(f, color="#999", ls=":", lw=0.8)
        ax.text(f, ax.get_ylim()[0], f" {name}", fontsize=7, rotation=90, va="bottom")
    ax.set_xscale("log")
    ax.set_xlabel("FPIR: share of non-mated probes alerted (log scale)")
    ax.set_ylabel("TPIR: share of mated probes identified")
    ax.set_title("Open-set identification: each point is one threshold")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def extrapolation_figure(results: list[openset.OpenSetResult]) -> Figure:
    fig = rep.new_figure()
    ax = fig.subplots()
    rate = results[-1].impostor_rate()
    for r in results:
        line = ax.plot(openset.GRID, np.maximum(r.fpir(), 1e-7), lw=1.6, label=f"measured, W = {r.size:,}")[0]
        ax.plot(
            openset.GRID,
            np.maximum(openset.extrapolate(rate, r.size), 1e-7),
            ls="--",
            color=line.get_color(),
            lw=1,
            label=f"predicted, W = {r.size:,}",
        )
    ax.set_yscale("log")
    ax.set_xlim(0.2, 0.8)
    ax.set_ylim(1e-5, 1)
    ax.set_xlabel("Threshold")
    ax.set_ylabel("FPIR (log scale)")
    ax.set_title("FPIR against threshold: measured and 1 - (1 - p)^W")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return fig
