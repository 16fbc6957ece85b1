"""``openlfr evaluate verification | live | demographics`` and the open-set part of ``identification``:
each writes a self-contained HTML report and its JSON (``openlfr.evaluation.report``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from openlfr.cli.common import HomeOpt, JsonOpt, PackOpt, console, emit_json, engine_for, friendly_errors, progress_bar
from openlfr.errors import OpenLFRError
from openlfr.evaluation import report as rep

CacheOpt = Annotated[
    Path | None, typer.Option("--cache-dir", help="Template cache (default: <data directory>/cache); one file per model pack.")
]
FPIR_TARGETS = (1 / 1000, 1 / 6000)


@contextmanager
def templating(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress callback for template computation (shown only when the cache lacks images)."""
    started = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task(label, total=None, rate="")

        def advance(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{rate:.0f} img/s")

        yield advance


def register(evaluate_app: typer.Typer) -> None:
    evaluate_app.command("verification")(friendly_errors(verification))
    evaluate_app.command("live")(friendly_errors(live))
    evaluate_app.command("demographics")(friendly_errors(demographics))


# ------------------------------------------------------------------------------------------------ verification


def verification(
    data: Annotated[Path | None, typer.Option("--data", help="LFW folder (pairs.txt, lfw-deepfunneled/): View 2.")] = None,
    folder: Annotated[
        Path | None, typer.Option("--folder", help="Labelled folder DIR/<identity>/<images>: all mated and non-mated pairs.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for verification.html and .json.")] = Path("verification-report"),
    pairs: Annotated[Path | None, typer.Option("--pairs", help="Pairs file (default: DATA/pairs.txt).")] = None,
    folds: Annotated[int | None, typer.Option(min=1, max=10, help="Use only the first N folds of the pairs file.")] = None,
    max_non_mated: Annotated[
        int, typer.Option("--max-non-mated", min=1, help="Cap on non-mated pairs of --folder (random sample above it).")
    ] = 10_000_000,
    people: Annotated[int | None, typer.Option("--people", min=2, help="--folder: only the first N people.")] = None,
    per_person: Annotated[int | None, typer.Option("--per-person", min=2, help="--folder: at most N images per person.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling non-mated pairs.")] = 0,
    cache_dir: CacheOpt = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """ROC and DET curves and TAR at FAR 1e-2 … 1e-5, each with the impostor comparisons behind it."""
    from openlfr.evaluation import verification as ver
    from openlfr.evaluation.openset import default_cache_dir

    if data is None and folder is None:
        raise OpenLFRError("give --data (LFW) and/or --folder (a labelled folder)")
    engine = engine_for(pack, home)
    cache = cache_dir or default_cache_dir(home)
    sets = []
    with templating("templates") as advance:
        if data is not None:
            sets.append(ver.lfw_view2(engine, data, pairs, folds, cache, advance)[0])
        if folder is not None:
            sets.append(ver.folder_pairs(engine, folder, max_non_mated, seed, people, cache, advance, per_person))
    results = [ver.summary(s) for s in sets]
    html_path, json_path = write_verification_report(out, sets, results, engine.pack_id)
    if as_json:
        emit_json({"model_pack": engine.pack_id, "datasets": results, "report": str(html_path), "json": str(json_path)})
        return
    for r in results:
        console.print(f"[bold]{r['dataset']}[/]: {r['mated_comparisons']:,} mated, {r['impostor_comparisons']:,} impostor pairs")
        for t in r["tar_at_far"]:
            console.print(
                f"  TAR at FAR {t['far']:g}: {rep.percent(t['tar'])} (threshold {rep.cell(t['threshold_accept_above'])}; "
                f"{t['false_accepts']} of {t['impostor_comparisons']:,} impostors above) — {t['status']}"
            )
    console.print(f"Report: {html_path}\nJSON: {json_path}")


def write_verification_report(out: Path, sets: list, results: list[dict], pack_id: str) -> tuple[Path, Path]:
    from openlfr.evaluation import verification as ver

    body = [rep.heading("Curves"), rep.image(ver.roc_figure(sets), "ROC curve"), rep.image(ver.det_figure(sets), "DET curve")]
    for r in results:
        body.append(rep.heading(r["dataset"]))
        body.append(
            rep.paragraph(
                f"{r['images']:,} images of {r['people']:,} people ({r['images_without_face']} without a detected face); "
                f"{r['mated_comparisons']:,} mated and {r['impostor_comparisons']:,} impostor comparisons; "
                f"equal error rate {r['equal_error_rate'] * 100:.2f}% at threshold {r['eer_threshold']:.3f}."
            )
        )
        if "ten_fold" in r:
            tf = r["ten_fold"]
            body.append(
                rep.paragraph(
                    f"10-fold accuracy (threshold chosen on nine folds, tested on the tenth): "
                    f"{tf['mean_accuracy'] * 100:.2f}% ± {tf['std_accuracy'] * 100:.2f}%."
                )
            )
        body.append(
            rep.table(
                [
                    "FAR",
                    "TAR",
                    "threshold (accept above)",
                    "false accepts",
                    "impostor comparisons",
                    "mated comparisons",
                    "support",
                ],
                [
                    [
                        f"{t['far']:g}",
                        rep.percent(t["tar"]),
                        rep.cell(t["threshold_accept_above"]),
                        t["false_accepts"],
                        t["impostor_comparisons"],
                        t["mated_comparisons"],
                        t["status"],
                    ]
                    for t in r["tar_at_far"]
                ],
            )
        )
        body.append(rep.bullets(r["notes"]))
    headline = []
    for r in results:
        cells = ", ".join(
            f"{rep.percent(t['tar'])} at FAR {t['far']:g}"
            + ("" if t["status"] == "supported" else " (not supported by the data)")
            for t in r["tar_at_far"]
        )
        headline.append(f"{r['dataset']}: TAR {cells}.")
    how = [
        "A comparison scores two images; at or above a threshold the system calls them the same person.",
        "TAR (true accept rate): the share of mated pairs (two images of one person) accepted. FAR (false accept rate): the "
        "share of impostor pairs (two different people) accepted. Each row fixes FAR and reports the TAR there.",
        "Support rule (Doddington's rule of 30): a FAR is supported when at least 30 impostor comparisons lie above its "
        "threshold (impostor comparisons × FAR >= 30). Below that the figure is indicative only; when there are fewer "
        "impostor comparisons than 1/FAR, not one false accept can be observed and the FAR cannot be measured.",
        "ROC: TAR against FAR on a log scale (up and left is better). DET: the two error rates, false non-match against "
        "false match, on log scales (down and left is better). Curves stop at 1/N impostor comparisons.",
        "LFW is press photographs of mostly well-known adults; accuracy on custody images or CCTV differs and must be measured "
        "on the force's own data (pass it with --folder).",
    ]
    data = {"model_pack": pack_id, "fars": list(ver.FARS), "datasets": results}
    return rep.write(out, "verification", f"Verification accuracy — model pack {pack_id}", headline, body, how, data)


# ------------------------------------------------------------------------------------------ identification


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
    from openlfr.evaluation import openset

    sizes, notes = openset.resolve_sizes(sizes_spec, templates, names)
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
        "LFW people are mostly public figures photographed by the press; use the force's own images for deployment decisions.",
    ]
    rep.write(out, "identification", f"Open-set identification — model pack {pack_id}", headline, body, how, summary)
    return summary


def tpir_fpir_figure(results: list):
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


def extrapolation_figure(results: list):
    from openlfr.evaluation.openset import GRID, extrapolate

    fig = rep.new_figure()
    ax = fig.subplots()
    rate = results[-1].impostor_rate()
    for r in results:
        line = ax.plot(GRID, np.maximum(r.fpir(), 1e-7), lw=1.6, label=f"measured, W = {r.size:,}")[0]
        ax.plot(
            GRID,
            np.maximum(extrapolate(rate, r.size), 1e-7),
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


# --------------------------------------------------------------------------------------------------------- live


def run_walkby(engine, truth_path: Path, threshold: float, realtime: bool, confirm: tuple[int, int], pool: bool):
    """``walkby.run``, also returning the scenario and alert events that time-to-alert needs."""
    from openlfr.evaluation import walkby

    return walkby.run_with_events(engine, truth_path, None, threshold, realtime, None, confirm, pool)


def live_figures(result, scenario, events: list[tuple[float, str]], realtime: bool = True) -> dict:
    """Per-pass TPIR, false alerts per 1,000 and 10,000 faces seen, alerts per pass and time to alert."""
    from openlfr.evaluation.demographics import wilson
    from openlfr.evaluation.walkby import AFTER_S, BEFORE_S

    wanted = [p for p in scenario.passes if p.watchlisted]
    first: dict[int, float] = {}
    alerts_per_pass: dict[int, int] = {p.index: 0 for p in wanted}
    for t, reference in sorted(events):
        hits = [p for p in wanted if p.identity == reference and p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S]
        if hits:
            first.setdefault(hits[0].index, t - hits[0].t_enter)
            alerts_per_pass[hits[0].index] += 1
    delays = np.array(sorted(first.values()))
    faces = max(result.faces_seen, 0)
    fa_hi = wilson(result.false_alerts, faces)[1] if faces else None
    tpir_ci = wilson(result.alerted_passes, result.watchlisted_passes)
    alerted_counts = [n for n in alerts_per_pass.values() if n]
    return {
        "passes": result.passes,
        "watchlisted_passes": result.watchlisted_passes,
        "alerted_passes": result.alerted_passes,
        "per_pass_tpir": round(result.alerted_rate, 5),
        "per_pass_tpir_ci95": [round(v, 5) for v in tpir_ci],
        "faces_seen": faces,
        "true_alerts": result.true_alerts,
        "false_alerts": result.false_alerts,
        "false_alerts_per_1000_faces": round(1000 * result.false_alerts / faces, 4) if faces else None,
        "false_alerts_per_10000_faces": round(10000 * result.false_alerts / faces, 3) if faces else None,
        "false_alerts_per_10000_faces_upper95": round(10000 * fa_hi, 3) if fa_hi is not None else None,
        "false_alerts_per_1000_passes": round(1000 * result.false_alerts / max(result.passes, 1), 3),
        "alerts_per_alerted_pass": round(float(np.mean(alerted_counts)), 3) if alerted_counts else None,
        "alerts_per_pass": round((result.true_alerts + result.false_alerts) / max(result.passes, 1), 4),
        "duplicate_alerts": result.duplicate_alerts,
        "passes_with_one_alert": result.passes_with_one_alert,
        "time_to_alert_s": {
            "from": "the moment the person enters the frame (truth t_enter) to the video time of the alerted frame",
            "p50": round(float(np.percentile(delays, 50)), 3) if len(delays) else None,
            "p95": round(float(np.percentile(delays, 95)), 3) if len(delays) else None,
            "per_pass": [round(float(d), 3) for d in delays],
        },
        "processing_latency_ms": {
            "p50": result.camera.get("alert_latency_p50_ms") if realtime else None,
            "p95": result.camera.get("alert_latency_p95_ms") if realtime else None,
            "note": "capture to stored alert"
            if realtime
            else "not measured: every frame was processed, faster or slower than real time, so capture times are nominal",
        },
        "frames_processed": result.camera.get("frames_processed"),
        "frames_dropped": result.camera.get("frames_dropped"),
        "processed_fps": result.camera.get("processed_fps"),
        "enrolled_subjects": result.enrolled_subjects,
        "skipped_reference_images": len(result.skipped_reference_images),
        "missed": result.missed,
        "false": result.false,
    }


def write_live_report(out: Path, result, scenario, events, confirm: str, realtime: bool, pool: bool, pack_id: str):
    f = live_figures(result, scenario, events, realtime)
    watchlisted = len(scenario.watchlist)
    scene = (
        f"A simulated {scenario.size[0]}×{scenario.size[1]} street camera: {scenario.duration_s:.0f} s of video at "
        f"{scenario.fps:g} fps (seed {scenario.seed}); {f['passes']} people pass once each, faces {scenario.min_face_px:g}–"
        f"{scenario.max_face_px:g} px wide, tilted, slightly turned, blurred and lit differently; {watchlisted} of them are "
        f"on the watchlist, enrolled from other photographs of themselves ({f['enrolled_subjects']} enrolled, "
        f"{f['skipped_reference_images']} reference image(s) refused by the quality checks). The video runs through a whole "
        f"deployment (planned, authorised, live, closed) at threshold {result.threshold:g} with {confirm} confirmation"
        f"{', pooled track templates' if pool else ''}, "
        + ("played in real time (frames dropped when busy)." if realtime else "processing every frame (not real time).")
    )
    tta = f["time_to_alert_s"]
    headline = [
        scene,
        f"Per-pass TPIR {f['alerted_passes']}/{f['watchlisted_passes']} = {rep.percent(f['per_pass_tpir'], 1)} "
        f"(95% interval {rep.percent(f['per_pass_tpir_ci95'][0], 1)}–{rep.percent(f['per_pass_tpir_ci95'][1], 1)}).",
        f"False alerts: {f['false_alerts']} in {f['faces_seen']:,} faces seen = {f['false_alerts_per_1000_faces']} per 1,000 and "
        f"{f['false_alerts_per_10000_faces']} per 10,000 faces (95% upper bound {f['false_alerts_per_10000_faces_upper95']} "
        "per 10,000).",
        f"Time to alert from entering view: p50 {tta['p50']} s, p95 {tta['p95']} s.",
    ]
    body = [
        rep.heading("Figures"),
        rep.table(
            ["figure", "value"],
            [
                ["watchlisted passes alerted (per-pass TPIR)", f"{f['alerted_passes']}/{f['watchlisted_passes']}"],
                ["false alerts", f["false_alerts"]],
                ["faces seen (tracks)", f["faces_seen"]],
                ["false alerts per 1,000 faces seen", f["false_alerts_per_1000_faces"]],
                ["false alerts per 10,000 faces seen", f["false_alerts_per_10000_faces"]],
                ["false alerts per 1,000 passes", f["false_alerts_per_1000_passes"]],
                ["alerts per pass (all alerts / all passes)", f["alerts_per_pass"]],
                ["alerts per alerted watchlisted pass", f["alerts_per_alerted_pass"]],
                ["alerted passes with exactly one alert", f["passes_with_one_alert"]],
                ["time to alert p50 / p95 (s)", f"{tta['p50']} / {tta['p95']}"],
                [
                    "processing latency p50 / p95 (ms)",
                    f"{f['processing_latency_ms']['p50']} / {f['processing_latency_ms']['p95']}"
                    if realtime
                    else f["processing_latency_ms"]["note"],
                ],
                ["frames processed / dropped", f"{f['frames_processed']} / {f['frames_dropped']}"],
            ],
        ),
        rep.image(timeline_figure(scenario, events), "Passes and alerts over time"),
    ]
    if f["missed"]:
        body += [
            rep.heading("Watchlisted passes not alerted"),
            rep.table(
                ["identity", "entered (s)", "face width (px)", "blur"],
                [[m["identity"], m["t_enter"], f"{m['width'][0]:.0f}–{m['width'][1]:.0f}", m["blur"]] for m in f["missed"]],
            ),
        ]
    if f["false"]:
        body += [
            rep.heading("False alerts"),
            rep.table(
                ["time (s)", "alerted as", "in view"], [[a["t"], a["alerted_as"], ", ".join(a["in_view"])] for a in f["false"]]
            ),
        ]
    how = [
        "A pass is one person walking through the camera's view once. An alert is true when it names a watchlisted person "
        "who was in view (from 0.5 s before the pass to 1.5 s after it); otherwise it is false.",
        "Per-pass TPIR: the share of watchlisted people's passes that raised a true alert. Its interval (Wilson, 95%) is wide "
        "when few watchlisted people walk past.",
        "False alerts per 1,000 / 10,000 faces seen: the rate deployment records publish (the Met's 2024–25 figures: 10 false "
        "alerts in 3.1 million faces, about 0.03 per 10,000). With few faces seen a per-10,000 rate is a scaled count: "
        "read the upper bound, which says how high the rate could plausibly be.",
        "Time to alert: from the moment the person enters the frame to the frame whose face confirmed the alert (video time); "
        "processing latency is the separate time from that frame's capture to the stored alert.",
        "This is a simulation of LFW press photographs pasted into a synthetic street scene, not footage of a real street.",
    ]
    data = {
        "model_pack": pack_id,
        "scenario": scene,
        "confirm": confirm,
        "realtime": realtime,
        "pooled_templates": pool,
        "threshold": result.threshold,
        "figures": f,
        "record": result.record,
    }
    return rep.write(out, "live", "Live walk-by evaluation", headline, body, how, data)


def timeline_figure(scenario, events):
    from openlfr.evaluation.walkby import AFTER_S, BEFORE_S

    fig = rep.new_figure(8, 4)
    ax = fig.subplots()
    for p in scenario.passes:
        ax.plot(
            [p.t_enter, p.t_exit],
            [p.index, p.index],
            color="#1f4e8c" if p.watchlisted else "#cccccc",
            lw=2.5 if p.watchlisted else 1,
        )
    wanted = [p for p in scenario.passes if p.watchlisted]
    for t, reference in events:
        hit = next((p for p in wanted if p.identity == reference and p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S), None)
        ax.plot([t], [hit.index if hit else -1], "o" if hit else "x", color="#2e8b57" if hit else "#c0392b", ms=5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("Video time (s)")
    ax.set_ylabel("Pass")
    ax.set_title("Passes (blue: watchlisted) and alerts (green: true, red ×: false)")
    ax.grid(True, alpha=0.3)
    return fig


def live(
    truth: Annotated[Path, typer.Option("--truth", help="truth.json written by 'openlfr simulate' (walkby.mp4 beside it).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for live.html and live.json.")] = Path("live-report"),
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Deployment threshold (default: the model pack's alert threshold).")
    ] = None,
    realtime: Annotated[bool, typer.Option(help="Play the video in real time, dropping frames when busy.")] = True,
    confirm: Annotated[str, typer.Option("--confirm", help="N/M confirmation.")] = "2/5",
    pool: Annotated[bool, typer.Option("--pool", help="Also alert on each track's pooled template.")] = False,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a simulated walk-by through a whole deployment: per-pass TPIR, false alerts per 1,000/10,000 faces, time to alert."""
    n, m = (int(v) for v in confirm.split("/"))
    engine = engine_for(pack, home)
    threshold = engine.alert_threshold if threshold is None else threshold
    result, scenario, events = run_walkby(engine, truth, threshold, realtime, (n, m), pool)
    html_path, json_path = write_live_report(out, result, scenario, events, confirm, realtime, pool, engine.pack_id)
    figures = json.loads(json_path.read_text())["figures"]
    if as_json:
        emit_json(figures | {"report": str(html_path), "json": str(json_path)})
        return
    console.print(
        f"Per-pass TPIR {figures['alerted_passes']}/{figures['watchlisted_passes']}; false alerts {figures['false_alerts']} "
        f"({figures['false_alerts_per_10000_faces']} per 10,000 faces seen); time to alert p50 "
        f"{figures['time_to_alert_s']['p50']} s, p95 {figures['time_to_alert_s']['p95']} s\nReport: {html_path}"
    )


# ------------------------------------------------------------------------------------------------ demographics


def demographics(
    data: Annotated[Path, typer.Option("--data", help="LFW folder, or a labelled folder DIR/<identity>/<images>.")],
    groups: Annotated[Path, typer.Option("--groups", help="CSV: 'identity' column plus one column per attribute.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for demographics.html and .json.")] = Path("demographics-report"),
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Threshold for the figures (default: the pack's alert threshold).")
    ] = None,
    watchlist_size: Annotated[int, typer.Option("--watchlist-size", min=1, help="Watchlist size for TPIR/FPIR (capped).")] = 1000,
    people: Annotated[int | None, typer.Option("--people", min=2, help="Only the first N people (quick runs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the watchlist draw and pair samples.")] = 0,
    cache_dir: CacheOpt = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every figure per group with 95% Wilson intervals, the comparisons behind it and tests between groups."""
    from openlfr.evaluation import demographics as demo
    from openlfr.evaluation import openset

    labels = demo.read_groups(groups)
    engine = engine_for(pack, home)
    threshold = engine.alert_threshold if threshold is None else threshold
    folder = openset.dataset_dir(data)
    names = openset.folder_names(folder, people)
    with templating("templates") as advance:
        templates = openset.template_cache(engine, folder, names, cache_dir or openset.default_cache_dir(home), advance)
    size = min(watchlist_size, len(openset.eligible_people(templates, names)))
    result = demo.evaluate(templates, names, labels, threshold, size, seed)
    result |= {"model_pack": engine.pack_id, "dataset": str(folder), "groups_file": str(groups), "small_rule": demo.SMALL_RULE}
    html_path, json_path = write_demographics_report(out, result)
    if as_json:
        emit_json(result | {"report": str(html_path), "json": str(json_path)})
        return
    flagged = sum(1 for a in result["attributes"].values() for t in a["tests"] if t["significant"])
    console.print(
        f"{len(result['attributes'])} attribute(s); {flagged} significant difference(s) after Holm correction.\n"
        f"Report: {html_path}"
    )


def write_demographics_report(out: Path, result: dict) -> tuple[Path, Path]:
    from openlfr.evaluation import demographics as demo

    body: list[str] = []
    warnings: list[str] = []
    for attribute, a in result["attributes"].items():
        body.append(rep.heading(f"Attribute: {attribute}"))
        body.append(
            rep.paragraph(
                f"{a['people_labelled']:,} people labelled, {a['people_unlabelled']:,} not labelled (left out of this attribute)."
            )
        )
        rows = []
        for g, d in a["groups"].items():
            row: list = [g, d["people"]]
            for figure in demo.FIGURES:
                r = d[figure]
                row.append(
                    f"{rep.percent(r['rate'])} [{rep.percent(r['ci95'][0])}–{rep.percent(r['ci95'][1])}] "
                    f"({r['errors_or_hits']:,}/{r['trials']:,})"
                )
                if r["too_small"]:
                    warnings.append(
                        f"{attribute} = {g}: {figure.upper()} is too small to support a claim ({'; '.join(r['too_small'])})."
                    )
            rows.append(row)
        body.append(rep.table(["group", "people", "FNMR", "FMR", "TPIR", "FPIR"], rows))
        body.append(rep.image(demo.interval_figure(attribute, a), f"Rates and intervals by {attribute}"))
        body.append(
            rep.table(
                ["figure", "group A", "group B", "rate A", "rate B", "z", "p", "p (Holm)", "significant", "caution"],
                [
                    [
                        t["figure"].upper(),
                        t["group_a"],
                        t["group_b"],
                        rep.percent(t["rate_a"], 3),
                        rep.percent(t["rate_b"], 3),
                        t["z"],
                        t["p"],
                        t["p_holm"],
                        "yes" if t["significant"] else "no",
                        t["caution"],
                    ]
                    for t in a["tests"]
                ],
            )
        )
    if warnings:
        body.insert(0, rep.heading("Samples too small to support a claim"))
        body.insert(1, rep.bullets(warnings))
    significant = [t for a in result["attributes"].values() for t in a["tests"] if t["significant"]]
    headline = [
        f"Threshold {result['threshold']:g}; open-set figures from one watchlist of {result['watchlist_size']:,} people "
        f"(seed {result['seed']}); model pack {result['model_pack']}; groups from {result['groups_file']}.",
        f"{len(significant)} difference(s) between groups are significant after Holm correction (p < 0.05)"
        + (
            ": " + "; ".join(f"{t['figure'].upper()} {t['group_a']} vs {t['group_b']}" for t in significant[:8])
            if significant
            else "."
        ),
        f"{len(warnings)} group figure(s) rest on samples too small to support a claim (rule: {demo.SMALL_RULE}).",
    ]
    how = [
        "Groups come from the groups file the force supplied; the report is only as good as those labels. LFW has no "
        "demographic labels, so any grouping of LFW is a demonstration of the method, not a finding about people.",
        "FNMR: share of pairs of images of the same person scored below the threshold (missed). FMR: share of pairs of two "
        "different people of the same group scored at or above it. TPIR / FPIR: as in the identification report, for the "
        "group's probes against one watchlist of everybody.",
        "Each rate is shown as rate [95% Wilson interval] (errors or hits / comparisons or probes). The interval assumes "
        "independent comparisons; comparisons sharing a person are not, so with few people the real uncertainty is wider.",
        "Test: a two-proportion z-test for every pair of groups, with p-values Holm-corrected across the pairs of each "
        "figure. 'Significant' means a difference this large would arise by chance less than 5% of the time if the groups "
        "were equally accurate. 'Not significant' with small samples does not show the groups are equal.",
        f"Too small: {demo.SMALL_RULE}. Such figures are shown but cannot carry a claim either way.",
    ]
    return rep.write(out, "demographics", "Accuracy by group (demographic differential)", headline, body, how, result)
