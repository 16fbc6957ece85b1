"""The fused pack: dlib's ResNet as a second opinion, fused with SFace at template level."""

from __future__ import annotations

import numpy as np
import pytest

from openlfr.core.second_opinion import DlibRecognizer
from openlfr.live.pipeline import CameraPipeline, PipelineConfig, Watchlist
from openlfr.media.video import Frame
from openlfr.models.packs import fused_pack
from openlfr.services import demo_images


def test_fused_score_is_the_weighted_mean_of_the_two_models_cosines(fused, engine) -> None:
    pack = fused_pack()
    dlib = DlibRecognizer(pack.second_landmarks.path, pack.second.path)
    images = [demo_images.grace_hopper(), demo_images.eileen_collins()]
    faces = [fused.faces(img)[0] for img in images]
    assert fused.dimension == 256 and fused.pack_id != engine.pack_id
    for f in faces:
        assert abs(float(np.linalg.norm(f.template)) - 1.0) < 1e-5
    sface = [engine.describe(img, [f.detection])[0].template for img, f in zip(images, faces, strict=True)]
    second = [dlib.templates(img, [f.detection])[0] for img, f in zip(images, faces, strict=True)]
    w = fused.fusion_weight
    expected = w * float(sface[0] @ sface[1]) + (1 - w) * float(second[0] @ second[1])
    assert abs(float(faces[0].template @ faces[1].template) - expected) < 1e-5
    # A face against itself: both models agree fully.
    assert abs(float(faces[0].template @ faces[0].template) - 1.0) < 1e-5


def test_second_opinion_added_later_gives_the_same_template(fused) -> None:
    image = demo_images.grace_hopper()
    detection = fused.detect(image)[0]
    full = fused.describe(image, [detection])[0].template
    (partial,) = fused.describe(image, [detection], second_opinion=False)
    assert not partial.template[128:].any()
    assert abs(float(fused.first_model_scores(np.float32(partial.template @ full))) - 1.0) < 1e-4
    fused.add_second_opinion(image, [partial])
    assert np.allclose(partial.template, full, atol=1e-6)


def test_live_pipeline_asks_the_second_model_only_near_a_subject(fused) -> None:
    """The stranger's views stay first-model only (no dlib cost); the watchlisted face gets fused scores."""
    hopper, collins = demo_images.grace_hopper(), demo_images.eileen_collins()
    reference = fused.faces(hopper)[0].template
    events: list = []
    pipeline = CameraPipeline(
        "cam", fused, Watchlist.build(reference[None], ["GH-1"], ["Grace Hopper"], ["c"], [1]),
        PipelineConfig(threshold=fused.native_threshold), events.append,
    )  # fmt: skip
    for n in range(6):
        pipeline.process(Frame(collins, n, n * 0.1, n * 0.1))
    assert pipeline.stats.templates > 0 and pipeline.stats.second_opinions == 0 and events == []
    for n in range(6, 12):
        pipeline.process(Frame(hopper, n, 5 + n * 0.1, 5 + n * 0.1))
    assert pipeline.stats.second_opinions > 0
    assert [e.reference for e in events] == ["GH-1"] and events[0].score > 0.9


def test_pooled_templates_are_refused_with_a_fused_pack(fused) -> None:
    watchlist = Watchlist.build(np.ones((1, 256), np.float32) / 16, ["A"], ["A"], ["c"], [1])
    with pytest.raises(ValueError, match="second opinion"):
        CameraPipeline("cam", fused, watchlist, PipelineConfig(threshold=0.5, pool_templates=True), lambda e: None)


def test_second_opinion_in_another_process_gives_the_same_alert_without_stalling(fused) -> None:
    """In real time the second model answers from a worker process while frames go on: dlib keeps
    Python's lock for its whole ~80 ms a face, so on a thread it stalled the camera loop. The answer
    and the alert are the ones given in line; the chips of dlib's own alignment are the same as well."""
    hopper = demo_images.grace_hopper()
    reference = fused.faces(hopper)[0].template
    watchlist = Watchlist.build(reference[None], ["GH-1"], ["Grace Hopper"], ["c"], [1])
    results = {}
    for asynchronous in (False, True):
        events: list = []
        config = PipelineConfig(threshold=fused.native_threshold, async_second_opinion=asynchronous)
        pipeline = CameraPipeline("cam", fused, watchlist, config, events.append)
        assert (pipeline._opinions is not None) == asynchronous
        for n in range(8):
            pipeline.process(Frame(hopper, n, n * 0.1, n * 0.1))
            for job in pipeline._pending:  # a camera's next frame comes 40 ms later: the answer is in by then
                job.future.result()
        pipeline.finish()  # judges what is still waiting, then closes the worker process
        assert pipeline._pending == [] and pipeline._opinions is None
        results[asynchronous] = [(e.reference, round(e.score, 4)) for e in events]
    assert results[True] == results[False] and results[True] and results[True][0][0] == "GH-1"


def test_a_view_awaiting_a_second_opinion_is_dropped_when_its_track_ends(fused) -> None:
    """Nothing about a face outlives its track, not even a view still with the second model."""
    hopper = demo_images.grace_hopper()
    reference = fused.faces(hopper)[0].template
    events: list = []
    pipeline = CameraPipeline(
        "cam", fused, Watchlist.build(reference[None], ["GH-1"], ["Grace Hopper"], ["c"], [1]),
        PipelineConfig(threshold=fused.native_threshold, async_second_opinion=True), events.append,
    )  # fmt: skip
    pipeline.process(Frame(hopper, 0, 0.0, 0.0))
    pipeline.process(Frame(hopper, 1, 0.1, 0.1))  # confirmed: templated, sent for a second opinion
    (job,) = pipeline._pending
    (track,) = pipeline.tracker.tracks
    assert job.track is track
    pipeline._end([track])  # the face left while its view was with the second model
    assert pipeline._pending == [] and track.state.empty and pipeline.stats.faces_seen == 1
    job.future.result()  # the worker's answer comes back to nobody
    pipeline.finish()
    assert events == []
