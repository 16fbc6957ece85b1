"""Walk-by videos: LFW faces crossing a 1080p scene, with exact ground truth, to test the live pipeline.

A *pass* is one person in view once: they appear at a point, walk in a straight line for a few
seconds (growing slightly as they approach the camera) and leave. Each pass has its own in-plane
tilt, a horizontal squeeze standing in for a slight head turn, blur and lighting. Passes are
scheduled so that no two faces overlap on screen. Watchlisted people walk past showing one LFW
photograph and are enrolled from *other* photographs of themselves, as a real watchlist holds a
custody image rather than the camera's view.

A *large watchlist* (``watchlist_size`` W above the number of watchlisted passers-by K) holds W LFW
identities, one reference image each, as forces' watchlists of thousands do: K of them walk past, and
everyone else who walks past is drawn from identities not on it (nor listed as the same person as
someone on it: see :mod:`openlfr.evaluation.aliases`), so every alert for anyone else is a false one.
Reference images refused by the quality checks at enrolment are replaced from a *reserve* of further
identities, so the watchlist enrolled holds W people.

Everything follows from the seed: the same arguments give the same video and the same truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from openlfr.media.images import load_image
from openlfr.simulation.frames import (
    FRAME_SIZE,
    LFW_FACE_BOX,
    LFW_LANDMARKS,
    FaceSource,
    add_sensor_noise,
    lfw_image_paths,
    make_background,
    paste_face,
    patch_extent,
)

if TYPE_CHECKING:
    from openlfr.evaluation.aliases import AliasList


@dataclass
class Pass:
    index: int
    identity: str
    image: str  # the LFW photograph shown to the camera
    watchlisted: bool
    t_enter: float
    t_exit: float
    start: tuple[float, float]  # top-left of the scaled source image at t_enter
    velocity: tuple[float, float]  # px/s
    width_start: float  # face box width in px
    width_end: float
    tilt_deg: float
    squeeze: float  # horizontal scale of the face, < 1 looks like a slight turn
    blur_sigma: float  # in frame pixels
    gain: float  # brightness factor

    def at(self, t: float) -> tuple[tuple[float, float], float]:
        """Top-left of the scaled image and face width at time ``t``."""
        f = (t - self.t_enter) / max(self.t_exit - self.t_enter, 1e-9)
        width = self.width_start + f * (self.width_end - self.width_start)
        dt = t - self.t_enter
        return (self.start[0] + self.velocity[0] * dt, self.start[1] + self.velocity[1] * dt), width


@dataclass
class Scenario:
    duration_s: float
    fps: float
    size: tuple[int, int]
    seed: int
    passes: list[Pass]
    watchlist: dict[str, list[str]]  # identity -> LFW photographs to enrol (never the one shown)
    min_face_px: float
    max_face_px: float
    notes: dict = field(default_factory=dict)
    #: Subjects the enrolled watchlist must hold; None: everyone in ``watchlist`` (small walk-bys).
    watchlist_size: int | None = None
    #: Reference images enrolled per subject: the first ones of their list that pass the quality
    #: checks; None: every listed photograph.
    references_per_subject: int | None = None
    #: Identities (never passing the camera) enrolled in order, only to replace watchlist subjects
    #: none of whose photographs passed the quality checks, until the watchlist holds ``watchlist_size``.
    reserve: dict[str, list[str]] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return round(self.duration_s * self.fps)

    @property
    def target_watchlist_size(self) -> int:
        return len(self.watchlist) if self.watchlist_size is None else self.watchlist_size

    @property
    def watchlisted_passes(self) -> int:
        return sum(1 for p in self.passes if p.watchlisted)

    def to_json(self) -> dict:
        data = asdict(self)
        data["frames"] = self.frames
        return data

    @classmethod
    def from_json(cls, data: dict) -> Scenario:
        data = dict(data)
        data.pop("frames", None)
        data["passes"] = [Pass(**{**p, "start": tuple(p["start"]), "velocity": tuple(p["velocity"])}) for p in data["passes"]]
        data["size"] = tuple(data["size"])
        return cls(**data)


def _footprint(p: Pass, ext: tuple[int, int, int, int], scale_w: float) -> tuple[float, float, float, float]:
    """Screen rectangle swept by a pass's visible patch (x0, y0, x1, y1), with the patch at its largest.

    ``ext`` is the patch extent for a 100-px-wide face and ``scale_w`` the pass's largest width / 100.
    """
    (x0, y0), _ = p.at(p.t_enter)
    (x1, y1), _ = p.at(p.t_exit)
    ex, ey, ew, eh = (v * scale_w for v in ext)
    return (min(x0, x1) + ex, min(y0, y1) + ey, max(x0, x1) + ex + ew, max(y0, y1) + ey + eh)


def plan(
    lfw_root: str | Path,
    duration_s: float = 300.0,
    people: int = 300,
    watchlisted: int = 20,
    min_face_px: float = 40.0,
    max_face_px: float = 160.0,
    fps: float = 25.0,
    seed: int = 1,
    size: tuple[int, int] = FRAME_SIZE,
    time_in_view: tuple[float, float] = (2.5, 4.0),
    watchlist_size: int | None = None,
    aliases: AliasList | None = None,
) -> Scenario:
    """Choose who passes, when, where and how; no pixels yet.

    ``watchlist_size`` (default: ``watchlisted``) above ``watchlisted`` builds a large watchlist (see the
    module's docstring); ``aliases`` (default: the shipped LFW list, when there is one) names identities
    that are one person, none of whom may pass as a stranger to someone on it.
    """
    if not 0 <= watchlisted <= people:
        raise ValueError("watchlisted must be between 0 and the number of people")
    if watchlist_size is not None and watchlist_size < watchlisted:
        raise ValueError("the watchlist must hold at least the watchlisted passers-by")
    rng = np.random.default_rng(seed)
    by_person: dict[str, list[Path]] = {}
    for path in lfw_image_paths(lfw_root):
        by_person.setdefault(path.parent.name, []).append(path)
    if watchlist_size is not None and watchlist_size > watchlisted:
        cast = _large_watchlist(rng, by_person, people, watchlisted, watchlist_size, aliases)
    else:
        cast = _small_watchlist(rng, by_person, people, watchlisted)
    wanted, others, watchlist, shown = cast.wanted, cast.others, cast.watchlist, cast.shown
    order = list(wanted) + list(others)
    rng.shuffle(order)
    width, height = size
    placed: list[tuple[Pass, tuple[float, float, float, float]]] = []
    passes: list[Pass] = []
    # Extent of the visible patch for a 1-px-wide face (scaled later): same for all LFW images.
    probe = FaceSource(np.zeros((250, 250, 3), np.uint8), "probe", box=LFW_FACE_BOX, landmarks=LFW_LANDMARKS.copy())
    ext = patch_extent(probe, 100.0)
    slot = duration_s / max(people, 1)
    for i, name in enumerate(order):
        for attempt in range(400):
            in_view = float(rng.uniform(*time_in_view))
            t_enter = float(np.clip(i * slot + rng.uniform(-slot, slot) + attempt * 0.05, 0, duration_s - in_view))
            w0 = float(np.exp(rng.uniform(np.log(min_face_px), np.log(max_face_px / 1.15))))
            w1 = float(min(max_face_px, w0 * rng.uniform(1.0, 1.15)))
            scale = w1 / LFW_FACE_BOX[2]
            speed = float(rng.uniform(120, 420))
            angle = float(rng.uniform(-0.35, 0.35)) + (0 if rng.random() < 0.5 else np.pi)
            vx, vy = speed * np.cos(angle), speed * np.sin(angle) * 0.5
            span_x, span_y = abs(vx) * in_view, abs(vy) * in_view
            lo_x, hi_x = -ext[0] * scale, width - (ext[0] + ext[2]) * scale - span_x
            lo_y, hi_y = -ext[1] * scale, height - (ext[1] + ext[3]) * scale - span_y
            if hi_x <= lo_x or hi_y <= lo_y:
                continue
            sx, sy = float(rng.uniform(lo_x, hi_x)), float(rng.uniform(lo_y, hi_y))
            start = (sx if vx >= 0 else sx + span_x, sy if vy >= 0 else sy + span_y)
            candidate = Pass(
                index=i,
                identity=name,
                image=shown[name],
                watchlisted=name in watchlist,
                t_enter=round(t_enter, 3),
                t_exit=round(t_enter + in_view, 3),
                start=(round(start[0], 1), round(start[1], 1)),
                velocity=(round(float(vx), 1), round(float(vy), 1)),
                width_start=round(w0, 1),
                width_end=round(w1, 1),
                tilt_deg=round(float(rng.normal(0, 5)), 1),
                squeeze=round(float(rng.uniform(0.85, 1.0)), 3),
                blur_sigma=round(float(rng.uniform(0, 1.0)), 2),
                gain=round(float(rng.uniform(0.7, 1.2)), 2),
            )
            rect = _footprint(candidate, ext, w1 / 100.0)
            margin = 12
            clash = any(
                not (candidate.t_exit + 0.2 <= q.t_enter or q.t_exit + 0.2 <= candidate.t_enter)
                and not (
                    rect[2] + margin <= r[0] or r[2] + margin <= rect[0] or rect[3] + margin <= r[1] or r[3] + margin <= rect[1]
                )
                for q, r in placed
            )
            if not clash:
                placed.append((candidate, rect))
                passes.append(candidate)
                break
        else:
            raise ValueError(f"could not fit {people} people into {duration_s:.0f} s without overlaps; allow more time")
    passes.sort(key=lambda p: p.t_enter)
    for n, p in enumerate(passes):
        p.index = n
    return Scenario(
        duration_s,
        fps,
        size,
        seed,
        passes,
        watchlist,
        min_face_px,
        max_face_px,
        notes=cast.notes,
        watchlist_size=cast.size,
        references_per_subject=cast.references_per_subject,
        reserve=cast.reserve,
    )


@dataclass
class _Cast:
    """Who walks past (watchlisted first), who is enrolled from which photographs, and what each shows."""

    wanted: list[str]
    others: list[str]
    watchlist: dict[str, list[str]]
    shown: dict[str, str]
    size: int | None = None  # a large watchlist's size; None: the watchlisted passers-by
    references_per_subject: int | None = None
    reserve: dict[str, list[str]] = field(default_factory=dict)
    notes: dict = field(default_factory=dict)


def _small_watchlist(rng: np.random.Generator, by_person: dict[str, list[Path]], people: int, watchlisted: int) -> _Cast:
    """The watchlist is the watchlisted passers-by, each enrolled from up to 3 other photographs.

    Draws are in the same order as before large watchlists existed: a seed gives the same video as then.
    """
    names = sorted(by_person)
    multi = [n for n in names if len(by_person[n]) >= 2]
    wanted = [multi[i] for i in rng.permutation(len(multi))[:watchlisted]]
    others_pool = [n for n in names if n not in set(wanted)]
    others = [others_pool[i] for i in rng.permutation(len(others_pool))[: people - watchlisted]]
    watchlist: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for name in wanted:
        photos = [str(p) for p in by_person[name]]
        pick = int(rng.integers(len(photos)))
        shown[name] = photos[pick]
        watchlist[name] = [p for i, p in enumerate(photos) if i != pick][:3]
    for name in others:
        photos = by_person[name]
        shown[name] = str(photos[int(rng.integers(len(photos)))])
    return _Cast(wanted, others, watchlist, shown)


#: Candidate reference photographs listed per subject of a large watchlist: the first that passes the
#: quality checks is enrolled (LFW photographs often show a second face, which enrolment refuses).
CANDIDATES = 3


def _large_watchlist(
    rng: np.random.Generator,
    by_person: dict[str, list[Path]],
    people: int,
    watchlisted: int,
    size: int,
    aliases: AliasList | None,
) -> _Cast:
    """W subjects with one reference each, K of whom walk past; strangers from everyone else.

    Subjects are drawn from identities with two or more photographs (so any could be one who walks past
    showing another photograph), then, beyond those, from identities with one.
    """
    names = sorted(by_person)
    multi = [n for n in names if len(by_person[n]) >= 2]
    single = [n for n in names if len(by_person[n]) < 2]
    wanted = [multi[i] for i in rng.permutation(len(multi))[:watchlisted]]
    chosen = set(wanted)
    rest = [n for n in multi if n not in chosen]
    extra = [rest[i] for i in rng.permutation(len(rest))]
    extra += [single[i] for i in rng.permutation(len(single))]
    # Reserve for subjects refused at enrolment: about 1 in 6 LFW photographs is (a second face, quality).
    reserve_n = (size - watchlisted) // 4 + 10
    members, reserve_names = extra[: size - watchlisted], extra[size - watchlisted : size - watchlisted + reserve_n]
    if len(members) < size - watchlisted:
        raise ValueError(f"LFW holds {len(names)} identities: a watchlist of {size} leaves none to pass as strangers")
    listed = set(wanted) | set(members) | set(reserve_names)
    same = _same_people(aliases, listed)
    others_pool = [n for n in names if n not in listed and n not in same]
    if len(others_pool) < people - watchlisted:
        raise ValueError(
            f"only {len(others_pool)} identities are left off a watchlist of {size} (and its reserve); "
            f"{people - watchlisted} strangers are needed: lower --people or --watchlist-size"
        )
    others = [others_pool[i] for i in rng.permutation(len(others_pool))[: people - watchlisted]]
    watchlist: dict[str, list[str]] = {}
    shown: dict[str, str] = {}
    for name in wanted:
        photos = [str(p) for p in by_person[name]]
        pick = int(rng.integers(len(photos)))
        shown[name] = photos[pick]
        rest_photos = [p for i, p in enumerate(photos) if i != pick]
        watchlist[name] = [rest_photos[i] for i in rng.permutation(len(rest_photos))[:CANDIDATES]]
    for name in members:
        photos = [str(p) for p in by_person[name]]
        watchlist[name] = [photos[i] for i in rng.permutation(len(photos))[:CANDIDATES]]
    reserve = {n: [str(p) for p in by_person[n]][:CANDIDATES] for n in reserve_names}
    for name in others:
        photos = by_person[name]
        shown[name] = str(photos[int(rng.integers(len(photos)))])
    notes = {
        "watchlist": f"{size} subjects, one reference image each; {watchlisted} of them walk past showing another photograph",
        "strangers": "drawn from identities not on the watchlist or its reserve, nor listed as the same person as one",
        "aliases_left_out": sorted(same),
    }
    return _Cast(wanted, others, watchlist, shown, size, references_per_subject=1, reserve=reserve, notes=notes)


def _same_people(aliases: AliasList | None, listed: set[str]) -> set[str]:
    """Identities not in ``listed`` that an alias list names as the same person (or photograph) as one in it."""
    from openlfr.evaluation import aliases as alias_lists

    if aliases is None:
        aliases = alias_lists.read(alias_lists.SHIPPED_LFW) if alias_lists.SHIPPED_LFW.is_file() else alias_lists.NONE
    same: set[str] = set()
    for a, b, _kind in aliases.entries:
        names = {alias_lists.identity_of(a), alias_lists.identity_of(b)}
        if names & listed:
            same |= names - listed
    return same


def _prepared_source(p: Pass) -> FaceSource:
    """The photograph tilted, squeezed, blurred and lit as this pass shows it, with its landmarks moved too."""
    image = load_image(p.image)
    h, w = image.shape[:2]
    centre = (LFW_FACE_BOX[0] + LFW_FACE_BOX[2] / 2, LFW_FACE_BOX[1] + LFW_FACE_BOX[3] / 2)
    rotation = cv2.getRotationMatrix2D(centre, p.tilt_deg, 1.0)
    squeeze = np.array([[p.squeeze, 0.0, centre[0] * (1 - p.squeeze)], [0.0, 1.0, 0.0]])
    matrix = np.hstack([squeeze[:, :2] @ rotation[:, :2], (squeeze[:, :2] @ rotation[:, 2] + squeeze[:, 2])[:, None]])
    image = cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    scale_to_frame = ((p.width_start + p.width_end) / 2) / LFW_FACE_BOX[2]
    if p.blur_sigma > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), p.blur_sigma / max(scale_to_frame, 1e-3))
    image = np.clip(image.astype(np.float32) * p.gain, 0, 255).astype(np.uint8)
    pts = np.hstack([LFW_LANDMARKS, np.ones((5, 1), np.float32)]) @ matrix.T
    bx, by, bw, bh = LFW_FACE_BOX
    cx = matrix[0, 0] * (bx + bw / 2) + matrix[0, 1] * (by + bh / 2) + matrix[0, 2]
    box = (cx - bw * p.squeeze / 2, by, bw * p.squeeze, bh)
    return FaceSource(image, p.identity, p.image, box=box, landmarks=pts.astype(np.float32))


def render(
    scenario: Scenario,
    video_path: str | Path,
    progress: Callable[[int, int], None] | None = None,
    noise_std: float = 3.0,
) -> Path:
    """Write the scenario as an MP4 (H.264 when OpenCV has it, else MPEG-4 Part 2) and return its path."""
    video_path = Path(video_path)
    video_path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(scenario.seed + 1)
    background = make_background(rng, scenario.size)
    noisy = [add_sensor_noise(background, noise_std, rng) for _ in range(6)]
    writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), scenario.fps, scenario.size)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video to {video_path}")
    sources: dict[int, FaceSource] = {}
    passes = sorted(scenario.passes, key=lambda p: p.t_enter)
    next_pass = 0
    active: list[Pass] = []
    try:
        for n in range(scenario.frames):
            t = n / scenario.fps
            while next_pass < len(passes) and passes[next_pass].t_enter <= t:
                active.append(passes[next_pass])
                next_pass += 1
            for p in [p for p in active if p.t_exit < t]:
                active.remove(p)
                sources.pop(p.index, None)
            frame = noisy[n % len(noisy)].copy()
            for p in active:
                if p.index not in sources:
                    sources[p.index] = _prepared_source(p)
                (x, y), width = p.at(t)
                paste_face(frame, sources[p.index], width, (round(x), round(y)))
            writer.write(frame)
            if progress:
                progress(n + 1, scenario.frames)
    finally:
        writer.release()
    return video_path


def write(scenario: Scenario, out_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> dict[str, Path]:
    """Render the video and write the truth JSON; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    video = render(scenario, out / "walkby.mp4", progress)
    truth = out / "truth.json"
    truth.write_text(json.dumps(scenario.to_json(), indent=1))
    return {"video": video, "truth": truth}
