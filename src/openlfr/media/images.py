"""Decode images safely, whatever arrives: every failure is an :class:`ImageError` naming the problem.

Pillow does the decoding because it reads the header before the pixels (so a decompression bomb
is refused before any memory is spent), applies EXIF orientation, and opens 16-bit, grey,
palette and alpha images, which are all converted to the 8-bit BGR arrays the core expects.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from openlfr.errors import ImageError

#: Largest image accepted, in pixels (about an 80-megapixel photograph).
MAX_PIXELS = 80_000_000
#: Largest file accepted, in bytes.
MAX_BYTES = 100 * 1024 * 1024


def _to_bgr(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        grey = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        span = max(float(arr.max() - arr.min()), 1e-12)
        grey = ((arr - arr.min()) / span * 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Flatten transparency onto mid-grey rather than black, so a cut-out face keeps its contrast.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        img = Image.alpha_composite(background, rgba)
    rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes into a BGR uint8 array, upright as the EXIF orientation says."""
    if len(data) == 0:
        raise ImageError(f"{name} is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name} is {len(data)} bytes, larger than the {MAX_BYTES}-byte limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked below
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"{name} is {width}x{height} pixels, larger than the {MAX_PIXELS:,}-pixel limit (refused before decoding)"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name} is not an image in a format OpenLFR can read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is larger than the {MAX_PIXELS:,}-pixel limit (refused before decoding: {exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name} is corrupt or truncated: {exc}") from exc
    if img.width < 8 or img.height < 8:
        raise ImageError(f"{name} is only {img.width}x{img.height} pixels")
    return _to_bgr(img)


def display_name(name: str | bytes | os.PathLike) -> str:
    """A file name as text that can always be stored, printed and logged.

    POSIX names are bytes; Python turns bytes that are not UTF-8 into lone surrogates, which
    SQLite, JSON and the terminal refuse (``UnicodeEncodeError``). Such bytes become ``\\xff``
    escapes here, so the name is still recognisable and the record can be written.
    """
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def read_image_file(path: str | Path, limit: int = MAX_BYTES) -> bytes:
    """The bytes of an image file, read safely: only a regular file, and never more than ``limit``.

    The file is opened without blocking (a FIFO would otherwise wait forever for a writer) and
    checked with ``fstat`` on the open descriptor, so ``/dev/zero``, a FIFO or a directory is
    refused before anything is read, and a file larger than ``limit`` is refused by its size. At
    most ``limit + 1`` bytes are read, so a file that grows meanwhile cannot exhaust memory.
    Missing or unreadable files raise ``OSError`` as ``open`` does; the rest :class:`ImageError`.
    """
    name = display_name(path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{name} is not a file (only regular files are read, never a device, pipe or folder)")
        if info.st_size > limit:
            raise ImageError(f"{name} is {info.st_size} bytes, larger than the {limit}-byte limit (not read)")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ImageError(f"{name} is larger than the {limit}-byte limit")
    return data


def load_image(path: str | Path) -> np.ndarray:
    """Read and decode an image file."""
    path = Path(path)
    name = display_name(path)
    if not path.exists():
        raise ImageError(f"{name} does not exist")
    try:
        data = read_image_file(path)
    except OSError as exc:
        raise ImageError(f"{name} cannot be read: {exc.strerror or exc}") from exc
    return decode_image(data, name=name)
