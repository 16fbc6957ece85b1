"""Engine speed (and, with data, detection recall) against the baselines people would otherwise use.

One run measures, on this machine and in the same process:

(a) template extraction, ms per face: OpenLFR (YuNet + SFace on ONNX Runtime, cleaned graphs)
    with flip averaging on and off, batches of 1 and 8; OpenCV's ``cv2.FaceRecognizerSF`` on the
    shipped int8bq SFace file; dlib's ResNet ``compute_face_descriptor`` (what the
    ``face_recognition`` library runs), per face and batched;
(b) face detection, ms per 1080p frame: OpenLFR's ``engine.detect``; ``cv2.FaceDetectorYN`` on
    the shipped YuNet file; dlib's HOG detector (as ``face_recognition`` uses it);
(c) 1:N exact search, ms per probe against 10k / 100k / 1M random 128-d unit templates:
    ``openlfr.core.compare.top_k`` (k=5) against a naive full sort in NumPy;
(d) with ``--data`` (or OPENLFR_TEST_DATA): detection recall at 24 and 40 px face width on
    synthetic 1080p frames of LFW faces (see ``openlfr.evaluation.detection``).

Every figure is a median over repeated runs after a warm-up; contenders are timed in interleaved
rounds so that outside load hits them alike. Frames come from the LFW frame
generator when data is given, else from the demo images that ship with matplotlib (Grace Hopper)
and scikit-image (the astronaut Eileen Collins). dlib needs the bench extra:
``pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0``.

    python benchmarks/engine.py [--data ../shared/data] [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from openlfr.core.compare import top_k
from openlfr.core.types import Detection
from openlfr.evaluation.detection import measure_recall
from openlfr.evaluation.lfw import central_face
from openlfr.media.images import load_image
from openlfr.models import cleaning, load_engine, sface_pack
from openlfr.models.packs import SFACE_PACK
from openlfr.simulation import FaceSource, compose_frame, make_background, pick_lfw_faces

TARGET_TEMPLATE_MS = 12.0
TARGET_VS_DLIB = 5.0
TARGET_DETECT_MS = 60.0
TARGET_RECALL = {40: 0.98, 24: 0.90}


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall-clock milliseconds of ``fn()`` over ``repeat`` runs, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def interleaved_ms(
    contenders: dict[str, tuple[Callable[[], object], int]],
    rounds: int,
    seed: int = 0,
    settle_ms: float = 60.0,
) -> dict[str, float]:
    """Median ms per item of each contender, timed in rounds that run every contender in random order.

    ``contenders`` maps a name to (function, items per call). Interleaving matters on a shared
    2-core machine: a burst of load from another process then slows every contender alike,
    so the ratios stay fair. Thread pools (ONNX Runtime's, OpenCV's, BLAS's) keep spinning for a
    while after their own work, and a call timed straight after another library's pays for that
    spin-down (cv2's SFace measured 17 ms instead of 10 ms right after an ONNX Runtime call), so
    each turn starts with at least ``settle_ms`` of untimed calls of its own.
    """
    rng = np.random.default_rng(seed)
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for i in rng.permutation(len(names)):
            fn, items = contenders[names[i]]
            settle_until = time.perf_counter() + settle_ms / 1e3
            fn()
            while time.perf_counter() < settle_until:
                fn()
            start = time.perf_counter()
            fn()
            times[names[i]].append((time.perf_counter() - start) * 1e3 / items)
    return {name: statistics.median(t) for name, t in times.items()}


def cycling(calls: list[Callable[[], object]]) -> Callable[[], object]:
    """One function that runs the next of ``calls`` each time (different faces or frames per round)."""
    it = itertools.cycle(calls)
    return lambda: next(it)()


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def busy_percent(seconds: float = 1.0) -> float | None:
    """Share of all CPU time spent busy over the next ``seconds`` while this process sleeps (Linux only).

    Printed before and after the run: anything well above 0% means another process was competing
    for the cores and every figure is pessimistic.
    """
    try:

        def sample() -> tuple[int, int]:
            with open("/proc/stat") as fh:
                values = [int(v) for v in fh.readline().split()[1:9]]
            return sum(values), values[3] + values[4]

        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 100.0 * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


# --------------------------------------------------------------------------------------------
# Inputs: faces (image + detection) and 1080p frames


@dataclass
class Sample:
    image: np.ndarray  # BGR
    detection: Detection
    name: str


def demo_samples(engine) -> list[Sample]:
    """The two demo faces that ship inside matplotlib and scikit-image."""
    import matplotlib.cbook
    import skimage.data

    hopper = load_image(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    astronaut = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
    samples = []
    for image, name in ((hopper, "Grace_Hopper"), (astronaut, "Eileen_Collins")):
        face = max(engine.detect(image), key=lambda d: d.box[2] * d.box[3])
        samples.append(Sample(image, face, name))
    return samples


def lfw_samples(engine, lfw_root: Path, n: int, seed: int) -> list[Sample]:
    samples = []
    for source in pick_lfw_faces(lfw_root, n, np.random.default_rng(seed)):
        face = central_face(engine.detect(source.image), 250, 250)
        if face is not None:
            samples.append(Sample(source.image, face, source.identity))
    return samples


def frames_1080p(engine, lfw_root: Path | None, demo: list[Sample], count: int, seed: int) -> tuple[list[np.ndarray], str]:
    rng = np.random.default_rng(seed)
    frames = []
    if lfw_root is not None:
        for _ in range(count):
            frame, _ = compose_frame(pick_lfw_faces(lfw_root, 16, rng), 40, rng)
            frames.append(frame)
        return frames, "LFW frame generator: 16 faces 40 px wide per 1920x1080 frame"
    sources = [FaceSource(s.image, s.name, box=s.detection.box, landmarks=s.detection.landmarks) for s in demo]
    for _ in range(count):
        faces = [sources[i % 2] for i in range(12)]
        widths = rng.uniform(24, 96, len(faces)).tolist()
        frame, _ = compose_frame(faces, widths, rng, background=make_background(rng))
        frames.append(frame)
    return frames, "demo images (Grace Hopper, Eileen Collins) pasted 12 times at 24-96 px into 1920x1080"


# --------------------------------------------------------------------------------------------
# (a) templates


def opencv_sface(threads: int) -> tuple[cv2.FaceRecognizerSF, str]:
    """FaceRecognizerSF on the shipped int8bq file; OpenCV 5 refuses its stale inputs, so strip only those."""
    path = sface_pack().recognizer.path
    try:
        recognizer = cv2.FaceRecognizerSF.create(str(path), "")
        recognizer.feature(np.zeros((112, 112, 3), np.uint8))
        return recognizer, "shipped int8bq file"
    except cv2.error:
        import onnx

        model = cleaning.strip_stale_inputs(onnx.load(str(path)))
        buffer = np.frombuffer(model.SerializeToString(), np.uint8)
        recognizer = cv2.FaceRecognizerSF.create("ONNX", buffer, np.zeros(0, np.uint8))
        return recognizer, "shipped int8bq file, stale graph inputs stripped (OpenCV 5 refuses it as shipped)"


def dlib_models():
    try:
        import dlib
        import face_recognition_models as frm
    except ImportError:
        return None
    return (
        dlib,
        dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
        dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
    )


def bench_templates(engine_on, engine_off, samples: list[Sample], rounds: int, threads: int) -> dict:
    eight = [samples[i % len(samples)] for i in range(8)]
    contenders: dict[str, tuple[Callable[[], object], int]] = {}
    labels: dict[str, str] = {}

    def ours(engine, batch: list[Sample]) -> Callable[[], object]:
        # Alignment is included, as dlib's descriptor call includes cutting its own face chip.
        return lambda: engine.recognizer.templates([engine.align(s.image, s.detection) for s in batch])

    for label, engine in (("flip off", engine_off), ("flip on (default)", engine_on)):
        contenders[f"ours {label} b1"] = (cycling([ours(engine, [s]) for s in samples]), 1)
        contenders[f"ours {label} b8"] = (ours(engine, eight), 8)
        labels[f"ours {label} b1"] = f"OpenLFR, {label}, batch 1"
        labels[f"ours {label} b8"] = f"OpenLFR, {label}, batch 8"

    sface, how = opencv_sface(threads)
    crops = [engine_on.align(s.image, s.detection) for s in samples]
    contenders["opencv"] = (cycling([lambda c=c: sface.feature(c) for c in crops]), 1)
    labels["opencv"] = f"cv2.FaceRecognizerSF ({how}), one face per call"

    notes = []
    models = dlib_models()
    if models is None:
        notes.append("dlib not installed: pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0")
    else:
        dlib, predictor, resnet = models
        rgb = [np.ascontiguousarray(s.image[:, :, ::-1]) for s in samples]
        shapes = []
        for image, s in zip(rgb, samples, strict=True):
            x, y, w, h = s.detection.box
            shapes.append(predictor(image, dlib.rectangle(round(x), round(y), round(x + w), round(y + h))))
        # num_jitters=1 is what face_recognition.face_encodings passes (a single forward pass).
        calls = [lambda i=i: resnet.compute_face_descriptor(rgb[i], shapes[i], 1) for i in range(len(samples))]
        contenders["dlib"] = (cycling(calls), 1)
        labels["dlib"] = "dlib compute_face_descriptor, one face per call (as face_recognition)"
        idx = [i % len(samples) for i in range(8)]

        def dlib_batch() -> object:
            chips = [dlib.get_face_chip(rgb[i], shapes[i], 150, 0.25) for i in idx]
            return resnet.compute_face_descriptor(chips)

        contenders["dlib b8"] = (dlib_batch, 8)
        labels["dlib b8"] = "dlib compute_face_descriptor, batch of 8 chips"

    results = interleaved_ms(contenders, rounds)
    rows = [(labels[name], ms) for name, ms in results.items()]
    out_rows = []
    for label, ms in rows:
        vs_cv = f"{results['opencv'] / ms:.2f}×"
        vs_dlib = f"{results['dlib'] / ms:.1f}×" if "dlib" in results else "n/a"
        out_rows.append([label, f"{ms:.2f}", vs_cv, vs_dlib])
    print("\n### (a) Template extraction, ms per face (lower is better)\n")
    print(table(["Extractor", "ms/face", "speed-up vs cv2 SFace", "speed-up vs dlib"], out_rows))
    print("\nSpeed-up = baseline ms ÷ this row's ms. OpenLFR rows include alignment to 112x112.")
    for n in notes:
        print(f"\n> {n}")
    return results


# --------------------------------------------------------------------------------------------
# (b) detection


class OpenCVYuNet:
    """``cv2.FaceDetectorYN`` behind the ``detect(bgr) -> list[Detection]`` interface."""

    def __init__(self, threshold: float = 0.6, nms: float = 0.3) -> None:
        self.model = cv2.FaceDetectorYN.create(str(sface_pack().detector.path), "", (320, 320), threshold, nms, 5000)
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> list[Detection]:
        size = (image.shape[1], image.shape[0])
        if size != self._size:
            self.model.setInputSize(size)
            self._size = size
        _, faces = self.model.detect(image)
        if faces is None:
            return []
        return [Detection(tuple(float(v) for v in f[:4]), f[4:14].reshape(5, 2).astype(np.float32), float(f[14])) for f in faces]


def bench_detection(engine, frames: list[np.ndarray], rounds: int, hog_frames: int) -> dict:
    yn = OpenCVYuNet()
    results = interleaved_ms(
        {
            "ours": (cycling([lambda f=f: engine.detect(f) for f in frames]), 1),
            "opencv": (cycling([lambda f=f: yn.detect(f) for f in frames]), 1),
        },
        rounds,
    )
    rows = [
        ("OpenLFR engine.detect (YuNet on ONNX Runtime, decode + NMS included)", results["ours"]),
        ("cv2.FaceDetectorYN, shipped YuNet file", results["opencv"]),
    ]
    models = dlib_models()
    if models is not None and hog_frames > 0:
        dlib = models[0]
        hog = dlib.get_frontal_face_detector()
        rgb = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames[:hog_frames]]
        results["hog0"] = statistics.median(median_ms(lambda f=f: hog(f, 0), 1, warmup=0) for f in rgb)
        rows.append((f"dlib HOG, no upsampling (finds faces ≥ ~80 px only; {len(rgb)} frames)", results["hog0"]))
        results["hog1"] = median_ms(lambda: hog(rgb[0], 1), 1, warmup=0)
        rows.append(("dlib HOG, upsampled once (face_recognition's default; 1 frame)", results["hog1"]))
    print("\n### (b) Face detection, ms per 1920x1080 frame (lower is better)\n")
    print(
        table(
            ["Detector", "ms/frame", "speed-up of OpenLFR"],
            [[label, f"{ms:.1f}", f"{ms / results['ours']:.2f}×"] for label, ms in rows],
        )
    )
    return results


# --------------------------------------------------------------------------------------------
# (c) 1:N search


def naive_top5(probe: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = gallery @ probe
    order = np.argsort(-scores)[:5]
    return scores[order], order


def bench_search(sizes: list[int], probes: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    results: dict[str, float] = {}
    for n in sizes:
        gallery = rng.standard_normal((n, 128), dtype=np.float32)
        gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
        queries = rng.standard_normal((probes, 128), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        for q in queries[:2]:  # both must agree before either is timed
            ours_idx = top_k(q, gallery, 5)[1][0]
            if not np.array_equal(ours_idx, naive_top5(q, gallery)[1]):
                raise AssertionError(f"top_k and the naive sort disagree at gallery size {n}")
        t_ours = statistics.median(median_ms(lambda q=q, g=gallery: top_k(q, g, 5), 3) for q in queries)
        t_naive = statistics.median(median_ms(lambda q=q, g=gallery: naive_top5(q, g), 3) for q in queries)
        results[f"ours {n}"], results[f"naive {n}"] = t_ours, t_naive
        rows.append([f"{n:,}", f"{t_ours:.2f}", f"{t_naive:.2f}", f"{t_naive / t_ours:.1f}×"])
        del gallery
    print("\n### (c) 1:N exact search, ms per probe, top 5 of random 128-d unit templates\n")
    print(table(["Gallery", "top_k (ours)", "naive argsort", "speed-up"], rows))
    return results


# --------------------------------------------------------------------------------------------
# (d) recall


def bench_recall(engine, lfw_root: Path, frames: int) -> dict:
    results = {}
    rows = []
    for label, detector in (("OpenLFR", engine), ("cv2.FaceDetectorYN", OpenCVYuNet())):
        for r in measure_recall(detector, lfw_root, (24, 40), frames=frames, faces_per_frame=16, seed=7):
            w = int(r.face_width_px)
            if label == "OpenLFR":
                results[w] = r.recall
            rows.append(
                [
                    label,
                    f"{w}",
                    f"{r.faces}",
                    f"{r.recall * 100:.1f}%",
                    f"{r.false_per_frame:.2f}",
                    f"{r.mean_iou:.2f}",
                    f"{r.mean_detect_ms:.1f}",
                ]
            )
    print("\n### (d) Detection recall on synthetic 1080p LFW frames (IoU ≥ 0.3, score threshold 0.6)\n")
    print(table(["Detector", "face px", "faces", "recall", "false/frame", "mean IoU", "ms/frame (mean)"], rows))
    return results


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("OPENLFR_TEST_DATA"), help="shared data folder (holds lfw/)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    parser.add_argument("--threads", type=int, default=2, help="threads for ONNX Runtime and OpenCV (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="abcd", help="which parts to run: a templates, b detection, c search, d recall")
    args = parser.parse_args(argv)

    cv2.setNumThreads(args.threads)
    lfw_root = None
    if args.data:
        lfw_root = Path(args.data) / "lfw"
        if not (lfw_root / "lfw-deepfunneled").is_dir():
            parser.error(f"--data {args.data}: {lfw_root}/lfw-deepfunneled does not exist")
    rounds = 5 if args.quick else 15
    home = os.environ.get("OPENLFR_HOME") or tempfile.mkdtemp(prefix="openlfr-bench-")
    engine_on = load_engine(SFACE_PACK, home=home, threads=args.threads, flip=True)
    engine_off = load_engine(SFACE_PACK, home=home, threads=args.threads, flip=False)

    import onnxruntime

    print("## OpenLFR engine benchmark\n")
    print(
        f"- {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; Python "
        f"{platform.python_version()}; ONNX Runtime {onnxruntime.__version__}; OpenCV {cv2.__version__}; "
        f"NumPy {np.__version__}"
    )
    print(
        f"- threads: ONNX Runtime {args.threads} (intra-op), OpenCV {args.threads}; "
        "contenders timed in interleaved rounds, medians after warm-up"
    )
    busy = busy_percent()
    print(
        f"- other load before the run: {'unknown' if busy is None else f'{busy:.0f}% CPU busy'} "
        "(other processes on these cores skew every figure)"
    )
    demo = demo_samples(engine_on)
    samples = lfw_samples(engine_on, lfw_root, 16, args.seed) if lfw_root else demo
    frames, frame_note = frames_1080p(engine_on, lfw_root, demo, 3 if args.quick else 6, args.seed)
    print(f"- faces for templates: {'16 LFW images' if lfw_root else 'the two demo faces'}; frames: {frame_note}")

    tmpl = bench_templates(engine_on, engine_off, samples, rounds, args.threads) if "a" in args.parts else {}
    det = bench_detection(engine_on, frames, rounds, hog_frames=1 if args.quick else 3) if "b" in args.parts else {}
    if "c" in args.parts:
        bench_search([10_000, 100_000, 1_000_000], 5 if args.quick else 20, args.seed)
    recall = {}
    if lfw_root and "d" in args.parts:
        recall = bench_recall(engine_on, lfw_root, 8 if args.quick else 30)

    print("\n### Targets\n")
    rows = []
    if tmpl:
        rows += template_targets(tmpl)
    if det:
        rows.append(
            [
                "detection ≤ 60 ms per 1080p frame",
                f"{det['ours']:.1f} ms",
                verdict(det["ours"] <= TARGET_DETECT_MS),
            ]
        )
    for width, target in TARGET_RECALL.items():
        if width in recall:
            rows.append(
                [
                    f"recall ≥ {target:.0%} at {width} px",
                    f"{recall[width]:.1%}",
                    verdict(recall[width] >= target),
                ]
            )
    print(table(["Target", "Measured", "Verdict"], rows))
    busy = busy_percent()
    print(f"\nOther load after the run: {'unknown' if busy is None else f'{busy:.0f}% CPU busy'}")
    return 0


def template_targets(tmpl: dict[str, float]) -> list[list[str]]:
    rows = []
    default_ms = tmpl["ours flip on (default) b8"]
    rows.append(
        [
            "template extraction ≤ 12 ms/face (default: flip on, batch 8)",
            f"{default_ms:.2f} ms",
            verdict(default_ms <= TARGET_TEMPLATE_MS),
        ]
    )
    off_ms = tmpl["ours flip off b8"]
    rows.append(
        [
            "template extraction ≤ 12 ms/face (flip off, batch 8)",
            f"{off_ms:.2f} ms",
            verdict(off_ms <= TARGET_TEMPLATE_MS),
        ]
    )
    if "dlib" in tmpl:
        for label, ms in (("flip on", default_ms), ("flip off", off_ms)):
            ratio = tmpl["dlib"] / ms
            rows.append(
                [
                    f"≥ 5× faster than dlib compute_face_descriptor ({label})",
                    f"{ratio:.1f}×",
                    verdict(ratio >= TARGET_VS_DLIB),
                ]
            )
    return rows


if __name__ == "__main__":
    sys.exit(main())
