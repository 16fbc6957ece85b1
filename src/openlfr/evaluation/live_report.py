"""The live walk-by report: a simulated walk-by run through a whole deployment, scored against its ground
truth as deployment records publish figures — per-pass TPIR, false alerts per 1,000 and 10,000 faces seen,
alerts per pass, time to alert (``openlfr evaluate live``, ``openlfr evaluate walkby --report``).

Running and scoring the walk-by is :mod:`openlfr.evaluation.walkby`; this module turns what it found into
the report, so the command line only parses options and prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from openlfr.core.engine import FaceEngine
from openlfr.evaluation import report as rep
from openlfr.evaluation import walkby
from openlfr.evaluation.demographics import wilson
from openlfr.evaluation.walkby import AFTER_S, BEFORE_S, WalkbyResult
from openlfr.simulation.walkby import Scenario


def run_walkby(
    engine: FaceEngine, truth_path: Path, threshold: float, realtime: bool, confirm: tuple[int, int], pool: bool
) -> tuple[WalkbyResult, Scenario, list[tuple[float, str]]]:
    """``walkby.run``, also returning the scenario and alert events that time-to-alert needs."""
    return walkby.run_with_events(engine, truth_path, None, threshold, realtime, None, confirm, pool)


def evaluate_live(
    engine: FaceEngine,
    truth_path: Path,
    out: Path,
    threshold: float | None = None,
    realtime: bool = True,
    confirm: str = "2/5",
    pool: bool = False,
) -> dict:
    """Run the walk-by at ``threshold`` (default: the pack's alert threshold) with N/M confirmation, write the
    report, and return its figures with the paths of the report and its JSON (what ``--json`` prints)."""
    n, m = (int(v) for v in confirm.split("/"))
    threshold = engine.alert_threshold if threshold is None else threshold
    result, scenario, events = run_walkby(engine, truth_path, threshold, realtime, (n, m), pool)
    html_path, json_path = write_live_report(out, result, scenario, events, confirm, realtime, pool, engine.pack_id)
    figures = json.loads(json_path.read_text())["figures"]  # as written: what a reader of the JSON sees
    return figures | {"report": str(html_path), "json": str(json_path)}


def live_figures(result: WalkbyResult, scenario: Scenario, events: list[tuple[float, str]], realtime: bool = True) -> dict:
    """Per-pass TPIR, false alerts per 1,000 and 10,000 faces seen, alerts per pass and time to alert."""
    wanted = [p for p in scenario.passes if p.watchlisted]
    first: dict[int, float] = {}
    alerts_per_pass: dict[int, int] = {p.index: 0 for p in wanted}
    for t, reference in sorted(events):
        hits = [p for p in wanted if p.identity == reference and p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S]
        if hits:
            first.setdefault(hits[0].index, t - hits[0].t_enter)
            alerts_per_pass[hits[0].index] += 1
    delays = np.array(sorted(first.values()))
    faces = max(result.faces_seen, 0)
    fa_hi = wilson(result.false_alerts, faces)[1] if faces else None
    tpir_ci = wilson(result.alerted_passes, result.watchlisted_passes)
    alerted_counts = [n for n in alerts_per_pass.values() if n]
    return {
        "passes": result.passes,
        "watchlist_size": result.watchlist_size,
        "watchlisted_passes": result.watchlisted_passes,
        "alerted_passes": result.alerted_passes,
        "per_pass_tpir": round(result.alerted_rate, 5),
        "per_pass_tpir_ci95": [round(v, 5) for v in tpir_ci],
        "faces_seen": faces,
        "true_alerts": result.true_alerts,
        "false_alerts": result.false_alerts,
        "false_alerts_per_1000_faces": round(1000 * result.false_alerts / faces, 4) if faces else None,
        "false_alerts_per_10000_faces": round(10000 * result.false_alerts / faces, 3) if faces else None,
        "false_alerts_per_10000_faces_upper95": round(10000 * fa_hi, 3) if fa_hi is not None else None,
        "false_alerts_per_1000_passes": round(1000 * result.false_alerts / max(result.passes, 1), 3),
        "alerts_per_alerted_pass": round(float(np.mean(alerted_counts)), 3) if alerted_counts else None,
        "alerts_per_pass": round((result.true_alerts + result.false_alerts) / max(result.passes, 1), 4),
        "duplicate_alerts": result.duplicate_alerts,
        "passes_with_one_alert": result.passes_with_one_alert,
        "time_to_alert_s": {
            "from": "the moment the person enters the frame (truth t_enter) to the video time of the alerted frame",
            "p50": round(float(np.percentile(delays, 50)), 3) if len(delays) else None,
            "p95": round(float(np.percentile(delays, 95)), 3) if len(delays) else None,
            "per_pass": [round(float(d), 3) for d in delays],
        },
        "processing_latency_ms": {
            "p50": result.camera.get("alert_latency_p50_ms") if realtime else None,
            "p95": result.camera.get("alert_latency_p95_ms") if realtime else None,
            "note": "capture to stored alert"
            if realtime
            else "not measured: every frame was processed, faster or slower than real time, so capture times are nominal",
        },
        "frames_processed": result.camera.get("frames_processed"),
        "frames_dropped": result.camera.get("frames_dropped"),
        "processed_fps": result.camera.get("processed_fps"),
        "enrolled_subjects": result.enrolled_subjects,
        "skipped_reference_images": len(result.skipped_reference_images),
        "missed": result.missed,
        "false": result.false,
    }


def write_live_report(
    out: Path,
    result: WalkbyResult,
    scenario: Scenario,
    events: list[tuple[float, str]],
    confirm: str,
    realtime: bool,
    pool: bool,
    pack_id: str,
) -> tuple[Path, Path]:
    """live.html (the scene, the figures, a timeline of passes and alerts, misses and false alerts) and live.json."""
    f = live_figures(result, scenario, events, realtime)
    watchlisted = scenario.watchlisted_passes
    scene = (
        f"A simulated {scenario.size[0]}×{scenario.size[1]} street camera: {scenario.duration_s:.0f} s of video at "
        f"{scenario.fps:g} fps (seed {scenario.seed}); {f['passes']} people pass once each, faces {scenario.min_face_px:g}–"
        f"{scenario.max_face_px:g} px wide, tilted, slightly turned, blurred and lit differently; {watchlisted} of them are "
        f"on a watchlist of {result.watchlist_size:,}, enrolled from other photographs of themselves "
        f"({f['enrolled_subjects']} enrolled, "
        f"{f['skipped_reference_images']} reference image(s) refused by the quality checks). The video runs through a whole "
        f"deployment (planned, authorised, live, closed) at threshold {result.threshold:g} with {confirm} confirmation"
        f"{', pooled track templates' if pool else ''}, "
        + ("played in real time (frames dropped when busy)." if realtime else "processing every frame (not real time).")
    )
    tta = f["time_to_alert_s"]
    headline = [
        scene,
        f"Per-pass TPIR {f['alerted_passes']}/{f['watchlisted_passes']} = {rep.percent(f['per_pass_tpir'], 1)} "
        f"(95% interval {rep.percent(f['per_pass_tpir_ci95'][0], 1)}–{rep.percent(f['per_pass_tpir_ci95'][1], 1)}).",
        f"False alerts: {f['false_alerts']} in {f['faces_seen']:,} faces seen = {f['false_alerts_per_1000_faces']} per 1,000 and "
        f"{f['false_alerts_per_10000_faces']} per 10,000 faces (95% upper bound {f['false_alerts_per_10000_faces_upper95']} "
        "per 10,000).",
        f"Time to alert from entering view: p50 {tta['p50']} s, p95 {tta['p95']} s.",
    ]
    body = [
        rep.heading("Figures"),
        rep.table(
            ["figure", "value"],
            [
                ["watchlisted passes alerted (per-pass TPIR)", f"{f['alerted_passes']}/{f['watchlisted_passes']}"],
                ["false alerts", f["false_alerts"]],
                ["faces seen (tracks)", f["faces_seen"]],
                ["false alerts per 1,000 faces seen", f["false_alerts_per_1000_faces"]],
                ["false alerts per 10,000 faces seen", f["false_alerts_per_10000_faces"]],
                ["false alerts per 1,000 passes", f["false_alerts_per_1000_passes"]],
                ["alerts per pass (all alerts / all passes)", f["alerts_per_pass"]],
                ["alerts per alerted watchlisted pass", f["alerts_per_alerted_pass"]],
                ["alerted passes with exactly one alert", f["passes_with_one_alert"]],
                ["time to alert p50 / p95 (s)", f"{tta['p50']} / {tta['p95']}"],
                [
                    "processing latency p50 / p95 (ms)",
                    f"{f['processing_latency_ms']['p50']} / {f['processing_latency_ms']['p95']}"
                    if realtime
                    else f["processing_latency_ms"]["note"],
                ],
                ["frames processed / dropped", f"{f['frames_processed']} / {f['frames_dropped']}"],
            ],
        ),
        rep.image(timeline_figure(scenario, events), "Passes and alerts over time"),
    ]
    if f["missed"]:
        body += [
            rep.heading("Watchlisted passes not alerted"),
            rep.table(
                ["identity", "entered (s)", "face width (px)", "blur"],
                [[m["identity"], m["t_enter"], f"{m['width'][0]:.0f}–{m['width'][1]:.0f}", m["blur"]] for m in f["missed"]],
            ),
        ]
    if f["false"]:
        body += [
            rep.heading("False alerts"),
            rep.table(
                ["time (s)", "alerted as", "in view"], [[a["t"], a["alerted_as"], ", ".join(a["in_view"])] for a in f["false"]]
            ),
        ]
    how = [
        "A pass is one person walking through the camera's view once. An alert is true when it names a watchlisted person "
        "who was in view (from 0.5 s before the pass to 1.5 s after it); otherwise it is false.",
        "Per-pass TPIR: the share of watchlisted people's passes that raised a true alert. Its interval (Wilson, 95%) is wide "
        "when few watchlisted people walk past.",
        "False alerts per 1,000 / 10,000 faces seen: the rate deployment records publish (the Met's 2024–25 figures: 10 false "
        "alerts in 3.1 million faces, about 0.03 per 10,000). With few faces seen a per-10,000 rate is a scaled count: "
        "read the upper bound, which says how high the rate could plausibly be.",
        "Time to alert: from the moment the person enters the frame to the frame whose face confirmed the alert (video time); "
        "processing latency is the separate time from that frame's capture to the stored alert.",
        "This is a simulation of LFW press photographs pasted into a synthetic street scene, not footage of a real street.",
    ]
    data = {
        "model_pack": pack_id,
        "scenario": scene,
        "confirm": confirm,
        "realtime": realtime,
        "pooled_templates": pool,
        "threshold": result.threshold,
        "figures": f,
        "record": result.record,
    }
    return rep.write(out, "live", "Live walk-by evaluation", headline, body, how, data)


def timeline_figure(scenario: Scenario, events: list[tuple[float, str]]) -> Figure:
    """Each pass as a line over video time, each alert as a dot on its pass (true) or a cross below (false)."""
    fig = rep.new_figure(8, 4)
    ax = fig.subplots()
    for p in scenario.passes:
        ax.plot(
            [p.t_enter, p.t_exit],
            [p.index, p.index],
            color="#1f4e8c" if p.watchlisted else "#cccccc",
            lw=2.5 if p.watchlisted else 1,
        )
    wanted = [p for p in scenario.passes if p.watchlisted]
    for t, reference in events:
        hit = next((p for p in wanted if p.identity == reference and p.t_enter - BEFORE_S <= t <= p.t_exit + AFTER_S), None)
        ax.plot([t], [hit.index if hit else -1], "o" if hit else "x", color="#2e8b57" if hit else "#c0392b", ms=5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("Video time (s)")
    ax.set_ylabel("Pass")
    ax.set_title("Passes (blue: watchlisted) and alerts (green: true, red ×: false)")
    ax.grid(True, alpha=0.3)
    return fig
