"""User model packs (insightface layout) with real, tiny ONNX models built here.

The detector built by :func:`scrfd_model` is shaped like an SCRFD export (3 strides, 2 anchors per
cell, 9 outputs) but its outputs are predictable: at one chosen stride, anchor 0's score is the
brightest pixel of the grid cell in the network's first (red) channel, as normalised by the
detector, so ~1.0 for full red and ~-1.0 for none; every other score is -1. Box distances and
landmark offsets are constants, different for the two anchors. A red square filling exactly one
grid cell therefore decodes to one known box and five known landmarks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from openlfr.core.detector import SCRFDDetector
from openlfr.errors import ModelPackError
from openlfr.models import load_engine, load_local_pack, resolve_pack
from openlfr.models.loader import session
from openlfr.models.packs import DEFAULT_PACK, FUSED_THRESHOLD, MANIFEST, ModelFile, ModelPack

STRIDES = (8, 16, 32)
#: Distances (left, top, right, bottom) in stride units, per anchor.
BBOX = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 5.0, 5.0, 5.0]], dtype=np.float32)
#: Landmark offsets (x, y) in stride units, per anchor: face-like and asymmetric in x and y.
KPS = np.array(
    [
        [[-1.0, -0.8], [1.0, -0.9], [0.1, 0.3], [-0.7, 1.2], [0.8, 1.1]],
        [[3.0, 3.0], [3.0, 3.0], [3.0, 3.0], [3.0, 3.0], [3.0, 3.0]],
    ],
    dtype=np.float32,
)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def scrfd_model(
    path: Path,
    size: tuple[int, int] | None = (640, 640),
    live_stride: int = 8,
    landmarks: bool = True,
    batch_axis: bool = False,
) -> Path:
    """An SCRFD-shaped detector; ``size=None`` gives a dynamic height and width."""
    h, w = size if size else ("height", "width")
    nodes = [helper.make_node("Slice", ["input.1", "s_start", "s_end", "s_axis"], ["grey"])]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "s_start"),
        numpy_helper.from_array(np.array([1], np.int64), "s_end"),
        numpy_helper.from_array(np.array([1], np.int64), "s_axis"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.full((1, 1, 1, 1), -1.0, np.float32), "minus_one"),
        numpy_helper.from_array(np.full((1, 2, 1, 1), -1.0, np.float32), "minus_one_pair"),
        numpy_helper.from_array(BBOX.reshape(1, 8, 1, 1), "bbox_const"),
        numpy_helper.from_array(KPS.reshape(1, 20, 1, 1), "kps_const"),
    ]
    for width in (1, 4, 10):
        shape = [1, -1, width] if batch_axis else [-1, width]
        inits.append(numpy_helper.from_array(np.array(shape, np.int64), f"shape_{width}"))
    outputs: dict[str, list[onnx.ValueInfoProto]] = {"score": [], "bbox": [], "kps": []}
    for s in STRIDES:
        cells = (h // s) * (w // s) * 2 if size else "anchors"
        nodes += [
            helper.make_node("MaxPool", ["grey"], [f"pool{s}"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("Mul", [f"pool{s}", "zero"], [f"zeros{s}"]),
        ]
        if s == live_stride:
            nodes += [
                helper.make_node("Add", [f"zeros{s}", "minus_one"], [f"dead{s}"]),
                helper.make_node("Concat", [f"pool{s}", f"dead{s}"], [f"score_map{s}"], axis=1),
            ]
        else:
            nodes.append(helper.make_node("Add", [f"zeros{s}", "minus_one_pair"], [f"score_map{s}"]))
        nodes += [
            helper.make_node("Add", [f"zeros{s}", "bbox_const"], [f"bbox_map{s}"]),
            helper.make_node("Add", [f"zeros{s}", "kps_const"], [f"kps_map{s}"]),
        ]
        for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
            nodes += [
                helper.make_node("Transpose", [f"{kind}_map{s}"], [f"{kind}_t{s}"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"{kind}_t{s}", f"shape_{width}"], [f"{kind}_{s}"]),
            ]
            dims = [1, cells, width] if batch_axis else [cells, width]
            outputs[kind].append(helper.make_tensor_value_info(f"{kind}_{s}", TensorProto.FLOAT, dims))
    graph_outputs = outputs["score"] + outputs["bbox"] + (outputs["kps"] if landmarks else [])
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, h, w])],
        graph_outputs,
        inits,
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def arcface_model(path: Path, seed: int = 0, batch: int | str = "N") -> Path:
    """An ArcFace-shaped recogniser: [N,3,112,112] -> AveragePool(14) -> Flatten -> MatMul -> [N,512]."""
    weights = np.random.default_rng(seed).normal(size=(3 * 8 * 8, 512)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[14, 14], strides=[14, 14]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["683"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [batch, 512])],
        [numpy_helper.from_array(weights, "w")],
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def block_image(
    shape: tuple[int, int], stride: int, cell: tuple[int, int], fit: float, bgr: tuple[int, int, int] = (0, 0, 255)
) -> np.ndarray:
    """A black BGR image with a (red) square that fills grid cell (row, col) once scaled by ``fit``."""
    row, col = cell
    x0, x1 = col * stride / fit, (col + 1) * stride / fit
    y0, y1 = row * stride / fit, (row + 1) * stride / fit
    assert all(float(v).is_integer() for v in (x0, x1, y0, y1))
    image = np.zeros((*shape, 3), dtype=np.uint8)
    image[int(y0) : int(y1), int(x0) : int(x1)] = bgr
    return image


def expected(stride: int, cell: tuple[int, int], fit: float) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y, w, h) box and landmarks anchor 0 at that cell decodes to, in image coordinates."""
    cx, cy = cell[1] * stride, cell[0] * stride
    left, top, right, bottom = BBOX[0] * stride
    box = np.array([cx - left, cy - top, left + right, top + bottom]) / fit
    landmarks = (np.array([cx, cy]) + KPS[0] * stride) / fit
    return box, landmarks


def make_pack(folder: Path, seed: int = 0, **detector) -> Path:
    scrfd_model(folder / "det_10g.onnx", **detector)
    arcface_model(folder / "w600k_r50.onnx", seed=seed)
    return folder


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- SCRFD decoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "image_shape", "stride", "cell", "fit", "batch_axis"),
    [
        # fixed 640x640 input: a 320x240 image is letterboxed at 2x (bottom padded)
        ((640, 640), (240, 320), 8, (10, 20), 2.0, False),
        # fixed input, image larger than the input: shrunk by half
        ((640, 640), (960, 1280), 32, (5, 7), 0.5, False),
        # a tall image on a fixed input: padded on the right
        ((640, 640), (640, 320), 16, (30, 3), 1.0, True),
        # dynamic input: no resize, padded to a multiple of 32; outputs keep a batch axis
        (None, (200, 300), 16, (6, 9), 1.0, True),
        (None, (200, 300), 8, (0, 0), 1.0, False),
    ],
)
def test_scrfd_decodes_box_and_landmarks_in_image_coordinates(tmp_path, size, image_shape, stride, cell, fit, batch_axis):
    model = scrfd_model(tmp_path / "det.onnx", size=size, live_stride=stride, batch_axis=batch_axis)
    detector = SCRFDDetector(session(model, threads=1))
    assert detector._fixed == size
    detections = detector.detect(block_image(image_shape, stride, cell, fit))

    assert len(detections) == 1
    box, landmarks = expected(stride, cell, fit)
    np.testing.assert_allclose(detections[0].box, box, atol=1e-3)
    np.testing.assert_allclose(detections[0].landmarks, landmarks, atol=1e-3)
    assert detections[0].landmarks.shape == (5, 2)
    assert detections[0].score == pytest.approx((255 - 127.5) / 128.0, abs=1e-5)


def test_scrfd_finds_nothing_in_a_black_image(tmp_path):
    detector = SCRFDDetector(session(scrfd_model(tmp_path / "det.onnx"), threads=1))
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)) == []


def test_scrfd_feeds_the_network_rgb(tmp_path):
    """The image is BGR; the network's first channel must be red: a blue square must not fire."""
    detector = SCRFDDetector(session(scrfd_model(tmp_path / "det.onnx"), threads=1))
    assert len(detector.detect(block_image((240, 320), 8, (10, 20), 2.0, bgr=(0, 0, 255)))) == 1
    assert detector.detect(block_image((240, 320), 8, (10, 20), 2.0, bgr=(255, 0, 0))) == []


def test_scrfd_detector_without_landmarks_is_refused(tmp_path):
    model = scrfd_model(tmp_path / "det.onnx", landmarks=False)
    with pytest.raises(ValueError, match="landmarks"):
        SCRFDDetector(session(model, threads=1))


# --- local packs ---------------------------------------------------------------------------------


def test_local_pack_is_detected_by_graph_signature_and_checksummed(tmp_path):
    folder = tmp_path / "mypack"
    # names say nothing: the files are told apart by their graphs
    det = scrfd_model(folder / "b.onnx")
    rec = arcface_model(folder / "a.onnx")
    (folder / "README.txt").write_text("not a model")

    pack = load_local_pack(folder)

    assert pack.name == "mypack"
    assert (pack.detector.path, pack.detector.kind, pack.detector.sha256) == (det, "scrfd", sha(det))
    assert (pack.recognizer.path, pack.recognizer.kind, pack.recognizer.sha256) == (rec, "arcface", sha(rec))
    assert (pack.input_mean, pack.input_std) == (127.5, 127.5)
    assert pack.pack_id == f"mypack:{sha(rec)[:12]}"
    assert resolve_pack(str(folder)) == pack


def test_resolve_pack_default():
    assert resolve_pack(None).name == resolve_pack(DEFAULT_PACK).name == DEFAULT_PACK


def test_local_pack_runs_end_to_end(tmp_path):
    pack = load_local_pack(make_pack(tmp_path / "pack"))
    engine = load_engine(pack, home=tmp_path / "home", threads=1)
    assert engine.pack_id == pack.pack_id
    assert engine.native_threshold == pack.native_threshold
    assert engine.dimension == 512

    stride, cell, fit = 8, (10, 20), 2.0
    faces = engine.faces(block_image((240, 320), stride, cell, fit))

    assert len(faces) == 1
    box, landmarks = expected(stride, cell, fit)
    np.testing.assert_allclose(faces[0].detection.box, box, atol=1e-3)
    np.testing.assert_allclose(faces[0].detection.landmarks, landmarks, atol=1e-3)
    template = faces[0].template
    assert template is not None
    assert template.shape == (512,)
    assert np.linalg.norm(template) == pytest.approx(1.0, abs=1e-5)
    assert faces[0].quality.inter_eye_px == pytest.approx(float(np.linalg.norm(landmarks[0] - landmarks[1])), abs=1e-3)
    assert engine.faces(np.zeros((240, 320, 3), np.uint8)) == []


def test_load_engine_refuses_a_local_pack_altered_after_loading(tmp_path):
    pack = load_local_pack(make_pack(tmp_path / "pack"))
    data = bytearray(pack.recognizer.path.read_bytes())
    data[-10] ^= 0xFF
    pack.recognizer.path.write_bytes(bytes(data))
    with pytest.raises(ModelPackError, match="SHA-256"):
        load_engine(pack, home=tmp_path / "home", threads=1)


def write_manifest(folder: Path, **overrides) -> dict:
    manifest = {
        "name": "site-pack",
        "native_threshold": 0.42,
        "detector": {"file": "det_10g.onnx", "sha256": sha(folder / "det_10g.onnx")},
        "recognizer": {"file": "w600k_r50.onnx", "sha256": sha(folder / "w600k_r50.onnx"), "mean": 0, "std": 1},
    }
    manifest.update(overrides)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return manifest


def test_manifest_names_the_files(tmp_path):
    folder = make_pack(tmp_path / "pack")
    arcface_model(folder / "other_recogniser.onnx", seed=1)  # ambiguous without the manifest
    write_manifest(folder)

    pack = load_local_pack(folder)

    assert pack.name == "site-pack"
    assert pack.native_threshold == 0.42
    assert pack.recognizer.path == folder / "w600k_r50.onnx"
    assert (pack.input_mean, pack.input_std) == (0.0, 1.0)
    assert (pack.detector.kind, pack.recognizer.kind) == ("scrfd", "arcface")


def test_manifest_with_wrong_checksum_is_refused_naming_the_file(tmp_path):
    folder = make_pack(tmp_path / "pack")
    manifest = write_manifest(folder)
    manifest["recognizer"]["sha256"] = "0" * 64
    (folder / MANIFEST).write_text(json.dumps(manifest))

    with pytest.raises(ModelPackError, match=r"w600k_r50\.onnx") as info:
        load_local_pack(folder)
    assert "SHA-256" in str(info.value)
    assert sha(folder / "w600k_r50.onnx") in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a valid pack manifest"),
        (json.dumps({"detector": {"file": "det_10g.onnx"}}), "not a valid pack manifest"),
        (json.dumps({"detector": "det_10g.onnx", "recognizer": "w600k_r50.onnx"}), "not a valid pack manifest"),
        (
            json.dumps({"detector": {"file": "gone.onnx", "sha256": "0" * 64}, "recognizer": {"file": "x", "sha256": "0"}}),
            "gone.onnx is missing",
        ),
    ],
)
def test_bad_manifest_is_refused(tmp_path, content, message):
    folder = make_pack(tmp_path / "pack")
    (folder / MANIFEST).write_text(content)
    with pytest.raises(ModelPackError, match=message):
        load_local_pack(folder)


def test_detector_without_landmarks_is_refused_with_a_clear_message(tmp_path):
    folder = tmp_path / "pack"
    scrfd_model(folder / "det_500m.onnx", landmarks=False)
    arcface_model(folder / "rec.onnx")
    with pytest.raises(ModelPackError) as info:
        load_local_pack(folder)
    message = str(info.value)
    assert "det_500m.onnx" in message
    assert "6 outputs" in message
    assert "landmarks" in message


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(ModelPackError, match=r"found 0 and 0"):
        load_local_pack(tmp_path)


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(ModelPackError, match="does not exist"):
        load_local_pack(tmp_path / "nowhere")


def test_two_recognisers_are_refused(tmp_path):
    folder = make_pack(tmp_path / "pack")
    arcface_model(folder / "glint360k_r100.onnx", seed=1)
    with pytest.raises(ModelPackError, match=r"found 1 and 2") as info:
        load_local_pack(folder)
    assert MANIFEST in str(info.value)


@pytest.mark.parametrize("junk", [b"this is not an ONNX model\n", b"\x00\xff" * 64, b"<html>404</html>"])
def test_non_onnx_file_named_onnx_is_refused(tmp_path, junk):
    folder = make_pack(tmp_path / "pack")
    (folder / "broken.onnx").write_bytes(junk)
    with pytest.raises(ModelPackError, match=r"broken\.onnx"):
        load_local_pack(folder)


def test_pack_id_depends_on_the_recogniser_checksum(tmp_path):
    # same folder name, same detector, different recogniser weights
    one = load_local_pack(make_pack(tmp_path / "a" / "pack", seed=0))
    two = load_local_pack(make_pack(tmp_path / "b" / "pack", seed=1))
    assert one.name == two.name == "pack"
    assert one.detector.sha256 == two.detector.sha256
    assert one.recognizer.sha256 != two.recognizer.sha256
    assert one.pack_id != two.pack_id
    # and the same bytes give the same id wherever they live
    three = load_local_pack(make_pack(tmp_path / "c" / "pack", seed=0))
    assert three.pack_id == one.pack_id
    assert isinstance(three, ModelPack)


def test_each_shipped_pack_has_its_own_alert_threshold(engine, fused, tmp_path) -> None:
    from openlfr.services import deployments

    assert engine.alert_threshold == 0.45
    assert fused.alert_threshold == deployments.DEFAULT_THRESHOLD == FUSED_THRESHOLD
    model = ModelFile(tmp_path / "m.onnx", "arcface", "0" * 64)
    assert ModelPack("my-pack", model, model, native_threshold=0.31).alert_threshold == 0.31  # a local pack keeps its own
