"""Refused forms come back as typed, with the reason beside the field it is about.

A service says why it refused in words ("review date 2020-01-01 is already past"); the pages map
those words to the field, or show the reason above the form when it is about no one field.
"""

from __future__ import annotations

from openlfr.errors import OpenLFRError

#: (field, words the service uses about it), most specific first.
Hints = tuple[tuple[str, tuple[str, ...]], ...]


class FieldError(OpenLFRError):
    """A refusal about one form field, so the page can show it beside that field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def field_errors(exc: OpenLFRError, hints: Hints) -> dict[str, str]:
    """{field: message} for a refusal, or {} when it is about no one field (then shown above the form)."""
    if isinstance(exc, FieldError) and exc.field:
        return {exc.field: str(exc)}
    text = str(exc).lower()
    for field, words in hints:
        if any(word in text for word in words):
            return {field: str(exc)}
    return {}


def refused(what: str, exc: OpenLFRError, errors: dict[str, str]) -> str:
    """The line above a refused form: the reason itself, or a pointer to the field that shows it."""
    return f"{what}: {exc if not errors else 'see the field marked below'}."
