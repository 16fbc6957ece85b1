"""How the default enrolment quality limits treat ordinary press photographs (random LFW images).

    python benchmarks/quality_limits.py --data ../shared/data/lfw [--images 600]
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import numpy as np

from openlfr.core.quality import QualityPolicy, measure
from openlfr.evaluation.lfw import central_face
from openlfr.media.images import load_image
from openlfr.models import load_engine
from openlfr.models.packs import SFACE_PACK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="LFW folder holding lfw-deepfunneled/")
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    engine = load_engine(SFACE_PACK, flip=False)
    paths = sorted((args.data / "lfw-deepfunneled").glob("*/*.jpg"))
    random.seed(args.seed)
    reports = []
    for path in random.sample(paths, args.images):
        image = load_image(path)
        face = central_face(engine.detect(image), image.shape[1], image.shape[0])
        if face is not None:
            reports.append(measure(face, engine.align(image, face)))
    policy = QualityPolicy()
    failures = [policy.failures(r) for r in reports]
    refused = sum(1 for f in failures if f)
    print(f"{refused}/{len(reports)} images refused ({refused / len(reports):.1%})")
    print("failed measures:", dict(Counter(f.split()[0] for fs in failures for f in fs)))
    for name in ("inter_eye_px", "sharpness", "brightness", "contrast", "frontalness", "detector_score"):
        values = np.array([getattr(r, name) for r in reports])
        print(f"{name}: percentiles 0.5/5/50/95 = {np.percentile(values, [0.5, 5, 50, 95]).round(2).tolist()}")


if __name__ == "__main__":
    main()
