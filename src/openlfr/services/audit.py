"""The audit trail: who did what, to which record, when and from where — append-only and tamper-evident.

Every event is chained to the one before it: ``hash = HMAC(key, prev_hash || canonical fields)``,
with the key derived from the data key (so someone who can edit the database but does not hold
the key cannot re-forge the chain after changing it). ``seq`` counts 1, 2, 3, … without gaps. A
modified row fails its own HMAC; a deleted row leaves a gap and a ``prev_hash`` that no longer
matches; an inserted row either duplicates a ``seq`` (refused by the database) or renumbers the rows
after it, which breaks their HMACs. The newest ``seq`` and hash are also written to an anchor file
in the data directory, so cutting rows off the end is detected too.

Services call :func:`record` themselves, so the CLI, the API and the web console are audited alike;
an interface says *who* and *from where* once per request with :func:`acting_as`.
"""

from __future__ import annotations

import contextvars
import csv
import hashlib
import hmac
import io
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from openlfr.storage import Store
from openlfr.storage.models import AuditEvent

GENESIS = "0" * 64
KEY_PURPOSE = "openlfr audit chain v1"
ANCHOR_FILE = "audit.anchor"


@dataclass(frozen=True)
class Actor:
    name: str
    role: str | None = None
    source: str | None = None


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("openlfr_audit_actor", default=None)
_append_lock = threading.Lock()


@contextmanager
def acting_as(name: str, role: str | None = None, source: str | None = None) -> Iterator[Actor]:
    """Within this block, events recorded without an explicit actor are attributed to ``name``."""
    actor = Actor(name, role, source)
    token = _current.set(actor)
    try:
        yield actor
    finally:
        _current.reset(token)


def set_actor(actor: Actor) -> contextvars.Token:
    """Attribute what follows in this context (a CLI command, an API request) to ``actor``."""
    return _current.set(actor)


def reset_actor(token: contextvars.Token) -> None:
    _current.reset(token)


def current_actor() -> Actor | None:
    return _current.get()


def _canonical(
    seq: int,
    at: datetime,
    actor: str,
    role: str | None,
    action: str,
    record_type: str | None,
    record_id: str | None,
    source: str | None,
    details: dict,
) -> bytes:
    at_utc = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    fields = [seq, at_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), actor, role, action, record_type, record_id, source, details]
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str).encode()


def _chain_hash(key: bytes, prev_hash: str, payload: bytes) -> str:
    return hmac.new(key, prev_hash.encode() + payload, hashlib.sha256).hexdigest()


def _row_hash(key: bytes, e: AuditEvent) -> str:
    payload = _canonical(e.seq, e.at, e.actor, e.role, e.action, e.record_type, e.record_id, e.source, e.details or {})
    return _chain_hash(key, e.prev_hash, payload)


def _write_anchor(store: Store, key: bytes, seq: int, head: str) -> None:
    body = f"{seq} {head}"
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    path = store.home / ANCHOR_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{body} {mac}\n")
    tmp.replace(path)


def record(
    store: Store,
    action: str,
    record_type: str | None = None,
    record_id: object = None,
    details: dict | None = None,
    actor: str | None = None,
    role: str | None = None,
    source: str | None = None,
) -> int:
    """Append one event; returns its ``seq``. ``actor``/``role``/``source`` default to :func:`acting_as`'s."""
    context = _current.get()
    name = actor or (context.name if context else None) or "system"
    role = role or (context.role if context and (actor is None or actor == context.name) else None)
    source = source or (context.source if context else None)
    key = store.derive_key(KEY_PURPOSE)
    clean = json.loads(json.dumps(details or {}, default=str))
    rid = None if record_id is None else str(record_id)
    for _attempt in range(20):  # another process may take the same seq; the unique index refuses one of us
        with _append_lock:
            try:
                with store.session() as s:
                    last = s.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
                    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                    at = datetime.now(UTC)
                    payload = _canonical(seq, at, name, role, action, record_type, rid, source, clean)
                    digest = _chain_hash(key, prev, payload)
                    s.add(
                        AuditEvent(
                            seq=seq,
                            at=at,
                            actor=name,
                            role=role,
                            action=action,
                            record_type=record_type,
                            record_id=rid,
                            source=source,
                            details=clean,
                            prev_hash=prev,
                            hash=digest,
                        )
                    )
            except IntegrityError:
                continue
            _write_anchor(store, key, seq, digest)
            return seq
    raise RuntimeError("could not append to the audit trail: too many concurrent writers")


@dataclass
class Verification:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checked": self.checked, "first_broken_seq": self.first_broken_seq, "problem": self.problem}


def verify(store: Store) -> Verification:
    """Walk the chain from the first event and name the first link that does not hold."""
    key = store.derive_key(KEY_PURPOSE)
    prev, expected_seq, checked = GENESIS, 1, 0
    with store.session() as s:
        for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000):
            if e.seq != expected_seq:
                if e.seq > expected_seq:
                    problem = f"event(s) {expected_seq}..{e.seq - 1} are missing (deleted) before event {e.seq}"
                else:
                    problem = f"event {e.seq} is out of sequence (expected {expected_seq}): inserted or renumbered"
                return Verification(False, checked, expected_seq, problem)
            if e.prev_hash != prev:
                return Verification(
                    False,
                    checked,
                    e.seq,
                    f"event {e.seq} does not follow event {e.seq - 1}: a row before it was changed, deleted or inserted",
                )
            if not hmac.compare_digest(_row_hash(key, e), e.hash):
                return Verification(False, checked, e.seq, f"event {e.seq} was modified or inserted (its hash does not match)")
            prev, expected_seq, checked = e.hash, expected_seq + 1, checked + 1
    anchor = store.home / ANCHOR_FILE
    if anchor.is_file():
        try:
            seq_text, head, mac = anchor.read_text().split()
            body = f"{seq_text} {head}"
            genuine = hmac.compare_digest(hmac.new(key, body.encode(), hashlib.sha256).hexdigest(), mac)
        except ValueError:
            genuine, seq_text, head = False, "0", ""
        if not genuine:
            return Verification(False, checked, None, f"the anchor file {anchor} was altered")
        if int(seq_text) > checked:
            return Verification(
                False, checked, checked + 1, f"event(s) {checked + 1}..{seq_text} are missing: the trail was cut short"
            )
        if int(seq_text) == checked and checked and head != prev:
            return Verification(False, checked, checked, f"event {checked} differs from the one last anchored")
    elif checked:
        return Verification(False, checked, None, f"the anchor file {anchor} is missing")
    return Verification(True, checked)


def count(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)) or 0


def event_dict(e: AuditEvent) -> dict:
    return {
        "seq": e.seq,
        "at": (e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)).isoformat(),
        "actor": e.actor,
        "role": e.role,
        "action": e.action,
        "record_type": e.record_type,
        "record_id": e.record_id,
        "source": e.source,
        "details": e.details,
        "hash": e.hash,
    }


def search(
    store: Store,
    actor: str | None = None,
    action: str | None = None,
    record_type: str | None = None,
    record_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict]:
    """Newest first. ``action`` matches a prefix (``alert.`` finds every alert action)."""
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if action:
        query = query.where(AuditEvent.action.startswith(action))
    if record_type:
        query = query.where(AuditEvent.record_type == record_type)
    if record_id:
        query = query.where(AuditEvent.record_id == str(record_id))
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at <= until)
    query = query.order_by(AuditEvent.seq.desc()).offset(offset).limit(limit)
    with store.session() as s:
        return [event_dict(e) for e in s.scalars(query)]


def to_csv(events: list[dict]) -> str:
    out = io.StringIO()
    columns = ["seq", "at", "actor", "role", "action", "record_type", "record_id", "source", "details", "hash"]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for e in events:
        writer.writerow({**e, "details": json.dumps(e["details"], sort_keys=True)})
    return out.getvalue()
