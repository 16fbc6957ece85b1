"""How the fused pack's weight and threshold were chosen: SFace and dlib ResNet on all LFW pairs.

    python benchmarks/fusion.py --data ../shared/data

Every LFW image is templated once with the fused pack (cached: the same cache as
``openlfr evaluate identification --pack yunet-sface-dlib``); each fused template holds both
models' unit templates, so every weight ``w`` of ``w·cos_sface + (1-w)·cos_dlib`` can be scored
from one pass. For each ``w`` the script prints the threshold that accepts the same share of LFW
impostor pairs as the single-model pack's default 0.45 does, and the true-accept rate there
(mated pairs weighted so that no person counts for more than 45 pairs: George W. Bush alone has
140,000). The shipped weight is the one with the best balanced rate; a baseline row (``w = 1``,
SFace alone) is measured in the same run.

    python benchmarks/fusion.py --data ../shared/data --open-set-draws 20

also gives, for each weight, open-set TPIR at FPIR 1/1000 for W = 1,000 (draws seeded 100 onwards, so not
the draws of the shipped calibration; watchlists hold photographs enrolment accepts): whether the weight
is a lever at the operating point the issue measures. It is reported, not used to choose the weight.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from openlfr.evaluation import openset
from openlfr.models import load_engine
from openlfr.models.packs import FUSED_PACK, FUSED_THRESHOLD, FUSION_WEIGHT

SFACE_DEFAULT = 0.45
WEIGHTS = (1.0, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4, 0.35, 0.3, 0.2, 0.0)


def open_set(engine, templates: np.ndarray, names: list[str], lfw: Path, cache: Path | None, draws: int) -> None:
    from openlfr.evaluation import aliases

    enrollable = openset.enrollable_images(engine, openset.dataset_dir(lfw), names, cache)
    listed = aliases.for_dataset(openset.dataset_dir(lfw))
    w0, d = engine.fusion_weight, engine.recognizer.dimension
    sface, dlib = templates[:, :d] / np.sqrt(w0), templates[:, d:] / np.sqrt(1 - w0)
    print(f"Open set, W = 1,000, {draws} draws (seeds 100-{99 + draws}), label errors left out:")
    print("w      threshold at FPIR 1/1000  TPIR")
    for w in (0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
        fused = np.hstack([np.sqrt(w) * sface, np.sqrt(1 - w) * dlib]).astype(np.float32)
        result = openset.evaluate(fused, names, [1000], list(range(100, 100 + draws)), aliases=listed, enrollable=enrollable)
        at = result[0].at_fpir(1 / 1000)
        mark = "  <- shipped" if abs(w - FUSION_WEIGHT) < 1e-9 else ""
        print(f"{w:<6} {at['threshold']:24.3f}  {at['tpir'] * 100:.2f}%{mark}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="Folder holding lfw/ (the shared test data).")
    parser.add_argument("--cache", type=Path, default=None, help="Template cache folder (default: the data dir's).")
    parser.add_argument("--open-set-draws", type=int, default=0, help="Also open-set W = 1,000 per weight, over N draws.")
    args = parser.parse_args()

    engine = load_engine(FUSED_PACK)
    templates, names = openset.lfw_template_cache(engine, args.data / "lfw", args.cache)
    if args.open_set_draws:
        open_set(engine, templates, names, args.data / "lfw", args.cache, args.open_set_draws)
    keep = np.linalg.norm(templates, axis=1) > 0
    templates, names = templates[keep], [n for n, k in zip(names, keep, strict=True) if k]
    w0, d = engine.fusion_weight, engine.recognizer.dimension
    sface = templates[:, :d] / np.sqrt(w0)
    dlib = templates[:, d:] / np.sqrt(1 - w0)
    _, person = np.unique([openset.identity_of(n) for n in names], return_inverse=True)
    upper = np.triu_indices(len(names), 1)
    same = person[upper[0]] == person[upper[1]]
    cos_sface, cos_dlib = (sface @ sface.T)[upper], (dlib @ dlib.T)[upper]
    far = float((cos_sface[~same] >= SFACE_DEFAULT).mean())
    per_person = np.bincount(person)[person[upper[0]][same]]
    weight = 1.0 / np.minimum(per_person * (per_person - 1) / 2, 45)
    print(f"{len(names)} images, {int(same.sum())} mated and {int((~same).sum())} impostor pairs")
    print(f"SFace alone accepts {far:.3g} of impostor pairs at {SFACE_DEFAULT} ({int(far * (~same).sum())} pairs)\n")
    print("w      threshold  balanced TAR  TAR    lowest SFace score among pairs at or above it")
    for w in WEIGHTS:
        fused = w * cos_sface + (1 - w) * cos_dlib
        impostor = fused[~same]
        k = round(far * len(impostor))
        threshold = float(np.partition(impostor, len(impostor) - k)[len(impostor) - k])
        accepted = fused[same] >= threshold
        balanced = float((accepted * weight).sum() / weight.sum())
        lowest = float(cos_sface[fused >= threshold].min())
        mark = "  <- shipped" if abs(w - FUSION_WEIGHT) < 1e-9 else ""
        print(f"{w:<6} {threshold:9.4f}  {balanced:12.4f}  {accepted.mean():.4f} {lowest:8.3f}{mark}")
    print(f"\nShipped: w = {FUSION_WEIGHT}, threshold {FUSED_THRESHOLD}.")


if __name__ == "__main__":
    main()
