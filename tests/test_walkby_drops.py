"""One alert per watchlisted pass when most frames are dropped: tracks kept through dropped frames,
and repeat alerts of a subject merged into the first. Pipeline behaviour, so on the embedded store
only (each run enrols its own watchlist in a temporary data directory)."""

from __future__ import annotations

from pathlib import Path

WALKBY = ["--duration", "20", "--people", "8", "--watchlisted", "3", "--min-size", "80", "--max-size", "120", "--seed", "5"]


def _stalls(index: int) -> bool:
    """A loaded machine's drops: 3 frames processed, then a 0.9 s stall (22 frames at 25 fps dropped)."""
    return index % 25 >= 3


def test_walkby_with_most_frames_dropped_gives_one_alert_per_watchlisted_pass(tmp_path: Path, lfw_root: Path, engine) -> None:
    """88% of frames dropped in stalls longer than a track's max_age. Before, every stall ended the
    tracks and each new track alerted again: 10 alerts for 3 watchlisted passes on this walk-by.
    Now the tracker keeps a track through dropped frames, and a repeat alert of the same subject
    merges into the first as a sighting; each layer alone holds it to one alert per pass."""
    from typer.testing import CliRunner

    from openlfr.cli.main import app
    from openlfr.evaluation import walkby as walkby_eval

    out = tmp_path / "wb"
    made = CliRunner().invoke(app, ["simulate", "--data", str(lfw_root), "--out", str(out), *WALKBY])
    assert made.exit_code == 0, made.output
    truth = out / "truth.json"
    for window in (120.0, 0.0):  # merging on (the default), and the tracker alone
        result = walkby_eval.run(engine, truth, realtime=False, drop_frame=_stalls, threshold=engine.alert_threshold,
                                 repeat_window_s=window)  # fmt: skip
        assert result.camera["frames_dropped"] >= 7 * result.camera["frames_processed"]
        assert result.watchlisted_passes == 3 and result.alerted_passes == 3, result.as_dict()
        assert result.passes_with_one_alert == 3 and result.duplicate_alerts == 0 and result.false_alerts == 0


def test_repeat_alerts_merge_when_tracks_break_anyway(tmp_path: Path, lfw_root: Path, engine, monkeypatch) -> None:
    """With a tracker that ends tracks at every stall (as before), the merge alone gives one alert per pass."""
    from typer.testing import CliRunner

    from openlfr.cli.main import app
    from openlfr.evaluation import walkby as walkby_eval
    from openlfr.live import tracker

    out = tmp_path / "wb"
    made = CliRunner().invoke(app, ["simulate", "--data", str(lfw_root), "--out", str(out), *WALKBY])
    assert made.exit_code == 0, made.output
    original = tracker.FaceTracker.__init__
    monkeypatch.setattr(
        tracker.FaceTracker, "__init__", lambda self, **kw: original(self, **{**kw, "min_misses": 0, "max_gap": 0.7})
    )
    # ...and every view templated, as the pipeline did then (a new track confirms within one burst).
    from dataclasses import replace

    from openlfr.live import pipeline

    built = pipeline.CameraPipeline.__init__
    monkeypatch.setattr(
        pipeline.CameraPipeline, "__init__",
        lambda self, camera, engine, watchlist, config, *a, **kw: built(
            self, camera, engine, watchlist, replace(config, template_interval_s=0.0), *a, **kw
        ),
    )  # fmt: skip
    truth = out / "truth.json"
    merged = walkby_eval.run(engine, truth, realtime=False, drop_frame=_stalls, threshold=engine.alert_threshold)
    assert merged.alerted_passes == 3 and merged.passes_with_one_alert == 3 and merged.merged_sightings > 0
    unmerged = walkby_eval.run(engine, truth, realtime=False, drop_frame=_stalls, threshold=engine.alert_threshold,
                               repeat_window_s=0)  # fmt: skip
    assert unmerged.duplicate_alerts > 0  # what officers saw before
    assert unmerged.true_alerts == merged.true_alerts + merged.merged_sightings


def test_a_walkby_evaluation_never_writes_to_the_configured_database(tmp_path: Path, lfw_root: Path, engine, monkeypatch) -> None:
    """With OPENLFR_DATABASE_URL pointing at a force's database, the evaluation still runs on its own
    throwaway store (it failed, and would have enrolled LFW people there, when it followed the variable)."""
    from typer.testing import CliRunner

    from openlfr.cli.main import app
    from openlfr.evaluation import walkby as walkby_eval

    out = tmp_path / "wb"
    args = ["--duration", "6", "--people", "2", "--watchlisted", "1", "--min-size", "80", "--max-size", "100", "--seed", "2"]
    assert CliRunner().invoke(app, ["simulate", "--data", str(lfw_root), "--out", str(out), *args]).exit_code == 0
    force_db = tmp_path / "force.db"
    monkeypatch.setenv("OPENLFR_DATABASE_URL", f"sqlite:///{force_db}")
    walkby_eval.run(engine, out / "truth.json", realtime=False, threshold=engine.alert_threshold)
    assert not force_db.exists()
