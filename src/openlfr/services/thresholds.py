"""Choosing a deployment's threshold from measurement, and refusing one that would alert too often.

A *calibration* (made by ``openlfr evaluate identification``; model and format in
:mod:`openlfr.calibration`) holds, for one model pack, how often a stranger's face scores above each
threshold against one watchlist image (with a fitted tail where the comparisons run out) and how often a
watchlisted person's other photographs reach it, with bootstrap replicates over people. From it every
estimate here is a figure with a 95% interval and the method behind it, and says plainly when it rests on
extrapolation. Calibrations live in ``<data dir>/calibrations/`` (imported with ``openlfr threshold
import``, audited); both shipped packs also ship one made on LFW (label errors left out) and checked on
another set of photographs, used when the data directory has none. A calibration is cited by its
*reference*: ``<file stem>@<first 12 hex of its SHA-256>``, so a published record names exactly the
evidence its threshold rests on.

A calibration made on one population of photographs does not carry over to another unchanged: a force
should calibrate on its own images (``openlfr evaluate identification --folder DIR`` then ``openlfr
threshold import DIR/calibration.json``), which is what :data:`OWN_IMAGES_ADVICE` tells every reader.

Scores mean the same across packs only through their calibration: a threshold is never carried from one
pack to another, which is why a calibration is refused for templates of any other pack.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from openlfr import calibration as cal
from openlfr.errors import OpenLFRError
from openlfr.services import audit
from openlfr.storage import Store
from openlfr.storage.store import private_dir, write_private

#: A deployment whose estimated FPIR is above this needs an explicit, audited override.
MAX_FPIR_WITHOUT_OVERRIDE = 1 / 1000
#: Below this estimated TPIR a deployment would miss most of its watchlist: usually a threshold
#: copied from another model pack (scores of different packs are not on one scale).
MIN_TPIR_WITHOUT_OVERRIDE = 0.5
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "models" / "calibrations"


OWN_IMAGES_ADVICE = (
    "These figures come from press photographs (LFW), checked on a second set; a force should calibrate on its own "
    "images: openlfr evaluate identification --folder DIR, then openlfr threshold import DIR/calibration.json --by NAME"
)


@dataclass(frozen=True)
class Estimate:
    """What to expect at one threshold and watchlist size, with 95% intervals and how they were obtained."""

    threshold: float
    watchlist_size: int
    fpir: float
    fpir_interval: tuple[float, float]
    tpir: float
    tpir_interval: tuple[float, float]
    method: str
    interval_method: str
    extrapolated: bool
    calibration: str
    advice: str = OWN_IMAGES_ADVICE
    target_fpir: float | None = None
    threshold_interval: tuple[float, float] | None = None  # recommendations only
    conservative_threshold: float | None = None  # lowest whose upper FPIR bound meets the target
    #: What the live pipeline judges a pass's views at (2 of 5) so that a pass alerts no more often than
    #: these figures say of one face, and the track calibration it comes from (None: the pack has none).
    track_threshold: float | None = None
    track_calibration: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def fpir_words(self) -> str:
        """'about 1 in 6,100 (95%: 1 in 3,200 to 1 in 32,000)' — rates as people read them."""
        lo, hi = self.fpir_interval
        return f"about {one_in(self.fpir)} (95% interval: {one_in(hi)} to {one_in(lo)})"


def one_in(rate: float) -> str:
    if rate <= 0:
        return "none measurable"
    n = 1 / rate
    return f"1 in {n:,.0f}" if n < 100 else f"1 in {float(f'{n:.2g}'):,.0f}"


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
        data = cal.load(path)
        if data["pack_id"] == pack_id:
            return path, data
        if ref:
            raise OpenLFRError(f"calibration {ref} was made for model pack {data['pack_id']}, not {pack_id}")
    raise OpenLFRError(
        f"no calibration for model pack {pack_id}" + (f" named {ref}" if ref else "")
        + ": run 'openlfr evaluate identification' and 'openlfr threshold import'"
    )  # fmt: skip


def import_calibration(store: Store, path: Path, by: str) -> str:
    data = cal.load(path)
    folder = private_dir(store.home / "calibrations")
    target = folder / path.name
    write_private(target, path.read_bytes())
    ref = reference(target)
    audit.record(store, "threshold.calibration_import", "calibration", ref,
                 {"pack": data["pack_id"], "dataset": data["dataset"].get("name")}, actor=by)  # fmt: skip
    return ref


def _estimate(data: dict, path: Path, threshold: float, size: int, target: float | None = None) -> Estimate:
    tracks = cal.shipped_tracks(data["pack_id"])
    return Estimate(
        **cal.predict(data, threshold, size).as_dict(),
        calibration=reference(path),
        target_fpir=target,
        track_threshold=cal.track_threshold(tracks, 2, 5, threshold),
        track_calibration=tracks["file"] if tracks else None,
    )


def estimate(store: Store | None, pack_id: str, threshold: float, watchlist_size: int, ref: str | None = None) -> Estimate:
    """The FPIR and TPIR to expect at this threshold and watchlist size."""
    path, data = find(store, pack_id, ref)
    return _estimate(data, path, threshold, max(int(watchlist_size), 1))


def recommend(store: Store | None, pack_id: str, target_fpir: float, watchlist_size: int, ref: str | None = None) -> Estimate:
    """The lowest threshold whose predicted FPIR at this watchlist size is at or below the target."""
    path, data = find(store, pack_id, ref)
    size = max(int(watchlist_size), 1)
    threshold, interval, conservative = cal.threshold_for(data, target_fpir, size)
    e = _estimate(data, path, threshold, size, target_fpir)
    return Estimate(**(e.as_dict() | {"threshold_interval": interval, "conservative_threshold": conservative}))
