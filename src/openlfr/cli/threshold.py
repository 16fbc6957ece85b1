"""``openlfr threshold``: choose a threshold from a stored calibration, and import calibrations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openlfr.cli.common import HomeOpt, JsonOpt, PackOpt, console, emit_json, friendly_errors

threshold_app = typer.Typer(
    help="Thresholds from measured false-alert rates (calibrations per model pack).", no_args_is_help=True
)


def _pack_id(pack: str | None, home: Path | None) -> str:
    from openlfr.models import load_engine

    return load_engine(pack, home=home).pack_id


def _show(estimate, as_json: bool, heading: str) -> None:
    if as_json:
        emit_json(estimate.as_dict())
        return
    lo, hi = estimate.tpir_interval
    lines = [heading, f"  threshold [bold]{estimate.threshold:.3f}[/] for a watchlist of {estimate.watchlist_size:,} people"]
    if estimate.threshold_interval:
        t_lo, t_hi = estimate.threshold_interval
        lines.append(
            f"    95% interval of the threshold that meets the target: {t_lo:.3f} to {t_hi:.3f}; "
            f"a threshold of {estimate.conservative_threshold:.3f} meets it even at the interval's upper end"
        )
    lines += [
        f"  false alerts per passer-by (FPIR): {estimate.fpir_words()}",
        f"  watchlisted people found (TPIR): {estimate.tpir * 100:.1f}% (95% interval {lo * 100:.1f}% to {hi * 100:.1f}%)",
    ]
    if estimate.extrapolated:
        lines.append("  [yellow]This false-alert rate is below what the calibration's comparisons measure: it is extrapolated "
                     "from a fitted tail (see 'how').[/]")  # fmt: skip
    if estimate.track_threshold is not None:
        lines.append(
            f"  live: a pass is judged on 2 of 5 views, which must reach {estimate.track_threshold:.4f} so that a pass "
            f"alerts no more often than this (track calibration {estimate.track_calibration})"
        )
    lines += [
        f"  how: {estimate.method}",
        f"  interval: {estimate.interval_method}",
        f"  calibration: {estimate.calibration}",
        f"  {estimate.advice}",
    ]
    console.print("\n".join(lines))


@threshold_app.command("recommend")
@friendly_errors
def recommend(
    target_fpir: Annotated[str, typer.Option("--target-fpir", help="Largest acceptable false-alert rate per face, e.g. 1/6000.")],
    watchlist_size: Annotated[int, typer.Option("--watchlist-size", min=1, help="Number of people on the watchlist.")],
    calibration: Annotated[
        str | None, typer.Option("--calibration", help="Calibration reference (default: newest for the pack).")
    ] = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The lowest threshold that keeps the false-alert rate at or below the target for this watchlist size."""
    from openlfr.services import thresholds
    from openlfr.storage import Store

    target = thresholds.parse_rate(target_fpir)
    estimate = thresholds.recommend(Store(home), _pack_id(pack, home), target, watchlist_size, calibration)
    _show(estimate, as_json, f"Recommended for FPIR ≤ {target:.2e}:")


@threshold_app.command("estimate")
@friendly_errors
def estimate(
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0)],
    watchlist_size: Annotated[int, typer.Option("--watchlist-size", min=1)],
    calibration: Annotated[str | None, typer.Option("--calibration")] = None,
    home: HomeOpt = None,
    pack: PackOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The false-alert rate and hit rate to expect at a threshold and watchlist size."""
    from openlfr.services import thresholds
    from openlfr.storage import Store

    _show(thresholds.estimate(Store(home), _pack_id(pack, home), threshold, watchlist_size, calibration), as_json, "Estimate:")


@threshold_app.command("import")
@friendly_errors
def import_file(
    path: Annotated[Path, typer.Argument(help="calibration.json written by 'openlfr evaluate identification'.")],
    by: Annotated[str, typer.Option("--by", help="Who imports it (audited).")],
    home: HomeOpt = None,
) -> None:
    """Make a calibration available for threshold choices and deployment checks."""
    from openlfr.services import thresholds
    from openlfr.storage import Store

    console.print(f"Imported calibration {thresholds.import_calibration(Store(home), path, by)}.")


def register(app: typer.Typer) -> None:
    app.add_typer(threshold_app, name="threshold")
