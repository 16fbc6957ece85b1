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

from openlfr import calibration as cal
from openlfr.core.engine import FaceEngine
from openlfr.errors import OpenLFRError
from openlfr.evaluation import aliases as alias_lists
from openlfr.evaluation import calibrate, openset
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
        name, path, images = "LFW", data, openset.dataset_dir(data)
    else:
        assert folder is not None
        names = openset.folder_names(folder, people)
        templates = openset.template_cache(engine, folder, names, cache_dir, progress)
        name, path, images = folder.resolve().name, folder, folder
    dataset = {"name": name + (f" (first {people} people)" if people else ""), "path": str(path), "images_dir": str(images)}
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
    aliases: Path | None = None,
    keep_aliases: bool = False,
    validate_folder: Path | None = None,
    replicates: int = calibrate.REPLICATES,
    say: calibrate.Progress = None,
    all_references: bool = False,
) -> dict:
    """Rank-1/5/10/20 hit rates and non-mated best scores, and (``report``) the open-set report and calibration
    file, on LFW (``data``) or a labelled folder; writes OUT/identification_result.json and returns it.

    The non-mated probes' share at or above the pack's alert threshold is part of the result: it is the
    threshold searches and alerts use by default. Comparisons named by the alias list (the shipped, reviewed
    one for LFW and celeba-dev, ``aliases`` for another folder; none with ``keep_aliases``) are left out of
    every impostor statistic and counted. ``validate_folder`` (a labelled folder of other photographs) measures
    how far the calibration is from another population, which widens its intervals, and checks its
    predictions there. Watchlists are drawn from the images enrolment would accept (default quality limits), as
    a watchlist can hold no other; ``all_references`` draws them from every image with a face instead.
    """
    started = time.perf_counter()
    templates, names, dataset = load_templates(engine, data, folder, people, cache_dir, progress)
    enrollable = None
    if not all_references:
        enrollable = openset.enrollable_images(engine, Path(dataset["images_dir"]), names, cache_dir, progress)
    excluded = sorted(openset.read_exclusions(exclude)) if exclude else []
    if excluded:
        keep = [i for i, n in enumerate(names) if openset.identity_of(n) not in set(excluded)]
        templates, names = templates[keep], [names[i] for i in keep]
        enrollable = None if enrollable is None else enrollable[keep]
    dataset |= {"images": len(names), "people": len({openset.identity_of(n) for n in names}), "excluded": excluded}
    listed = alias_lists.for_dataset(Path(dataset["images_dir"]), keep_aliases, aliases)
    dataset["aliases"] = listed.describe()
    dataset["references"] = openset.references_note(templates, enrollable)
    result = openset.closed_set(templates, names, holdout, seed, listed)
    result.pack_threshold = engine.alert_threshold
    result.dataset = "LFW" if data is not None else dataset["name"]
    summary = result.as_dict() | {"model_pack": engine.pack_id, "holdout": holdout, "seed": seed, "dataset": dataset}
    if excluded:
        summary["excluded_identities"] = excluded
    out.mkdir(parents=True, exist_ok=True)
    if report:
        comparisons = calibrate.collect(templates, names, listed, per_person, seed, say, enrollable)
        model = calibrate.model(comparisons, replicates, seed, say)
        validation = None
        if validate_folder is not None:
            validation = validate_on(engine, model, validate_folder, cache_dir, progress, say, all_references)
        open_set = openset_report(
            out, templates, names, dataset, engine.pack_id, engine.recognizer.flip, sizes,
            list(range(seed, seed + draws)), per_person, list(extrapolate_to), calibration or out / "calibration.json",
            aliases=listed, model=model, validation=validation, alert_threshold=engine.alert_threshold,
            enrollable=enrollable,
        )  # fmt: skip
        summary["open_set"] = {"watchlists": open_set["watchlists"], "report": str(out / "identification.html"),
                               "calibration_file": open_set["calibration_file"], "aliases": open_set["aliases"],
                               "model": open_set.get("model", {})}  # fmt: skip
    summary["seconds"] = round(time.perf_counter() - started, 1)
    (out / "identification_result.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def validate_on(
    engine: FaceEngine,
    model: dict,
    folder: Path,
    cache_dir: Path | None,
    progress: openset.Progress = None,
    say: calibrate.Progress = None,
    all_references: bool = False,
) -> dict:
    """The other population's model and the transfer error it shows (set in ``model``); checked later."""
    names = openset.folder_names(folder)
    templates = openset.template_cache(engine, folder, names, cache_dir, progress)
    enrollable = None if all_references else openset.enrollable_images(engine, folder, names, cache_dir, progress)
    listed = alias_lists.for_dataset(folder)
    comparisons = calibrate.collect(templates, names, listed, progress=say, enrollable=enrollable)
    other = calibrate.model(comparisons, replicates=20, progress=say)
    model["transfer"] = calibrate.transfer(model, other, folder.resolve().name)
    return {"folder": str(folder), "templates": templates, "names": names, "aliases": listed,
            "other_model": other, "enrollable": enrollable}  # fmt: skip


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
    aliases: alias_lists.AliasList = alias_lists.NONE,
    model: dict | None = None,
    validation: dict | None = None,
    alert_threshold: float | None = None,
    enrollable: np.ndarray | None = None,
) -> dict:
    """Open-set 1:N for each watchlist size: the HTML/JSON report and the calibration file; returns the summary.

    With ``model`` (:func:`openlfr.evaluation.calibrate.model`) the calibration carries the impostor tail fit
    and bootstrap intervals, and the report shows them, checks them against the measured sizes and, with
    ``validation``, against another set of photographs at the pack's alert threshold.
    """
    sizes, notes = openset.resolve_sizes(sizes_spec, templates, names, enrollable)
    sizes, notes = leave_strangers(sizes, notes, templates, names)
    if not sizes:
        raise OpenLFRError("no watchlist size fits the data: " + "; ".join(notes))
    results = openset.evaluate(templates, names, sizes, seeds, per_person, aliases, enrollable)
    references = openset.references_note(templates, enrollable)
    record = openset.calibration(results, pack_id, flip, dataset, per_person, seeds, model, aliases.describe(), references)
    if model is not None and validation is not None and alert_threshold is not None:
        record["validation"] = [
            calibrate.validate(record | {"thresholds": cal.GRID}, validation["templates"], validation["names"], t, size,
                               name=Path(validation["folder"]).resolve().name, aliases=validation["aliases"],
                               enrollable=validation.get("enrollable"))
            for t in (alert_threshold,) for size in (100,)
        ]  # fmt: skip
    openset.save_calibration(record, calibration_path)
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
        "aliases": aliases.describe() | {"excluded_comparisons": {str(r.size): r.excluded_comparisons for r in results}},
        "references": references,
    }
    if model is not None:
        summary["model"] = model_summary(record, results, extrapolate_to)
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
    if "model" in summary:
        body += model_section(summary["model"])
    excluded_total = sum(r.excluded_comparisons for r in results)
    notes = [*notes, f"label errors left out (alias list {aliases.source}, {len(aliases)} entries): {excluded_total:,} "
             "comparisons across all sizes and draws were not counted as impostors (--keep-aliases counts them)"]  # fmt: skip
    if dataset.get("excluded"):
        notes = [*notes, f"identities left out (--exclude): {', '.join(dataset['excluded'])}"]
    notes = [*notes, f"watchlist images: {references['rule']}; {references['refused']:,} of {references['images_with_face']:,} "
             "images with a face were refused (--all-references draws from all of them)"]  # fmt: skip
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


def model_summary(record: dict, results: list[openset.OpenSetResult], extrapolate_to: list[int]) -> dict:
    """The calibration model's figures for the report: tail fit and its check, the model against every measured
    size, and thresholds for larger watchlists, each with its 95% interval."""
    data = record | {"thresholds": cal.GRID}
    model = record["model"]
    against_measured = []
    for r in results:
        for target in (1 / 100, *FPIR_TARGETS):
            a = r.at_fpir(target)
            p = cal.predict(data, a["threshold"], r.size)
            against_measured.append({
                "size": r.size, "threshold": a["threshold"], "measured_fpir": a["fpir"], "measured_tpir": a["tpir"],
                "measured_status": a["status"], "predicted_fpir": p.fpir, "predicted_fpir_interval": p.fpir_interval,
                "predicted_tpir": p.tpir, "predicted_tpir_interval": p.tpir_interval,
            })  # fmt: skip
    larger = []
    for size in sorted({r.size for r in results} | set(extrapolate_to)):
        for target in FPIR_TARGETS:
            try:
                t, interval, conservative = cal.threshold_for(data, target, size)
            except OpenLFRError:
                continue
            p = cal.predict(data, t, size)
            larger.append({
                "size": size, "target_fpir": target, "threshold": t, "threshold_interval": interval,
                "conservative_threshold": conservative, "fpir": p.fpir, "fpir_interval": p.fpir_interval,
                "tpir": p.tpir, "tpir_interval": p.tpir_interval, "extrapolated": p.extrapolated, "method": p.method,
            })  # fmt: skip
    return {
        "impostor_comparisons": model["comparisons"],
        "excluded_as_aliases": model["excluded_as_aliases"],
        "tail": {k: v for k, v in model["tail"].items()},
        "interval_method": cal.predict(data, 0.5, 100).interval_method,
        "transfer": model.get("transfer"),
        "against_measured": against_measured,
        "thresholds": larger,
        "validation": record.get("validation", []),
    }


def model_section(m: dict) -> list[str]:
    """The report's pages on the calibration model: what a threshold recommendation rests on."""

    def rng(pair: Sequence[float], fmt: str = "{:.2e}") -> str:
        return f"{fmt.format(pair[0])} – {fmt.format(pair[1])}"

    tail = m["tail"]
    body = [
        rep.heading("Calibration model: rates with their uncertainty"),
        rep.paragraph(
            f"{m['impostor_comparisons']:,} impostor comparisons (every pair of images of two different people, at most "
            f"10 images a person); {m['excluded_as_aliases']:,} left out as label errors. Tail: {tail['method']}. "
            f"Here u = {tail['u']:.3f} ({tail['exceedances']:,} comparisons above it), shape ξ = {tail['shape_xi']:.3f}, "
            f"scale σ = {tail['scale_sigma']:.4f}. Rates below {tail['measured_down_to']:.1e} per comparison (fewer than "
            f"{cal.RULE_OF} comparisons) rest on the fit: they are extrapolated. Intervals: {m['interval_method']}."
        ),
        rep.table(
            ["threshold", "comparisons exceeding (measured)", "fitted", "agrees (Poisson 95%)"],
            [
                [
                    f"{c['threshold']:.3f}",
                    c["comparisons_exceeding"],
                    f"{c['fitted_count']:.1f}",
                    "yes" if c["agrees_at_95pct"] else "no",
                ]
                for c in tail["check"]
            ],
        ),
        rep.heading("The model against the sizes measured"),
        rep.table(
            ["W", "threshold", "FPIR measured", "FPIR model (95%)", "TPIR measured", "TPIR model (95%)", "support"],
            [
                [
                    c["size"],
                    f"{c['threshold']:.3f}",
                    f"{c['measured_fpir']:.2e}",
                    f"{c['predicted_fpir']:.2e} ({rng(c['predicted_fpir_interval'])})",
                    rep.percent(c["measured_tpir"]),
                    f"{rep.percent(c['predicted_tpir'])} ({rng(c['predicted_tpir_interval'], '{:.1%}')})",
                    c["measured_status"],
                ]
                for c in m["against_measured"]
            ],
        ),
        rep.heading("Thresholds for a target FPIR"),
        rep.table(
            ["W", "target FPIR", "threshold (95%)", "conservative", "TPIR (95%)", "extrapolated"],
            [
                [
                    t["size"],
                    f"1/{round(1 / t['target_fpir']):,}",
                    f"{t['threshold']:.3f} ({rng(t['threshold_interval'], '{:.3f}')})",
                    f"{t['conservative_threshold']:.3f}",
                    f"{rep.percent(t['tpir'])} ({rng(t['tpir_interval'], '{:.1%}')})",
                    "yes" if t["extrapolated"] else "no",
                ]
                for t in m["thresholds"]
            ],
        ),
        rep.paragraph(
            "The conservative threshold is the lowest whose upper 95% FPIR bound meets the target. A force should "
            "calibrate on its own images (openlfr evaluate identification --folder DIR, then openlfr threshold import)."
        ),
    ]
    if m.get("transfer"):
        tr = m["transfer"]
        body.append(rep.paragraph(
            f"Transfer to other photographs ({tr['other_set']}): impostor rates there are "
                f"{tr['rate_ratio_other_over_calibration']:.2f}× "
            f"those of the calibration set, and the share of mated probes reaching a threshold differs by up to "
            f"{tr['tpir_shift'] * 100:.1f} points; every interval is widened by these ({tr['basis']})."
        ))  # fmt: skip
    for v in m.get("validation", []):
        body += [
            rep.heading(f"Checked on {v['set']} (not used to make the calibration)"),
            rep.table(
                [
                    "threshold",
                    "W",
                    "FPIR predicted (95%)",
                    "FPIR measured (Wilson 95%)",
                    "inside",
                    "TPIR predicted (95%)",
                    "TPIR measured (Wilson 95%)",
                    "inside",
                ],
                [
                    [
                        f"{v['threshold']:.3f}",
                        v["watchlist_size"],
                        f"{v['predicted_fpir']:.2e} ({rng(v['predicted_fpir_interval'])})",
                        f"{v['measured_fpir']:.2e} ({v['measured_false_alerts']} of {v['non_mated_searches']:,}; "
                        f"{rng(v['measured_fpir_wilson'])})",
                        "yes" if v["fpir_inside_prediction"] else "NO",
                        f"{rep.percent(v['predicted_tpir'])} ({rng(v['predicted_tpir_interval'], '{:.1%}')})",
                        f"{rep.percent(v['measured_tpir'])} ({rng(v['measured_tpir_wilson'], '{:.1%}')})",
                        "yes" if v["tpir_inside_prediction"] else "NO",
                    ]
                ],
            ),
            rep.paragraph(
                "The transfer widening was measured on this same set, so agreement here shows the intervals are consistent "
                "with it, not an independent confirmation; other populations can differ more."
            ),
        ]
    return body


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
