"""Which of several faces in one image is its *main* face: one rule for every caller.

Enrolment, custody import, a gallery search and a retrospective probe all meet images that show more
than one face. Each used to pick "the" face by its own measure (eyes furthest apart, widest box,
detector order); the same image could then name a different person as its subject depending on where
it came in. The rule here is the only one: the face whose detection box has the largest area, ties
broken by the higher detector score, then by position (left, then top) so the answer never depends on
the order a detector happened to return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from openlfr.core.types import Detection, Face

F = TypeVar("F", Face, Detection)


def _detection(item: Face | Detection) -> Detection:
    return item.detection if isinstance(item, Face) else item


def prominence(item: Face | Detection) -> tuple[float, float, float, float]:
    """Sort key, larger = more the main face: box area, detector score, then further left and higher up."""
    d = _detection(item)
    x, y, w, h = (float(v) for v in d.box)
    return (w * h, float(d.score), -x, -y)


def by_prominence(faces: Sequence[F]) -> list[F]:
    """The faces with the main face first and the rest in the same order of prominence."""
    return sorted(faces, key=prominence, reverse=True)


def main_face(faces: Sequence[F]) -> F:
    """The main face of an image (largest box area, then detector score); ``faces`` must not be empty."""
    if not faces:
        raise ValueError("main_face needs at least one face")
    return max(faces, key=prominence)
