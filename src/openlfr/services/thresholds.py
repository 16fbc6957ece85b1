"""Choosing a deployment's threshold from measurement, and refusing one that would alert too often.

A *calibration* (made by ``openlfr evaluate identification``; format in
:mod:`openlfr.evaluation.openset`) holds, for one model pack, the measured open-set curves
(threshold → FPIR, TPIR) at some watchlist sizes and the per-comparison impostor rate p(t) behind
them. Calibrations live in ``<data dir>/calibrations/`` (imported with ``openlfr threshold import``,
audited); the default pack also ships one made on LFW, used when the data directory has none.
A calibration is cited by its *reference*: ``<file stem>@<first 12 hex of its SHA-256>``, so a
published record names exactly the evidence its threshold rests on.

FPIR at a watchlist size W and threshold t: measured when W was measured; otherwise extrapolated
as FPIR(W, t) = 1 − (1 − p(t))^W from the largest measured size (independent comparisons; the
evaluation report checks this against the sizes measured). Expected TPIR is read from the measured
size nearest to W.

Scores mean the same across packs only through their calibration: a threshold is never carried
from one pack to another; each pack's similarity (cosine of unit templates, whatever the pack's
native distance) is mapped to FPIR by its own calibration, which is why a calibration is refused
for templates of any other pack.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from openlfr.errors import OpenLFRError
from openlfr.evaluation.openset import RULE_OF, extrapolate, load_calibration
from openlfr.services import audit
from openlfr.storage import Store

#: A deployment whose estimated FPIR is above this needs an explicit, audited override.
MAX_FPIR_WITHOUT_OVERRIDE = 1 / 1000
#: Below this estimated TPIR a deployment would miss most of its watchlist: usually a threshold
#: copied from another model pack (scores of different packs are not on one scale).
MIN_TPIR_WITHOUT_OVERRIDE = 0.5
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models" / "calibrations"


@dataclass(frozen=True)
class Estimate:
    threshold: float
    watchlist_size: int
    fpir: float
    tpir: float
    method: str
    calibration: str


def parse_rate(text: str) -> float:
    """'1/6000', '0.001' or '1e-3' → a probability."""
    try:
        value = float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise OpenLFRError(f"not a rate: {text!r} (write 1/6000 or 0.000167)") from exc
    if not 0 < value < 1:
        raise OpenLFRError(f"a rate must be between 0 and 1, got {text}")
    return value


def reference(path: Path) -> str:
    return f"{path.stem}@{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


def _candidates(store: Store | None) -> list[Path]:
    own = sorted((store.home / "calibrations").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if store else []
    return own + sorted(SHIPPED_DIR.glob("*.json"))


def find(store: Store | None, pack_id: str, ref: str | None = None) -> tuple[Path, dict]:
    """The calibration for ``pack_id``: the one named by ``ref``, else the newest imported, else the shipped one."""
    for path in _candidates(store):
        if ref and reference(path) != ref and path.stem != ref:
            continue
        data = load_calibration(path)
        if data["pack_id"] == pack_id:
            return path, data
        if ref:
            raise OpenLFRError(f"calibration {ref} was made for model pack {data['pack_id']}, not {pack_id}")
    raise OpenLFRError(
        f"no calibration for model pack {pack_id}" + (f" named {ref}" if ref else "")
        + ": run 'openlfr evaluate identification' and 'openlfr threshold import'"
    )  # fmt: skip


def import_calibration(store: Store, path: Path, by: str) -> str:
    data = load_calibration(path)
    folder = store.home / "calibrations"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    shutil.copyfile(path, target)
    ref = reference(target)
    audit.record(store, "threshold.calibration_import", "calibration", ref,
                 {"pack": data["pack_id"], "dataset": data["dataset"].get("name")}, actor=by)  # fmt: skip
    return ref


def _curves(data: dict, size: int, target: float | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """FPIR and TPIR per threshold for watchlist ``size``, and how they were obtained.

    A measured curve is used when this size was measured and (for a target rate) its non-mated probes
    support the target (N·f ≥ 30); otherwise FPIR is extrapolated from the per-comparison impostor
    rate, which rests on far more comparisons.
    """
    lists = data["watchlists"]
    nearest = min(lists, key=lambda w: abs(np.log(max(w["size"], 1)) - np.log(max(size, 1))))
    exact = [w for w in lists if w["size"] == size]
    if exact and (target is None or exact[0]["non_mated_probes"] * target >= RULE_OF):
        return exact[0]["fpir"], exact[0]["tpir"], f"measured at watchlist size {size}"
    largest = lists[-1]
    tail = largest["impostor_tail"]
    rate = tail["exceeding"] / max(tail["comparisons"], 1.0)
    why = " (too few non-mated probes to measure this rate directly)" if exact else ""
    method = (
        f"extrapolated{why} from the per-comparison impostor rate measured at size {largest['size']} "
        f"({tail['comparisons']:,.0f} comparisons): FPIR = 1-(1-p)^W; TPIR from size {nearest['size']}"
    )
    return extrapolate(rate, size), nearest["tpir"], method


def estimate(store: Store | None, pack_id: str, threshold: float, watchlist_size: int, ref: str | None = None) -> Estimate:
    """The FPIR and TPIR to expect at this threshold and watchlist size."""
    path, data = find(store, pack_id, ref)
    fpir, tpir, method = _curves(data, max(int(watchlist_size), 1))
    k = int(np.clip(np.searchsorted(data["thresholds"], threshold, side="right") - 1, 0, len(fpir) - 1))
    return Estimate(float(threshold), int(watchlist_size), float(fpir[k]), float(tpir[k]), method, reference(path))


def recommend(store: Store | None, pack_id: str, target_fpir: float, watchlist_size: int, ref: str | None = None) -> Estimate:
    """The lowest threshold whose FPIR at this watchlist size is at or below the target."""
    path, data = find(store, pack_id, ref)
    fpir, tpir, method = _curves(data, max(int(watchlist_size), 1), target_fpir)
    ok = fpir <= target_fpir
    if not ok.any():
        raise OpenLFRError(f"no threshold in the calibration reaches FPIR {target_fpir:g} at watchlist size {watchlist_size}")
    k = int(np.argmax(ok))
    return Estimate(float(data["thresholds"][k]), int(watchlist_size), float(fpir[k]), float(tpir[k]), method, reference(path))
