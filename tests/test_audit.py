"""The audit trail: every change, removal or insertion is detected, appends are safe under concurrency,
every service records who did what, nothing biometric is written to it, and the CLI verifies, searches and exports.

Signed checkpoints kept outside the data folder catch what the in-folder chain cannot: someone who
holds the data folder (and so the chain's key) deleting events and recomputing the chain."""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select, text
from typer.testing import CliRunner

from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.cli.main import app
from openlfr.errors import StoreError
from openlfr.live.runner import run_deployment
from openlfr.services import alerts, audit, demo_images, deployments, retention
from openlfr.services.gallery import enrol, identify, reference_template_context
from openlfr.storage import Store
from openlfr.storage.models import ReferenceImage

pytestmark = pytest.mark.both_databases  # storage, service and API: on SQLite and PostgreSQL (tests/pg.py)
runner = CliRunner()


def cli(home: Path, *args: object):
    return runner.invoke(app, [str(a) for a in args] + ["--home", str(home)], env={"COLUMNS": "200"})


@pytest.fixture(autouse=True)
def no_configured_audit_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never pick up a real signing key or checkpoint folder from the environment running the tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv(audit.ENV_AUDIT_KEY, raising=False)
    monkeypatch.delenv(audit.ENV_CHECKPOINTS, raising=False)


def append(store: Store, n: int) -> None:
    for i in range(n):
        audit.record(store, "test.event", "thing", i, {"i": i, "note": f"event {i}"}, actor=f"officer-{i % 3}")


def execute(store: Store, sql: str, **params: object) -> None:
    """Tamper with the database directly, as someone with write access but not the key could."""
    with store.engine.begin() as connection:
        connection.execute(text(sql), params)


# --- the chain holds, and says so ---------------------------------------------------------------


def test_many_events_verify(store: Store) -> None:
    append(store, 60)
    result = audit.verify(store)
    assert result.ok and result.checked == 60 and result.first_broken_seq is None
    assert audit.count(store) == 60
    assert [e["seq"] for e in audit.search(store, limit=5)] == [60, 59, 58, 57, 56]


def test_empty_trail_is_intact(store: Store) -> None:
    assert audit.verify(store).ok and audit.verify(store).checked == 0


def test_cli_verify_intact(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    append(store, 12)
    store.close()
    r = cli(home, "audit", "verify")
    assert r.exit_code == 0, r.output
    assert "audit trail intact: 12 events" in r.stdout
    assert "in-folder chain only" in r.stdout  # and says what that does not cover
    r = cli(home, "audit", "verify", "--json")
    assert r.exit_code == 0
    result = json.loads(r.stdout)
    assert {k: result[k] for k in ("ok", "checked", "first_broken_seq", "problem", "checkpoint")} == {
        "ok": True,
        "checked": 12,
        "first_broken_seq": None,
        "problem": None,
        "checkpoint": None,
    }
    assert "in-folder chain only" in result["scope"]


# --- tampering is detected, at the right event ---------------------------------------------------


def test_modified_actor_is_detected(store: Store) -> None:
    append(store, 6)
    execute(store, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 3")
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "event 3" in result.problem
    assert result.checked == 2


def test_modified_details_are_detected(store: Store) -> None:
    append(store, 6)
    execute(store, "UPDATE audit_events SET details = :d WHERE seq = 3", d=json.dumps({"i": 99, "note": "event 2"}))
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "modified" in result.problem


def test_deleted_row_is_detected(store: Store) -> None:
    append(store, 6)
    execute(store, "DELETE FROM audit_events WHERE seq = 3")
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "missing" in result.problem


def test_deleted_row_with_renumbering_is_detected(store: Store) -> None:
    """Closing the gap after a deletion does not help: the next row no longer follows its predecessor."""
    append(store, 6)
    execute(store, "DELETE FROM audit_events WHERE seq = 3")
    execute(store, "UPDATE audit_events SET seq = -(seq - 1) WHERE seq > 3")
    execute(store, "UPDATE audit_events SET seq = -seq WHERE seq < 0")
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3


def test_inserted_row_is_detected(store: Store) -> None:
    append(store, 6)
    with store.engine.connect() as connection:
        second = connection.execute(text("SELECT at, hash FROM audit_events WHERE seq = 2")).one()
    # Make room at seq 3 (in two steps: seq is unique), then forge an event that claims to follow event 2.
    execute(store, "UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= 3")
    execute(store, "UPDATE audit_events SET seq = -seq WHERE seq < 0")
    execute(
        store,
        "INSERT INTO audit_events (seq, at, actor, role, action, record_type, record_id, source, details, prev_hash, hash) "
        "VALUES (3, :at, 'pc-forger', NULL, 'alert.outcome', 'alert', '1', NULL, :details, :prev, :hash)",
        at=second.at,
        details=json.dumps({"outcome": "no-action"}),
        prev=second.hash,
        hash="ab" * 32,
    )
    assert audit.count(store) == 7
    result = audit.verify(store)
    assert not result.ok and result.first_broken_seq == 3 and "event 3" in result.problem


def test_rows_cut_off_the_end_are_detected_by_the_anchor(store: Store) -> None:
    append(store, 6)
    execute(store, "DELETE FROM audit_events WHERE seq > 4")
    result = audit.verify(store)
    assert not result.ok and result.checked == 4
    assert result.first_broken_seq == 5 and "cut short" in result.problem


def test_altered_or_missing_anchor_is_detected(store: Store) -> None:
    append(store, 3)
    anchor = store.home / audit.ANCHOR_FILE
    _seq, head, mac = anchor.read_text().split()
    anchor.write_text(f"2 {head} {mac}\n")
    assert not audit.verify(store).ok and "altered" in audit.verify(store).problem
    anchor.unlink()
    assert not audit.verify(store).ok and "missing" in audit.verify(store).problem


def test_cli_verify_names_the_broken_event(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    append(store, 5)
    execute(store, "UPDATE audit_events SET record_id = '999' WHERE seq = 3")
    store.close()
    r = cli(home, "audit", "verify")
    assert r.exit_code == 1
    assert "BROKEN" in r.output and "seq 3" in r.output and "event 3" in r.output
    r = cli(home, "audit", "verify", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["first_broken_seq"] == 3


# --- concurrency ---------------------------------------------------------------------------------


def test_concurrent_appends_keep_one_contiguous_chain(store: Store) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(25):
                audit.record(store, "test.concurrent", "thing", f"{n}-{i}", {"writer": n, "i": i}, actor=f"writer-{n}")
        except BaseException as exc:  # surfaced below, not swallowed by the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = audit.search(store, limit=1000)
    assert sorted(e["seq"] for e in events) == list(range(1, 101))
    assert {e["actor"] for e in events} == {f"writer-{n}" for n in range(4)}
    assert audit.verify(store).ok and audit.verify(store).checked == 100


def test_concurrent_appends_from_separate_stores(tmp_path: Path) -> None:
    """Two open stores on one data directory (as two interfaces would be) still make one chain."""
    first, second = Store(tmp_path / "home"), Store(tmp_path / "home")
    threads = [threading.Thread(target=append, args=(s, 20)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = audit.verify(first)
    assert result.ok and result.checked == 40
    first.close()
    second.close()


WRITER_SCRIPT = """
import pathlib, sys, time
from openlfr.services import audit
from openlfr.storage import Store
home, count, who, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], pathlib.Path(sys.argv[4])
store = Store(home)
pathlib.Path(f"{go}.{who}").touch()
while not go.exists():
    time.sleep(0.005)
if who == "checkpointer":
    key = audit.load_signing_key(store.home)
    for _ in range(count):
        audit.write_checkpoint(store, sys.argv[5], key)
        time.sleep(0.05)
else:
    for i in range(count):
        audit.record(store, "test.process", "thing", f"{who}-{i}", {"i": i}, actor=who)
"""


def test_verify_looks_again_for_a_missing_anchor_only_once_appends_in_progress_are_done(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append commits its event before it writes the anchor (holding the append lock throughout), so a
    verify (a checkpointer) can walk a first event whose anchor does not exist yet: before calling the anchor
    missing, it reads it again holding the append lock. (Without that the concurrent test below failed now and then.)"""
    import fcntl

    audit.record(store, "test.event")
    (store.home / audit.ANCHOR_FILE).unlink()  # now really missing
    read_anchor = audit._read_anchor
    lock_held: list[bool] = []

    def watched(st: Store, key: bytes):
        fd = os.open(st.home / audit.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # refused while another open file holds it
            lock_held.append(False)
        except BlockingIOError:
            lock_held.append(True)
        finally:
            os.close(fd)
        return read_anchor(st, key)

    monkeypatch.setattr(audit, "_read_anchor", watched)
    result = audit.verify(store)
    assert lock_held == [False, True]
    assert not result.ok and "anchor file" in (result.problem or "") and "missing" in (result.problem or "")


def test_concurrent_processes_append_one_contiguous_chain(tmp_path: Path) -> None:
    """Several processes (as the server and CLI commands are) appending at once: no errors, one chain, a true anchor.

    A checkpointer signs the trail meanwhile; it must never mistake an append in progress for tampering.
    """
    home, go = tmp_path / "home", tmp_path / "go"
    store = Store(home)
    key_file, _pub, _kid = audit.init_key(home, tmp_path / "keys" / "audit.key")
    writers, per_writer = 4, 60
    env = {**os.environ, audit.ENV_AUDIT_KEY: str(key_file)}
    names = [f"proc-{n}" for n in range(writers)] + ["checkpointer"]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER_SCRIPT,
                str(home),
                str(5 if who == "checkpointer" else per_writer),
                who,
                str(go),
                str(tmp_path / "checkpoints"),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in names
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.{who}").exists() for who in names):  # every process has opened the store
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    go.touch()
    outcomes = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outcomes
    assert all("Traceback" not in err for _out, err in outcomes), outcomes
    total = writers * per_writer
    events = audit.search(store, limit=10_000)
    assert sorted(e["seq"] for e in events) == list(range(1, total + 1))
    assert {e["actor"] for e in events} == {f"proc-{n}" for n in range(writers)}
    anchored_seq, anchored_head, _mac = (home / audit.ANCHOR_FILE).read_text().split()
    assert int(anchored_seq) == total and anchored_head == events[0]["hash"]
    assert not list(home.glob("*.tmp")) and not list(home.glob(".audit.anchor.*"))  # no temporary file left behind
    pinned = audit.load_public_key(key_file)
    result = audit.verify(store, tmp_path / "checkpoints", pinned)
    assert result.ok and result.checked == total, result
    assert result.checkpoint is not None and not result.notes
    store.close()


# --- signed checkpoints: what a holder of the data folder cannot rewrite --------------------------


def rechain(store: Store) -> None:
    """What someone holding the data folder can do: recompute every link and the anchor with the folder's own key."""
    key = store.derive_key(audit.KEY_PURPOSE)
    prev, last = audit.GENESIS, 0
    with store.engine.begin() as connection:
        rows = connection.execute(
            text(
                "SELECT id, seq, at, actor, role, action, record_type, record_id, source, details FROM audit_events ORDER BY seq"
            )
        ).all()
        for row in rows:
            at = row.at if isinstance(row.at, datetime) else datetime.fromisoformat(row.at)
            details = json.loads(row.details) if isinstance(row.details, str) else row.details
            payload = audit._canonical(
                row.seq, at, row.actor, row.role, row.action, row.record_type, row.record_id, row.source, details or {}
            )
            digest = audit._chain_hash(key, prev, payload)
            connection.execute(
                text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id"), {"p": prev, "h": digest, "id": row.id}
            )
            prev, last = digest, row.seq
    if last:
        audit._write_anchor(store, key, last, prev)
    else:
        (store.home / audit.ANCHOR_FILE).unlink(missing_ok=True)


def shift(store: Store, where: str, by: int) -> None:
    """Renumber the rows matching ``where`` by ``by`` (in two steps: ``seq`` is unique)."""
    execute(store, f"UPDATE audit_events SET seq = -(seq + :by) WHERE {where}", by=by)
    execute(store, "UPDATE audit_events SET seq = -seq WHERE seq < 0")


@dataclass
class SignedTrail:
    """12 events; checkpoint 1 signed events 1-6 and checkpoint 2 events 7-10; 11 and 12 came after."""

    store: Store
    key_file: Path
    public_file: Path
    checkpoints: Path
    anchor_at_7: bytes

    def verify(self) -> audit.Verification:
        return audit.verify(self.store, self.checkpoints, audit.load_public_key(self.public_file))


@pytest.fixture
def signed(tmp_path: Path) -> SignedTrail:
    store = Store(tmp_path / "home")
    key_file, public_file, _kid = audit.init_key(store.home, tmp_path / "officer-keys" / "audit.key")
    key = audit.load_signing_key(store.home, key_file)
    checkpoints = tmp_path / "elsewhere" / "checkpoints"
    append(store, 6)
    audit.write_checkpoint(store, checkpoints, key)
    append(store, 1)
    anchor_at_7 = (store.home / audit.ANCHOR_FILE).read_bytes()
    append(store, 3)
    audit.write_checkpoint(store, checkpoints, key)
    append(store, 2)
    yield SignedTrail(store, key_file, public_file, checkpoints, anchor_at_7)
    store.close()


def edit(store: Store) -> int:
    execute(store, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 4")
    rechain(store)
    return 4


def delete(store: Store) -> int:
    execute(store, "DELETE FROM audit_events WHERE seq = 4")
    shift(store, "seq > 4", -1)
    rechain(store)
    return 4


def insert(store: Store) -> int:
    shift(store, "seq >= 4", 1)
    execute(
        store,
        "INSERT INTO audit_events (seq, at, actor, role, action, record_type, record_id, source, details, prev_hash, hash) "
        "SELECT 4, at, 'pc-forger', NULL, 'alert.outcome', 'alert', '1', NULL, '{}', hash, hash FROM audit_events WHERE seq = 3",
    )
    rechain(store)
    return 4


def reorder(store: Store) -> int:
    execute(store, "UPDATE audit_events SET seq = -1 WHERE seq = 4")
    execute(store, "UPDATE audit_events SET seq = 4 WHERE seq = 5")
    execute(store, "UPDATE audit_events SET seq = 5 WHERE seq = -1")
    rechain(store)
    return 4


def truncate_tail(store: Store) -> int:
    execute(store, "DELETE FROM audit_events WHERE seq > 7")
    rechain(store)  # the anchor now says 7 events, correctly signed with the folder's key
    return 8


def delete_everything(store: Store) -> int:
    execute(store, "DELETE FROM audit_events")
    (store.home / audit.ANCHOR_FILE).unlink()
    return 1


def recompute_chain(store: Store) -> int:
    execute(store, "DELETE FROM audit_events WHERE seq BETWEEN 3 AND 5")
    shift(store, "seq > 5", -3)
    rechain(store)
    return 3


TAMPERING = [edit, delete, insert, reorder, truncate_tail, delete_everything, recompute_chain]


@pytest.mark.parametrize("tamper", [*TAMPERING, "restore_old_anchor"], ids=lambda t: getattr(t, "__name__", t))
def test_checkpoint_reveals_what_the_in_folder_chain_cannot(signed: SignedTrail, tamper, tmp_path: Path) -> None:
    before = signed.verify()
    assert before.ok and before.checked == 12 and before.checkpoint["checkpoint"] == 2 and before.checkpoint["seq"] == 10
    if tamper == "restore_old_anchor":
        execute(signed.store, "DELETE FROM audit_events WHERE seq > 7")
        (signed.store.home / audit.ANCHOR_FILE).write_bytes(signed.anchor_at_7)
        first = 8
    else:
        first = tamper(signed.store)
    alone = audit.verify(signed.store)
    assert alone.ok and alone.checkpoint is None  # the attack: the data folder alone cannot tell
    result = signed.verify()
    assert not result.ok and result.first_broken_seq == first, result
    assert str(first) in result.problem and result.checked == first - 1
    # The same through the command line, as an auditor with the checkpoints and the public key would run it.
    home = signed.store.home
    r = cli(home, "audit", "verify", "--checkpoints", signed.checkpoints, "--public-key", signed.public_file)
    assert r.exit_code == 1, r.output
    assert "BROKEN" in r.output and f"seq {first}" in r.output and "checkpoint 2" in r.output
    r = cli(home, "audit", "verify", "--checkpoints", signed.checkpoints, "--public-key", signed.public_file, "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["first_broken_seq"] == first
    # A checkpoint is never signed over the tampering.
    with pytest.raises(audit.TrailBroken):
        audit.write_checkpoint(signed.store, signed.checkpoints, audit.load_signing_key(home, signed.key_file))
    r = cli(home, "audit", "checkpoint", "--to", signed.checkpoints, "--key", signed.key_file)
    assert r.exit_code == 1 and "no checkpoint written" in r.output and f"seq {first}" in r.output
    assert len(list(signed.checkpoints.glob("checkpoint-*.json"))) == 2


def test_events_after_the_last_checkpoint_rely_on_the_in_folder_chain(signed: SignedTrail) -> None:
    """The documented limit: a change after the newest checkpoint is caught only if the chain was not recomputed."""
    execute(signed.store, "UPDATE audit_events SET actor = 'someone-else' WHERE seq = 11")
    result = signed.verify()
    assert not result.ok and result.first_broken_seq == 11
    rechain(signed.store)
    assert signed.verify().ok  # hence: checkpoint often


def test_checkpoint_file_is_signed_and_complete(signed: SignedTrail) -> None:
    first, second = sorted(signed.checkpoints.glob("checkpoint-*.json"))
    body = json.loads(second.read_text())
    assert body["format"] == audit.CHECKPOINT_FORMAT
    assert (body["checkpoint"], body["seq"], body["events"], body["from_seq"]) == (2, 10, 10, 7)
    events = {e["seq"]: e["hash"] for e in audit.search(signed.store, limit=100)}
    assert body["head"] == events[10] and body["hashes"] == [events[s] for s in range(7, 11)]
    assert json.loads(first.read_text())["hashes"] == [events[s] for s in range(1, 7)]
    public = audit.load_public_key(signed.public_file)
    assert body["key_id"] == audit.key_id(public) and datetime.fromisoformat(body["at"]).tzinfo is not None
    signature = base64.b64decode(body.pop("signature"))
    public.verify(signature, audit._signed_bytes(body))  # raises if not genuine
    assert oct(signed.key_file.stat().st_mode & 0o777) == "0o600"
    assert not any(p.is_relative_to(signed.store.home) for p in (signed.key_file, signed.checkpoints))


def test_altered_and_forged_checkpoints_are_refused(signed: SignedTrail) -> None:
    """A checkpoint edited to claim fewer events, or one signed by another key, does not count."""
    newest = signed.checkpoints / "checkpoint-00000002.json"
    body = json.loads(newest.read_text())
    execute(signed.store, "DELETE FROM audit_events WHERE seq > 6")
    rechain(signed.store)
    altered = {**body, "seq": 6, "events": 6, "head": body["hashes"][-1], "hashes": [], "from_seq": 7}
    newest.write_text(json.dumps(altered))
    forger = Ed25519PrivateKey.generate()
    forged = {**altered, "checkpoint": 3, "public_key": base64.b64encode(audit._raw_public(forger.public_key())).decode()}
    forged["key_id"] = audit.key_id(forger.public_key())
    forged.pop("signature")
    forged["signature"] = base64.b64encode(forger.sign(audit._signed_bytes(forged))).decode()
    (signed.checkpoints / "checkpoint-00000003.json").write_text(json.dumps(forged))
    result = signed.verify()
    assert result.checkpoint["checkpoint"] == 1  # the newest genuine one left
    assert any("00000002" in n and "signature" in n for n in result.notes)
    assert any("00000003" in n and "another key" in n for n in result.notes)
    assert result.ok  # checkpoint 1 covers events 1-6, which are intact; the notes tell the auditor the rest
    # Without a configured key, the oldest checkpoint's key is trusted, and the forgery is still refused.
    unpinned = audit.verify(signed.store, signed.checkpoints)
    assert unpinned.checkpoint["checkpoint"] == 1 and any("oldest checkpoint" in n for n in unpinned.notes)


def test_a_rewritten_trail_signed_with_the_stolen_key_is_contradicted(signed: SignedTrail) -> None:
    """Someone holding the folder *and* the key signs a new checkpoint over a rewritten trail; the earlier
    checkpoints, still in the (write-once) checkpoint folder, contradict it."""
    edit(signed.store)
    key = audit.load_signing_key(signed.store.home, signed.key_file)
    hashes = [e["hash"] for e in reversed(audit.search(signed.store, limit=100))]
    forged = audit.Checkpoint(
        number=3,
        seq=len(hashes),
        events=len(hashes),
        head=hashes[-1],
        at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        from_seq=1,
        hashes=tuple(hashes),
        public_key=base64.b64encode(audit._raw_public(key.public_key())).decode(),
    )
    body = forged.body()
    signature = base64.b64encode(key.sign(audit._signed_bytes(body))).decode()
    (signed.checkpoints / "checkpoint-00000003.json").write_text(json.dumps({**body, "signature": signature}))
    result = signed.verify()
    assert result.checkpoint["checkpoint"] == 3  # genuine signature, so it counts as the newest ...
    assert not result.ok and result.first_broken_seq == 4  # ... but checkpoint 1 still says what event 4 was
    assert "checkpoint 3 disagrees with checkpoint 1 about event 4" in result.notes


def test_cli_init_key_and_checkpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    append(store, 3)
    store.close()
    key_file, checkpoints = tmp_path / "keys" / "audit.key", tmp_path / "checkpoints"
    r = cli(home, "audit", "checkpoint", "--to", checkpoints, "--key", key_file)
    assert r.exit_code == 2 and "init-key" in r.stderr  # no key yet: says how to make one
    r = cli(home, "audit", "init-key", "--out", key_file, "--json")
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert Path(made["key"]) == key_file.resolve() and Path(made["public_key"]).is_file() and len(made["key_id"]) == 16
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    r = cli(home, "audit", "init-key", "--out", key_file)
    assert r.exit_code == 2 and "already exists" in r.stderr  # never replaced
    r = cli(home, "audit", "init-key", "--out", home / "keys" / "audit.key")
    assert r.exit_code == 2 and "inside the data folder" in r.stderr
    r = cli(home, "audit", "checkpoint", "--to", home / "checkpoints", "--key", key_file)
    assert r.exit_code == 2 and "inside the data folder" in r.stderr
    r = runner.invoke(
        app,
        ["audit", "checkpoint", "--to", str(checkpoints), "--home", str(home), "--json"],
        env={"COLUMNS": "200", audit.ENV_AUDIT_KEY: str(key_file)},
    )
    assert r.exit_code == 0, r.output
    written = json.loads(r.stdout)
    assert written["written"] and written["checkpoint"] == 1 and written["seq"] == 3 and written["key_id"] == made["key_id"]
    r = cli(home, "audit", "verify", "--checkpoints", checkpoints)  # unpinned: says whose key it trusted
    assert r.exit_code == 0, r.output
    assert "audit trail intact: 3 events" in r.stdout and "checkpoint 1" in r.stdout and "oldest checkpoint" in r.stdout
    r = cli(home, "audit", "verify", "--checkpoints", tmp_path / "nowhere")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli(home, "audit", "verify", "--checkpoints", empty)
    assert r.exit_code == 0 and "no valid checkpoint" in r.stdout and "in-folder chain only" in r.stdout


def test_scheduler_signs_only_when_the_trail_grew(signed: SignedTrail) -> None:
    key = audit.load_signing_key(signed.store.home, signed.key_file)
    errors: list[Exception] = []
    schedule = audit.CheckpointScheduler(signed.store, signed.checkpoints, key, every_s=3600, report=errors.append)
    first = schedule.start()
    assert first is not None and (first.number, first.seq, first.from_seq) == (3, 12, 11)
    assert schedule.run_once() is None  # nothing new
    append(signed.store, 2)
    final = schedule.stop(final=True)
    assert final is not None and (final.number, final.seq) == (4, 14) and errors == []
    assert signed.verify().checkpoint["checkpoint"] == 4
    execute(signed.store, "DELETE FROM audit_events WHERE seq > 13")
    append(signed.store, 2)  # the trail grew again, but event 14 is no longer the one signed
    assert schedule.run_once() is None and isinstance(errors[0], audit.TrailBroken)  # reported, not signed


def test_serve_writes_checkpoints_at_start_and_shutdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    home, checkpoints = tmp_path / "home", tmp_path / "checkpoints"
    store = Store(home)
    append(store, 2)
    key_file, _pub, _kid = audit.init_key(home, tmp_path / "keys" / "audit.key")

    def fake_run(*_args: object, **_kwargs: object) -> None:  # the server's life: two more events
        append(store, 2)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    r = runner.invoke(
        app,
        ["serve", "--home", str(home), "--audit-checkpoints", str(checkpoints), "--checkpoint-every", "3600"],
        env={"COLUMNS": "200", audit.ENV_AUDIT_KEY: str(key_file)},
    )
    assert r.exit_code == 0, r.output
    assert "audit checkpoints every 3600 s" in r.stdout
    assert [json.loads(p.read_text())["seq"] for p in sorted(checkpoints.glob("checkpoint-*.json"))] == [2, 4]
    r = runner.invoke(app, ["serve", "--home", str(home), "--audit-checkpoints", str(checkpoints)], env={"COLUMNS": "200"})
    assert r.exit_code == 2 and "init-key" in r.stderr  # no key: refuses to start rather than run unsigned
    store.close()


# --- every service records who did what -------------------------------------------------------------


def plain(value: object, depth: int = 0) -> bool:
    """Small JSON made of scalars: no room for an image, a template or any other blob."""
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= 300
    if isinstance(value, list) and depth < 2:
        return len(value) <= 20 and all(plain(v, depth + 1) for v in value)
    if isinstance(value, dict) and depth < 2:
        return len(value) <= 20 and all(isinstance(k, str) and plain(v, depth + 1) for k, v in value.items())
    return False


def one(store: Store, action: str) -> dict:
    """The single event with exactly this action (search matches prefixes)."""
    matches = [e for e in audit.search(store, action=action, limit=1000) if e["action"] == action]
    assert len(matches) == 1, (action, matches)
    return matches[0]


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory: pytest.TempPathFactory, engine, module_database: str) -> dict:
    """A whole deployment from subject to retention, with the alert's images viewed along the way."""
    root = tmp_path_factory.mktemp("audited")
    store = Store(root / "home")
    hopper_subject(store, engine)
    video = walking_clip(root / "clip.mp4", [demo_images.grace_hopper()], seconds=2.0)
    deployment_id = ready_deployment(store, video)
    run_deployment(store, engine, deployment_id, realtime=False, retention_every_s=None)
    (alert,) = alerts.list_alerts(store, deployment_id)
    with audit.acting_as("pc-viewer", role="officer", source="test-console"):
        images = alerts.alert_images(store, alert["id"])
        alerts.comparison_image(store, alert["id"])
    alerts.record_outcome(store, alert["id"], "arrest", "pc-d")
    alerts.set_legal_hold(store, alert["id"], "sgt-b", "case 7")
    alerts.lift_legal_hold(store, alert["id"], "sgt-b", "case concluded")
    deployments.close(store, deployment_id, "supt-c")
    later = datetime.now(UTC) + timedelta(days=32)
    report = retention.run(store, now=later)
    after_first_run = audit.count(store)
    again = retention.run(store, now=later)
    with store.session() as s:
        image = s.scalars(select(ReferenceImage)).first()
        template = store.cipher.decrypt(image.template, reference_template_context(image.pack_id, image.id))
    yield {
        "store": store,
        "deployment": deployment_id,
        "alert": alert["id"],
        "images": images,
        "report": report,
        "again": again,
        "count_after_first_run": after_first_run,
        "template": template,
    }
    store.close()


def test_lifecycle_is_audited_with_actors_and_records(lifecycle: dict) -> None:
    store, deployment, alert = lifecycle["store"], str(lifecycle["deployment"]), str(lifecycle["alert"])
    added = one(store, "subject.add")
    assert added["actor"] == "officer-a" and added["record_type"] == "subject" and added["record_id"] == "GH-1"
    enrolled = one(store, "gallery.enrol")
    assert enrolled["actor"] == "officer-a" and enrolled["record_id"] == "GH-1"
    assert enrolled["details"]["gallery"] == "watchlist-subjects" and enrolled["details"]["images_added"] == 1
    expected = {
        "deployment.plan": ("planner", "deployment"),
        "watchlist.build": ("planner", "watchlist"),
        "watchlist.approve": ("supervisor", "watchlist"),
        "deployment.authorise": ("supervisor", "deployment"),
        "deployment.start": ("system", "deployment"),
        "watchlist.delete": ("supt-c", "watchlist"),
        "deployment.close": ("supt-c", "deployment"),
    }
    for action, (actor, record_type) in expected.items():
        event = one(store, action)
        assert (event["actor"], event["record_type"], event["record_id"]) == (actor, record_type, deployment), action
    assert one(store, "watchlist.build")["details"]["subjects"] == 1
    assert one(store, "deployment.authorise")["details"]["note"] == "necessary and proportionate for the test"
    assert "closed by supt-c" in one(store, "watchlist.delete")["details"]["reason"]

    created = one(store, "alert.create")
    assert created["actor"] == "system" and created["record_id"] == alert
    assert created["details"]["subject"] == "GH-1" and created["details"]["deployment"] == int(deployment)
    assert created["details"]["camera"] == "cam-1" and created["details"]["score"] >= 0.45
    views = audit.search(store, action="alert.view_images", record_id=alert)
    assert len(views) == 2
    assert {(v["actor"], v["role"], v["source"]) for v in views} == {("pc-viewer", "officer", "test-console")}
    assert sorted(v["details"]["view"] for v in views) == ["comparison", "images"]
    outcome = one(store, "alert.outcome")
    assert outcome["actor"] == "pc-d" and outcome["record_id"] == alert
    assert outcome["details"] == {"outcome": "arrest", "adjudication": "match"}
    assert one(store, "alert.hold")["actor"] == "sgt-b" and one(store, "alert.hold")["details"]["reason"] == "case 7"
    assert one(store, "alert.release")["actor"] == "sgt-b"

    deleted = one(store, "retention.delete")
    assert deleted["actor"] == "system" and deleted["record_type"] == "alert" and deleted["record_id"] == alert
    assert deleted["details"]["kind"] == "alert-images" and deleted["details"]["files"] == 3
    summary = one(store, "retention.run")
    assert summary["actor"] == "system" and summary["details"]["alert_images_deleted"] == 1

    # Order follows the life cycle.
    order = [e["action"] for e in reversed(audit.search(store, limit=1000))]
    for before, after in [
        ("subject.add", "deployment.plan"),
        ("deployment.authorise", "deployment.start"),
        ("deployment.start", "alert.create"),
        ("alert.outcome", "deployment.close"),
        ("deployment.close", "retention.delete"),
    ]:
        assert order.index(before) < order.index(after)
    assert audit.verify(store).ok


def test_alert_images_returns_the_jpegs_until_retention_deletes_them(lifecycle: dict) -> None:
    images = lifecycle["images"]
    assert set(images) == {"probe", "frame", "reference"}
    assert all(data[:3] == b"\xff\xd8\xff" for data in images.values())  # decrypted JPEGs
    assert lifecycle["report"].alert_images_deleted == [lifecycle["alert"]]
    views_before = len(audit.search(lifecycle["store"], action="alert.view_images"))
    with pytest.raises(StoreError, match="deleted under the retention rules"):
        alerts.alert_images(lifecycle["store"], lifecycle["alert"])
    assert len(audit.search(lifecycle["store"], action="alert.view_images")) == views_before  # nothing was shown


def test_a_retention_run_that_deletes_nothing_records_nothing(lifecycle: dict) -> None:
    again = lifecycle["again"]
    assert again.alert_images_deleted == again.footage_deleted == again.watchlists_deleted == []
    assert len(audit.search(lifecycle["store"], action="retention.run")) == 1
    assert audit.count(lifecycle["store"]) >= lifecycle["count_after_first_run"]
    assert not any(
        e["seq"] > lifecycle["count_after_first_run"] and e["action"].startswith("retention.")
        for e in audit.search(lifecycle["store"], limit=1000)
    )


def test_no_biometric_data_in_the_trail(lifecycle: dict) -> None:
    store = lifecycle["store"]
    events = audit.search(store, limit=1000)
    assert events and all(plain(e["details"]) for e in events)
    dump = json.dumps(events).encode()
    template = lifecycle["template"]
    assert len(template) >= 64
    forms = [template, template.hex().encode(), base64.b64encode(template)]
    for form in forms:
        for start in range(0, len(form) - 16, 16):
            assert form[start : start + 16] not in dump
    for image in lifecycle["images"].values():
        assert image[100:132] not in dump and base64.b64encode(image[99:147]) not in dump


def test_identify_is_audited_without_the_probe(store: Store, engine) -> None:
    with audit.acting_as("analyst-e", role="analyst", source="test"):
        enrol(store, engine, "P-1", "Grace Hopper", [demo_images.grace_hopper_path()])
        results = identify(store, engine, demo_images.grace_hopper())
    assert len(results) == 1 and results[0].candidates[0].reference == "P-1"
    event = one(store, "gallery.identify")
    assert event["actor"] == "analyst-e" and event["role"] == "analyst" and event["record_id"] == "default"
    assert set(event["details"]) == {"gallery", "faces", "candidates", "threshold", "top_k"}
    assert event["details"]["faces"] == 1 and event["details"]["candidates"] == 1
    enrolled = one(store, "gallery.enrol")
    assert enrolled["actor"] == "analyst-e" and enrolled["record_type"] == "person" and enrolled["record_id"] == "P-1"
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert identify(store, engine, blank) == []
    searches = audit.search(store, action="gallery.identify")
    assert len(searches) == 2 and searches[0]["details"]["faces"] == 0


# --- the CLI: search and export -----------------------------------------------------------------------


@pytest.fixture
def trail_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    store = Store(home)
    audit.record(store, "deployment.plan", "deployment", 7, {"name": "x"}, actor="pc-a")
    audit.record(store, "deployment.authorise", "deployment", 7, {"note": "y"}, actor="supt-c")
    audit.record(store, "alert.create", "alert", 1, {"deployment": 7}, actor="system")
    with audit.acting_as("pc-a", role="officer", source="127.0.0.1"):
        audit.record(store, "alert.outcome", "alert", 1, {"outcome": "arrest"})
        audit.record(store, "alert.view_images", "alert", 1, {"images": ["probe"]})
    audit.record(store, "deployment.plan", "deployment", 8, {"name": "z"}, actor="pc-b")
    store.close()
    return home


def search_json(home: Path, *args: object) -> list[dict]:
    r = cli(home, "audit", "search", "--json", *args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_cli_search_filters(trail_home: Path) -> None:
    assert [e["seq"] for e in search_json(trail_home)] == [6, 5, 4, 3, 2, 1]
    assert {e["seq"] for e in search_json(trail_home, "--actor", "pc-a")} == {1, 4, 5}
    assert [e["action"] for e in search_json(trail_home, "--action", "alert.")] == [
        "alert.view_images",
        "alert.outcome",
        "alert.create",
    ]
    assert [e["seq"] for e in search_json(trail_home, "--record-type", "deployment", "--record-id", "7")] == [2, 1]
    assert [e["seq"] for e in search_json(trail_home, "--limit", "2")] == [6, 5]
    today = datetime.now(UTC).date()
    assert len(search_json(trail_home, "--since", today.isoformat(), "--until", today.isoformat())) == 6
    assert search_json(trail_home, "--since", (datetime.now(UTC) + timedelta(hours=1)).isoformat()) == []
    assert search_json(trail_home, "--until", (today - timedelta(days=1)).isoformat()) == []
    # A time with an offset means that moment, whatever the zone.
    an_hour_ago_in_paris = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=1)))
    assert len(search_json(trail_home, "--since", an_hour_ago_in_paris.isoformat())) == 6
    event = search_json(trail_home, "--action", "alert.outcome")[0]
    assert (event["actor"], event["role"], event["source"]) == ("pc-a", "officer", "127.0.0.1")


def test_cli_search_table_and_bad_input(trail_home: Path) -> None:
    r = cli(trail_home, "audit", "search", "--actor", "supt-c")
    assert r.exit_code == 0, r.output
    for text_ in ("seq", "actor", "action", "record", "source", "supt-c", "deployment.authorise", "deployment 7"):
        assert text_ in r.stdout
    assert "pc-b" not in r.stdout
    r = cli(trail_home, "audit", "search", "--since", "last tuesday")
    assert r.exit_code == 2 and "--since 'last tuesday' is not a time" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = cli(trail_home, "audit", "search", "--since", "2026-01-02", "--until", "2026-01-01")
    assert r.exit_code == 2 and "before --since" in r.stderr


def test_cli_export_csv_is_filtered_and_itself_audited(trail_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "alerts.csv"
    r = cli(trail_home, "audit", "export", "--out", out, "--action", "alert.", "--by", "auditor-f")
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open()))
    assert [int(row["seq"]) for row in rows] == [3, 4, 5]  # oldest first
    assert json.loads(rows[1]["details"]) == {"outcome": "arrest"} and rows[1]["role"] == "officer"
    (export,) = search_json(trail_home, "--action", "audit.export")
    assert export["seq"] == 7 and export["actor"] == "auditor-f" and export["source"] == "cli"
    assert export["details"] == {"format": "csv", "events": 3, "file": str(out), "filters": {"action": "alert."}}
    assert cli(trail_home, "audit", "verify").exit_code == 0


def test_cli_export_json_everything(trail_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "trail.json"
    r = cli(trail_home, "audit", "export", "--out", out, "--format", "json", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["events"] == 6 and summary["export_event"] == 7
    events = json.loads(out.read_text())
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6] and all(len(e["hash"]) == 64 for e in events)
    exported = search_json(trail_home, "--action", "audit.export")[0]
    assert exported["actor"] and exported["details"]["format"] == "json" and exported["details"]["filters"] == {}


def test_cli_export_bad_input(trail_home: Path, tmp_path: Path) -> None:
    r = cli(trail_home, "audit", "export", "--out", tmp_path / "x.xml", "--format", "xml")
    assert r.exit_code == 2 and "choose csv or json" in r.stderr
    r = cli(trail_home, "audit", "export", "--out", tmp_path / "missing" / "x.csv")
    assert r.exit_code == 2 and "cannot write" in r.stderr
    r = cli(trail_home, "audit", "export", "--out", tmp_path / "x.csv", "--until", "soon")
    assert r.exit_code == 2 and "--until 'soon'" in r.stderr
    assert search_json(trail_home, "--action", "audit.export") == []  # nothing exported, nothing recorded


def test_server_verification_uses_the_configured_checkpoints(tmp_path, monkeypatch) -> None:
    """The API and the audit page check the trail against the external checkpoints when configured."""
    from openlfr.storage import Store

    store = Store(tmp_path / "home")
    key_file = tmp_path / "keys" / "audit.key"
    monkeypatch.setenv(audit.ENV_AUDIT_KEY, str(key_file))
    monkeypatch.delenv(audit.ENV_CHECKPOINTS, raising=False)
    for i in range(3):
        audit.record(store, "test.event", "thing", i, {}, actor="tester")
    assert audit.verify_configured(store).ok and audit.verify_configured(store).checkpoint is None
    audit.init_key(store.home, key_file)
    audit.write_checkpoint(store, tmp_path / "checkpoints", audit.load_signing_key(store.home, key_file))
    monkeypatch.setenv(audit.ENV_CHECKPOINTS, str(tmp_path / "checkpoints"))
    result = audit.verify_configured(store)
    assert result.ok and result.checkpoint is not None
