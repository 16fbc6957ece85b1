"""Label errors of a labelled face set: one person filed under two names, or one photograph filed twice.

Such pairs are *mated* comparisons that the labels call impostors. At the false-alert rates a force
works at (1 in 1,000 to 1 in 10,000 passers-by), a handful of them set the threshold: on LFW most of the
highest-scoring "strangers" are the same person under two spellings. Every evaluation and calibration
therefore leaves the listed pairs out of its impostor statistics (``--keep-aliases`` puts them back) and
reports how many comparisons it left out.

A list entry needs evidence, never just a high score: hard impostors (look-alikes, relatives) stay in.
The list is a CSV with columns ``name_a,name_b,kind,evidence``:

- a name is an identity (folder name: every image filed under it) or one image (``<identity>/<file>``);
  every comparison between an image matching ``name_a`` and one matching ``name_b`` is left out;
- ``kind = same_person``: one person under two names (spellings, name changes), or an image filed under
  one name that shows the person named by the other;
- ``kind = same_photo``: one photograph (byte- or near-identical) filed under two names: both names are
  images.

Candidates for review come from :func:`candidates`: the highest-scoring cross-name image pairs, with a
pixel similarity that flags byte- or near-identical photographs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openlfr.errors import OpenLFRError

KINDS = ("same_person", "same_photo")
SHIPPED = Path(__file__).resolve().parent / "data"
SHIPPED_LFW = SHIPPED / "lfw_aliases.csv"
#: Reviewed lists shipped for the data sets the project's figures come from, by the folder name of the images.
SHIPPED_FOR = {"lfw-deepfunneled": SHIPPED_LFW, "celeba-dev": SHIPPED / "celeba_dev_aliases.csv"}
COLUMNS = ("name_a", "name_b", "kind", "evidence")


def identity_of(name: str) -> str:
    return name.split("/")[0]


@dataclass(frozen=True)
class AliasList:
    """Pairs of names (identities or single images) that the labels wrongly call different people."""

    entries: tuple[tuple[str, str, str], ...] = ()  # (name_a, name_b, kind)
    source: str = "none"

    def __len__(self) -> int:
        return len(self.entries)

    @staticmethod
    def _matches(name: str, image: str) -> bool:
        return image == name if "/" in name else identity_of(image) == name

    def same(self, image_a: str, image_b: str) -> bool:
        """True when the comparison of these two images is a label error, not an impostor comparison."""
        if identity_of(image_a) == identity_of(image_b):
            return False
        m = self._matches
        return any((m(a, image_a) and m(b, image_b)) or (m(b, image_a) and m(a, image_b)) for a, b, _ in self.entries)

    def excluded_pairs(self, rows_a: list[str], rows_b: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(i, j) index arrays of the listed comparisons between images ``rows_a[i]`` and ``rows_b[j]``."""
        if not self.entries:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)

        def index(rows: list[str]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
            by_identity: dict[str, list[int]] = {}
            by_image: dict[str, list[int]] = {}
            for k, name in enumerate(rows):
                by_identity.setdefault(identity_of(name), []).append(k)
                by_image.setdefault(name, []).append(k)
            return by_identity, by_image

        ia, ib = index(rows_a), index(rows_b)

        def find(name: str, idx: tuple[dict[str, list[int]], dict[str, list[int]]]) -> list[int]:
            return idx[1].get(name, []) if "/" in name else idx[0].get(name, [])

        pairs: set[tuple[int, int]] = set()
        for a, b, _kind in self.entries:
            for x, y in ((a, b), (b, a)):
                pairs.update((i, j) for i in find(x, ia) for j in find(y, ib))
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ii, jj = zip(*sorted(pairs), strict=True)
        return np.asarray(ii, np.int64), np.asarray(jj, np.int64)

    def describe(self) -> dict:
        kinds = [k for _, _, k in self.entries]
        return {"source": self.source, "entries": len(self.entries), **{k: kinds.count(k) for k in KINDS}}


NONE = AliasList()


def read(path: str | Path) -> AliasList:
    """Read and check an alias list; every row needs a known kind and evidence."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise OpenLFRError(f"{path}: columns must be {','.join(COLUMNS)}, found {','.join(reader.fieldnames or [])}")
            rows = list(reader)
    except OSError as exc:
        raise OpenLFRError(f"cannot read alias list {path}: {exc}") from exc
    entries = []
    for line, row in enumerate(rows, start=2):
        a, b, kind, evidence = ((row[c] or "").strip() for c in COLUMNS)
        if kind not in KINDS:
            raise OpenLFRError(f"{path} line {line}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if not a or not b or identity_of(a) == identity_of(b):
            raise OpenLFRError(f"{path} line {line}: needs names of two different identities")
        if not evidence:
            raise OpenLFRError(f"{path} line {line}: an entry needs evidence of how it was confirmed")
        if kind == "same_photo" and ("/" not in a or "/" not in b):
            raise OpenLFRError(f"{path} line {line}: a same_photo entry names two images as <identity>/<file>")
        entries.append((a, b, kind))
    return AliasList(tuple(entries), source=str(path.name))


def for_dataset(images_dir: Path, keep: bool = False, path: Path | None = None) -> AliasList:
    """The alias list to apply: ``path`` if given, else the shipped list for this data set, else none."""
    if keep:
        return NONE
    if path is not None:
        return read(path)
    shipped = SHIPPED_FOR.get(Path(images_dir).resolve().name)
    return read(shipped) if shipped else NONE


# ------------------------------------------------------------------------------------------------ candidates


@dataclass(frozen=True)
class Candidate:
    identity_a: str
    identity_b: str
    image_a: str
    image_b: str
    score: float
    pairs_above: int  # cross-name image pairs of these two identities scoring >= the floor
    images_a: int
    images_b: int


def candidates(
    templates: np.ndarray, names: list[str], floor: float, limit: int = 200, block: int = 2048
) -> list[Candidate]:
    """Identity pairs whose highest-scoring cross-name image pair reaches ``floor``, best first.

    These are leads to review by eye, not label errors: a high score alone is no evidence.
    """
    ok = np.linalg.norm(templates, axis=1) > 0
    identity = np.array([identity_of(n) for n in names])
    counts: dict[str, int] = {}
    for n in identity:
        counts[n] = counts.get(n, 0) + 1
    best: dict[tuple[str, str], tuple[float, int, int]] = {}
    above: dict[tuple[str, str], int] = {}
    rows = np.flatnonzero(ok)
    t = templates[rows]
    for start in range(0, len(rows), block):
        s = t[start : start + block] @ t.T
        ii, jj = np.nonzero(s >= floor)
        for i, j in zip(ii, jj, strict=True):
            a, b = rows[start + i], rows[j]
            if a >= b or identity[a] == identity[b]:
                continue
            key = (identity[a], identity[b]) if identity[a] < identity[b] else (identity[b], identity[a])
            above[key] = above.get(key, 0) + 1
            score = float(s[i, j])
            if key not in best or score > best[key][0]:
                best[key] = (score, a, b) if identity[a] == key[0] else (score, b, a)
    found = [
        Candidate(k[0], k[1], names[v[1]], names[v[2]], round(v[0], 4), above[k], counts[k[0]], counts[k[1]])
        for k, v in best.items()
    ]
    return sorted(found, key=lambda c: -c.score)[:limit]


def write(entries: Iterable[tuple[str, str, str, str]], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(entries)
