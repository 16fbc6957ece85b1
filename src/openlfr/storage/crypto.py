"""Encryption of biometric data at rest (AES-256-GCM from ``cryptography``).

Key handling: the key is taken from ``$OPENLFR_KEY`` (32 bytes, URL-safe base64) when set, so it
can live in a secrets manager; otherwise from ``<data dir>/keys/data.key``, created with mode 0600
on first use. Losing the key makes every stored image and template unreadable, by design: back it
up separately from the data directory. Each blob is ``nonce (12 bytes) || ciphertext+tag``; its
associated data is built by :func:`record_context` from its purpose, table, row id and column, so a
blob or file moved onto another record (two people's templates or image files swapped) fails to
decrypt instead of showing one person's face as another's.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openlfr.errors import OpenLFRError

ENV_KEY = "OPENLFR_KEY"
#: Encryption context of a camera's full source address (which may carry a password).
CAMERA_SOURCE_CONTEXT = "camera-source"
#: Query parameters whose values are secrets in camera addresses (``?password=…``, ``?token=…``).
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:[^=&;]*(?:pass|pwd|token|secret|key|auth|sig)[^=&;]*)=)[^&;#]*")


class KeyError_(OpenLFRError):
    """The data key is missing, malformed, or does not open this data."""


def record_context(purpose: str, table: str, row_id: int | None, column: str) -> str:
    """The associated data of a ciphertext stored in (or named by) ``table.column`` of row ``row_id``.

    One helper so that no caller can leave a part out: the purpose keeps kinds of data apart (and
    a template's model pack), the table, row id and column tie the blob to the one record it
    belongs to. The row must have an id already (flush before sealing).
    """
    if row_id is None:
        raise ValueError(f"{table}.{column}: the row has no id yet; flush the session before sealing")
    return f"{purpose}|{table}:{int(row_id)}:{column}"


def template_context(pack_id: str) -> str:
    """The purpose of a template: templates of different model packs must never be compared."""
    return f"template:{pack_id}"


def custody_template_context(pack_id: str, image_id: int | None) -> str:
    """Associated data of custody image ``image_id``'s encrypted template (of model pack ``pack_id``).

    Here, below both, because the custody service writes these templates and the index reads them.
    """
    return record_context(template_context(pack_id), "custody_images", image_id, "template")


def load_or_create_key(home: Path) -> bytes:
    env = os.environ.get(ENV_KEY)
    if env:
        try:
            key = base64.urlsafe_b64decode(env.encode())
        except ValueError as exc:
            raise KeyError_(f"${ENV_KEY} is not URL-safe base64") from exc
        if len(key) != 32:
            raise KeyError_(f"${ENV_KEY} must decode to 32 bytes, got {len(key)}")
        return key
    path = home / "keys" / "data.key"
    if path.is_file():
        key = base64.urlsafe_b64decode(path.read_bytes().strip())
        if len(key) != 32:
            raise KeyError_(f"{path} does not hold a 32-byte key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.urlsafe_b64encode(key) + b"\n")
    return key


class Cipher:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, data: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, context.encode())

    def decrypt(self, blob: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], context.encode())
        except InvalidTag as exc:
            raise KeyError_(f"cannot decrypt {context}: wrong key or altered data (or data moved from another record)") from exc


def redact_source(source: str) -> str:
    """A camera address fit to show: ``rtsp://user:pass@host/x`` → ``rtsp://user:***@host/x``.

    Passwords in the authority and secret-looking query values are replaced; anything that is not
    a URL (a file path, a device number) is returned unchanged. Only the live runner needs the
    address in full, so everything else (API, pages, records, audit) stores and shows this form.
    """
    try:
        parts = urlsplit(source)
    except ValueError:
        return "***"  # unparseable: show nothing rather than a secret
    if not parts.scheme or not parts.netloc:
        return _SECRET_PARAM.sub(r"\1***", source) if "?" in source else source
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{userinfo}@{host}"
    query = _SECRET_PARAM.sub(r"\1***", "?" + parts.query)[1:] if parts.query else parts.query
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))
