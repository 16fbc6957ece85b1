"""The audit trail: who did what, to which record, when and from where — append-only and tamper-evident.

Every event is chained to the one before it: ``hash = HMAC(key, prev_hash || canonical fields)``,
with the key derived from the data key (so someone who can edit the database but does not hold
the key cannot re-forge the chain after changing it). ``seq`` counts 1, 2, 3, … without gaps. A
modified row fails its own HMAC; a deleted row leaves a gap and a ``prev_hash`` that no longer
matches; an inserted row either duplicates a ``seq`` (refused by the database) or renumbers the rows
after it, which breaks their HMACs. The newest ``seq`` and hash are also written to an anchor file
in the data directory, so cutting rows off the end is detected too.

All of that lives in the data folder, and so does the data key: whoever holds a copy of the folder
can delete events, recompute the chain and rewrite the anchor. What such a person cannot forge is a
**signed checkpoint** kept somewhere else: :func:`write_checkpoint` signs the number of events, the
head hash and the hashes of the events since the previous checkpoint with an Ed25519 key that is
*not* in the data folder (``$OPENLFR_AUDIT_KEY`` or ``~/.config/openlfr/audit-signing.key``, made by
``openlfr audit init-key``), and writes it to a second location. :func:`verify` given that location
checks the database against the newest valid checkpoint, so truncation, wholesale deletion and a
recomputed chain are reported, naming the first event affected. Events newer than the newest
checkpoint are protected by the in-folder chain only.

Appends are serialised — a lock file across processes plus the database's write lock
(``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on PostgreSQL) — and each writer
writes the anchor through its own temporary file, in commit order.

Services call :func:`record` themselves, so the CLI, the API and the web console are audited alike;
an interface says *who* and *from where* once per request with :func:`acting_as`.
"""

from __future__ import annotations

import base64
import contextvars
import csv
import hashlib
import hmac
import io
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openlfr import metrics
from openlfr.errors import OpenLFRError
from openlfr.storage import Store
from openlfr.storage.models import AuditEvent

try:  # POSIX: serialise appends across processes on one data folder
    import fcntl
except ImportError:  # pragma: no cover - Windows: the database lock alone orders appends
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

GENESIS = "0" * 64
KEY_PURPOSE = "openlfr audit chain v1"
ANCHOR_FILE = "audit.anchor"
LOCK_FILE = "audit.lock"
ENV_AUDIT_KEY = "OPENLFR_AUDIT_KEY"
ENV_CHECKPOINTS = "OPENLFR_AUDIT_CHECKPOINTS"
CHECKPOINT_FORMAT = "openlfr-audit-checkpoint/1"
CHECKPOINT_GLOB = "checkpoint-*.json"
#: Any constant will do: it names the trail's lock among the PostgreSQL database's advisory locks.
PG_ADVISORY_LOCK_ID = 0x6F6C6672_61756474  # "olfraudt"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class AuditKeyError(OpenLFRError):
    """The audit signing key is missing, malformed, or kept where it protects nothing."""


class TrailBroken(OpenLFRError):
    """The trail failed verification, so it must not be signed as it stands."""

    def __init__(self, verification: Verification) -> None:
        super().__init__(f"refusing to sign a checkpoint: the audit trail is broken: {verification.problem}")
        self.verification = verification


@dataclass(frozen=True)
class Actor:
    name: str
    role: str | None = None
    source: str | None = None


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("openlfr_audit_actor", default=None)
_append_lock = threading.Lock()
#: Called with (session, store, event) inside the transaction that appends each event, so what they
#: write commits with it or not at all: a van's outbox (``services.outbox``) queues what the centre
#: must know this way. Registered with :func:`add_listener`.
_listeners: list[Callable[[Session, Store, AuditEvent], None]] = []


def add_listener(listener: Callable[[Session, Store, AuditEvent], None]) -> None:
    """Have ``listener`` called in the transaction of every event appended from now on (once, however often added)."""
    if listener not in _listeners:
        _listeners.append(listener)


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


# --- appending: one writer at a time ------------------------------------------------------------


@contextmanager
def _serialised(store: Store) -> Iterator[None]:
    """One appender at a time on this data folder: threads via a lock, processes via ``flock``.

    Held from before the database transaction until the anchor is written, so anchors are written
    in commit order and never go backwards.
    """
    with _append_lock:
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(store.home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _lock_trail(session: Session) -> None:
    """Take the database's write lock before reading the head, so no other writer can take the same ``seq``.

    The lock file already orders writers sharing a data folder; this covers writers that share only
    the database (e.g. several hosts on one PostgreSQL server).
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))  # first statement: pysqlite has not begun a transaction yet
    elif dialect == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(PG_ADVISORY_LOCK_ID)))
    else:  # others: lock the newest row (the unique seq index and the retry below remain the backstop)
        session.execute(select(AuditEvent.id).order_by(AuditEvent.seq.desc()).limit(1).with_for_update())


@contextmanager
def trail_locked(store: Store) -> Iterator[Session]:
    """A transaction holding the trail's append lock (no event is appended meanwhile): for work that must
    see every event so far and none being added, such as a van queueing events its hook did not see."""
    with _serialised(store), store.session() as s:
        _lock_trail(s)
        yield s


def _atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write through a temporary file unique to this process and thread, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_anchor(store: Store, key: bytes, seq: int, head: str) -> None:
    body = f"{seq} {head}"
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    _atomic_write(store.home / ANCHOR_FILE, f"{body} {mac}\n".encode())


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
    for _attempt in range(20):  # only a database without a usable lock can still race; its unique index refuses one
        with _serialised(store):
            try:
                with store.session() as s:
                    _lock_trail(s)
                    last = s.execute(select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)).first()
                    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                    at = datetime.now(UTC)
                    payload = _canonical(seq, at, name, role, action, record_type, rid, source, clean)
                    digest = _chain_hash(key, prev, payload)
                    s.add(
                        event := AuditEvent(
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
                    for listener in _listeners:
                        listener(s, store, event)
            except IntegrityError:
                continue
            try:
                _write_anchor(store, key, seq, digest)
            except OSError as exc:  # the event is committed; a lagging anchor is caught up by the next append
                log.warning("audit event %s committed but the anchor could not be written: %s", seq, exc)
            metrics.audit_appended(store)
            return seq
    raise RuntimeError("could not append to the audit trail: too many concurrent writers")


# --- the signing key: outside the data folder -----------------------------------------------------


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/openlfr/audit-signing.key`` (``~/.config/…``): a per-user file outside the data folder."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "openlfr" / "audit-signing.key"


def key_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where the signing key is: ``explicit``, else ``$OPENLFR_AUDIT_KEY``, else :func:`default_key_path`."""
    chosen = explicit or os.environ.get(ENV_AUDIT_KEY)
    return (Path(chosen).expanduser() if chosen else default_key_path()).resolve()


def public_key_path(private: Path) -> Path:
    return private.with_name(private.name + ".pub")


def _refuse_inside(path: Path, home: Path, what: str) -> None:
    """A key or checkpoint inside the data folder is in the hands of exactly the people it guards against."""
    if path.resolve().is_relative_to(home.resolve()):
        raise AuditKeyError(f"{what} {path} is inside the data folder {home}: keep it elsewhere, or it protects nothing")


def key_id(public: Ed25519PublicKey) -> str:
    """A short fingerprint to compare by eye or publish: the first 16 hex digits of SHA-256 of the raw key."""
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def init_key(home: str | os.PathLike[str] | Path, out: str | os.PathLike[str] | None = None) -> tuple[Path, Path, str]:
    """Create a new signing key (mode 0600) and its public half (``….pub``); never replaces an existing key.

    Returns the key's path, the public key's path and the key id.
    """
    path = key_path(out)
    _refuse_inside(path, Path(home), "the audit key")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AuditKeyError(
            f"{path} already exists: refusing to replace it (checkpoints signed with it would no longer verify)"
        ) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = private.public_key()
    pub_path = public_key_path(path)
    pub_path.write_bytes(public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path, pub_path, key_id(public)


def load_signing_key(home: Path, path: str | os.PathLike[str] | None = None) -> Ed25519PrivateKey:
    """The private key that signs checkpoints; refused when it is kept inside the data folder."""
    where = key_path(path)
    _refuse_inside(where, home, "the audit key")
    if not where.is_file():
        raise AuditKeyError(
            f"no audit signing key at {where}: create one with 'openlfr audit init-key [--out PATH]' "
            f"and point ${ENV_AUDIT_KEY} at it if it is not in the default place"
        )
    try:
        key = serialization.load_pem_private_key(where.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(f"{where} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{where} is not an Ed25519 key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """A public key from a PEM public key (``….pub``) or from the private key file itself."""
    data = Path(path).expanduser().read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise AuditKeyError(f"{path} is neither a PEM public key nor an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} is not an Ed25519 key")
    return key


# --- checkpoints: signed, and kept in a second place ----------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement "the trail had ``seq`` events ending in ``head`` at ``at``".

    ``hashes`` are the hashes of events ``from_seq``…``seq`` (those since the previous checkpoint), so
    that a verifier can name the first event that differs, not only say that the head does.
    """

    number: int
    seq: int
    events: int
    head: str
    at: str
    from_seq: int
    hashes: tuple[str, ...]
    public_key: str
    signature: str = ""
    file: Path | None = None

    def body(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "checkpoint": self.number,
            "seq": self.seq,
            "events": self.events,
            "head": self.head,
            "at": self.at,
            "from_seq": self.from_seq,
            "hashes": list(self.hashes),
            "public_key": self.public_key,
            "key_id": key_id(self.public()),
        }

    def public(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.public_key, validate=True))

    def summary(self) -> dict:
        return {
            "checkpoint": self.number,
            "seq": self.seq,
            "at": self.at,
            "key_id": key_id(self.public()),
            "file": str(self.file) if self.file else None,
        }


def _signed_bytes(body: dict) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _parse_checkpoint(path: Path) -> Checkpoint:
    """Read and check one checkpoint file; raises ``ValueError`` saying what is wrong with it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError("not an OpenLFR audit checkpoint")
    try:
        cp = Checkpoint(
            number=data["checkpoint"],
            seq=data["seq"],
            events=data["events"],
            head=data["head"],
            at=data["at"],
            from_seq=data["from_seq"],
            hashes=tuple(data["hashes"]),
            public_key=data["public_key"],
            signature=data["signature"],
            file=path,
        )
        public = cp.public()
        signature = base64.b64decode(cp.signature, validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed: {exc}") from exc
    ints = (cp.number, cp.seq, cp.events, cp.from_seq)
    if not all(type(v) is int for v in ints) or cp.number < 1 or cp.seq < 0 or cp.from_seq < 1:
        raise ValueError("malformed: checkpoint, seq, events and from_seq must be counts")
    if not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in (cp.head, *cp.hashes)):
        raise ValueError("malformed: hashes must be 64 hex digits")
    if cp.events != cp.seq or len(cp.hashes) != max(0, cp.seq - cp.from_seq + 1):
        raise ValueError("malformed: the counts do not add up")
    if (cp.hashes and cp.hashes[-1] != cp.head) or (cp.seq == 0 and cp.head != GENESIS):
        raise ValueError("malformed: the head is not the last hash")
    body = {k: data[k] for k in data if k != "signature"}
    if body != cp.body():
        raise ValueError("malformed: unexpected or inconsistent fields")
    try:
        public.verify(signature, _signed_bytes(body))
    except InvalidSignature:
        raise ValueError("the signature does not match: the file was altered or forged") from None
    return cp


@dataclass
class CheckpointSet:
    """The valid checkpoints of one folder, oldest first, and the files that were refused (with why)."""

    directory: Path
    valid: list[Checkpoint]
    rejected: list[str]
    key_id: str | None
    pinned: bool
    conflicts: list[str] = field(default_factory=list)

    @property
    def newest(self) -> Checkpoint | None:
        return self.valid[-1] if self.valid else None


def _signed_hashes(cp: Checkpoint) -> dict[int, str]:
    hashes = dict(zip(range(cp.from_seq, cp.seq + 1), cp.hashes, strict=True))
    if cp.seq:
        hashes[cp.seq] = cp.head
    return hashes


def _disagreements(valid: list[Checkpoint]) -> Iterator[tuple[Checkpoint, tuple[int, int]]]:
    """Each checkpoint that contradicts an earlier one: a different hash for an event, or fewer events."""
    known: dict[int, tuple[str, int]] = {}
    longest = (0, 0)
    for cp in valid:  # oldest first
        hashes = _signed_hashes(cp)
        clash = next((s for s, h in sorted(hashes.items()) if s in known and known[s][0] != h), None)
        if clash is not None:
            yield cp, (clash, known[clash][1])
        elif cp.seq < longest[0]:
            yield cp, (cp.seq + 1, longest[1])
        for s, h in hashes.items():
            known.setdefault(s, (h, cp.number))
        longest = max(longest, (cp.seq, cp.number))


def load_checkpoints(directory: str | os.PathLike[str], public: Ed25519PublicKey | None = None) -> CheckpointSet:
    """Every checkpoint in ``directory`` signed by ``public``.

    Without a configured public key the key of the oldest checkpoint is trusted (first use), and
    checkpoints signed by any other key are refused. Genuine checkpoints that disagree are all kept
    (and listed in ``conflicts``): the earlier one is the one to believe, since a later one signed
    over a rewritten trail is exactly what a holder of both the key and the folder could produce.
    """
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise OpenLFRError(f"the checkpoint folder {folder} does not exist")
    parsed: list[Checkpoint] = []
    rejected: list[str] = []
    for path in sorted(folder.glob(CHECKPOINT_GLOB)):
        try:
            parsed.append(_parse_checkpoint(path))
        except ValueError as exc:
            rejected.append(f"{path.name}: {exc}")
    parsed.sort(key=lambda c: c.number)
    trusted = _raw_public(public) if public is not None else None
    if trusted is None and parsed:
        trusted = base64.b64decode(parsed[0].public_key)
    valid: list[Checkpoint] = []
    for cp in parsed:
        if base64.b64decode(cp.public_key) != trusted:
            rejected.append(f"{cp.file.name if cp.file else cp.number}: signed by another key ({key_id(cp.public())})")
        else:
            valid.append(cp)
    conflicts = [
        f"checkpoint {cp.number} disagrees with checkpoint {older} about event {seq}"
        for cp, (seq, older) in _disagreements(valid)
    ]
    fingerprint = key_id(Ed25519PublicKey.from_public_bytes(trusted)) if trusted else None
    return CheckpointSet(folder, valid, rejected, fingerprint, public is not None, conflicts)


# --- verification --------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    problem: str | None = None
    #: The external checkpoint the trail was checked against; None: only the in-folder chain was checked.
    checkpoint: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def scope(self) -> str:
        if self.checkpoint is None:
            return (
                "in-folder chain only: without an external checkpoint (--checkpoints DIR) someone holding "
                "the data folder could have rewritten the trail undetected"
            )
        cp = self.checkpoint
        return (
            f"checked against signed checkpoint {cp['checkpoint']} ({cp['seq']} events, {cp['at']}, key {cp['key_id']}); "
            f"events after {cp['seq']} are protected by the in-folder chain only"
        )

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_broken_seq": self.first_broken_seq,
            "problem": self.problem,
            "checkpoint": self.checkpoint,
            "scope": self.scope,
            "notes": list(self.notes),
        }


def _read_anchor(store: Store, key: bytes) -> tuple[int, str] | str | None:
    """The anchored ``(seq, head)``; None when there is no anchor; a message when it was altered."""
    anchor = store.home / ANCHOR_FILE
    if not anchor.is_file():
        return None
    try:
        seq_text, head, mac = anchor.read_text().split()
        body = f"{seq_text} {head}"
        if hmac.compare_digest(hmac.new(key, body.encode(), hashlib.sha256).hexdigest(), mac):
            return int(seq_text), head
    except (ValueError, OSError):
        pass
    return f"the anchor file {anchor} was altered"


def _settled_anchor(store: Store, key: bytes) -> tuple[int, str] | str | None:
    """The anchor read again once no append is between its commit and its anchor write.

    An append holds the append lock from before its transaction until its anchor is written, so a
    first event may be committed (and walked) while the anchor does not exist yet: waiting for the
    lock tells that apart from an anchor that was deleted.
    """
    with _serialised(store):
        return _read_anchor(store, key)


def _walk(
    store: Store, expected: dict[int, tuple[str, int]], collect_after: int | None = None
) -> tuple[Verification, str, list[str]]:
    """Walk the chain from the first event; returns the result, the head hash and the hashes after ``collect_after``.

    ``expected`` maps a ``seq`` to the hash a signed checkpoint (by number) recorded for it.
    """
    key = store.derive_key(KEY_PURPOSE)
    anchor = _read_anchor(store, key)  # before the walk: every append commits before it moves the anchor
    prev, expected_seq, checked = GENESIS, 1, 0
    collected: list[str] = []

    def broken(seq: int | None, problem: str) -> tuple[Verification, str, list[str]]:
        return Verification(False, checked, seq, problem), prev, collected

    with store.session() as s:
        for e in s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).yield_per(1000):
            if e.seq != expected_seq:
                if e.seq > expected_seq:
                    missing = f"event(s) {expected_seq}..{e.seq - 1} are missing (deleted) before event {e.seq}"
                    return broken(expected_seq, missing)
                return broken(expected_seq, f"event {e.seq} is out of sequence (expected {expected_seq}): inserted or renumbered")
            signed = expected.get(e.seq)
            if signed is not None and not hmac.compare_digest(signed[0], e.hash):
                return broken(
                    e.seq,
                    f"event {e.seq} is not the event signed in checkpoint {signed[1]}: it, or an event before it, "
                    "was changed, deleted, inserted or reordered and the chain recomputed",
                )
            if e.prev_hash != prev:
                return broken(
                    e.seq, f"event {e.seq} does not follow event {e.seq - 1}: a row before it was changed, deleted or inserted"
                )
            if not hmac.compare_digest(_row_hash(key, e), e.hash):
                return broken(e.seq, f"event {e.seq} was modified or inserted (its hash does not match)")
            if isinstance(anchor, tuple) and e.seq == anchor[0] and not hmac.compare_digest(anchor[1], e.hash):
                return broken(e.seq, f"event {e.seq} differs from the one last anchored")
            if collect_after is not None and e.seq > collect_after:
                collected.append(e.hash)
            prev, expected_seq, checked = e.hash, expected_seq + 1, checked + 1
    signed_seq = max(expected, default=0)
    if signed_seq > checked:
        number = expected[signed_seq][1]
        return broken(
            checked + 1,
            f"event(s) {checked + 1}..{signed_seq} are missing: checkpoint {number} signed {signed_seq} events "
            f"but the trail holds {checked}: it was cut short or emptied",
        )
    if isinstance(anchor, str):
        return broken(None, anchor)
    if anchor is None and checked and not isinstance(_settled_anchor(store, key), tuple):  # not just written by a first append
        return broken(None, f"the anchor file {store.home / ANCHOR_FILE} is missing")
    if anchor is not None and anchor[0] > checked:
        return broken(checked + 1, f"event(s) {checked + 1}..{anchor[0]} are missing: the trail was cut short")
    return Verification(True, checked), prev, collected


def _expected(checkpoints: CheckpointSet | None) -> dict[int, tuple[str, int]]:
    """Every event hash any genuine checkpoint signed, and which checkpoint; the earliest signature wins."""
    expected: dict[int, tuple[str, int]] = {}
    for cp in checkpoints.valid if checkpoints else []:  # oldest first
        for s, h in _signed_hashes(cp).items():
            expected.setdefault(s, (h, cp.number))
    return expected


def _notes(checkpoints: CheckpointSet) -> list[str]:
    notes = [f"refused {line}" for line in checkpoints.rejected] + checkpoints.conflicts
    if not checkpoints.valid:
        notes.append(f"no valid checkpoint in {checkpoints.directory}: only the in-folder chain was checked")
    if checkpoints.valid and not checkpoints.pinned:
        notes.append(
            f"the checkpoints' key {checkpoints.key_id} was taken from the oldest checkpoint: "
            "compare it with the published key id, or pass --public-key"
        )
    return notes


def verify(
    store: Store,
    checkpoints: str | os.PathLike[str] | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> Verification:
    """Walk the chain from the first event and name the first link that does not hold.

    With ``checkpoints`` (a folder of signed checkpoints kept outside the data folder) the trail must
    also contain, unchanged, every event a valid checkpoint signed — as far as the newest one reaches.
    """
    found = load_checkpoints(checkpoints, public_key) if checkpoints is not None else None
    result, _head, _hashes = _walk(store, _expected(found))
    if found is not None:
        result.notes = _notes(found)
        if found.newest is not None:
            result.checkpoint = {**found.newest.summary(), "folder": str(found.directory)}
    return result


def verify_configured(store: Store) -> Verification:
    """:func:`verify` against the checkpoint folder configured for this installation (``OPENLFR_AUDIT_CHECKPOINTS``),
    if any: what the server's API and audit page report, so they check the same evidence as the CLI."""
    folder = os.environ.get(ENV_CHECKPOINTS)
    if not folder:
        return verify(store)
    return verify(store, folder, pinned_public_key(store.home))


def pinned_public_key(home: Path, explicit: str | os.PathLike[str] | None = None) -> Ed25519PublicKey | None:
    """The key checkpoints must be signed with: ``explicit`` (a ``.pub`` or key file), else the configured
    signing key's public half when that file exists; None: trust the oldest checkpoint's key."""
    if explicit:
        return load_public_key(explicit)
    path = key_path()
    if path.is_file():
        _refuse_inside(path, home, "the audit key")
        return load_public_key(path)
    return None


def write_checkpoint(
    store: Store, directory: str | os.PathLike[str], key: Ed25519PrivateKey, now: datetime | None = None
) -> Checkpoint:
    """Verify the trail (against the folder's own checkpoints too) and write the next signed checkpoint.

    Refuses (:class:`TrailBroken`) to sign a trail that does not verify: signing it would vouch for
    the tampering. The file is created without ever replacing one.
    """
    folder = Path(directory).expanduser().resolve()
    _refuse_inside(folder, store.home, "the checkpoint folder")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    public = key.public_key()
    for _attempt in range(20):  # another checkpointer took our number: read the folder again and start over
        found = load_checkpoints(folder, public)
        previous = found.newest
        after = previous.seq if previous else 0
        result, head, hashes = _walk(store, _expected(found), collect_after=after)
        if not result.ok:
            raise TrailBroken(result)
        names = (re.fullmatch(r"checkpoint-(\d+)\.json", p.name) for p in folder.glob(CHECKPOINT_GLOB))
        number = max([int(m.group(1)) for m in names if m] + [previous.number if previous else 0]) + 1
        cp = Checkpoint(
            number=number,
            seq=result.checked,
            events=result.checked,
            head=head,
            at=(now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            from_seq=after + 1,
            hashes=tuple(hashes),
            public_key=base64.b64encode(_raw_public(public)).decode(),
        )
        body = cp.body()
        signature = base64.b64encode(key.sign(_signed_bytes(body))).decode()
        path = folder / f"checkpoint-{number:08d}.json"
        try:
            _create_new(path, (json.dumps({**body, "signature": signature}, indent=1) + "\n").encode())
        except FileExistsError:
            continue
        return Checkpoint(**{**cp.__dict__, "signature": signature, "file": path})
    raise OpenLFRError(f"could not write a checkpoint in {folder}: too many concurrent checkpointers")


def _create_new(path: Path, data: bytes) -> None:
    """Create ``path`` whole or not at all, never replacing a file (``FileExistsError`` if it exists)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(data)
    try:
        os.link(tmp, path)  # unlike a rename, never replaces an existing checkpoint
    except FileExistsError:
        raise
    except OSError:  # no hard links here (some network and object-store mounts): exclusive create instead
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    finally:
        tmp.unlink(missing_ok=True)


def head_seq(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.max(AuditEvent.seq))) or 0


class CheckpointScheduler:
    """Writes a signed checkpoint every ``every_s`` seconds while the trail grows (``openlfr serve``).

    Failures — a broken trail, an unreachable folder — are passed to ``report`` and retried at the
    next tick rather than stopping the server.
    """

    def __init__(
        self,
        store: Store,
        directory: str | os.PathLike[str],
        key: Ed25519PrivateKey,
        every_s: float = 300.0,
        report: Callable[[Exception], None] | None = None,
    ) -> None:
        self.store, self.directory, self.key, self.every_s = store, Path(directory), key, every_s
        self.report = report or (lambda exc: log.error("audit checkpoint failed: %s", exc))
        self._last: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> Checkpoint | None:
        """Write a checkpoint if the trail grew since the last one this scheduler wrote; errors are reported."""
        try:
            if self._last is not None and head_seq(self.store) == self._last:
                return None
            cp = write_checkpoint(self.store, self.directory, self.key)
        except Exception as exc:  # reported, and tried again next time
            self.report(exc)
            return None
        self._last = cp.seq
        return cp

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.run_once()

    def start(self) -> Checkpoint | None:
        first = self.run_once()
        self._thread = threading.Thread(target=self._loop, name="audit-checkpoints", daemon=True)
        self._thread.start()
        return first

    def stop(self, final: bool = True) -> Checkpoint | None:
        """Stop the timer; with ``final``, sign what was appended since the last tick."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.run_once() if final else None


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
