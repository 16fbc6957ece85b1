"""Retrospective facial recognition: case-bound searches of the custody image database, reviewed by people.

Nothing here is an identification. A search needs a case reference and a justification, and is
audited; it returns a ranked list of custody records (the best-scoring image of each) that a
trained examiner reviews. A candidate the examiner marks as a *possible match* is reported only
after a second, different examiner confirms it independently (without seeing the first one's
note). Results are kept with the case until they expire under the retention rule
(:data:`SEARCH_RETENTION`), when ``services.retention`` deletes them.

Probe faces: an image may show several people, so the examiner picks the face; a CCTV clip is
tracked and the best view of each person offered. Faces that are not chosen are deleted as soon
as the choice is made: only the chosen probe face is kept with the case.
"""

from __future__ import annotations

import io
import tempfile
import time
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import jinja2
import numpy as np
from sqlalchemy import select

from openlfr import config, metrics, wording
from openlfr.core import FaceEngine, main_face
from openlfr.core.types import Detection
from openlfr.errors import NoFaceError, NotFoundError, OpenLFRError, StoreError
from openlfr.media.images import decode_image
from openlfr.services import audit, duties
from openlfr.services.common import now_utc, utc
from openlfr.storage import Store
from openlfr.storage.crypto import record_context
from openlfr.storage.models import CustodyImage, CustodyRecord, DeletionLog, RfrCandidate, RfrSearch

PROBE_CONTEXT = "rfr-probe"


def probe_context(search_id: int | None) -> str:
    """Associated data of search ``search_id``'s encrypted probe file."""
    return record_context(PROBE_CONTEXT, "rfr_searches", search_id, "probe_file")


DEFAULT_TOP_K = 20
MAX_TOP_K = 200
#: How long a search's probe and candidate list are kept with the case unless the case needs them longer.
SEARCH_RETENTION = timedelta(days=365)
DECISIONS = {"not-a-match": "Not a match", "possible-match": "Possible match"}
CONFIRMATIONS = {"confirmed": "Confirmed as a possible match", "not-confirmed": "Not confirmed"}
_reports = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent.parent / "web" / "templates"), autoescape=True
)
#: The report words its times as the pages do: "30 Nov 2026 14:05:09", in the force's time zone.
_reports.filters["when"] = lambda value: wording.format_time(
    datetime.fromisoformat(value) if isinstance(value, str) else value, config.time_zone()
)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".ts"}
#: A clip is searched for at most this many frames (about 4 minutes at 25 fps).
MAX_VIDEO_FRAMES = 6000


@dataclass
class ProbeOption:
    """One face the examiner may choose as the probe: where it is, and how usable."""

    box: list[float]
    quality: dict
    frame_time: float | None = None
    track: int | None = None
    #: The image's main face (:func:`openlfr.core.main_face`), marked for the examiner; images only.
    main: bool = False


def _jpeg(image: np.ndarray, quality: int = 92) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OpenLFRError("could not encode the probe image")
    return data.tobytes()


def _crop(image: np.ndarray, box: list[float], margin: float = 0.6) -> np.ndarray:
    x, y, w, h = box
    h_img, w_img = image.shape[:2]
    x0, y0 = max(0, int(x - margin * w)), max(0, int(y - margin * h))
    x1, y1 = min(w_img, int(x + w * (1 + margin))), min(h_img, int(y + h * (1 + margin)))
    return image[y0:y1, x0:x1].copy()


def _pack(crops: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, *[np.frombuffer(_jpeg(c), np.uint8) for c in crops])
    return buffer.getvalue()


def _unpack(data: bytes) -> list[bytes]:
    with np.load(io.BytesIO(data)) as archive:
        return [archive[f"arr_{i}"].tobytes() for i in range(len(archive.files))]


def _video_options(engine: FaceEngine, data: bytes, name: str) -> tuple[list[ProbeOption], list[np.ndarray]]:
    """Follow every face through the clip and keep the best view of each (in memory only)."""
    from openlfr.live.tracker import FaceTracker
    from openlfr.media.video import VideoSource

    best: dict[int, tuple[float, ProbeOption, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="openlfr-clip-") as tmp:
        path = Path(tmp) / f"clip{Path(name).suffix.lower()}"
        path.write_bytes(data)
        source = VideoSource(str(path), realtime=False, max_retries=0)
        tracker = FaceTracker()
        try:
            for _ in range(MAX_VIDEO_FRAMES):
                frame = source.read()
                if frame is None:
                    break
                update = tracker.update(engine.detect(frame.image), frame.captured_at)
                tracks = update.confirmed
                if not tracks:
                    continue
                faces = engine.describe(frame.image, [t.detection for t in tracks], with_templates=False)
                for track, face in zip(tracks, faces, strict=True):
                    q = face.quality
                    value = q.inter_eye_px * q.detector_score * max(q.frontalness, 0.05)
                    if track.id not in best or value > best[track.id][0]:
                        at = round(frame.index / max(source.fps, 1e-6), 2)  # seconds into the clip
                        option = ProbeOption([round(v, 1) for v in track.detection.box], q.as_dict(), at, track.id)
                        best[track.id] = (value, option, _crop(frame.image, list(track.detection.box)))
        finally:
            source.close()
    ranked = sorted(best.values(), key=lambda item: -item[0])
    return [o for _, o, _ in ranked], [c for _, _, c in ranked]


def start_search(
    store: Store,
    engine: FaceEngine,
    data: bytes,
    name: str,
    case_reference: str,
    justification: str,
    examiner: str,
    top_k: int = DEFAULT_TOP_K,
    now: datetime | None = None,
) -> dict:
    """Record a search for a case and find the faces in its probe (image or CCTV clip).

    With exactly one face the search runs at once; with several the examiner must choose
    (:func:`choose_face`). Nothing runs without a case reference and a justification.
    """
    if not case_reference.strip():
        raise OpenLFRError("a search needs the case reference it is made for")
    if len(justification.strip()) < 10:
        raise OpenLFRError("a search needs a justification (why this search is necessary and proportionate)")
    if not 1 <= top_k <= MAX_TOP_K:
        raise OpenLFRError(f"top-k must be between 1 and {MAX_TOP_K}, got {top_k}")
    is_video = Path(name).suffix.lower() in VIDEO_SUFFIXES
    if is_video:
        options, crops = _video_options(engine, data, name)
        stored = _pack(crops) if crops else b""
    else:
        image = decode_image(data, name)
        detections = engine.detect(image)
        faces = engine.describe(image, detections, with_templates=False)
        main = main_face(faces) if faces else None
        # Numbered left to right, as the examiner reads the picture; the main face is marked.
        faces = sorted(faces, key=lambda f: (f.detection.box[0], f.detection.box[1]))
        options = [ProbeOption([round(v, 1) for v in f.detection.box], f.quality.as_dict(), main=f is main) for f in faces]
        stored = data
    if not options:
        raise NoFaceError(f"{name}: no face found to search with")
    now = now or now_utc()
    probe_file = None
    try:
        with store.session() as s:
            search = RfrSearch(
                case_reference=case_reference.strip(), justification=justification.strip(), examiner=examiner,
                created_at=now, expires_at=now + SEARCH_RETENTION, probe_kind="video" if is_video else "image",
                probe_source=name[:500], probe_file=None, face={"options": [o.__dict__ for o in options]},
                top_k=top_k, pack_id=engine.pack_id, method="", status="choose-face",
            )  # fmt: skip
            s.add(search)
            s.flush()  # the probe is sealed to the search's id
            search_id = search.id
            probe_file = search.probe_file = store.write_blob("rfr", stored, probe_context(search_id))
    except BaseException:
        if probe_file is not None:
            store.delete_blob(probe_file)
        raise
    audit.record(store, "rfr.search.start", "rfr_search", search_id,
                 {"case": case_reference, "probe": "video" if is_video else "image", "faces": len(options), "top_k": top_k},
                 actor=examiner)  # fmt: skip
    if len(options) == 1:
        return choose_face(store, engine, search_id, 0, examiner)
    return search_detail(store, search_id, examiner)


def _probe_template(store: Store, engine: FaceEngine, search: RfrSearch, index: int) -> tuple[np.ndarray, bytes]:
    """The chosen face's template and its crop (JPEG); the other faces' data is not kept."""
    options = search.face["options"]
    data = store.read_blob(search.probe_file, probe_context(search.id))
    if search.probe_kind == "video":
        crop_bytes = _unpack(data)[index]
        crop = cv2.imdecode(np.frombuffer(crop_bytes, np.uint8), cv2.IMREAD_COLOR)
        faces = engine.faces(crop)
        if not faces:
            raise NoFaceError("the chosen face could not be templated again from its best view")
        face = main_face(faces)  # the crop was cut around the chosen person: they are its main face
        return face.template, crop_bytes
    image = decode_image(data, search.probe_source)
    box = options[index]["box"]
    detections = engine.detect(image)
    # The detector is deterministic; pick the detection at the chosen box (nearest centre).
    centre = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
    detection: Detection = min(
        detections, key=lambda d: float(np.linalg.norm(np.array(d.box[:2]) + np.array(d.box[2:]) / 2 - centre))
    )
    (face,) = engine.describe(image, [detection])
    return face.template, _jpeg(_crop(image, list(detection.box)))


def choose_face(store: Store, engine: FaceEngine, search_id: int, index: int, examiner: str) -> dict:
    """Run the search with the chosen face, store the ranked custody records, drop the other faces."""
    from openlfr.index.custody_index import CustodyIndex

    with store.session() as s:
        search = _search(s, search_id)
        if search.status != "choose-face":
            raise StoreError(f"search {search_id} has already been run")
        if not 0 <= index < len(search.face["options"]):
            raise OpenLFRError(f"search {search_id} has faces 1..{len(search.face['options'])}; there is no face {index + 1}")
        if search.pack_id != engine.pack_id:
            raise StoreError(f"search {search_id} was started with model pack {search.pack_id}, not {engine.pack_id}")
        template, probe_crop = _probe_template(store, engine, search, index)
        top_k, old_file = search.top_k, search.probe_file
    started = time.perf_counter()
    index_ = CustodyIndex.open(store, engine.pack_id)
    index_.sync(store)
    if len(index_) == 0:
        raise StoreError("the custody image database is empty: import custody images first ('openlfr custody import')")
    scores, ids = index_.search(template[None].astype(np.float32), min(len(index_), top_k * 4))
    metrics.custody_searched(store, time.perf_counter() - started, engine.pack_id, len(index_))
    new_file = store.write_blob("rfr", probe_crop, probe_context(search_id))
    try:
        with store.session() as s:
            search = _search(s, search_id)
            rows = {
                image_id: custody_id
                for image_id, custody_id in s.execute(
                    select(CustodyImage.id, CustodyRecord.custody_id)
                    .join(CustodyRecord)
                    .where(CustodyImage.id.in_([int(i) for i in ids[0] if i >= 0]))
                )
            }
            seen: set[str] = set()
            rank = 0
            for score, image_id in zip(scores[0], ids[0], strict=True):
                custody_id = rows.get(int(image_id))
                if custody_id is None or custody_id in seen:
                    continue  # one candidate per custody record: its best image
                seen.add(custody_id)
                rank += 1
                search.candidates.append(
                    RfrCandidate(rank=rank, custody_image_id=int(image_id), custody_id=custody_id, score=float(score))
                )
                if rank == top_k:
                    break
            chosen = search.face["options"][index]
            search.face = {"chosen": chosen, "faces_offered": len(search.face["options"])}
            search.probe_file = new_file
            search.method = index_.description
            search.status = "awaiting-review"
    except BaseException:
        store.delete_blob(new_file)
        raise
    store.delete_blob(old_file)  # the image/clip views of everyone else in the probe go now
    audit.record(store, "rfr.search", "rfr_search", search_id,
                 {"candidates": rank, "method": index_.description, "top_k": top_k}, actor=examiner)  # fmt: skip
    return search_detail(store, search_id, examiner)


def _search(s, search_id: int) -> RfrSearch:
    search = s.get(RfrSearch, search_id)
    if search is None or search.deleted_at is not None:
        raise NotFoundError(f"search {search_id} does not exist (or was deleted under the retention rules)")
    return search


def awaits_independent_view(c: RfrCandidate, viewer: str) -> bool:
    """Whether ``viewer`` is a would-be second examiner of this candidate, who must judge it blind.

    The one independence rule, applied by every route, page and report through
    :func:`_candidate_dict`: a possible match is reported only after a different examiner confirms
    it, so until a confirmation is recorded the first examiner's note is shown to nobody but its
    author. (Who marked it stays visible: the second examiner must know it was someone else.)
    """
    return c.decision == "possible-match" and c.confirmation is None and c.decided_by != viewer


def _candidate_dict(c: RfrCandidate, viewer: str) -> dict:
    """A candidate as ``viewer`` may see it (see :func:`awaits_independent_view`)."""
    blind = awaits_independent_view(c, viewer)
    return {
        "id": c.id,
        "rank": c.rank,
        "custody_id": c.custody_id,
        "custody_image_id": c.custody_image_id,
        "score": round(c.score, 4),
        "decision": c.decision,
        "decided_by": c.decided_by,
        "note": None if blind else c.note,
        "confirmation": c.confirmation,
        "confirmed_by": c.confirmed_by,
        "confirmation_note": c.confirmation_note,
        "awaiting_your_confirmation": blind,
    }


def search_detail(store: Store, search_id: int, viewer: str) -> dict:
    """A search and its candidates as ``viewer`` may see them: notes awaiting their independent view are hidden."""
    with store.session() as s:
        search = _search(s, search_id)
        return {
            "id": search.id,
            "case_reference": search.case_reference,
            "justification": search.justification,
            "examiner": search.examiner,
            "created_at": utc(search.created_at).isoformat(),
            "expires_at": utc(search.expires_at).isoformat(),
            "probe_kind": search.probe_kind,
            "probe_source": search.probe_source,
            "face": search.face,
            "top_k": search.top_k,
            "method": search.method,
            "status": search.status,
            "candidates": [_candidate_dict(c, viewer) for c in sorted(search.candidates, key=lambda c: c.rank)],
        }


def list_searches(store: Store, case_reference: str | None = None) -> list[dict]:
    query = select(RfrSearch).where(RfrSearch.deleted_at.is_(None)).order_by(RfrSearch.id.desc())
    if case_reference:
        query = query.where(RfrSearch.case_reference == case_reference)
    with store.session() as s:
        return [
            {
                "id": r.id,
                "case_reference": r.case_reference,
                "examiner": r.examiner,
                "created_at": utc(r.created_at).isoformat(),
                "status": r.status,
                "candidates": len(r.candidates),
                "possible_matches": sum(1 for c in r.candidates if c.decision == "possible-match"),
                "confirmed": sum(1 for c in r.candidates if c.confirmation == "confirmed"),
            }
            for r in s.scalars(query)
        ]


def probe_images(store: Store, search_id: int) -> list[bytes]:
    """JPEGs of the faces offered (before the choice) or of the chosen probe face (after). Audited."""
    with store.session() as s:
        search = _search(s, search_id)
        data = store.read_blob(search.probe_file, probe_context(search.id))
        kind, status, source = search.probe_kind, search.status, search.probe_source
        options = search.face.get("options", [])
    if status != "choose-face":
        crops = [data]
    elif kind == "video":
        crops = _unpack(data)
    else:
        image = decode_image(data, source)
        crops = [_jpeg(_crop(image, o["box"])) for o in options]
    audit.record(store, "rfr.view_probe", "rfr_search", search_id)
    return crops


def candidate_image(store: Store, candidate_id: int) -> bytes:
    """The candidate's custody image (decrypted). Audited by the custody service."""
    from openlfr.services.custody import custody_image_bytes

    with store.session() as s:
        candidate = s.get(RfrCandidate, candidate_id)
        if candidate is None:
            raise NotFoundError(f"candidate {candidate_id} does not exist")
        _search(s, candidate.search_id)
        image_id = candidate.custody_image_id
    if image_id is None:
        raise StoreError(f"candidate {candidate_id}'s custody image has since been deleted")
    return custody_image_bytes(store, image_id)


def candidate_detail(store: Store, candidate_id: int, viewer: str) -> dict:
    """A candidate as one examiner sees it: a confirming examiner does not see the first one's note."""
    with store.session() as s:
        c = s.get(RfrCandidate, candidate_id)
        if c is None:
            raise NotFoundError(f"candidate {candidate_id} does not exist")
        search = _search(s, c.search_id)
        return {**_candidate_dict(c, viewer), "search_id": search.id, "case_reference": search.case_reference,
                "search_status": search.status, "total": len(search.candidates)}  # fmt: skip


def decide(store: Store, candidate_id: int, decision: str, examiner: str, note: str | None = None) -> dict:
    """The first examiner's decision on one candidate: not a match, or a possible match."""
    if decision not in DECISIONS:
        raise OpenLFRError(f"unknown decision {decision!r}; choose one of {', '.join(DECISIONS)}")
    with store.session() as s:
        c = s.get(RfrCandidate, candidate_id)
        if c is None:
            raise NotFoundError(f"candidate {candidate_id} does not exist")
        search = _search(s, c.search_id)
        if search.status == "choose-face":
            raise StoreError("choose the probe face and run the search first")
        if c.confirmation is not None:
            raise StoreError(f"candidate {candidate_id} was already confirmed or rejected by {c.confirmed_by}; it cannot change")
        c.decision, c.decided_by, c.decided_at, c.note = decision, examiner, now_utc(), (note or None)
        result = _candidate_dict(c, examiner)
    audit.record(
        store, "rfr.decision", "rfr_candidate", candidate_id, {"decision": decision, "search": result["id"]}, actor=examiner
    )
    return result


def confirm(store: Store, candidate_id: int, agree: bool, examiner: str, note: str | None = None) -> dict:
    """A second examiner's independent view of a possible match; only then may it be reported."""
    with store.session() as s:
        c = s.get(RfrCandidate, candidate_id)
        if c is None:
            raise NotFoundError(f"candidate {candidate_id} does not exist")
        _search(s, c.search_id)
        if c.decision != "possible-match":
            raise StoreError(f"candidate {candidate_id} is not marked as a possible match; there is nothing to confirm")
        duties.check(duties.Step.CONFIRM, examiner, {duties.Step.DECIDE: c.decided_by})
        if c.confirmation is not None:
            raise StoreError(f"candidate {candidate_id} was already {c.confirmation} by {c.confirmed_by}")
        c.confirmation = "confirmed" if agree else "not-confirmed"
        c.confirmed_by, c.confirmed_at, c.confirmation_note = examiner, now_utc(), (note or None)
        result = _candidate_dict(c, examiner)
    audit.record(
        store, "rfr.confirmation", "rfr_candidate", candidate_id, {"confirmation": result["confirmation"]}, actor=examiner
    )
    return result


def complete_review(store: Store, search_id: int, examiner: str) -> dict:
    """Close the review: candidates not marked are recorded as not a match, by this examiner."""
    with store.session() as s:
        search = _search(s, search_id)
        if search.status == "choose-face":
            raise StoreError("choose the probe face and run the search first")
        now = now_utc()
        for c in search.candidates:
            if c.decision is None:
                c.decision, c.decided_by, c.decided_at = "not-a-match", examiner, now
        search.status = "reviewed"
    audit.record(store, "rfr.review_complete", "rfr_search", search_id, actor=examiner)
    return search_detail(store, search_id, examiner)


def case_report_html(store: Store, search_id: int, exported_by: str) -> str:
    """A self-contained HTML report for the case file: the search, the candidates, every decision and
    who made it. Only confirmed possible matches carry images; they are investigative leads, not
    identifications. Exported by an examiner who has yet to confirm a possible match, it hides that
    match's note from them as every page does."""
    detail = search_detail(store, search_id, exported_by)
    if detail["status"] == "choose-face":
        raise StoreError("the search has not been run yet")
    probe = probe_images(store, search_id)[0]

    candidates = []
    for c in detail["candidates"]:
        picture = None
        if c["confirmation"] == "confirmed" and c["custody_image_id"] is not None:
            picture = b64encode(candidate_image(store, c["id"])).decode()
        labels = {
            "decision_label": DECISIONS.get(c["decision"] or "", "not reviewed"),
            "confirmation_label": CONFIRMATIONS.get(c["confirmation"] or "", "—"),
        }
        candidates.append({**c, **labels, "picture": picture})
    confirmed = sum(1 for c in detail["candidates"] if c["confirmation"] == "confirmed")
    audit.record(store, "rfr.report_export", "rfr_search", search_id, {"confirmed": confirmed}, actor=exported_by)
    template = _reports.get_template("rfr_report.html")
    return template.render(d=detail, candidates=candidates, confirmed=confirmed, probe=b64encode(probe).decode(),
                           exported_by=exported_by, exported_at=now_utc().isoformat())  # fmt: skip


def delete_expired(store: Store, now: datetime | None = None) -> list[int]:
    """Delete searches past their retention date: the probe and the candidate list go; the audit trail stays."""
    now = now or now_utc()
    deleted: list[int] = []
    files: list[str] = []
    with store.session() as s:
        for search in s.scalars(select(RfrSearch).where(RfrSearch.deleted_at.is_(None), RfrSearch.expires_at <= now)):
            if search.probe_file:
                files.append(search.probe_file)
            search.probe_file = None
            search.face = {}
            search.candidates.clear()
            search.deleted_at = now
            s.add(DeletionLog(kind="rfr-search", record_id=search.id, files=1, reason="search results past retention"))
            deleted.append(search.id)
    for f in files:
        store.delete_blob(f)
    for search_id in deleted:
        audit.record(store, "retention.delete", "rfr_search", search_id, {"kind": "rfr-search"}, actor="system")
    return deleted
