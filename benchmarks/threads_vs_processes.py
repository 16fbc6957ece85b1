"""One worker thread per camera, or one process per camera? Measured on two cameras.

Runs the same walk-by video as two cameras, first as one ``openlfr live`` process with two
camera threads, then as two ``openlfr live`` processes with one camera each, both in real time
for ``--seconds``, and prints the frames each camera could process.

    python benchmarks/threads_vs_processes.py --truth /tmp/wb300/truth.json [--seconds 30]

(``--truth`` is the truth.json written by ``openlfr simulate``.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openlfr.evaluation.walkby import enrol_watchlist
from openlfr.models import load_engine
from openlfr.services import deployments
from openlfr.simulation.walkby import Scenario
from openlfr.storage import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    video = args.truth.with_name("walkby.mp4")
    with tempfile.TemporaryDirectory(prefix="openlfr-tvp-") as tmp:
        home = Path(tmp)
        store = Store(home)
        engine = load_engine(home=home)
        enrol_watchlist(store, engine, Scenario.from_json(json.loads(args.truth.read_text())))
        now = datetime.now(UTC)

        def deployment(cameras: int) -> int:
            specs = [deployments.CameraSpec(f"camera-{i}", str(video)) for i in range(cameras)]
            end = now + timedelta(hours=1)
            d = deployments.plan(store, "bench", "bench", "crime-hotspot", now, end, engine.alert_threshold, specs, "p")
            deployments.build_watchlist(store, d, None, "p")
            deployments.approve_watchlist(store, d, "s")
            deployments.authorise(store, d, "s", "benchmark")
            return d

        def live(d: int) -> subprocess.Popen:
            command = [
                sys.executable,
                "-m",
                "openlfr.cli.main",
                "live",
                "--deployment",
                str(d),
                "--max-seconds",
                str(args.seconds),
                "--json",
            ]
            return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=dict(os.environ, OPENLFR_HOME=str(home)))

        threaded = json.loads(live(deployment(2)).communicate()[0])["cameras"]
        procs = [live(deployment(1)), live(deployment(1))]
        separate = [c for p in procs for c in json.loads(p.communicate()[0])["cameras"]]
    print("| layout | camera | frames processed | dropped | fps |\n|---|---|---|---|---|")
    for layout, cams in (("1 process, 2 camera threads", threaded), ("2 processes, 1 camera each", separate)):
        for c in cams:
            print(f"| {layout} | {c['camera']} | {c['frames_processed']} | {c['frames_dropped']} | {c['processed_fps']} |")
        print(
            f"| {layout} | total | {sum(c['frames_processed'] for c in cams)} | | {sum(c['processed_fps'] for c in cams):.1f} |"
        )


if __name__ == "__main__":
    main()
