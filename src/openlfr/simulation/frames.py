"""Compose LFW faces into full-HD frames whose ground truth is known exactly.

Why: a live deployment sees many small faces in a wide 1080p view, while LFW holds one large,
centred face per 250x250 photograph. Pasting scaled LFW faces onto a synthetic street-like
background gives frames with known identities, face boxes and landmarks at any face size, so
detection recall (and later the whole live pipeline) can be measured rather than guessed.

**Face size.** The *face box* of a source image is the box YuNet draws around its face: forehead
to chin, ear to ear. For LFW deep-funneled images (which are aligned, so the face sits in the same
place in every image) the mean box measured with YuNet on 400 random images at native resolution
is :data:`LFW_FACE_BOX` = (78.9, 66.1, 94.3, 124.7) as x, y, width, height, with a spread of about
8 px (1 sd) in width between images. "A face N px wide" means the source image is scaled so that
its face box is N px wide: by ``N / 94.3`` for LFW (e.g. 40 px: the 250x250 image becomes 106x106).
The inter-eye distance is then about ``0.46 * N`` (43.3 px at 94.3 px width). Truth boxes and
landmarks are the source ones mapped through the exact scale and offset used for pasting.

**Coordinates.** Continuous pixel coordinates: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``,
so a point at ``x`` in the source lands at ``offset + x * (pasted_width / source_width)``.

**Pasting.** Each face is blended in with a feathered elliptical mask around the head (no hard
rectangle edge for a detector to latch onto); the mask also fades out most bystanders at the edge
of the LFW photographs. Faces never overlap (their pasted patches are disjoint, with a margin).
Sensor noise is added over the whole frame after compositing, so faces and background share it.

Everything is driven by a ``numpy.random.Generator``: the same seed gives the same frame.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from openlfr.media.images import load_image

#: Full-HD frame size as (width, height).
FRAME_SIZE = (1920, 1080)

#: Mean YuNet face box (x, y, w, h) in a 250x250 LFW deep-funneled image (400 images, seed 0).
LFW_FACE_BOX: tuple[float, float, float, float] = (78.9, 66.1, 94.3, 124.7)

#: Mean YuNet landmarks in the same images: right eye, left eye, nose, right and left mouth corner.
LFW_LANDMARKS = np.array([[104.5, 112.6], [147.7, 111.9], [126.0, 136.8], [108.5, 156.5], [145.5, 156.4]], dtype=np.float32)
LFW_LANDMARKS.flags.writeable = False

#: Head ellipse relative to the face box: centre offset and semi-axes, in box widths/heights.
#: It reaches up to the hairline and out to the ears; beyond it the LFW photograph fades out.
_HEAD_CENTRE = (0.5, 0.43)
_HEAD_AXES = (0.70, 0.62)
#: Feathering of the mask edge, as a fraction of the face box width.
_FEATHER = 0.08


@dataclass(frozen=True)
class FaceSource:
    """A source photograph and where its face is, in the photograph's own pixel coordinates."""

    image: np.ndarray  # BGR uint8
    identity: str
    path: str | None = None
    box: tuple[float, float, float, float] = LFW_FACE_BOX
    landmarks: np.ndarray = field(default_factory=lambda: LFW_LANDMARKS.copy())


@dataclass(frozen=True)
class FaceTruth:
    """Ground truth for one face pasted into a frame, in frame pixel coordinates."""

    identity: str
    path: str | None
    box: tuple[float, float, float, float]  # x, y, width, height of the face box
    landmarks: np.ndarray  # (5, 2) float32, same order as Detection.landmarks
    patch: tuple[int, int, int, int]  # x, y, width, height of the pasted region (mask support)

    @property
    def face_width_px(self) -> float:
        return self.box[2]

    @property
    def inter_eye_px(self) -> float:
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))


# --------------------------------------------------------------------------------------------
# Sources


def _images_dir(root: str | Path) -> Path:
    """Accept the LFW folder itself, its parent data folder, or the ``lfw-deepfunneled`` folder."""
    root = Path(root).expanduser()
    for candidate in (root / "lfw-deepfunneled", root / "lfw" / "lfw-deepfunneled", root):
        if candidate.is_dir() and any(candidate.glob("*/*.jpg")):
            return candidate
    raise FileNotFoundError(f"no LFW deep-funneled images (<Name>/<Name>_NNNN.jpg) under {root}")


@functools.lru_cache(maxsize=4)
def _lfw_index(images_dir: Path) -> tuple[Path, ...]:
    return tuple(sorted(images_dir.glob("*/*.jpg")))


def lfw_image_paths(root: str | Path) -> list[Path]:
    """All LFW deep-funneled image paths under ``root``, sorted (so picks are reproducible)."""
    return list(_lfw_index(_images_dir(root).resolve()))


def pick_lfw_faces(root: str | Path, n: int, rng: np.random.Generator, distinct: bool = True) -> list[FaceSource]:
    """``n`` random LFW faces; with ``distinct`` no identity appears twice (as in one crowd scene)."""
    paths = lfw_image_paths(root)
    chosen: list[Path] = []
    seen: set[str] = set()
    for i in rng.permutation(len(paths)):
        path = paths[int(i)]
        identity = path.parent.name
        if distinct and identity in seen:
            continue
        seen.add(identity)
        chosen.append(path)
        if len(chosen) == n:
            break
    if len(chosen) < n:
        raise ValueError(f"asked for {n} faces but only {len(chosen)} are available under {root}")
    return [FaceSource(load_image(p), p.parent.name, str(p)) for p in chosen]


def as_source(face: FaceSource | np.ndarray, index: int = 0) -> FaceSource:
    """A bare image is taken to be LFW-like: its face box is :data:`LFW_FACE_BOX` scaled to its size."""
    if isinstance(face, FaceSource):
        return face
    h, w = face.shape[:2]
    sx, sy = w / 250.0, h / 250.0
    x, y, bw, bh = LFW_FACE_BOX
    return FaceSource(
        image=face,
        identity=f"face-{index}",
        box=(x * sx, y * sy, bw * sx, bh * sy),
        landmarks=(LFW_LANDMARKS * np.array([sx, sy], dtype=np.float32)).astype(np.float32),
    )


# --------------------------------------------------------------------------------------------
# Background


def make_background(rng: np.random.Generator, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """A plausible, face-free, non-uniform scene: gradient light, soft texture, blurred and sharp shapes.

    Why not flat grey: a flat background makes detection unrealistically easy (nothing to confuse
    the detector) and hides false detections. Shapes are drawn at half resolution and scaled up,
    which keeps a 1080p background to a few tens of milliseconds.
    """
    width, height = size
    hw, hh = max(1, width // 2), max(1, height // 2)
    # Lighting: a linear gradient between two colours along a random direction.
    yy, xx = np.mgrid[0:hh, 0:hw].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(angle) + yy * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    c0, c1 = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    canvas = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    # Soft texture: low-frequency noise, like uneven paving, walls and shadows.
    # Mostly brightness, a little colour, as in real scenes.
    grid = (max(2, hh // 24), max(2, hw // 24))
    coarse = rng.normal(0, 16, (*grid, 1)) + rng.normal(0, 5, (*grid, 3))
    canvas += cv2.resize(coarse.astype(np.float32), (hw, hh), interpolation=cv2.INTER_CUBIC)
    canvas = np.clip(canvas, 0, 255).astype(np.uint8)
    # Shapes: rectangles (windows, signs, doors), circles (lamps, bags) and lines (poles, edges).
    for _ in range(int(rng.integers(25, 45))):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 3)
        x, y = int(rng.integers(0, hw)), int(rng.integers(0, hh))
        if kind == 0:
            w, h = int(rng.integers(10, hw // 4)), int(rng.integers(10, hh // 3))
            cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, -1 if rng.random() < 0.7 else 3)
        elif kind == 1:
            cv2.circle(canvas, (x, y), int(rng.integers(5, hh // 8)), colour, -1, lineType=cv2.LINE_AA)
        else:
            x2, y2 = int(rng.integers(0, hw)), int(rng.integers(0, hh))
            cv2.line(canvas, (x, y), (x2, y2), colour, int(rng.integers(1, 8)), lineType=cv2.LINE_AA)
    sigma = float(rng.uniform(0.8, 3.0))
    canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------------------------
# Pasting


def _scaled_size(source: FaceSource, face_width_px: float) -> tuple[int, int]:
    scale = face_width_px / source.box[2]
    h, w = source.image.shape[:2]
    return max(1, round(w * scale)), max(1, round(h * scale))


def _head_mask(source: FaceSource, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Feathered elliptical alpha (float32, 0-1) at the pasted size, and its support rectangle."""
    w, h = size
    sx, sy = w / source.image.shape[1], h / source.image.shape[0]
    bx, by, bw, bh = source.box
    cx, cy = (bx + _HEAD_CENTRE[0] * bw) * sx, (by + _HEAD_CENTRE[1] * bh) * sy
    ax, ay = _HEAD_AXES[0] * bw * sx, _HEAD_AXES[1] * bh * sy
    feather = max(0.6, _FEATHER * bw * sx)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Signed distance (approximately, in pixels) from the ellipse edge, negative inside.
    r = np.sqrt(((xx + 0.5 - cx) / ax) ** 2 + ((yy + 0.5 - cy) / ay) ** 2)
    dist = (r - 1.0) * min(ax, ay)
    alpha = np.clip(0.5 - dist / (2 * feather), 0.0, 1.0)
    ys, xs = np.nonzero(alpha > 0)
    if len(xs) == 0:
        return alpha, (0, 0, w, h)
    x0, y0 = int(xs.min()), int(ys.min())
    return alpha, (x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0)


def patch_extent(source: FaceSource, face_width_px: float) -> tuple[int, int, int, int]:
    """Where the visible (masked) part of a face lies inside its scaled image: x, y, width, height.

    Placement uses this so faces can be packed without overlapping.
    """
    return _head_mask(source, _scaled_size(source, face_width_px))[1]


def paste_face(frame: np.ndarray, source: FaceSource, face_width_px: float, top_left: tuple[int, int]) -> FaceTruth:
    """Blend ``source`` into ``frame`` in place, its scaled image's corner at ``top_left``; return the truth.

    The image is shrunk with area interpolation (what a camera's optics and sensor do to a distant
    face) and enlarged with cubic interpolation. Parts falling outside the frame are clipped.
    """
    size = _scaled_size(source, face_width_px)
    w, h = size
    src_h, src_w = source.image.shape[:2]
    interp = cv2.INTER_AREA if w < src_w else cv2.INTER_CUBIC
    scaled = cv2.resize(source.image, size, interpolation=interp)
    alpha, patch = _head_mask(source, size)
    ox, oy = top_left
    fh, fw = frame.shape[:2]
    # Intersect the scaled image with the frame.
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(fw, ox + w), min(fh, oy + h)
    if x1 > x0 and y1 > y0:
        a = alpha[y0 - oy : y1 - oy, x0 - ox : x1 - ox, None]
        region = frame[y0:y1, x0:x1].astype(np.float32)
        face = scaled[y0 - oy : y1 - oy, x0 - ox : x1 - ox].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region + a * (face - region) + 0.5, 0, 255).astype(np.uint8)
    sx, sy = w / src_w, h / src_h
    bx, by, bw, bh = source.box
    box = (ox + bx * sx, oy + by * sy, bw * sx, bh * sy)
    landmarks = source.landmarks * np.array([sx, sy], dtype=np.float32) + np.array([ox, oy], dtype=np.float32)
    px, py, pw, ph = patch
    return FaceTruth(source.identity, source.path, box, landmarks.astype(np.float32), (ox + px, oy + py, pw, ph))


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], margin: int) -> bool:
    return not (
        a[0] + a[2] + margin <= b[0]
        or b[0] + b[2] + margin <= a[0]
        or a[1] + a[3] + margin <= b[1]
        or b[1] + b[3] + margin <= a[1]
    )


def place_patches(
    extents: Sequence[tuple[int, int]],
    rng: np.random.Generator,
    size: tuple[int, int] = FRAME_SIZE,
    margin: int = 8,
    tries: int = 2000,
) -> list[tuple[int, int]]:
    """Random non-overlapping top-left corners for rectangles of the given (width, height).

    Largest first, by rejection sampling; raises ``ValueError`` when they cannot all be fitted,
    rather than silently returning fewer faces than asked for.
    """
    width, height = size
    order = sorted(range(len(extents)), key=lambda i: -extents[i][0] * extents[i][1])
    placed: list[tuple[int, int, int, int]] = []
    corners: list[tuple[int, int]] = [(0, 0)] * len(extents)
    for i in order:
        w, h = extents[i]
        if w + 2 * margin > width or h + 2 * margin > height:
            raise ValueError(f"a {w}x{h} face patch does not fit in a {width}x{height} frame")
        for _ in range(tries):
            x = int(rng.integers(margin, width - w - margin + 1))
            y = int(rng.integers(margin, height - h - margin + 1))
            rect = (x, y, w, h)
            if not any(_overlaps(rect, other, margin) for other in placed):
                placed.append(rect)
                corners[i] = (x, y)
                break
        else:
            raise ValueError(f"could not place {len(extents)} non-overlapping faces in a {width}x{height} frame")
    return corners


def add_sensor_noise(frame: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """``frame`` plus Gaussian noise of ``std`` grey levels, rounded and saturated (a new array).

    OpenCV's generator (seeded from ``rng``, so still deterministic) is used because it is
    several times faster than NumPy's for the 6 million values of a 1080p frame.
    """
    h = frame.shape[0]
    cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
    noise = np.empty((h, frame.size // h), dtype=np.float32)
    cv2.randn(noise, 0.0, float(std))
    return cv2.add(frame.reshape(h, -1), noise, dtype=cv2.CV_8U).reshape(frame.shape)


def compose_frame(
    faces: Sequence[FaceSource | np.ndarray],
    face_width_px: float | Sequence[float],
    rng: np.random.Generator,
    background: np.ndarray | None = None,
    size: tuple[int, int] = FRAME_SIZE,
    noise_std: float = 2.0,
) -> tuple[np.ndarray, list[FaceTruth]]:
    """A BGR uint8 frame with every face pasted once, and one :class:`FaceTruth` per face, in order.

    ``face_width_px`` is one width for all faces or one per face (see the module notes for what
    the width measures). ``background`` (copied, never modified) defaults to :func:`make_background`.
    """
    sources = [as_source(f, i) for i, f in enumerate(faces)]
    widths = (
        [float(face_width_px)] * len(sources) if isinstance(face_width_px, int | float) else [float(w) for w in face_width_px]
    )
    if len(widths) != len(sources):
        raise ValueError(f"{len(widths)} face widths given for {len(sources)} faces")
    if background is None:
        frame = make_background(rng, size)
    else:
        if background.shape[:2] != (size[1], size[0]):
            raise ValueError(f"background is {background.shape[1]}x{background.shape[0]}, frame is {size[0]}x{size[1]}")
        frame = background.copy()
    patches = [patch_extent(s, w) for s, w in zip(sources, widths, strict=True)]
    corners = place_patches([(p[2], p[3]) for p in patches], rng, size)
    truths = []
    for source, width, patch, (x, y) in zip(sources, widths, patches, corners, strict=True):
        # Shift so the visible patch (not the whole scaled image) lands on the placed rectangle.
        truths.append(paste_face(frame, source, width, (x - patch[0], y - patch[1])))
    if noise_std > 0:
        frame = add_sensor_noise(frame, noise_std, rng)
    return frame, truths
