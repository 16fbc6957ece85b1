"""The synthetic frame generator: deterministic, exact truth, no overlaps, faces the size asked for.

Most tests use small drawn stand-in faces so they run without any data; the LFW tests need
OPENLFR_TEST_DATA (skipped when unset, failed when set but the data is not there).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from openlfr.simulation import (
    FRAME_SIZE,
    LFW_FACE_BOX,
    FaceSource,
    FaceTruth,
    compose_frame,
    lfw_image_paths,
    make_background,
    pick_lfw_faces,
    place_patches,
)


def drawn_face(seed: int, size: int = 250) -> np.ndarray:
    """A 250x250 stand-in photograph with a bright oval where LFW's face box is."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), rng.integers(20, 80, 3), dtype=np.uint8)
    x, y, w, h = LFW_FACE_BOX
    centre = (round(x + w / 2), round(y + h / 2))
    cv2.ellipse(image, centre, (round(w / 2), round(h / 2)), 0, 0, 360, (150, 170, 210), -1)
    for ex in (-0.23, 0.23):
        cv2.circle(image, (round(centre[0] + ex * w), round(y + 0.37 * h)), 5, (40, 40, 40), -1)
    return image


def disjoint(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]


def inside_frame(t: FaceTruth, size: tuple[int, int] = FRAME_SIZE) -> bool:
    x, y, w, h = t.patch
    bx, by, bw, bh = t.box
    patch_in = min(x, y) >= 0 and x + w <= size[0] and y + h <= size[1]
    box_in = min(bx, by) >= 0 and bx + bw <= size[0] and by + bh <= size[1]
    points_in = bool(np.all(t.landmarks >= 0)) and bool(np.all(t.landmarks < np.array(size)))
    return patch_in and box_in and points_in


FACES = [drawn_face(i) for i in range(12)]


def test_same_seed_same_frame_and_truth() -> None:
    a, ta = compose_frame(FACES, 40, np.random.default_rng(7))
    b, tb = compose_frame(FACES, 40, np.random.default_rng(7))
    c, _ = compose_frame(FACES, 40, np.random.default_rng(8))
    assert a.shape == (1080, 1920, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert [t.box for t in ta] == [t.box for t in tb]
    assert all(np.array_equal(x.landmarks, y.landmarks) for x, y in zip(ta, tb, strict=True))
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("width", [24, 40, 100])
def test_truth_inside_frame_without_overlap_and_sized_right(width: int) -> None:
    _, truths = compose_frame(FACES, width, np.random.default_rng(width))
    assert len(truths) == len(FACES)
    for t in truths:
        assert inside_frame(t)
        # The box is the requested width up to the rounding of the scaled image to whole pixels.
        assert abs(t.face_width_px - width) <= LFW_FACE_BOX[2] / 250 + 1e-6
        assert t.box[3] / t.box[2] == pytest.approx(LFW_FACE_BOX[3] / LFW_FACE_BOX[2], rel=0.02)
        x, y, w, h = t.box
        assert np.all(t.landmarks[:, 0] > x) and np.all(t.landmarks[:, 0] < x + w)
        assert np.all(t.landmarks[:, 1] > y) and np.all(t.landmarks[:, 1] < y + h)
        # The patch holds the whole face box: nothing of the face is cut off by the mask's support.
        px, py, pw, ph = t.patch
        assert px <= x and py <= y and x + w <= px + pw and y + h <= py + ph
    for i, a in enumerate(truths):
        for b in truths[i + 1 :]:
            assert disjoint(a.patch, b.patch)


def test_face_is_pasted_where_the_truth_says() -> None:
    """The oval drawn over LFW's face box must appear under the truth box, background elsewhere."""
    rng = np.random.default_rng(3)
    background = np.zeros((1080, 1920, 3), dtype=np.uint8)
    frame, truths = compose_frame(FACES[:4], 60, rng, background=background, noise_std=0)
    for t in truths:
        x, y, w, h = t.box
        cx, cy = round(x + w / 2), round(y + h * 0.7)  # the cheeks: skin, clear of the eyes
        assert tuple(frame[cy, cx]) == pytest.approx((150, 170, 210), abs=3)
        px, py = t.patch[:2]
        assert tuple(frame[py - 2, px - 2]) == (0, 0, 0)


def test_mask_is_feathered_not_a_rectangle() -> None:
    """Along the patch's edge, the face image must fade into the background, not stop in a hard line."""
    background = np.zeros((1080, 1920, 3), dtype=np.uint8)
    white = [np.full((250, 250, 3), 255, dtype=np.uint8)]
    frame, (t,) = compose_frame(white, 100, np.random.default_rng(0), background=background, noise_std=0)
    px, py, pw, ph = t.patch
    grey = frame[py : py + ph, px : px + pw, 0].astype(int)
    assert grey[ph // 2, pw // 2] == 255
    # Corners of the patch lie outside the ellipse, and the edge has intermediate values.
    assert grey[0, 0] == 0 and grey[-1, -1] == 0
    row = grey[ph // 2]
    assert np.any((row > 20) & (row < 235))
    # Alpha rises monotonically from the left edge to the centre.
    assert np.all(np.diff(row[: pw // 2]) >= 0)


def test_background_is_not_uniform_and_is_deterministic() -> None:
    a = make_background(np.random.default_rng(1))
    b = make_background(np.random.default_rng(1))
    assert a.shape == (1080, 1920, 3)
    assert np.array_equal(a, b)
    assert float(a.std()) > 10
    # Non-uniform at a small scale too, not only a gradient.
    assert float(cv2.Laplacian(cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()) > 0.01


def test_background_is_not_modified() -> None:
    background = make_background(np.random.default_rng(2))
    copy = background.copy()
    compose_frame(FACES[:3], 40, np.random.default_rng(2), background=background)
    assert np.array_equal(background, copy)


def test_per_face_widths_and_custom_geometry() -> None:
    small = np.full((100, 80, 3), 200, dtype=np.uint8)
    source = FaceSource(small, "custom", box=(20.0, 30.0, 40.0, 50.0), landmarks=np.full((5, 2), 45.0, dtype=np.float32))
    _, truths = compose_frame([source, FACES[0]], [30, 50], np.random.default_rng(4))
    assert truths[0].identity == "custom" and truths[1].identity == "face-1"
    assert truths[0].face_width_px == pytest.approx(30, abs=0.5)
    assert truths[1].face_width_px == pytest.approx(50, abs=0.5)
    # The landmark at (45, 45) in the source is 25/40 of the way across its box and 15/50 down.
    x, y, w, h = truths[0].box
    assert truths[0].landmarks[0, 0] == pytest.approx(x + 25 / 40 * w, abs=1e-3)
    assert truths[0].landmarks[0, 1] == pytest.approx(y + 15 / 50 * h, abs=1e-3)


def test_too_many_faces_is_an_error_not_fewer_faces() -> None:
    with pytest.raises(ValueError, match="could not place"):
        compose_frame([FACES[0]] * 40, 300, np.random.default_rng(0))
    with pytest.raises(ValueError, match="widths"):
        compose_frame(FACES[:2], [40], np.random.default_rng(0))


def test_place_patches_respects_margin() -> None:
    corners = place_patches([(100, 100)] * 20, np.random.default_rng(5), size=(1000, 800), margin=8)
    rects = [(x, y, 100, 100) for x, y in corners]
    for x, y, w, h in rects:
        assert min(x, y) >= 8 and x + w <= 992 and y + h <= 792
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            grown = (a[0] - 8, a[1] - 8, a[2] + 16, a[3] + 16)
            assert disjoint(grown, b)


@pytest.mark.data
def test_lfw_picks_are_distinct_and_reproducible(lfw_root: Path) -> None:
    assert len(lfw_image_paths(lfw_root)) == 13_233
    a = pick_lfw_faces(lfw_root, 20, np.random.default_rng(11))
    b = pick_lfw_faces(lfw_root, 20, np.random.default_rng(11))
    assert [f.path for f in a] == [f.path for f in b]
    assert len({f.identity for f in a}) == 20
    assert all(f.image.shape == (250, 250, 3) for f in a)
    assert all(Path(f.path).parent.name == f.identity for f in a)


@pytest.mark.data
def test_lfw_frame_truth(lfw_root: Path) -> None:
    rng = np.random.default_rng(12)
    frame, truths = compose_frame(pick_lfw_faces(lfw_root, 16, rng), 24, rng)
    assert frame.shape == (1080, 1920, 3)
    assert len({t.identity for t in truths}) == 16
    assert all(inside_frame(t) for t in truths)
    # Inter-eye distance scales with the face width (43.3 px at LFW's 94.3 px box width).
    assert np.mean([t.inter_eye_px for t in truths]) == pytest.approx(24 * 43.2 / 94.3, rel=0.05)
