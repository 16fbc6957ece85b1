"""What a deployment's threshold rests on: a calibration file, and the false-alert and hit rates it predicts,
each with a 95% interval and the method behind it.

Both the evaluation commands (which write calibrations, :mod:`openlfr.evaluation.calibrate`) and the
threshold service (which reads them, :mod:`openlfr.services.thresholds`) import this module, which
imports neither.

The model (format ``openlfr-calibration/2``):

- ``p(t)``: the chance that one comparison of a stranger's face with one watchlist image scores at least
  ``t`` (the *per-comparison impostor rate*). Measured over every impostor comparison of the calibration
  set where at least :data:`RULE_OF` comparisons exceed ``t``; above a high score ``u`` it is a generalised
  Pareto distribution (GPD) fitted to the impostor scores that exceed ``u`` (peaks over threshold), so rates
  far below what the comparisons can show are *extrapolated* with a stated method rather than read as zero.
- ``T1(t)``: the share of mated probes (another photograph of a watchlisted person) scoring at least ``t``
  against their own watchlist image (a probe without a detected face counts as a miss).
- For a watchlist of ``W`` people, assuming a stranger's comparisons with different people exceed ``t``
  independently: FPIR(W, t) = 1 − (1 − p(t))^W, and TPIR(W, t) = Σ over mated scores s ≥ t of
  (1 − p(s))^(W−1) (the mate must also beat every other entry).
- 95% intervals: percentiles of the same quantities over bootstrap replicates that resample *people*
  (not pairs), refitting the tail each time; then widened by the *transfer error* measured between the
  calibration set and photographs of another population (``transfer``), because a calibration made on one
  population of photographs does not carry over to another unchanged.

Version 1 files (measured curves only, no intervals) are still read; their estimates say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from openlfr.errors import OpenLFRError

FORMAT = "openlfr-calibration/2"
FORMAT_V1 = "openlfr-calibration/1"
STEPS = 1000
GRID = np.round(np.arange(STEPS + 1) / STEPS, 3)  # thresholds 0.000 ... 1.000
#: A rate f stands on N comparisons when N·f ≥ 30 (Doddington's rule of 30).
RULE_OF = 30
#: Rates below this are reported as zero (a GPD with a bounded tail reaches exactly zero).
FLOOR = 1e-15


def extrapolate(rate: np.ndarray | float, size: int) -> np.ndarray:
    """FPIR(W, t) = 1 - (1 - p(t))^W: independent comparisons, each exceeding t with probability p(t)."""
    return 1.0 - np.power(1.0 - np.clip(np.asarray(rate, np.float64), 0.0, 1.0), size)


def per_comparison_rate(fpir: float, size: int) -> float:
    """The p(t) at which FPIR(W, t) equals ``fpir``."""
    return float(1.0 - (1.0 - fpir) ** (1.0 / max(size, 1)))


def tpir_at_size(t1: np.ndarray, rate: np.ndarray, size: int) -> np.ndarray:
    """TPIR(W, t) on a grid from T1 (mated share ≥ t) and p(t) on the same grid.

    The mass of mated scores in [t_k, t_k+1) is T1[k] − T1[k+1]; a mated probe scoring s is identified
    when none of the W − 1 other entries beats it, which happens with probability (1 − p(s))^(W−1).
    """
    t1 = np.asarray(t1, np.float64)
    mass = t1 - np.append(t1[1:], 0.0)
    keep = np.power(1.0 - np.clip(np.asarray(rate, np.float64), 0.0, 1.0), max(size - 1, 0))
    return np.cumsum((mass * keep)[::-1])[::-1]


def exceeding(scores: np.ndarray) -> np.ndarray:
    """How many scores reach each grid threshold (score >= t), as one vector over ``GRID``."""
    bins = np.clip(np.floor(np.asarray(scores, np.float64) * STEPS + 1e-9).astype(np.int64), -1, STEPS) + 1
    counts = np.bincount(bins, minlength=STEPS + 2)
    return np.cumsum(counts[::-1])[::-1][1:]  # drop the "below 0" bin


# --------------------------------------------------------------------------------------------- the file


def save(data: dict, path: Path) -> Path:
    """Write a calibration; arrays of numbers go on one line each (6 significant digits) so the file stays
    readable and small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, default=_plain)
    text = re.sub(r"\[\s*([-0-9.eE+,\s]+?)\s*\]", lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n")
    return path


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return [float(f"{v:.6g}") for v in value.ravel()] if value.ndim == 1 else [_plain(row) for row in value]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a calibration file")


def load(path: str | Path) -> dict:
    """Read and check a calibration file; arrays come back as numpy arrays, watchlists sorted by size."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise OpenLFRError(f"cannot read calibration file {path}: {exc}") from exc
    if data.get("format") not in (FORMAT, FORMAT_V1):
        raise OpenLFRError(f"{path} is not an OpenLFR calibration file ({FORMAT})")
    missing = {"pack_id", "dataset", "created", "thresholds", "watchlists"} - set(data)
    if data["format"] == FORMAT:
        missing |= {"model"} - set(data)
    if missing:
        raise OpenLFRError(f"calibration file {path} lacks {', '.join(sorted(missing))}")
    data["thresholds"] = np.asarray(data["thresholds"], np.float64)
    shape = data["thresholds"].shape
    for w in data["watchlists"]:
        for key in ("fpir", "tpir"):
            w[key] = np.asarray(w[key], np.float64)
            if w[key].shape != shape:
                raise OpenLFRError(f"calibration file {path}: watchlist {w['size']} {key} does not match the thresholds")
        w["impostor_tail"]["exceeding"] = np.asarray(w["impostor_tail"]["exceeding"], np.float64)
    data["watchlists"].sort(key=lambda w: w["size"])
    if data["format"] == FORMAT:
        model = data["model"]
        for key in ("rate", "t1"):
            model[key] = np.asarray(model[key], np.float64)
            if model[key].shape != shape:
                raise OpenLFRError(f"calibration file {path}: model {key} does not match the thresholds")
        boot = model["bootstrap"]
        boot["grid"] = np.asarray(boot["grid"], np.float64)
        for key in ("rate", "t1"):
            boot[key] = np.asarray(boot[key], np.float64)
            if boot[key].ndim != 2 or boot[key].shape[1] != boot["grid"].shape[0]:
                raise OpenLFRError(f"calibration file {path}: bootstrap {key} has the wrong shape")
    return data


# ------------------------------------------------------------------------------------------- predictions


@dataclass(frozen=True)
class Prediction:
    """FPIR and TPIR at one threshold and watchlist size, with 95% intervals and how they were obtained."""

    threshold: float
    watchlist_size: int
    fpir: float
    fpir_interval: tuple[float, float]
    tpir: float
    tpir_interval: tuple[float, float]
    method: str
    extrapolated: bool  # the FPIR rests on the fitted tail, beyond what the comparisons measure
    interval_method: str

    def as_dict(self) -> dict:
        return asdict(self)


def _log_interp(x: float | np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Interpolate a positive, falling curve in log space (rates span many decades)."""
    return np.exp(np.interp(x, xs, np.log(np.maximum(ys, FLOOR))))


def _grid_index(data: dict, threshold: float) -> int:
    return int(np.clip(np.searchsorted(data["thresholds"], threshold + 1e-9, side="right") - 1, 0, len(data["thresholds"]) - 1))


def _transfer(data: dict) -> tuple[float, float, str]:
    """(FPIR factor ≥ 1, TPIR shift ≥ 0, what they rest on) by which intervals are widened."""
    transfer = data["model"].get("transfer") or {}
    factor = float(transfer.get("fpir_factor", 1.0))
    shift = float(transfer.get("tpir_shift", 0.0))
    basis = transfer.get("basis", "no transfer check: the intervals cover sampling of people only")
    return max(factor, 1.0), max(shift, 0.0), basis


def predict(data: dict, threshold: float, size: int) -> Prediction:
    """The FPIR and TPIR to expect at ``threshold`` for a watchlist of ``size`` people."""
    size = max(int(size), 1)
    if data["format"] == FORMAT_V1:
        return _predict_v1(data, threshold, size)
    model = data["model"]
    k = _grid_index(data, threshold)
    rate, t1 = model["rate"], model["t1"]
    fpir = float(extrapolate(rate[k], size))
    tpir = float(tpir_at_size(t1, rate, size)[k])
    boot = model["bootstrap"]
    b_rate = np.array([_log_interp(threshold, boot["grid"], r) for r in boot["rate"]])
    b_fpir = extrapolate(b_rate, size)
    b_tpir = np.array(
        [
            float(np.interp(threshold, boot["grid"], tpir_at_size(t, r, size)))
            for t, r in zip(boot["t1"], boot["rate"], strict=True)
        ]
    )
    factor, shift, basis = _transfer(data)
    lo_f, hi_f = np.percentile(b_fpir, [2.5, 97.5])
    lo_t, hi_t = np.percentile(b_tpir, [2.5, 97.5])
    fpir_interval = (float(min(lo_f, fpir) / factor), float(min(1.0, max(hi_f, fpir) * factor)))
    tpir_interval = (float(max(0.0, min(lo_t, tpir) - shift)), float(min(1.0, max(hi_t, tpir) + shift)))
    measured_to = float(model["tail"]["measured_down_to"])
    extrapolated = bool(rate[k] < measured_to)
    how = (
        f"FPIR = 1-(1-p)^W from the per-comparison impostor rate p = {rate[k]:.3g} at this threshold, "
        + (
            f"extrapolated beyond the measured comparisons (they support rates down to {measured_to:.2g}) by a "
            f"generalised Pareto fit to the impostor scores above {model['tail']['u']:.3f}"
            if extrapolated
            else f"measured over {model['comparisons']:,.0f} impostor comparisons"
        )
        + f"; TPIR from mated scores, each also beating the other W-1 entries. Calibration set: {data['dataset'].get('name')}"
    )
    interval_how = (
        f"95% bootstrap interval over people ({boot['replicates']} replicates, tail refitted each time), widened by "
        f"the transfer error between populations (FPIR ×/÷ {factor:.2f}, TPIR ± {shift * 100:.1f} points: {basis})"
    )
    return Prediction(float(threshold), size, fpir, fpir_interval, tpir, tpir_interval, how, extrapolated, interval_how)


def _predict_v1(data: dict, threshold: float, size: int) -> Prediction:
    lists = data["watchlists"]
    nearest = min(lists, key=lambda w: abs(np.log(max(w["size"], 1)) - np.log(size)))
    largest = lists[-1]
    tail = largest["impostor_tail"]
    k = _grid_index(data, threshold)
    fpir = float(extrapolate(tail["exceeding"][k] / max(tail["comparisons"], 1.0), size))
    tpir = float(nearest["tpir"][k])
    how = (
        f"FPIR = 1-(1-p)^W from the per-comparison impostor rate measured at watchlist size {largest['size']}; "
        f"TPIR measured at size {nearest['size']} (a version 1 calibration)"
    )
    none = "none: a version 1 calibration carries no uncertainty; recalibrate with 'openlfr evaluate identification'"
    return Prediction(float(threshold), size, fpir, (fpir, fpir), tpir, (tpir, tpir), how, False, none)


def threshold_for(data: dict, target_fpir: float, size: int) -> tuple[float, tuple[float, float], float]:
    """(threshold, its 95% interval, the conservative threshold) meeting FPIR ≤ target at this size.

    The threshold is the lowest on the grid whose predicted FPIR meets the target; its interval comes from
    the bootstrap replicates (widened by the transfer factor); the conservative threshold is the lowest whose
    *upper* interval bound meets the target.
    """
    size = max(int(size), 1)
    need = per_comparison_rate(target_fpir, size)
    grid = data["thresholds"]
    if data["format"] == FORMAT_V1:
        tail = data["watchlists"][-1]["impostor_tail"]
        ok = extrapolate(tail["exceeding"] / max(tail["comparisons"], 1.0), size) <= target_fpir
        if not ok.any():
            raise OpenLFRError(f"no threshold in the calibration reaches FPIR {target_fpir:g} at watchlist size {size}")
        t = float(grid[int(np.argmax(ok))])
        return t, (t, t), t
    model = data["model"]
    ok = model["rate"] <= need
    if not ok.any():
        raise OpenLFRError(f"no threshold in the calibration reaches FPIR {target_fpir:g} at watchlist size {size}")
    point = float(grid[int(np.argmax(ok))])
    factor, _shift, _basis = _transfer(data)
    boot = model["bootstrap"]
    fine = grid[(grid >= boot["grid"][0]) & (grid <= boot["grid"][-1])]
    per_replicate = []
    for r in boot["rate"]:
        curve = _log_interp(fine, boot["grid"], r)
        per_replicate.append([_first(fine, curve <= need * factor), _first(fine, curve <= need / factor)])
    reps = np.array(per_replicate)
    low = float(np.percentile(reps[:, 0], 2.5))  # population with fewer impostor matches: a lower threshold does
    high = float(np.percentile(reps[:, 1], 97.5))  # and with more: a higher one is needed
    conservative_rate = np.percentile([_log_interp(fine, boot["grid"], r) for r in boot["rate"]], 97.5, axis=0) * factor
    conservative = _first(fine, conservative_rate <= need)
    return point, (min(low, point), max(high, point)), max(conservative, point)


def _first(grid: np.ndarray, ok: np.ndarray) -> float:
    return float(grid[int(np.argmax(ok))]) if ok.any() else float(grid[-1])


# ------------------------------------------------------------------------------------- track decisions

TRACK_FORMAT = "openlfr-track-calibration/1"
#: Shipped track calibrations, one per model pack (``openlfr evaluate track-decisions --calibration``).
TRACKS_DIR = Path(__file__).resolve().parent / "models" / "calibrations" / "tracks"


def load_tracks(path: str | Path) -> dict:
    """Read and check a track calibration (see :func:`track_threshold`)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise OpenLFRError(f"cannot read track calibration {path}: {exc}") from exc
    if data.get("format") != TRACK_FORMAT or not isinstance(data.get("rules"), dict) or "pack_id" not in data:
        raise OpenLFRError(f"{path} is not an OpenLFR track calibration ({TRACK_FORMAT})")
    for rule, points in data["rules"].items():
        xs, ys = points.get("threshold", []), points.get("track_threshold", [])
        if not xs or len(xs) != len(ys) or list(xs) != sorted(xs):
            raise OpenLFRError(f"track calibration {path}: rule {rule} needs matching, increasing thresholds")
    return data


def shipped_tracks(pack_id: str) -> dict | None:
    """The shipped track calibration made for ``pack_id``, if there is one."""
    for path in sorted(TRACKS_DIR.glob("*.json")):
        data = load_tracks(path)
        if data["pack_id"] == pack_id:
            return data | {"file": path.name}
    return None


def track_threshold(data: dict | None, confirm_n: int, confirm_m: int, threshold: float) -> float | None:
    """The threshold a track's views must reach, ``confirm_n`` of its last ``confirm_m``, for the track to
    raise false alerts no more often than a single photograph does at ``threshold``: the per-comparison
    false-match rate the deployment's threshold was calibrated (and authorised) for.

    Read from a track calibration's measured pairs (photograph threshold, track threshold), linearly
    between them; outside the measured range the nearest measured offset is kept (stated in the file's
    ``method``). None when the calibration has no such rule: the views are then judged at ``threshold``.
    """
    points = (data or {}).get("rules", {}).get(f"{confirm_n}/{confirm_m}")
    if not points:
        return None
    xs = np.asarray(points["threshold"], np.float64)
    offsets = np.asarray(points["track_threshold"], np.float64) - xs
    return round(float(min(1.0, threshold + np.interp(threshold, xs, offsets))), 4)
