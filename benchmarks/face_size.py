"""How small may a face be before the pack's alert threshold stops meaning what its calibration says?

    python benchmarks/face_size.py --data ../shared/data/lfw --pack yunet-sface-dlib \\
        [--people 300] [--sizes 6,8,10,12,14,16,20,24,32] [--factor 2] [--cache-dir DIR] [--json OUT]

A pack's alert threshold is calibrated on LFW photographs, whose faces are about 43 px between the eyes.
A camera sees most passers-by much smaller, and a recogniser's impostor scores need not stay where the
calibration put them when it is given a face of a few pixels: a walk-by of 24 px faces raised 1-2 false
alerts in about 300 faces at the LFW-calibrated threshold. This measures where that starts.

Protocol (everything follows from ``--seed``):

- *probes*: ``--people`` people drawn at random from those with two or more LFW images; each one's
  second image (sorted by name) is shrunk (``INTER_AREA``, as a sensor integrates light) until the
  inter-eye distance of its detected face is ``d`` px, placed in a mid-grey canvas and detected and
  templated by the pack exactly as the live pipeline does it (no upsampling before detection). Where the
  photograph's own face is smaller than ``d`` it is used as it is. ``original`` is the unshrunk image;
- *gallery*: every LFW image (of ``--gallery-people`` people at most), at full size, as watchlist
  custody photographs would be. Templates come from the same cache as the ``evaluate`` commands
  (``--cache-dir``), so a machine that has run them templates nothing here;
- *mated*: a probe against its own person's first image; a probe whose face is not found at that size
  is a miss. *Impostor*: a found probe against every image of every other person, less the pairs on the
  LFW alias list (same person under two names, same photograph under two names).

At the pack's alert threshold, per ``d``: the detection rate, the mated match rate, and the impostor
false-match rate (FMR, per comparison) and its ratio to the original size, with a 95% interval from a
bootstrap over the probe people (the gallery is held fixed). ``--camera`` also degrades each shrunk
probe as the walk-by simulator's camera does (blur, exposure, noise, compression); the original stays
as the calibration saw it.

Rule for the pack's minimum inter-eye distance for alerts: the smallest ``d`` such that at ``d`` and at
every larger size measured the measurement shows FMR(d) <= ``--factor`` x FMR(original): the upper end of
the ratio's 95% interval is at most the factor, the original size's rate is supported (at least 30 false
matches: N·f >= 30) and each size has enough comparisons that the original rate would show 30 false
matches there too. A size whose ratio is small but uncertain does not pass: more ``--people`` narrow the
interval. Below the chosen size a face is still detected and tracked (and counted as a face seen) but
never compared with the watchlist.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from openlfr.core import FaceEngine
from openlfr.core.types import Detection
from openlfr.errors import OpenLFRError
from openlfr.evaluation.lfw import IMAGES_DIR, central_face
from openlfr.evaluation.openset import default_cache_dir, template_cache
from openlfr.media.images import load_image
from openlfr.models import load_engine

DEFAULT_SIZES = "6,8,10,12,14,16,20,24,32"
#: Doddington's rule of 30: a rate rests on at least 30 observed errors.
SUPPORT = 30
ORIGINAL = "original"


@dataclass
class SizeResult:
    size: str  # inter-eye distance in px, or "original"
    probes: int
    detected: int
    median_inter_eye_px: float | None  # as the detector measured it on the shrunk image
    median_box_px: float | None
    used_as_is: int  # probes whose face was already smaller than the size asked for
    mated_matches: int
    impostor_comparisons: int
    false_matches: int
    probes_with_false_match: int
    fmr: float
    fmr_ratio: float | None = None
    fmr_ratio_ci95: list[float] | None = None
    supported: bool = False
    passes_rule: bool = False
    per_probe_false: list[int] = field(default_factory=list, repr=False)
    per_probe_comparisons: list[int] = field(default_factory=list, repr=False)

    @property
    def detection_rate(self) -> float:
        return self.detected / self.probes if self.probes else 0.0

    @property
    def mated_rate(self) -> float:
        return self.mated_matches / self.probes if self.probes else 0.0


def shrunk(image: np.ndarray, face: Detection, inter_eye_px: float) -> tuple[np.ndarray, bool]:
    """The image scaled so that ``face`` has the given inter-eye distance, in a grey canvas.

    Returns the canvas and whether the image was used as it is (its face already that small or smaller).
    """
    scale = inter_eye_px / max(face.inter_eye_px, 1e-6)
    if scale >= 1.0:
        return image, True
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    # Room around the photograph so the detector sees a face in a scene, as in a camera frame.
    ch, cw = max(96, 2 * sh), max(96, 2 * sw)
    canvas = np.full((ch, cw, 3), 114, np.uint8)
    y0, x0 = (ch - sh) // 2, (cw - sw) // 2
    canvas[y0 : y0 + sh, x0 : x0 + sw] = small
    return canvas, False


def camera(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The shrunk photograph as the walk-by simulator's camera shows a face: defocus/motion blur
    (sigma 0-1 px), exposure (gain 0.7-1.2), sensor noise (std 3) and lossy compression (JPEG q 75,
    standing in for the video codec)."""
    out = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.05, 1.0)))
    out = out.astype(np.float32) * float(rng.uniform(0.7, 1.2)) + rng.normal(0, 3.0, out.shape)
    _, data = cv2.imencode(".jpg", np.clip(out, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 75])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def probe_templates(
    engine: FaceEngine, images: list[np.ndarray], faces: list[Detection], size: float, degrade: int | None = None
) -> tuple[np.ndarray, list[Detection | None], int]:
    """Templates of the probes shrunk to ``size`` (zero rows where no face was found), their detections,
    and how many were used as they are. ``degrade``: seed for :func:`camera` degradation (None: none)."""
    templates = np.zeros((len(images), engine.dimension), np.float32)
    found: list[Detection | None] = []
    as_is = 0
    rng = np.random.default_rng(degrade) if degrade is not None else None
    for i, (image, face) in enumerate(zip(images, faces, strict=True)):
        canvas, unchanged = shrunk(image, face, size)
        as_is += unchanged
        h, w = canvas.shape[:2]
        if rng is not None:
            canvas, unchanged = camera(canvas, rng), False
        det = face if unchanged else central_face(engine.detect(canvas), w, h)
        found.append(det)
        if det is not None:
            templates[i] = engine.describe(canvas, [det])[0].template
    return templates, found, as_is


def measure(
    size: str,
    probes: np.ndarray,
    found: list[Detection | None],
    as_is: int,
    mated_rows: np.ndarray,
    gallery: np.ndarray,
    excluded: np.ndarray,
    threshold: float,
) -> SizeResult:
    """Mated and impostor counts at ``threshold`` for one size; ``excluded`` masks (probe, gallery) pairs
    that are not impostor comparisons (the probe's own person, listed aliases)."""
    detected = np.array([d is not None for d in found])
    scores = probes @ gallery.T
    mated = scores[np.arange(len(probes)), mated_rows] >= threshold
    impostor = (scores >= threshold) & ~excluded & detected[:, None]
    comparisons = np.where(detected, (~excluded).sum(axis=1), 0)
    per_probe = impostor.sum(axis=1)
    n, k = int(comparisons.sum()), int(per_probe.sum())
    eyes = [d.inter_eye_px for d in found if d is not None]
    boxes = [d.box[2] for d in found if d is not None]
    return SizeResult(
        size=size,
        probes=len(probes),
        detected=int(detected.sum()),
        median_inter_eye_px=round(float(np.median(eyes)), 2) if eyes else None,
        median_box_px=round(float(np.median(boxes)), 1) if boxes else None,
        used_as_is=as_is,
        mated_matches=int((mated & detected).sum()),
        impostor_comparisons=n,
        false_matches=k,
        probes_with_false_match=int((per_probe > 0).sum()),
        fmr=k / n if n else 0.0,
        per_probe_false=per_probe.astype(int).tolist(),
        per_probe_comparisons=comparisons.astype(int).tolist(),
    )


def compare_with_original(results: list[SizeResult], factor: float, draws: int = 2000, seed: int = 0) -> None:
    """Fill in each size's FMR ratio to the original (bootstrap over probe people) and whether it passes."""
    base = next(r for r in results if r.size == ORIGINAL)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, base.probes, size=(draws, base.probes))
    bf, bn = np.array(base.per_probe_false), np.array(base.per_probe_comparisons)
    base_rate = bf[idx].sum(axis=1) / np.maximum(bn[idx].sum(axis=1), 1)
    for r in results:
        f, n = np.array(r.per_probe_false), np.array(r.per_probe_comparisons)
        r.supported = base.false_matches >= SUPPORT and r.impostor_comparisons * base.fmr >= SUPPORT
        if base.fmr > 0:
            r.fmr_ratio = round(r.fmr / base.fmr, 3)
            ratios = (f[idx].sum(axis=1) / np.maximum(n[idx].sum(axis=1), 1)) / np.maximum(base_rate, 1e-12)
            r.fmr_ratio_ci95 = [round(float(v), 3) for v in np.percentile(ratios, [2.5, 97.5])]
        r.passes_rule = r.supported and r.fmr_ratio_ci95 is not None and r.fmr_ratio_ci95[1] <= factor


def choose_minimum(results: list[SizeResult]) -> float | None:
    """The smallest size that passes the rule together with every larger size measured; None if none does."""
    sized = sorted((float(r.size), r) for r in results if r.size != ORIGINAL)
    chosen = None
    for size, r in reversed(sized):
        if not r.passes_rule:
            break
        chosen = size
    return chosen


def sample(images_dir: Path, people: int, gallery_people: int | None, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(probe image names, their own gallery image names, gallery image names) as ``<identity>/<file>``."""
    by_person: dict[str, list[str]] = {}
    for path in sorted(images_dir.glob("*/*.jpg")):
        by_person.setdefault(path.parent.name, []).append(f"{path.parent.name}/{path.name}")
    if not by_person:
        raise OpenLFRError(f"{images_dir} holds no <identity>/<image>.jpg files")
    rng = np.random.default_rng(seed)
    multi = [p for p in sorted(by_person) if len(by_person[p]) >= 2]
    chosen = [multi[i] for i in rng.permutation(len(multi))[:people]]
    others = [p for p in sorted(by_person) if p not in set(chosen)]
    if gallery_people is not None:
        others = [others[i] for i in sorted(rng.permutation(len(others))[: max(0, gallery_people - len(chosen))])]
    gallery = [name for p in sorted(chosen + others) for name in by_person[p]]
    return [by_person[p][1] for p in chosen], [by_person[p][0] for p in chosen], gallery


def exclusions(probe_names: list[str], gallery_names: list[str], keep_aliases: bool) -> tuple[np.ndarray, str]:
    """Mask of (probe, gallery) pairs that are not impostor comparisons, and where the alias list came from."""
    identity = np.array([n.split("/")[0] for n in gallery_names])
    mask = np.array([n.split("/")[0] for n in probe_names])[:, None] == identity[None, :]
    source = "not applied (--keep-aliases)"
    if not keep_aliases:
        from openlfr.evaluation import aliases

        if aliases.SHIPPED_LFW.is_file():
            listed = aliases.read(aliases.SHIPPED_LFW)
            ii, jj = listed.excluded_pairs(probe_names, gallery_names)
            mask[ii, jj] = True
            source = f"{listed.source}: {len(ii)} comparison(s) per size left out"
        else:
            source = "no alias list shipped yet: every cross-name pair counts as an impostor comparison"
    return mask, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="LFW folder holding lfw-deepfunneled/")
    parser.add_argument("--pack", default=None, help="Model pack (default: the default pack).")
    parser.add_argument("--people", type=int, default=300, help="Probe people (each probed at every size).")
    parser.add_argument("--gallery-people", type=int, default=None, help="Cap on gallery people (default: all of LFW).")
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="Inter-eye distances to measure, px.")
    parser.add_argument("--factor", type=float, default=2.0, help="Largest FMR allowed, as a multiple of the original's.")
    parser.add_argument("--threshold", type=float, default=None, help="Default: the pack's alert threshold.")
    parser.add_argument("--cache-dir", type=Path, default=None, help="Template cache (default: <data dir>/cache).")
    parser.add_argument("--keep-aliases", action="store_true", help="Count LFW alias pairs as impostors.")
    parser.add_argument(
        "--camera", action="store_true", help="Also blur, expose, add noise and compress each shrunk probe (see camera())."
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()

    started = time.perf_counter()
    engine = load_engine(args.pack)
    threshold = engine.alert_threshold if args.threshold is None else args.threshold
    images_dir = args.data / IMAGES_DIR
    probe_names, own_names, gallery_names = sample(images_dir, args.people, args.gallery_people, args.seed)

    images, faces, keep = [], [], []
    for i, name in enumerate(probe_names):
        image = load_image(images_dir / name)
        face = central_face(engine.detect(image), image.shape[1], image.shape[0])
        if face is not None:
            images.append(image)
            faces.append(face)
            keep.append(i)
    # Probes first: the gallery usually comes from the cache, which another run may still be filling.
    probed: list[tuple[str, np.ndarray, list[Detection | None], int]] = []
    for size in [ORIGINAL] + [s.strip() for s in args.sizes.split(",") if s.strip()]:
        t0 = time.perf_counter()
        if size == ORIGINAL:
            templates = np.stack([engine.describe(im, [f])[0].template for im, f in zip(images, faces, strict=True)])
            probed.append((size, templates, list(faces), len(faces)))
        else:
            probed.append((size, *probe_templates(engine, images, faces, float(size), args.seed if args.camera else None)))
        print(f"  size {size}: {time.perf_counter() - t0:.0f} s", flush=True)

    t0 = time.perf_counter()
    gallery = template_cache(engine, images_dir, gallery_names, args.cache_dir or default_cache_dir())
    gallery_s = time.perf_counter() - t0
    row = {n: i for i, n in enumerate(gallery_names)}
    mated_rows = np.array([row[n] for n in own_names])[keep]
    excluded, alias_note = exclusions([probe_names[i] for i in keep], gallery_names, args.keep_aliases)
    results = [measure(size, t, found, as_is, mated_rows, gallery, excluded, threshold) for size, t, found, as_is in probed]
    compare_with_original(results, args.factor, seed=args.seed)
    minimum = choose_minimum(results)
    base = results[0]

    print(
        f"\nPack {engine.pack_id}, alert threshold {threshold:g}; {len(images)} probe people "
        f"({len(probe_names) - len(images)} without a face at full size left out), gallery of {len(gallery_names)} "
        f"images at full size; aliases: {alias_note}; probes {'shrunk and degraded' if args.camera else 'shrunk only'}. "
        f"Seed {args.seed}; {time.perf_counter() - started:.0f} s "
        f"({gallery_s:.0f} s for the gallery)."
    )
    header = (
        f"{'inter-eye':>9} {'found':>7} {'eye px':>6} {'box px':>6} {'mated':>7} {'rel':>5} "
        f"{'false/comparisons':>19} {'FMR':>9} {'x orig':>7} {'95% CI':>13}  rule"
    )
    print(header)
    for r in results:
        rel = r.mated_rate / base.mated_rate if base.mated_rate else 0.0
        ci = f"{r.fmr_ratio_ci95[0]:.2f}-{r.fmr_ratio_ci95[1]:.2f}" if r.fmr_ratio_ci95 else "-"
        verdict = "pass" if r.passes_rule else ("fail" if r.supported else "unsupported")
        print(
            f"{r.size:>9} {r.detection_rate:>7.1%} {r.median_inter_eye_px or 0:>6.1f} {r.median_box_px or 0:>6.1f} "
            f"{r.mated_rate:>7.1%} {rel:>5.2f} {r.false_matches:>8}/{r.impostor_comparisons:<10} {r.fmr:>9.2e} "
            f"{(r.fmr_ratio if r.fmr_ratio is not None else float('nan')):>7.2f} {ci:>13}  {verdict}"
        )
    rule = (
        f"minimum inter-eye distance for alerts = the smallest size at which, and at every larger size measured, the "
        f"impostor FMR at the alert threshold is at most {args.factor:g}x the original size's (upper end of the ratio's "
        f"95% interval), with the original rate supported (>= {SUPPORT} false matches) and each size holding enough "
        f"comparisons to show {SUPPORT} at that rate"
    )
    print(f"\nRule: {rule}.")
    if base.false_matches < SUPPORT:
        print(
            f"The original size shows only {base.false_matches} false matches (< {SUPPORT}): not supported; "
            "add --people or gallery people before choosing."
        )
    elif minimum is None:
        print("No size measured meets the rule: keep the largest measured size or measure larger ones.")
    else:
        print(f"Chosen minimum inter-eye distance for alerts: {minimum:g} px.")
    if args.json:
        data = {
            "pack_id": engine.pack_id,
            "threshold": threshold,
            "people": len(images),
            "gallery_images": len(gallery_names),
            "aliases": alias_note,
            "camera_degradation": args.camera,
            "seed": args.seed,
            "factor": args.factor,
            "rule": rule,
            "minimum_inter_eye_px": minimum,
            "sizes": [
                {k: v for k, v in asdict(r).items() if not k.startswith("per_probe")}
                | {"detection_rate": round(r.detection_rate, 4), "mated_rate": round(r.mated_rate, 4)}
                for r in results
            ],
        }
        args.json.write_text(json.dumps(data, indent=1))
        print(f"Figures written to {args.json}")


if __name__ == "__main__":
    main()
