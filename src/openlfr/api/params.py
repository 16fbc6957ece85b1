"""Bounded integer parameters, shared by every route and page.

A record id is an SQLite ``INTEGER`` (signed 64-bit): an unbounded ``int`` parameter lets a client
send 2^64, which reaches the database driver and fails there with ``OverflowError`` (HTTP 500).
Declaring the bounds here makes FastAPI refuse such values with 422 before a handler runs, and
puts the limits in the OpenAPI document. ``tests/test_api_params.py`` checks that no route takes an
integer from the path or query string without them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

#: Largest value an SQLite INTEGER column (and so any record id) can hold.
MAX_ID = 2**63 - 1
#: Most rows one listing may return (audit search and export, deletion log).
MAX_LIMIT = 10_000

#: A record id in the URL path (deployment, alert, user, token, image, search, candidate).
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="Record id (1 to 2^63 - 1).")]
#: A 1-based position in the URL path (e.g. the n-th face offered from a probe).
Number = Annotated[int, Path(ge=1, le=MAX_ID, description="1-based position.")]
#: An optional record id given as a query-string filter.
IdFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only this record's entries.")]
#: How many rows to return.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Most rows to return (1 to {MAX_LIMIT}).")]
