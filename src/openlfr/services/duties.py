"""Separation of duties: who may take a step, given who took the earlier ones.

Each check on a deployment or a possible match is only a check if someone other than the person
being checked makes it. The rules are one table, :data:`RULES`, read as "step X may not be taken
by whoever took earlier step Y"; services call :func:`check` and never compare officers themselves,
so a rule is added, read or tested in one place (``tests/test_duties.py`` tests every pair).

Steps not in the table (closing a deployment, an alert's outcome, setting and lifting a legal hold,
running an RFR search) have no such rule: closing must never wait for a second officer, and the
others are single decisions whose author the audit trail records.

Officers are compared by name, trimmed and case-insensitively: ``"Sgt Smith "`` is ``"sgt smith"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from openlfr.errors import StoreError


class Step(StrEnum):
    """A step that one named officer takes and that a rule may concern."""

    PLAN = "plan the deployment"
    BUILD = "build the watchlist"
    APPROVE = "approve the watchlist"
    AUTHORISE = "authorise the deployment"
    DECIDE = "mark a possible match"  # the first examiner's decision on an RFR candidate
    CONFIRM = "confirm the possible match"  # the second examiner's independent view


#: For each step, the earlier steps whose officer may not take it, and the rule as refused.
#: Approving and authorising are the checks on the steps before them, so their officer must be
#: someone else; the same authorising officer may approve the watchlist and authorise the
#: deployment (both are the authoriser's checks on the operator's work).
RULES: dict[Step, dict[Step, str]] = {
    Step.APPROVE: {
        Step.BUILD: "the watchlist must be approved by an officer other than the one who built it",
    },
    Step.AUTHORISE: {
        Step.PLAN: "the authorising officer must not be the officer who planned the deployment",
        Step.BUILD: "the authorising officer must not be the officer who built the watchlist",
    },
    Step.CONFIRM: {
        Step.DECIDE: "a possible match must be confirmed by a different examiner from the one who marked it",
    },
}


def same_officer(a: str | None, b: str | None) -> bool:
    """Whether two recorded names are one officer (trimmed, case-insensitive); unknown is nobody."""
    if a is None or b is None:
        return False
    return a.strip().casefold() == b.strip().casefold()


def check(step: Step, actor: str, earlier: Mapping[Step, str | None]) -> None:
    """Refuse ``actor`` taking ``step`` if they took an earlier step that the table separates from it.

    ``earlier`` names who took each earlier step (``None`` or absent: not taken, or not known).
    Raises :class:`StoreError` with the rule's wording, the first rule broken in table order.
    """
    for before, rule in RULES.get(step, {}).items():
        if same_officer(actor, earlier.get(before)):
            raise StoreError(rule)
