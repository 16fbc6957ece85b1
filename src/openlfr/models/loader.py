"""Build a ready :class:`~openlfr.core.FaceEngine` from a model pack, cleaning and caching graphs once."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import onnx
import onnxruntime as ort

from openlfr.config import data_dir
from openlfr.core.detector import SCRFDDetector, YuNetDetector
from openlfr.core.engine import FaceEngine
from openlfr.core.recognizer import Recognizer
from openlfr.core.second_opinion import DlibRecognizer
from openlfr.errors import ModelPackError
from openlfr.models import cleaning
from openlfr.models.packs import (
    FUSED_PACK,
    SFACE_PACK,
    ModelFile,
    ModelPack,
    fused_pack,
    load_local_pack,
    sface_pack,
    verify,
)


def session(model: str | bytes | Path, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # The detector and recogniser each have a thread pool; idle threads that spin steal the other's
    # cores on a small machine (measured: detect + 8 templates 252 -> 193 ms per frame on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(model) if isinstance(model, Path) else model
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def cleaned_graph(file: ModelFile, cache_root: Path) -> Path:
    """Path of the cleaned graph for a shipped file, building and caching it on first use.

    The shipped file is verified against the pack's checksum on every load (a few milliseconds),
    so an altered model is refused even when a cache exists. The cache file is named by the source
    checksum and the cleaner version and has its SHA-256 beside it; a cache file that does not
    match (a torn write, a flipped bit) is rebuilt. The sidecar guards against accidents, not an
    attacker who can write to the data directory: that directory also holds the data key, and must
    be writable by the service account alone.
    """
    verify(file)
    cache_root.mkdir(parents=True, exist_ok=True)
    target = cache_root / f"{file.kind}-{file.sha256[:16]}-v{cleaning.CLEANER_VERSION}.onnx"
    checksum = target.with_suffix(".sha256")
    if (
        target.is_file()
        and checksum.is_file()
        and hashlib.sha256(target.read_bytes()).hexdigest() == checksum.read_text().strip()
    ):
        return target
    model = onnx.load(str(file.path))
    cleaned = cleaning.clean_recognizer(model) if file.kind == "sface" else cleaning.clean_detector(model)
    data = cleaned.SerializeToString()
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    checksum.write_text(hashlib.sha256(data).hexdigest() + "\n")
    return target


def resolve_pack(name_or_path: str | None = None) -> ModelPack:
    """The fused default pack for ``None``, a shipped pack by name, otherwise a local folder."""
    if name_or_path in (None, "", FUSED_PACK):
        return fused_pack()
    if name_or_path == SFACE_PACK:
        return sface_pack()
    return load_local_pack(name_or_path)


def load_engine(
    pack: ModelPack | str | None = None,
    home: str | Path | None = None,
    flip: bool = True,
    threads: int | None = None,
    detector_threshold: float | None = None,
) -> FaceEngine:
    """The face engine for a pack (default: ``yunet-sface``), ready to run."""
    if not isinstance(pack, ModelPack):
        pack = resolve_pack(pack)
    if pack.detector.kind == "yunet":
        det_session = session(cleaned_graph(pack.detector, data_dir(home) / "models"), threads)
        detector = YuNetDetector(det_session)
    elif pack.detector.kind == "scrfd":
        verify(pack.detector)
        detector = SCRFDDetector(session(pack.detector.path, threads))
    else:
        raise ModelPackError(f"unknown detector kind {pack.detector.kind!r}")
    if detector_threshold is not None:
        detector.score_threshold = detector_threshold
    if pack.recognizer.kind == "sface":
        rec_session = session(cleaned_graph(pack.recognizer, data_dir(home) / "models"), threads)
    elif pack.recognizer.kind == "arcface":
        verify(pack.recognizer)
        rec_session = session(pack.recognizer.path, threads)
    else:
        raise ModelPackError(f"unknown recogniser kind {pack.recognizer.kind!r}")
    recognizer = Recognizer(rec_session, mean=pack.input_mean, std=pack.input_std, flip=flip)
    second = None
    if pack.second and pack.second_landmarks:
        verify(pack.second_landmarks)
        verify(pack.second)
        second = DlibRecognizer(pack.second_landmarks.path, pack.second.path)
    return FaceEngine(
        detector,
        recognizer,
        pack_id=pack.pack_id,
        native_threshold=pack.native_threshold,
        second=second,
        fusion_weight=pack.fusion_weight,
        calibrated_threshold=pack.calibrated_threshold,
        min_alert_inter_eye_px=pack.min_alert_inter_eye_px,
    )
