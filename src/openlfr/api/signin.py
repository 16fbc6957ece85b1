"""What stands in front of every password check made over HTTP: per-source throttling and a bounded pool.

Why throttle per source *before* the per-account lockout: the lockout (five failures, fifteen
minutes) stops guessing at one account, but on its own it is also a button anyone can press to
lock an officer out, and a flood of guesses costs the server half a second of argon2 each. A
small token bucket per client address (the audited source, :func:`client_source`, which honours
``X-Forwarded-For`` only from configured proxies) answers 429 before the account is touched or a
hash computed, so one address can neither spray guesses across many accounts, nor keep them
locked faster than the bucket refills, nor tie up the CPUs. Only *failed* sign-ins use up the
bucket, so officers sharing one address (a station behind NAT) are not throttled by each other's
successful sign-ins. This bounds, but cannot abolish, the lockout an attacker can cause from
several addresses; that is the price of having a lockout at all.

Why a pool of two: argon2 is deliberately slow and memory-hungry; running it on the event loop (or
on as many threads as there are requests) made 50 concurrent sign-ins take 15 s each and stalled
every other request. Sign-ins queue for two workers instead, and the rest of the server stays
responsive.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import HTTPException, Request

from openlfr.api.security import client_source
from openlfr.services.users import AuthError

T = TypeVar("T")

#: Password checks at once, process-wide.
HASH_WORKERS = 2
_pool = ThreadPoolExecutor(max_workers=HASH_WORKERS, thread_name_prefix="openlfr-signin")


class LoginThrottle:
    """A token bucket per source: ``burst`` failed sign-ins at once, then one per ``refill_s`` seconds.

    A token is taken before the password is checked (so concurrent requests cannot all slip
    through on the same token) and given back when the sign-in succeeds.
    """

    #: Sources remembered at most; full buckets are forgotten first, so memory stays bounded.
    MAX_SOURCES = 10_000

    def __init__(self, burst: int = 10, refill_s: float = 6.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.refill_s, self.clock = burst, refill_s, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, at)
        self._lock = threading.Lock()

    def _level(self, source: str, now: float) -> float:
        tokens, at = self._buckets.get(source, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) / self.refill_s)

    def take(self, source: str) -> float | None:
        """Take one attempt for ``source``: None when allowed, else the seconds until the next one."""
        with self._lock:
            now = self.clock()
            tokens = self._level(source, now)
            if tokens < 1:
                self._buckets[source] = (tokens, now)
                return (1 - tokens) * self.refill_s
            if len(self._buckets) >= self.MAX_SOURCES and source not in self._buckets:
                self._forget_full(now)
            self._buckets[source] = (tokens - 1, now)
            return None

    def refund(self, source: str) -> None:
        """A successful sign-in gives its attempt back."""
        with self._lock:
            now = self.clock()
            self._buckets[source] = (min(float(self.burst), self._level(source, now) + 1), now)

    def _forget_full(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]
        if len(self._buckets) >= self.MAX_SOURCES:  # everyone is short of tokens: forget the oldest
            del self._buckets[min(self._buckets, key=lambda k: self._buckets[k][1])]


def throttle_for(request: Request) -> LoginThrottle:
    """The application's throttle (``app.state.login_throttle``), created on first use."""
    throttle = getattr(request.app.state, "login_throttle", None)
    if throttle is None:  # only the event-loop thread gets here, so there is no race
        throttle = request.app.state.login_throttle = LoginThrottle()
    return throttle


async def checked_sign_in(request: Request, work: Callable[[], T]) -> T:
    """Run ``work`` (which checks a password) in the bounded pool, behind the per-source throttle.

    Raises 429 (with ``Retry-After``) when the source has used up its failed attempts; the answer
    does not depend on the username, so it reveals nothing about accounts.
    """
    source = client_source(request)
    throttle = throttle_for(request)
    wait = throttle.take(source)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(429, detail=f"too many failed sign-ins from this address; try again in {seconds} s",
                            headers={"Retry-After": str(seconds), "Cache-Control": "no-store"})
    try:
        result = await asyncio.get_running_loop().run_in_executor(_pool, work)
    except AuthError:
        raise  # the attempt stays used up
    except BaseException:
        throttle.refund(source)  # not a password failure (a bad token name, say)
        raise
    throttle.refund(source)
    return result
