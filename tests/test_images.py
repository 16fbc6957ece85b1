"""Every kind of bad or unusual image that can enter the system gets a clear error or the right result."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openlfr.errors import ImageError
from openlfr.media.images import MAX_PIXELS, decode_image, load_image
from openlfr.services import demo_images


def hopper_bytes(fmt: str = "JPEG", mode: str = "RGB", **save) -> bytes:
    img = Image.open(demo_images.grace_hopper_path()).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG that claims width x height 1-bit pixels (compressed zeros), built without allocating them."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(path)


def test_truncated_jpeg() -> None:
    data = hopper_bytes()
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2], "half.jpg")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_decompression_bomb_refused_before_decoding() -> None:
    bomb = png_bomb(30000, 30000)
    assert len(bomb) < 2_000_000  # tiny on disk, 900 megapixels when decoded
    with pytest.raises(ImageError, match=r"bomb.png is larger than the 80,000,000-pixel limit"):
        decode_image(bomb, "bomb.png")
    # Below Pillow's own bomb limit, our limit still refuses it from the header, naming the size.
    with pytest.raises(ImageError, match=r"12000x12000 pixels, larger than the 80,000,000-pixel limit"):
        decode_image(png_bomb(12000, 12000), "big.png")
    assert MAX_PIXELS < 30000 * 30000


def test_grayscale_becomes_three_channels() -> None:
    image = decode_image(hopper_bytes(mode="L"), "grey.jpg")
    assert image.shape == (600, 512, 3) and image.dtype == np.uint8
    assert np.array_equal(image[..., 0], image[..., 2])


def test_rgba_flattened() -> None:
    image = decode_image(hopper_bytes("PNG", mode="RGBA"), "alpha.png")
    assert image.shape == (600, 512, 3)


def test_sixteen_bit_scaled_not_clipped() -> None:
    grey = np.asarray(Image.open(demo_images.grace_hopper_path()).convert("L"), dtype=np.uint16) * 257
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")
    image = decode_image(buf.getvalue(), "deep.png")
    assert image.dtype == np.uint8
    # Clipping 16-bit values to 255 would make the image almost all white; scaling keeps it intact.
    reference = np.asarray(Image.open(demo_images.grace_hopper_path()).convert("L"))
    assert np.abs(image[..., 0].astype(int) - reference).max() <= 1


def test_exif_rotation_applied() -> None:
    upright = Image.open(demo_images.grace_hopper_path()).convert("RGB")
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    buf = io.BytesIO()
    stored.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    image = decode_image(buf.getvalue(), "sideways.jpg")
    assert image.shape == (600, 512, 3)
    reference = np.asarray(upright)[..., ::-1].astype(int)
    assert np.abs(image.astype(int) - reference).mean() < 6


def test_tiny_image_refused() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    with pytest.raises(ImageError, match="only 4x4"):
        decode_image(buf.getvalue(), "dot.png")


def test_reading_checks_the_kind_and_size_before_reading(tmp_path: Path) -> None:
    """Issue 12, finding 8: /dev/zero was read for ever; a FIFO blocked; the size limit came after reading."""
    import os

    from openlfr.media.images import read_image_file

    with pytest.raises(ImageError, match="/dev/zero is not a file"):
        read_image_file("/dev/zero")
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageError, match="not a file"):
        read_image_file(tmp_path / "pipe.jpg")  # without O_NONBLOCK, opening it would wait for a writer
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 101)
    with pytest.raises(ImageError, match="101 bytes, larger than the 100-byte limit"):
        read_image_file(big, limit=100)
    assert read_image_file(big, limit=101) == b"x" * 101
    with pytest.raises(FileNotFoundError):
        read_image_file(tmp_path / "missing.jpg")


def test_names_that_are_not_utf8_can_be_shown(tmp_path: Path) -> None:
    from openlfr.media.images import display_name

    name = display_name(b"photo-\xff.jpg")
    assert name == "photo-\\xff.jpg" and name.encode("utf-8")
    assert display_name("photo-\udcff.jpg") == name  # as os.listdir hands it over
    assert display_name("Müller.jpg") == "Müller.jpg"
