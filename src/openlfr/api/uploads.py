"""Reading uploaded files, for the API routes and the web pages alike.

Interface-level (FastAPI's ``UploadFile``), so it lives beside the other shared request helpers
(security, params) rather than in a route module: the pages must not import API routes. The
services take plain ``(name, bytes)`` pairs.
"""

from __future__ import annotations

from fastapi import UploadFile

from openlfr.errors import ImageError

#: Largest file accepted in one upload; a bigger one is refused before it is all read.
MAX_UPLOAD_BYTES = 40 * 1024 * 1024


def read_uploads(files: list[UploadFile]) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of each upload, refusing any over :data:`MAX_UPLOAD_BYTES`."""
    images = []
    for f in files:
        data = f.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ImageError(f"{f.filename}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        images.append((f.filename or "upload", data))
    return images
