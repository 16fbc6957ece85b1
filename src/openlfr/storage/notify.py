"""Messages between processes sharing one PostgreSQL: ``NOTIFY`` to send, a ``LISTEN`` thread to receive.

Why: each ``openlfr serve`` process keeps its own consoles' live streams (an in-memory bus), while a
deployment's cameras run in one process (or in ``openlfr live``). With several server processes
behind a proxy, a console connected to one process must still see an alert raised in another.
PostgreSQL delivers a ``NOTIFY`` to every session listening on its channel when the sending
transaction commits (never when it rolls back), so an alert is announced exactly when it exists,
with no broker to run. A notification carries only what identifies the event (an alert's id, a
camera's state), never an image or a name: receivers read the rest from the database, where the
access rules of their own routes apply. On SQLite (one machine, one server process) nothing is sent.

Each message carries its sender's ``origin`` (one per process) so that a process can ignore what it
already delivered to its own consoles.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

#: The live channel: alerts, sightings and camera states.
LIVE_CHANNEL = "openlfr_live"
#: PostgreSQL refuses payloads of 8,000 bytes or more; messages are far smaller.
MAX_PAYLOAD = 7900
#: The listener's connection shows this name in ``pg_stat_activity`` (operators can see who listens).
APPLICATION_NAME = "openlfr live listener"

_origin: tuple[int, str] | None = None


def origin() -> str:
    """This process's token, made again after a fork (a worker must not pass for its parent)."""
    global _origin
    if _origin is None or _origin[0] != os.getpid():
        _origin = (os.getpid(), f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
    return _origin[1]


def enabled(bind: Engine | Session) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


def _payload(message: dict) -> str:
    payload = json.dumps({"origin": origin(), **message}, separators=(",", ":"), default=str)
    if len(payload.encode()) > MAX_PAYLOAD:
        raise ValueError(f"notification too large ({len(payload)} bytes): send an id, not the data")
    return payload


def notify_in(session: Session, message: dict, channel: str = LIVE_CHANNEL) -> None:
    """Announce ``message`` when ``session``'s transaction commits (PostgreSQL only; nothing on SQLite)."""
    if enabled(session):
        session.execute(select(func.pg_notify(channel, _payload(message))))


def notify(engine: Engine, message: dict, channel: str = LIVE_CHANNEL) -> None:
    """Announce ``message`` now, in a transaction of its own (PostgreSQL only)."""
    if enabled(engine):
        with engine.begin() as connection:
            connection.execute(select(func.pg_notify(channel, _payload(message))))


class Listener:
    """A thread that ``LISTEN``s on a channel and hands every message from *other* processes to ``on_message``.

    It reconnects with back-off when the connection drops; notifications sent while it was
    disconnected are lost (a console reloads the alert list from the database when it reconnects).
    ``on_message`` runs on the listener thread: it must not block for long.
    """

    def __init__(
        self,
        engine: Engine,
        on_message: Callable[[dict], None],
        channel: str = LIVE_CHANNEL,
        include_own: bool = False,
    ) -> None:
        self.engine, self.on_message, self.channel, self.include_own = engine, on_message, channel, include_own
        self.listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _connect(self):
        import psycopg

        _cargs, params = self.engine.dialect.create_connect_args(self.engine.url)
        params = {k: v for k, v in params.items() if isinstance(v, str | int)}
        params["application_name"] = APPLICATION_NAME
        return psycopg.connect(**params, autocommit=True)

    def _deliver(self, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            log.warning("ignored a malformed notification on %s", self.channel)
            return
        if not self.include_own and message.get("origin") == origin():
            return  # this process delivered it to its own consoles already
        try:
            self.on_message(message)
        except Exception:  # one bad message must not stop the fan-out
            log.exception("live notification %r could not be delivered", message)

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        backoff = 0.5
        while not self._stop.is_set():
            try:
                with self._connect() as connection:
                    connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    self.listening.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        for notification in connection.notifies(timeout=0.5):
                            self._deliver(notification.payload)
            except psycopg.Error as exc:
                self.listening.clear()
                if self._stop.is_set():
                    break
                log.warning("live listener lost its database connection (%s); reconnecting in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        self.listening.clear()

    def start(self) -> Listener:
        self._thread = threading.Thread(target=self._run, name=f"listen-{self.channel}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
