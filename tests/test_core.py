"""The biometric core without model packs: alignment, comparison, quality and the recogniser wrapper."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from openlfr.core import QualityPolicy, QualityReport, by_prominence, main_face, similarity, similarity_matrix, top_k
from openlfr.core.alignment import ARCFACE_112, align_face, similarity_transform
from openlfr.core.quality import frontalness, measure
from openlfr.core.recognizer import Recognizer
from openlfr.core.types import Detection, Face
from openlfr.models.loader import session

# --- alignment -----------------------------------------------------------------------------------


def similarity_matrix_2x3(angle: float, scale: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


@pytest.mark.parametrize(
    ("angle", "scale", "tx", "ty"),
    [(0.3, 1.7, 12.0, -5.0), (-1.2, 0.4, 100.0, 250.0), (np.pi * 0.9, 3.0, -40.0, 7.5), (0.0, 1.0, 0.0, 0.0)],
)
def test_similarity_transform_recovers_known_transform(angle, scale, tx, ty):
    src = np.random.default_rng(0).uniform(0, 200, size=(5, 2))
    truth = similarity_matrix_2x3(angle, scale, tx, ty)
    matrix = similarity_transform(src, apply(truth, src))
    assert matrix.shape == (2, 3)
    np.testing.assert_allclose(matrix, truth, atol=1e-8)


def test_similarity_transform_is_least_squares_with_noise():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 200, size=(50, 2))
    truth = similarity_matrix_2x3(0.5, 2.0, 3.0, 4.0)
    dst = apply(truth, src) + rng.normal(scale=0.5, size=(50, 2))
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], truth[:, :2], atol=0.02)
    np.testing.assert_allclose(matrix[:, 2], truth[:, 2], atol=0.5)

    def residual(m: np.ndarray) -> float:
        return float(((apply(m, src) - dst) ** 2).sum())

    # least squares: no nearby similarity fits better
    assert residual(matrix) <= residual(truth)
    for nudge in (similarity_matrix_2x3(0.001, 1.001, 0.0, 0.0), similarity_matrix_2x3(0.0, 1.0, 0.05, -0.05)):
        nudged = np.vstack([nudge, [0, 0, 1]]) @ np.vstack([matrix, [0, 0, 1]])
        assert residual(matrix) < residual(nudged[:2])


def test_similarity_transform_never_reflects():
    """A mirrored point set still gives a proper rotation (a face is never flipped by alignment)."""
    src = ARCFACE_112.astype(np.float64)
    mirrored = src * np.array([-1.0, 1.0])
    matrix = similarity_transform(src, mirrored)
    assert np.linalg.det(matrix[:, :2]) > 0


def test_align_face_of_template_landmarks_is_identity():
    image = np.random.default_rng(2).integers(0, 256, (112, 112, 3), dtype=np.uint8)
    np.testing.assert_allclose(similarity_transform(ARCFACE_112, ARCFACE_112), np.eye(2, 3), atol=1e-5)
    aligned = align_face(image, ARCFACE_112)
    assert aligned.shape == (112, 112, 3)
    assert aligned.dtype == np.uint8
    assert np.abs(aligned.astype(int) - image.astype(int)).max() <= 1


def test_align_face_at_other_size_scales_the_template():
    image = np.random.default_rng(3).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    aligned = align_face(image, ARCFACE_112 * 2, size=224)
    assert np.abs(aligned.astype(int) - image.astype(int)).max() <= 1


def test_align_face_undoes_a_similarity_warp():
    rng = np.random.default_rng(4)
    face = cv2.resize(rng.integers(0, 256, (14, 14, 3), dtype=np.uint8), (112, 112), interpolation=cv2.INTER_CUBIC)
    warp = similarity_matrix_2x3(0.35, 2.3, 80.0, 20.0)
    scene = cv2.warpAffine(face, warp, (480, 400), flags=cv2.INTER_LINEAR)
    landmarks = apply(warp, ARCFACE_112.astype(np.float64)).astype(np.float32)

    aligned = align_face(scene, landmarks)

    inner = (slice(8, 104), slice(8, 104))
    diff = np.abs(aligned[inner].astype(float) - face[inner].astype(float))
    assert diff.mean() < 3.0


# --- comparison ----------------------------------------------------------------------------------


def unit_rows(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def full_sort(probes: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = np.atleast_2d(probes) @ gallery.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.mark.parametrize("chunk", [1, 3, 10, 64, 999, 1000, 1001, 262_144])
@pytest.mark.parametrize("k", [1, 5, 10])
def test_top_k_equals_full_argsort(chunk, k):
    rng = np.random.default_rng(chunk * 31 + k)
    gallery, probes = unit_rows(rng, 1000), unit_rows(rng, 7)
    scores, rows = top_k(probes, gallery, k=k, chunk=chunk)
    want_scores, want_rows = full_sort(probes, gallery, k)
    assert scores.shape == rows.shape == (7, k)
    assert rows.dtype == np.int64
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, atol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_top_k_finds_planted_matches_across_chunks():
    rng = np.random.default_rng(7)
    gallery = unit_rows(rng, 500)
    planted = [0, 99, 100, 101, 499]  # chunk starts and ends for chunk=100
    probes = gallery[planted]
    scores, rows = top_k(probes, gallery, k=3, chunk=100)
    np.testing.assert_array_equal(rows[:, 0], planted)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("chunk", [2, 100])
def test_top_k_with_k_larger_than_gallery(chunk):
    rng = np.random.default_rng(8)
    gallery, probes = unit_rows(rng, 3), unit_rows(rng, 4)
    scores, rows = top_k(probes, gallery, k=10, chunk=chunk)
    want_scores, want_rows = full_sort(probes, gallery, 3)
    assert rows.shape == (4, 3)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_allclose(scores, want_scores, atol=1e-6)


def test_top_k_on_empty_gallery():
    probes = unit_rows(np.random.default_rng(9), 2)
    scores, rows = top_k(probes, np.zeros((0, 16), np.float32), k=5)
    assert scores.shape == rows.shape == (2, 0)
    assert rows.dtype == np.int64


def test_top_k_single_probe_vector():
    rng = np.random.default_rng(10)
    gallery = unit_rows(rng, 50)
    _, rows = top_k(gallery[17], gallery, k=2, chunk=7)
    assert rows.shape == (1, 2)
    assert rows[0, 0] == 17


def test_similarity_and_matrix_agree():
    rng = np.random.default_rng(11)
    a, b = unit_rows(rng, 3), unit_rows(rng, 4)
    matrix = similarity_matrix(a, b)
    assert matrix.shape == (3, 4)
    assert matrix[1, 2] == pytest.approx(similarity(a[1], b[2]), abs=1e-6)
    assert similarity(a[0], a[0]) == pytest.approx(1.0, abs=1e-6)


# --- quality -------------------------------------------------------------------------------------

SYMMETRIC = np.array([[40, 50], [72, 50], [56, 70], [44, 90], [68, 90]], dtype=np.float32)


def test_frontalness_of_a_symmetric_face_is_one():
    assert frontalness(SYMMETRIC) == pytest.approx(1.0, abs=1e-6)


def test_frontalness_falls_as_the_head_turns():
    values = []
    for shift in (0, 4, 8, 12, 20):
        turned = SYMMETRIC.copy()
        turned[2, 0] += shift  # nose moves towards one eye
        values.append(frontalness(turned))
    assert values == sorted(values, reverse=True)
    assert values[1] < 1.0
    assert values[2] == pytest.approx(1 - 2 * 8 / 32, abs=1e-6)
    assert values[-1] == 0.0  # nose beyond the midpoint by more than half the eye distance


def test_frontalness_falls_with_roll():
    angle = np.deg2rad(30)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
    rolled = (SYMMETRIC - SYMMETRIC.mean(0)) @ rot.T + SYMMETRIC.mean(0)
    assert frontalness(rolled) == pytest.approx(np.cos(angle), abs=1e-4)
    assert frontalness(np.zeros((5, 2), np.float32)) == 0.0


def good_report(**changes) -> QualityReport:
    values = dict(inter_eye_px=60.0, sharpness=300.0, brightness=120.0, contrast=50.0, frontalness=0.9, detector_score=0.95)
    values.update(changes)
    return QualityReport(**values)


def test_quality_policy_passes_a_good_face():
    assert QualityPolicy().failures(good_report()) == []


@pytest.mark.parametrize(
    ("limit_name", "value"),
    [
        ("min_inter_eye_px", 1.5),
        ("min_sharpness", 0.5),
        ("min_brightness", 2.0),
        ("max_brightness", 254.0),
        ("min_contrast", 0.5),
        ("min_frontalness", 0.01),
        ("min_detector_score", 0.02),
    ],
)
def test_quality_policy_names_measure_and_limit(limit_name, value):
    kind, measure_name = limit_name.split("_", 1)
    policy = QualityPolicy()
    limit = getattr(policy, limit_name)
    assert limit is not None
    failures = policy.failures(good_report(**{measure_name: value}))
    assert len(failures) == 1
    assert failures[0].startswith(measure_name + " ")
    assert ("below the minimum" if kind == "min" else "above the maximum") in failures[0]
    assert failures[0].endswith(f" {limit:g}")
    assert f"{value:.2f}" in failures[0]
    # exactly at the limit passes
    assert policy.failures(good_report(**{measure_name: limit})) == []


def test_quality_policy_accepts_rows_as_failures_judges_reports():
    """The vectorised check evaluations use agrees with the one enrolment uses, limit by limit; no face: refused."""
    from openlfr.core.quality import MEASURES

    rng = np.random.default_rng(0)
    reports = [good_report()] + [
        good_report(**{m: float(v) for m, v in zip(MEASURES, row, strict=True)})
        for row in rng.uniform([0, 0, 0, 0, 0, 0], [80, 400, 255, 80, 1, 1], size=(300, 6))
    ]
    rows = np.array([[getattr(r, m) for m in MEASURES] for r in reports] + [[np.nan] * 6])
    for policy in (QualityPolicy(), QualityPolicy(min_frontalness=None, max_brightness=None)):
        expected = [not policy.failures(r) for r in reports] + [False]
        assert policy.accepts(rows).tolist() == expected
    assert 0 < sum(expected) < len(expected) - 1  # both outcomes occur


def test_quality_policy_reports_every_failure_and_none_disables_a_limit():
    report = good_report(inter_eye_px=5.0, sharpness=1.0)
    assert len(QualityPolicy().failures(report)) == 2
    relaxed = QualityPolicy(min_inter_eye_px=None, min_sharpness=None)
    assert relaxed.failures(report) == []
    assert QualityPolicy(min_inter_eye_px=4.0).failures(report) == [
        f for f in QualityPolicy().failures(report) if f.startswith("sharpness")
    ]


def test_blur_lowers_sharpness():
    rng = np.random.default_rng(12)
    crop = cv2.resize(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8), (112, 112), interpolation=cv2.INTER_NEAREST)
    detection = Detection(box=(0.0, 0.0, 112.0, 112.0), landmarks=ARCFACE_112.copy(), score=0.9)
    sharp = measure(detection, crop)
    blurred = measure(detection, cv2.GaussianBlur(crop, (0, 0), 3))
    assert blurred.sharpness < sharp.sharpness / 5
    assert blurred.brightness == pytest.approx(sharp.brightness, abs=2)
    assert blurred.contrast < sharp.contrast
    assert sharp.inter_eye_px == pytest.approx(float(np.linalg.norm(ARCFACE_112[0] - ARCFACE_112[1])))
    assert sharp.detector_score == 0.9
    assert sharp.frontalness == pytest.approx(frontalness(ARCFACE_112))


def test_measure_brightness_and_contrast():
    detection = Detection(box=(0.0, 0.0, 112.0, 112.0), landmarks=SYMMETRIC, score=0.8)
    flat = np.full((112, 112, 3), 200, dtype=np.uint8)
    report = measure(detection, flat)
    assert report.brightness == pytest.approx(200, abs=0.5)
    assert report.contrast == pytest.approx(0, abs=1e-6)
    assert report.sharpness == pytest.approx(0, abs=1e-6)
    assert report.frontalness == pytest.approx(1.0)


# --- recogniser ----------------------------------------------------------------------------------


def arcface_model(path: Path, batch: int | str = "N", seed: int = 0) -> Path:
    """A tiny ArcFace-shaped network, spatially sensitive so that mirroring changes its output."""
    weights = np.random.default_rng(seed).normal(size=(3 * 8 * 8, 512)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["data"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 512])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recognisers")
    return {
        "dynamic": session(arcface_model(folder / "dynamic.onnx"), threads=1),
        "fixed": session(arcface_model(folder / "fixed.onnx", batch=1), threads=1),
    }


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    rng = np.random.default_rng(13)
    return [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(11)]


def raw(sess, crops: list[np.ndarray], mean: float, std: float) -> np.ndarray:
    blob = ((np.stack(crops)[..., ::-1].astype(np.float32) - mean) / std).transpose(0, 3, 1, 2)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: b[None]})[0] for b in blob])


@pytest.mark.parametrize("kind", ["dynamic", "fixed"])
@pytest.mark.parametrize("flip", [True, False])
def test_recognizer_batches_equal_singles(sessions, crops, kind, flip):
    rec = Recognizer(sessions[kind], mean=127.5, std=127.5, flip=flip, batch_size=4)
    assert rec.dimension == 512
    batched = rec.templates(crops)
    single = np.concatenate([rec.templates([c]) for c in crops])
    assert batched.shape == (len(crops), 512)
    assert batched.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, single, atol=1e-4)
    # the batch size does not change the result either
    other = Recognizer(sessions[kind], mean=127.5, std=127.5, flip=flip, batch_size=16).templates(crops)
    np.testing.assert_allclose(batched, other, atol=1e-4)


def test_recognizer_flip_averages_the_mirrored_face(sessions, crops):
    sess = sessions["dynamic"]
    flipped = Recognizer(sess, mean=127.5, std=127.5, flip=True).templates(crops)
    plain = Recognizer(sess, mean=127.5, std=127.5, flip=False).templates(crops)

    mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
    summed = raw(sess, crops, 127.5, 127.5) + raw(sess, mirrored, 127.5, 127.5)
    want = summed / np.linalg.norm(summed, axis=1, keepdims=True)
    np.testing.assert_allclose(flipped, want, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1.0, atol=1e-5)

    alone = raw(sess, crops, 127.5, 127.5)
    np.testing.assert_allclose(plain, alone / np.linalg.norm(alone, axis=1, keepdims=True), atol=1e-4)
    assert np.abs(flipped - plain).max() > 1e-2  # mirroring matters for this network
    # a mirrored face gets the same flip-averaged template
    np.testing.assert_allclose(Recognizer(sess, mean=127.5, std=127.5).templates(mirrored), flipped, atol=1e-4)


def test_recognizer_mean_and_std_are_applied(sessions, crops):
    sess = sessions["dynamic"]
    got = Recognizer(sess, mean=0.0, std=1.0, flip=False).templates(crops[:2])
    alone = raw(sess, crops[:2], 0.0, 1.0)
    np.testing.assert_allclose(got, alone / np.linalg.norm(alone, axis=1, keepdims=True), atol=1e-4)


def test_recognizer_on_no_crops(sessions):
    empty = Recognizer(sessions["fixed"]).templates([])
    assert empty.shape == (0, 512)


# --- which face is the main face -------------------------------------------------------------------


def detection(x: float, y: float, w: float, h: float, score: float) -> Detection:
    eyes = np.array([[x + 0.3 * w, y + 0.4 * h], [x + 0.7 * w, y + 0.4 * h]], np.float32)
    return Detection((x, y, w, h), np.vstack([eyes, np.zeros((3, 2), np.float32)]), score)


def test_main_face_is_the_largest_box_whatever_the_order() -> None:
    big = detection(300, 50, 120, 150, 0.70)  # largest area, lowest detector score
    wide = detection(10, 10, 160, 100, 0.99)  # wider box, eyes further apart, but a smaller area
    small = detection(500, 300, 40, 40, 0.95)
    for order in ([big, wide, small], [small, wide, big], [wide, small, big]):
        assert main_face(order) is big
        assert by_prominence(order) == [big, wide, small]


def test_main_face_ties_are_broken_by_detector_score_then_position() -> None:
    left = detection(10, 10, 100, 100, 0.80)
    right = detection(300, 10, 100, 100, 0.80)
    surer = detection(150, 200, 100, 100, 0.90)
    assert main_face([left, right, surer]) is surer
    assert main_face([right, left]) is left and main_face([left, right]) is left  # same size and score: the left one


def test_main_face_takes_faces_as_well_as_detections() -> None:
    report = QualityReport(40, 100, 120, 50, 1.0, 0.9)
    faces = [Face(detection(0, 0, 50, 50, 0.99), report), Face(detection(100, 0, 80, 80, 0.6), report)]
    assert main_face(faces) is faces[1]
    with pytest.raises(ValueError):
        main_face([])
