"""Decode images safely, whatever arrives: every failure is an :class:`ImageError` naming the problem.

Pillow does the decoding because it reads the header before the pixels (so a decompression bomb
is refused before any memory is spent), applies EXIF orientation, and opens 16-bit, grey,
palette and alpha images, which are all converted to the 8-bit BGR arrays the core expects.
"""

from __future__ import annotations

import io
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


def load_image(path: str | Path) -> np.ndarray:
    """Read and decode an image file."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path} does not exist")
    if not path.is_file():
        raise ImageError(f"{path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path} cannot be read: {exc.strerror}") from exc
    return decode_image(data, name=str(path))
