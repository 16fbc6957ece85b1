"""One family of errors, each with a message a person can act on.

Interfaces (CLI, API) catch :class:`OpenLFRError` and show its message as one line;
anything else is a bug and is allowed to surface as a traceback.
"""


class OpenLFRError(Exception):
    """Base for every error that is the caller's input or environment, not a bug."""


class ImageError(OpenLFRError):
    """An image could not be read: missing, empty, corrupt, wrong type or too large."""


class NoFaceError(OpenLFRError):
    """No face was found where one was needed."""


class QualityError(OpenLFRError):
    """A face is too poor to be used as a reference; the message names the measure and its limit."""


class ModelPackError(OpenLFRError):
    """A model pack is missing, altered (checksum mismatch) or does not fit the expected contract."""


class NotFoundError(OpenLFRError):
    """An id or name that does not exist."""


class StoreError(OpenLFRError):
    """The embedded store refused an operation (conflict, mixed model packs, bad state)."""
