"""Live pipeline benchmark: throughput on 1080p video and camera-to-alert latency.

In one run, on the same walk-by video:

1. *naive*: detect every frame and template every face in it (no tracking) — the baseline;
2. *ours, offline*: the live pipeline processing every frame (tracking, templates only of the best
   views of each face, N-of-M confirmation), searching each frame at full resolution (as before
   per-camera face sizes, ``--min-face 20``) and at the default scale (faces >= 40 px: half size,
   landmarks refined at full resolution);
3. *ours, real time*, both ways: a whole deployment playing the video at its frame rate, dropping
   frames when busy; reports processed/dropped frames, alert latency p50/p95 (from the frame's
   capture time to the stored alert) and the walk-by's alerts.

Usage::

    python benchmarks/live.py --data ../shared/data/lfw [--seconds 30]

Without ``--data`` a clip of the demo images (matplotlib's Grace Hopper, scikit-image's astronaut)
is used instead of LFW faces.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from openlfr.evaluation import walkby as walkby_eval
from openlfr.live.pipeline import CameraPipeline, PipelineConfig, Watchlist
from openlfr.media.video import VideoSource
from openlfr.models import load_engine
from openlfr.simulation import walkby

#: A camera's smallest face at which frames are searched at full resolution (the pipeline before
#: per-camera face sizes).
FULL_RESOLUTION = 20.0


def naive(engine, video: Path, max_frames: int) -> tuple[int, float, int]:
    source = VideoSource(str(video), realtime=False)
    frames = templates = 0
    started = time.perf_counter()
    for frame in source.frames():
        faces = engine.faces(frame.image)
        templates += len(faces)
        frames += 1
        if frames >= max_frames:
            break
    return frames, time.perf_counter() - started, templates


def ours_offline(
    engine, video: Path, watchlist: Watchlist, max_frames: int, threshold: float, smallest_face_px: float
) -> tuple[int, float, int]:
    config = PipelineConfig(threshold=threshold, smallest_face_px=smallest_face_px)
    pipeline = CameraPipeline("bench", engine, watchlist, config, on_alert=lambda e: None)
    source = VideoSource(str(video), realtime=False)
    frames = 0
    started = time.perf_counter()
    for frame in source.frames():
        pipeline.process(frame)
        frames += 1
        if frames >= max_frames:
            break
    pipeline.finish()
    return frames, time.perf_counter() - started, pipeline.stats.templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="LFW folder (holding lfw-deepfunneled/)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the walk-by video")
    parser.add_argument("--people", type=int, default=None, help="people passing (default: one per second)")
    parser.add_argument("--home", type=Path, default=None, help="data directory for the model cache")
    parser.add_argument("--pack", default=None, help="model pack (default: the live default, yunet-sface-dlib)")
    parser.add_argument("--threshold", type=float, default=None, help="alert threshold (default: the pack's)")
    args = parser.parse_args()
    engine = load_engine(args.pack, home=args.home)
    threshold = engine.alert_threshold if args.threshold is None else args.threshold
    with tempfile.TemporaryDirectory(prefix="openlfr-bench-live-") as tmp:
        if args.data:
            people = args.people or max(2, int(args.seconds))
            scenario = walkby.plan(args.data, args.seconds, people, max(1, people // 15), 40, 160, seed=7)
            paths = walkby.write(scenario, tmp)
            video, truth = paths["video"], paths["truth"]
        else:
            raise SystemExit("--data is needed: the benchmark uses LFW faces for a realistic 1080p crowd")
        rng = np.random.default_rng(0)
        dummy = rng.normal(size=(20, engine.dimension)).astype(np.float32)
        dummy /= np.linalg.norm(dummy, axis=1, keepdims=True)
        watchlist = Watchlist.build(dummy, [f"s{i}" for i in range(20)], ["x"] * 20, ["c"] * 20, list(range(20)))
        n = round(args.seconds * scenario.fps)
        nf, nt, ntemplates = naive(engine, video, n)
        full = ours_offline(engine, video, watchlist, n, threshold, FULL_RESOLUTION)
        scaled = ours_offline(engine, video, watchlist, n, threshold, PipelineConfig.smallest_face_px)
        before = walkby_eval.run(engine, truth, video, threshold=threshold, realtime=True, min_face_px=FULL_RESOLUTION)
        now = walkby_eval.run(engine, truth, video, threshold=threshold, realtime=True)
    rows = [("naive: detect + template every face, every frame", nf / nt, ntemplates / nf, "1.00")]
    for name, (f, t, templates) in (("ours, full-resolution search (before)", full), ("ours, default scale", scaled)):
        rows.append((name, f / t, templates / f, f"{(f / t) / (nf / nt):.2f}"))
    print(f"Model pack {engine.pack_id}, alert threshold {threshold}")
    print(f"1080p walk-by video: {args.seconds:.0f} s at {scenario.fps:.0f} fps, {len(scenario.passes)} passes\n")
    print("Every frame processed (offline):\n")
    print("| pipeline | frames/s | templates/frame | speed vs naive |")
    print("|---|---|---|---|")
    for name, fps, tpf, ratio in rows:
        print(f"| {name} | {fps:.1f} | {tpf:.2f} | {ratio}× |")
    print(f"\nReal time (a deployment playing the file at {scenario.fps:.0f} fps; frames dropped, never queued):\n")
    print("| pipeline | processed fps | of camera's | dropped | latency p50 / p95 ms | passes alerted | false | duplicate |")
    print("|---|---|---|---|---|---|---|---|")
    for name, result in (("full-resolution search (before)", before), ("default scale (now)", now)):
        cam = result.camera
        print(
            f"| {name} | {cam['processed_fps']} | {cam['processed_fps'] / scenario.fps:.2f} | {cam['frames_dropped']} | "
            f"{cam['alert_latency_p50_ms']} / {cam['alert_latency_p95_ms']} | "
            f"{result.alerted_passes}/{result.watchlisted_passes} | {result.false_alerts} | {result.duplicate_alerts} |"
        )
    ratio = now.camera["processed_fps"] / max(before.camera["processed_fps"], 1e-9)
    print(f"\nProcessed frame rate, now vs before in this run: {ratio:.2f}×")
    print(json.dumps({"naive_fps": nf / nt, "before": before.camera, "now": now.camera, "ratio": ratio}, default=str))


if __name__ == "__main__":
    main()
