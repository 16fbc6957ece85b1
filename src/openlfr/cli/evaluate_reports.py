"""``openlfr evaluate verification | identification | live | demographics``: each parses its options, calls one
function of ``openlfr.evaluation.*_report`` (which measures and writes the HTML report and its JSON) and prints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from openlfr.cli.common import HomeOpt, JsonOpt, PackOpt, console, emit_json, engine_for, friendly_errors, progress_bar
from openlfr.errors import OpenLFRError

AliasesOpt = Annotated[
    Path | None,
    typer.Option(
        "--aliases",
        help="Reviewed list of label errors (CSV name_a,name_b,kind,evidence) to leave out of impostor statistics "
        "(default: the shipped list for LFW and celeba-dev, none for other folders).",
    ),
]
KeepAliasesOpt = Annotated[
    bool, typer.Option("--keep-aliases", help="Count the listed label errors as impostor comparisons after all.")
]
CacheOpt = Annotated[
    Path | None, typer.Option("--cache-dir", help="Template cache (default: <data directory>/cache); one file per model pack.")
]


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


def cache_for(cache_dir: Path | None, home: Path | None) -> Path:
    from openlfr.evaluation.openset import default_cache_dir

    return cache_dir or default_cache_dir(home)


def register(evaluate_app: typer.Typer) -> None:
    evaluate_app.command("identification")(friendly_errors(identification))
    evaluate_app.command("verification")(friendly_errors(verification))
    evaluate_app.command("live")(friendly_errors(live))
    evaluate_app.command("demographics")(friendly_errors(demographics))
    evaluate_app.command("track-decisions")(friendly_errors(track_decisions))


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
    aliases: AliasesOpt = None,
    keep_aliases: KeepAliasesOpt = False,
    cache_dir: CacheOpt = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """ROC and DET curves and TAR at FAR 1e-2 … 1e-5, each with the impostor comparisons behind it."""
    from openlfr.evaluation import report as rep
    from openlfr.evaluation.verification_report import evaluate_verification

    if data is None and folder is None:
        raise OpenLFRError("give --data (LFW) and/or --folder (a labelled folder)")
    engine = engine_for(pack, home)
    with templating("templates") as advance:
        summary = evaluate_verification(engine, out, data, folder, pairs, folds, max_non_mated, people, per_person, seed,
                                        cache_for(cache_dir, home), advance, aliases, keep_aliases)  # fmt: skip
    if as_json:
        emit_json(summary)
        return
    for r in summary["datasets"]:
        console.print(f"[bold]{r['dataset']}[/]: {r['mated_comparisons']:,} mated, {r['impostor_comparisons']:,} impostor pairs")
        for t in r["tar_at_far"]:
            console.print(
                f"  TAR at FAR {t['far']:g}: {rep.percent(t['tar'])} (threshold {rep.cell(t['threshold_accept_above'])}; "
                f"{t['false_accepts']} of {t['impostor_comparisons']:,} impostors above) — {t['status']}"
            )
    console.print(f"Report: {summary['report']}\nJSON: {summary['json']}")


# ------------------------------------------------------------------------------------------ identification


def identification(
    data: Annotated[Path | None, typer.Option("--data", help="LFW folder holding lfw-deepfunneled/ (or give --folder).")] = None,
    folder: Annotated[
        Path | None,
        typer.Option("--folder", help="Any labelled folder DIR/<identity>/<images> instead of LFW (or give --data)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the JSON result and reports.")] = Path("identification-results"),
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of people with 2+ images kept out of the gallery.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for choosing the held-out people; first seed of the open-set draws.")] = 0,
    people: Annotated[int | None, typer.Option(min=2, help="Use only the first N people (quick runs).")] = None,
    report: Annotated[bool, typer.Option(help="Also run open-set 1:N and write identification.html and the calibration.")] = True,
    sizes: Annotated[str, typer.Option("--sizes", help="Open-set watchlist sizes; 'max' = as many as the data allows.")] = (
        "100,1000,max"
    ),
    draws: Annotated[int, typer.Option("--draws", min=1, help="Open-set draws per watchlist size (seeds SEED, ...).")] = 5,
    per_person: Annotated[int, typer.Option("--per-person", min=1, help="Most probe images per person.")] = 10,
    extrapolate: Annotated[str, typer.Option("--extrapolate", help="Larger watchlist sizes to extrapolate FPIR to.")] = "10000",
    calibration: Annotated[
        Path | None, typer.Option("--calibration", help="Calibration file to write (default: OUT/calibration.json).")
    ] = None,
    exclude: Annotated[
        Path | None, typer.Option("--exclude", help="File of identities to leave out, one a line (e.g. one person, two names).")
    ] = None,
    aliases: AliasesOpt = None,
    keep_aliases: KeepAliasesOpt = False,
    validate_folder: Annotated[
        Path | None,
        typer.Option(
            "--validate-folder",
            help="Another labelled folder (other photographs): measures the transfer error that widens the intervals "
            "and checks the calibration's predictions there.",
        ),
    ] = None,
    replicates: Annotated[int, typer.Option("--replicates", min=10, help="Bootstrap replicates over people.")] = 200,
    all_references: Annotated[
        bool,
        typer.Option(
            "--all-references",
            help="Draw watchlist images from every image with a face, including those enrolment's quality limits refuse.",
        ),
    ] = False,
    cache_dir: CacheOpt = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """1:N identification on LFW or a labelled folder: rank-1/5/10/20 hit rates, how non-mated probes' best scores
    fall, and (with --report, the default) open-set TPIR against FPIR for each watchlist size, with the calibration
    file thresholds come from."""
    from openlfr.evaluation import identification_report as ident

    ident.check_source(data, folder)
    try:
        extrapolate_to = [int(w) for w in extrapolate.split(",") if w.strip()]
    except ValueError:
        raise OpenLFRError(f"--extrapolate {extrapolate!r} must be watchlist sizes separated by commas") from None
    engine = engine_for(pack, home)
    with templating("LFW templates and quality" if data is not None else "templates and quality") as advance:
        summary = ident.evaluate_identification(
            engine, out, data, folder, holdout, seed, people, report, sizes, draws, per_person, extrapolate_to,
            calibration, exclude, cache_for(cache_dir, home), advance, aliases, keep_aliases, validate_folder, replicates,
            None if as_json else lambda text: console.print(f"  {text}"), all_references,
        )  # fmt: skip
    if as_json:
        emit_json(summary)
        return
    ranks, at = summary["rank_hit_rate"], summary["pack_threshold"]
    console.print(
        f"{summary['dataset']['name']} identification (gallery {summary['gallery_size']}, {summary['mated_probes']} mated "
        f"and {summary['non_mated_probes']} non-mated probes, model pack {summary['model_pack']}):\n"
        f"  rank-1 [bold]{ranks['rank_1'] * 100:.2f}%[/], rank-5 {ranks['rank_5'] * 100:.2f}%, "
        f"rank-20 {ranks['rank_20'] * 100:.2f}%\n"
        f"  non-mated probes' best score: median {summary['non_mated_best_score_quantiles']['50%']}, "
        f"99th percentile {summary['non_mated_best_score_quantiles']['99%']}; "
        f"share at or above the pack's alert threshold {at}: {summary['non_mated_share_at_pack_threshold'] * 100:.2f}%\n"
        f"  result: {out / 'identification_result.json'}"
    )
    for w in summary.get("open_set", {}).get("watchlists", []):
        cells = "; ".join(f"TPIR {a['tpir'] * 100:.2f}% at FPIR 1/{round(1 / a['target_fpir'])} (threshold {a['threshold']:.3f}, "
                          f"{a['status']})" for a in w["at_fpir"])  # fmt: skip
        console.print(f"  open-set W = {w['size']}: {cells}")
    console.print(f"  label errors left out (alias list): {summary['excluded_comparisons']:,} comparisons in the rank figures")
    refs = summary["dataset"]["references"]
    console.print(f"  watchlist images: {refs['rule']} ({refs['refused']:,} of {refs['images_with_face']:,} refused)")
    if report:
        for t in summary["open_set"].get("model", {}).get("thresholds", []):
            lo, hi = t["tpir_interval"]
            how = " (extrapolated from the fitted tail)" if t["extrapolated"] else ""
            console.print(
                f"  calibrated W = {t['size']:,}, FPIR 1/{round(1 / t['target_fpir']):,}: threshold {t['threshold']:.3f}, "
                f"TPIR {t['tpir'] * 100:.1f}% (95% {lo * 100:.1f}–{hi * 100:.1f}%){how}"
            )
        console.print(f"  report: {summary['open_set']['report']}\n  calibration: {summary['open_set']['calibration_file']}")


# --------------------------------------------------------------------------------------------------------- live


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
    from openlfr.evaluation.live_report import evaluate_live

    figures = evaluate_live(engine_for(pack, home), truth, out, threshold, realtime, confirm, pool)
    if as_json:
        emit_json(figures)
        return
    console.print(
        f"Per-pass TPIR {figures['alerted_passes']}/{figures['watchlisted_passes']}; false alerts {figures['false_alerts']} "
        f"({figures['false_alerts_per_10000_faces']} per 10,000 faces seen); time to alert p50 "
        f"{figures['time_to_alert_s']['p50']} s, p95 {figures['time_to_alert_s']['p95']} s\nReport: {figures['report']}"
    )


# ----------------------------------------------------------------------------------------------- track decisions


def track_decisions(
    truth: Annotated[
        list[Path], typer.Option("--truth", help="truth.json of a walk-by ('openlfr simulate'); repeat for several videos.")
    ],
    data: Annotated[Path, typer.Option("--data", help="LFW folder holding lfw-deepfunneled/: the impostor gallery.")],
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Threshold for the per-track rates (default: the pack's alert threshold).")
    ] = None,
    sizes: Annotated[str, typer.Option("--watchlist-sizes", help="Watchlist sizes for per-track FPIR.")] = "20,1000",
    fpir: Annotated[str, typer.Option("--fpir", help="Per-track FPIR targets to find thresholds for.")] = "1/1000,1/6000",
    out: Annotated[Path | None, typer.Option("--out", help="Write the result as JSON here.")] = None,
    people: Annotated[
        int | None, typer.Option("--people", min=2, help="Quick runs: gallery of the first N identities (and those shown).")
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option("--calibration", help="Write the track calibration here (the live pipeline's N-of-M thresholds)."),
    ] = None,
    validate: Annotated[
        list[Path] | None,
        typer.Option("--validate-truth", help="With --calibration: walk-bys (not used to make it) to check it on; repeatable."),
    ] = None,
    aliases: AliasesOpt = None,
    keep_aliases: KeepAliasesOpt = False,
    cache_dir: CacheOpt = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How often a stranger's *track* alerts (not a single photograph), for each live decision rule (N of M
    views, pooled template), and the threshold each needs for a per-track FPIR target, from walk-by videos."""
    import json

    from openlfr.evaluation import aliases as alias_lists
    from openlfr.evaluation import openset, track_decisions
    from openlfr.services.thresholds import parse_rate

    try:
        watchlist_sizes = tuple(int(w) for w in sizes.split(",") if w.strip())
    except ValueError:
        raise OpenLFRError(f"--watchlist-sizes {sizes!r} must be whole numbers separated by commas") from None
    targets = tuple(parse_rate(f) for f in fpir.split(",") if f.strip())
    engine = engine_for(pack, home)
    threshold = engine.alert_threshold if threshold is None else threshold
    images_dir = openset.dataset_dir(data)
    for t in truth:
        if not t.is_file():
            raise OpenLFRError(f"walk-by truth {t} not found (write one with 'openlfr simulate')")
    names = track_decisions.gallery_names(images_dir, truth, people)
    with templating("LFW templates") as advance:
        templates = openset.template_cache(engine, images_dir, names, cache_for(cache_dir, home), advance)
    listed = alias_lists.for_dataset(images_dir, keep_aliases, aliases)
    started = time.perf_counter()
    with progress_bar() as bar:
        task = bar.add_task("recording tracks", total=None, rate="")

        def advance_frames(label: str, done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, description=f"recording {Path(label).parent.name}", completed=done, total=total,
                       rate=f"{rate:.0f} frames/s")  # fmt: skip

        result = track_decisions.evaluate(
            engine, truth, templates, names, listed, threshold, watchlist_sizes, targets, progress=advance_frames,
            calibration=calibration, validation=validate or [],
        )  # fmt: skip
    if out:
        out.write_text(json.dumps(result, indent=2))
    if as_json:
        emit_json(result)
        return
    console.print(
        f"{result['tracks']} tracks in {len(result['videos'])} walk-by(s) ({engine.pack_id}); label errors left out: "
        f"{result['aliases']['entries']} alias entries"
    )
    for row in result["rules"]:
        at = row["at_threshold"]
        rates = ", ".join(f"W={w}: {f:.2e}" for w, f in at["per_track_fpir"].items())
        tpir = "n/a" if at["tpir"] is None else f"{at['tpir']:.1%}"
        console.print(f"[bold]{row['rule']}[/] at {threshold}: per-track FPIR {rates}; TPIR {tpir} (of {row['mated_tracks']})")
        for c in row["for_target"]:
            if c["threshold"] is None:
                console.print(f"  W={c['watchlist_size']}, FPIR 1/{round(1 / c['target_fpir'])}: no threshold reaches it")
                continue
            support = "" if c["supported"] else " (indicative: few exceeding comparisons)"
            console.print(
                f"  W={c['watchlist_size']}, FPIR 1/{round(1 / c['target_fpir'])}: threshold {c['threshold']:.3f}, "
                f"TPIR {c['tpir']:.1%}{support}"
            )
    if calibration:
        made = result["calibration"]
        console.print(
            f"Track calibration: {made['file']} (rules {', '.join(made['rules'])}); at {threshold} the 2-of-5 views "
            f"must reach {made['track_threshold_2_of_5']} for a track to raise false alerts no more often than a photograph"
        )
        for key, points in (made["validation"] or {}).get("rules", {}).items():
            for p in points[-3:]:
                console.print(
                    f"  validation {key} at {p['threshold']}: photographs exceed {p['photo_exceeding']} impostor comparisons, "
                    f"tracks {p['track_exceeding_at_threshold']} at it and {p['track_exceeding_at_track_threshold']} at "
                    f"{p['track_threshold']}"
                )
    if out:
        console.print(f"JSON: {out}")


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
    from openlfr.evaluation.demographics_report import evaluate_demographics

    engine = engine_for(pack, home)
    with templating("templates") as advance:
        result = evaluate_demographics(engine, data, groups, out, threshold, watchlist_size, people, seed,
                                       cache_for(cache_dir, home), advance)  # fmt: skip
    if as_json:
        emit_json(result)
        return
    flagged = sum(1 for a in result["attributes"].values() for t in a["tests"] if t["significant"])
    console.print(
        f"{len(result['attributes'])} attribute(s); {flagged} significant difference(s) after Holm correction.\n"
        f"Report: {result['report']}"
    )
