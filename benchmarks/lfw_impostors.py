"""Where the default live threshold comes from: impostor scores among LFW people.

One photograph each of N LFW people (default 2,500, seeded) gives N(N-1)/2 impostor pairs. Prints
the score exceeded by a fraction FAR of them, and, for watchlists of W reference images drawn from
the others, the score that a fraction FPIR of non-mated probes exceed at least once (open-set
false-positive identification rate per probe, for one template).

    python benchmarks/lfw_impostors.py --data ../shared/data/lfw [--people 2500]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np

from openlfr.evaluation.lfw import central_face
from openlfr.media.images import load_image
from openlfr.models import load_engine
from openlfr.models.packs import SFACE_PACK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="LFW folder holding lfw-deepfunneled/")
    parser.add_argument("--people", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    engine = load_engine(SFACE_PACK)
    folders = sorted(p for p in (args.data / "lfw-deepfunneled").iterdir() if p.is_dir())
    random.seed(args.seed)
    folders = random.sample(folders, min(args.people, len(folders)))
    crops = []
    for folder in folders:
        image = load_image(sorted(folder.glob("*.jpg"))[0])
        face = central_face(engine.detect(image), image.shape[1], image.shape[0])
        if face is not None:
            crops.append(engine.align(image, face))
    templates = np.concatenate([engine.recognizer.templates(crops[i : i + 32]) for i in range(0, len(crops), 32)])
    scores = templates @ templates.T
    pairs = np.sort(scores[np.triu_indices(len(templates), 1)])[::-1]
    print(f"{len(templates)} people, {len(pairs):,} impostor pairs (model pack {engine.pack_id})")
    print("| FAR | threshold |\n|---|---|")
    for far in (1e-3, 1e-4, 1e-5):
        print(f"| {far:g} | {pairs[max(1, int(far * len(pairs))) - 1]:.3f} |")
    print("\n| watchlist images W | FPIR 1% | FPIR 0.1% |\n|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for w in (20, 40, 300):
        best = []
        for i in range(len(templates)):
            others = rng.choice(len(templates) - 1, w, replace=False)
            others[others >= i] += 1
            best.append(scores[i, others].max())
        best = np.sort(best)[::-1]
        cut = [best[max(1, int(f * len(best))) - 1] for f in (1e-2, 1e-3)]
        print(f"| {w} | {cut[0]:.3f} | {cut[1]:.3f} |")


if __name__ == "__main__":
    main()
