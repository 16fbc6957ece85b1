"""Live alerts to every console, whichever server process holds its stream (PostgreSQL ``LISTEN/NOTIFY``).

A deployment's cameras run in one process; consoles may be connected to any of the server processes
behind the proxy. Storing an alert (or merging a sighting into one) sends a notification with its id
in the same transaction (``services/alerts.py``), and camera and deployment states go through the
bus's relay; each server process runs one :class:`~openlfr.storage.notify.Listener` that reads the
alert from the database and publishes it on its own :class:`~openlfr.live.manager.AlertBus`. The
process that raised the alert has already published it, so it ignores its own notifications. On
SQLite (one server process) nothing of this runs.
"""

from __future__ import annotations

from openlfr.live.manager import AlertBus
from openlfr.storage import Store, notify


def start(store: Store, bus: AlertBus) -> notify.Listener | None:
    """Connect ``bus`` to the other server processes on ``store``'s PostgreSQL; None on SQLite."""
    if not notify.enabled(store.engine):
        return None
    from openlfr.services.alerts import alert_payload

    def deliver(message: dict) -> None:
        if "alert" in message:
            bus.publish(alert_payload(store, int(message["alert"])), relay=False)
        elif isinstance(message.get("message"), dict):
            bus.publish(message["message"], relay=False)

    bus.relay = lambda message: notify.notify(store.engine, {"message": message})
    return notify.Listener(store.engine, deliver).start()
