"""A centre and a van as two processes on 127.0.0.1, each with its own data folder, and the link between
them cut in the middle of a deployment: the centre killed while the van runs live, a batch cut off
mid-request, a batch whose answer is lost after the centre applied it, each side restarted once.
Afterwards nothing is lost or duplicated, the centre's published record equals the van's own, and the
van holds no watchlist.

Every wait is on an answer (an HTTP reply, a row, a process exiting), never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from browser_helpers import free_port
from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.services import audit, demo_images, outbox, packages, vans
from openlfr.services.alerts import alert_images
from openlfr.services.common import utc
from openlfr.services.records import record_for
from openlfr.storage import Store
from openlfr.storage.models import Alert, DeletionLog, Deployment, Watchlist, WatchlistEntry
from openlfr.storage.sync_models import OutboxItem, SyncItem

OFFICER = "pc-street"
#: A batch carrying an alert's images is far larger than this; the handshake and the small batches are not.
BIG = 20_000


def _openlfr() -> str:
    found = Path(sys.executable).with_name("openlfr")
    return str(found) if found.exists() else "openlfr"


class Link:
    """A TCP relay between the van and the centre's sync listener (TLS runs end to end through it) that
    the test can cut: ``down`` refuses every connection; armed faults act once each, in order, on the
    first connection that carries more than ``BIG`` bytes from the van: ``cut`` closes it mid-request,
    ``drop`` lets the request through and closes it before the centre's answer reaches the van."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.down = False
        self.faults: list[str] = []
        self.done: list[str] = []
        self.changed = threading.Condition()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _fault(self, kind: str) -> bool:
        with self.changed:
            if self.faults and self.faults[0] == kind:
                self.done.append(self.faults.pop(0))
                self.changed.notify_all()
                return True
            return False

    def _relay(self, client: socket.socket) -> None:
        if self.down:
            client.close()
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
        except OSError:  # the centre is not listening: the van sees the connection close
            client.close()
            return
        sent = [0]

        def close() -> None:
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

        def forward(source: socket.socket, target: socket.socket, from_van: bool) -> None:
            try:
                while data := source.recv(65536):
                    if from_van:
                        if sent[0] + len(data) > BIG and self._fault("cut"):
                            target.sendall(data[: max(0, BIG - sent[0])])
                            break
                        sent[0] += len(data)
                    elif sent[0] > BIG and self._fault("drop"):
                        break
                    target.sendall(data)
            except OSError:
                pass
            close()

        upstream.settimeout(None)
        threading.Thread(target=forward, args=(upstream, client, False), daemon=True).start()
        forward(client, upstream, True)

    def wait_faults(self, timeout_s: float) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: not self.faults, timeout_s), f"faults not met: {self.faults}"

    def close(self) -> None:
        self.server.close()


def wait_for(what: str, check: Callable[[], object], timeout_s: float = 60.0, every_s: float = 0.1) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every_s)


@pytest.fixture
def env(monkeypatch) -> dict[str, str]:
    """Each node's own SQLite database and key files under its --home; nothing shared through the environment."""
    for name in (
        "OPENLFR_DATABASE_URL",
        "OPENLFR_KEY",
        "OPENLFR_NODE_KEYS",
        "OPENLFR_HOME",
        "OPENLFR_AUDIT_CHECKPOINTS",
        "OPENLFR_ROLE",
    ):
        monkeypatch.delenv(name, raising=False)
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


class Nodes:
    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp_path, env
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("a")
        proc = subprocess.Popen([_openlfr(), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([_openlfr(), *args], env=self.env, capture_output=True, text=True, timeout=120)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()[-3000:]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture
def nodes(tmp_path: Path, env: dict[str, str]) -> Iterator[Nodes]:
    n = Nodes(tmp_path, env)
    yield n
    n.stop_all()


def test_centre_and_van_survive_a_cut_link(tmp_path: Path, engine, model_home: Path, nodes: Nodes) -> None:
    centre_home, van_home = tmp_path / "centre", tmp_path / "van"
    (van_home / "models").mkdir(parents=True)  # the session's cleaned model cache, so the van's live run builds none
    for f in (model_home / "models").iterdir():
        (van_home / "models" / f.name).symlink_to(f)
    sync_port = free_port()
    link = Link(sync_port)

    # The centre plans and authorises; the van is made, registered and enrolled; the package is issued.
    centre = Store(centre_home)
    vans.init_centre(centre, ["127.0.0.1"])
    hopper_subject(centre, engine)
    clip = walking_clip(tmp_path / "street.mp4", [demo_images.grace_hopper(), demo_images.eileen_collins()])
    deployment = ready_deployment(centre, clip)
    van = Store(van_home)
    made = vans.init_van(van, "van-1")
    vans.enrol(van, vans.register_van(centre, "van-1", made.public_file.read_bytes(), "admin"), f"https://127.0.0.1:{link.port}")
    package_file = tmp_path / "deployment.pkg"
    package_file.write_bytes(packages.export_package(centre, deployment, "van-1", "planner").data)
    me = vans.identity(van)
    cert, key = vans.van_tls_files(van)
    tls = ssl.create_default_context(cadata=me.ca_certificate)
    tls.load_cert_chain(cert, key)
    centre.close()
    van.close()

    def held() -> dict[str, int] | None:
        """What the centre holds of each of the van's streams, asked directly (not through the link)."""
        try:
            return httpx.get(f"https://127.0.0.1:{sync_port}/sync/v1/state", verify=tls, timeout=5).json()["streams"]
        except httpx.HTTPError:
            return None

    reader = Store(van_home)  # the test's own look at the van's database, read only

    def queued(stream: str) -> int:
        with reader.session() as s:
            return (
                s.scalar(select(OutboxItem.seq).where(OutboxItem.stream == stream).order_by(OutboxItem.seq.desc()).limit(1)) or 0
            )

    centre_args = ["serve", "--home", str(centre_home), "--port", str(free_port()), "--sync-port", str(sync_port)]
    van_args = ["serve", "--role", "van", "--home", str(van_home), "--port", str(free_port()), "--sync-every", "0.2"]
    centre_proc = nodes.start("centre", *centre_args)
    wait_for("the centre's sync listener", lambda: held() is not None or centre_proc.poll() is not None)
    assert centre_proc.poll() is None, nodes.log("centre")

    r = nodes.run("van", "import", str(package_file), "--home", str(van_home), "--by", OFFICER, "--json")
    assert r.returncode == 0, r.stderr
    with reader.session() as s:
        stream = s.scalar(select(OutboxItem.stream).where(OutboxItem.action == "package.import"))
    van_proc = nodes.start("van", *van_args)
    wait_for("the import to reach the centre", lambda: (held() or {}).get(stream, 0) >= 1)
    before = held()[stream]

    # In the middle of the deployment: the link goes down, the van runs live, the centre is killed.
    link.down = True
    live = nodes.start(
        "live", "live", "--deployment", str(deployment), "--no-realtime", "--home", str(van_home), "--pack", "yunet-sface"
    )

    def van_alerts() -> list[int]:
        with reader.session() as s:
            return list(s.scalars(select(Alert.id).where(Alert.deployment_id == deployment)))

    wait_for("an alert on the van", lambda: van_alerts() or live.poll() is not None)
    centre_proc.send_signal(signal.SIGKILL)
    centre_proc.wait(10)
    assert live.wait(120) == 0, nodes.log("live")
    [alert_id] = van_alerts()
    r = nodes.run("van", "sync", "--home", str(van_home))
    assert r.returncode == 2 and "cannot be reached" in r.stderr and "stays queued" in r.stderr, r.stderr
    r = nodes.run("alerts", "outcome", str(alert_id), "--outcome", "engaged-confirmed", "--by", OFFICER, "--home", str(van_home))
    assert r.returncode == 0, r.stderr
    assert held() is None and queued(stream) > before  # the centre is down and the van has news for it

    # The centre comes back; the first big batch is cut mid-request, the next one's answer is lost.
    link.faults = ["cut", "drop"]
    centre_proc = nodes.start("centre", *centre_args)
    link.down = False
    link.wait_faults(90)
    wait_for("the centre to catch up", lambda: (held() or {}).get(stream, 0) == queued(stream))

    # The van restarts (killed outright), the deployment is closed on it, and its server delivers the rest.
    van_proc.send_signal(signal.SIGKILL)
    van_proc.wait(10)
    r = nodes.run("deployments", "close", str(deployment), "--by", OFFICER, "--home", str(van_home), "--json")
    assert r.returncode == 0, r.stderr
    nodes.start("van", *van_args)

    def published() -> list[dict]:
        try:
            port = centre_args[centre_args.index("--port") + 1]
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/public/records", timeout=5).json()
        except httpx.HTTPError:
            return []

    [public] = wait_for("the centre to publish the record", published)
    wait_for("every item delivered", lambda: outbox.backlog(reader)[0] == 0)
    nodes.stop_all()
    link.close()
    reader.close()

    centre, van = Store(centre_home), Store(van_home)
    try:
        check_nothing_lost_or_duplicated(centre, van)
        check_records_equal(centre, van, deployment, public)
        check_van_holds_no_watchlist(centre, van, deployment)
        assert link.done == ["cut", "drop"]
        receipts = [e["details"] for e in audit.search(centre, action="sync.receive", limit=1000)]
        with van.session() as s:
            total = s.scalar(select(func.count()).select_from(OutboxItem))
        # The batch whose answer was lost was applied once: the van resumed from what the centre held.
        assert sum(r["new"] for r in receipts) == total and sum(r["repeats"] for r in receipts) == 0
        assert audit.verify(centre).ok and audit.verify(van).ok
    finally:
        centre.close()
        van.close()


def check_nothing_lost_or_duplicated(centre: Store, van: Store) -> None:
    """Every item the van queued is at the centre exactly once, in the same order, unchanged."""
    with van.session() as s:
        sent = [
            (i.stream, i.seq, outbox.digest(i.payload))
            for i in s.scalars(select(OutboxItem).order_by(OutboxItem.stream, OutboxItem.seq))
        ]
        assert s.scalar(select(OutboxItem.id).where(OutboxItem.acked_at.is_(None))) is None, "all acknowledged"
    with centre.session() as s:
        got = [(i.stream, i.seq, i.digest) for i in s.scalars(select(SyncItem).order_by(SyncItem.stream, SyncItem.seq))]
    assert got == sent
    for stream in {st for st, _, _ in sent}:
        seqs = [seq for st, seq, _ in sent if st == stream]
        assert seqs == list(range(1, len(seqs) + 1))
    with van.session() as s:
        actions = set(s.scalars(select(OutboxItem.action)))
    for expected in (
        "package.import",
        "deployment.start",
        "alert.create",
        "alert.outcome",
        "watchlist.delete",
        "deployment.close",
    ):
        assert expected in actions


def _alerts(store: Store, deployment: int) -> list[tuple]:
    with store.session() as s:
        rows = s.scalars(select(Alert).where(Alert.deployment_id == deployment).order_by(Alert.frame_time)).all()
        return [
            (a.camera_name, a.track_id, a.subject_reference, a.score, utc(a.frame_time), a.outcome, a.adjudication, a.outcome_by,
             list(a.sightings or []))
            for a in rows
        ]  # fmt: skip


def check_records_equal(centre: Store, van: Store, deployment: int, public: dict) -> None:
    assert _alerts(centre, deployment) == _alerts(van, deployment) and len(_alerts(van, deployment)) == 1
    with centre.session() as s:
        c = s.get(Deployment, deployment)
        c_record, c_now = c.record, record_for(s, deployment)
        assert c.status == "closed"
        alert_id = s.scalar(select(Alert.id).where(Alert.deployment_id == deployment))
    with van.session() as s:
        v = s.get(Deployment, deployment)
        v_record, v_now = v.record, record_for(s, deployment)
    assert c_record == v_record and c_now == v_now
    assert v_record["faces_seen_estimate"] > 0 and v_record["total_alerts"] == 1 and v_record["true_alerts_confirmed"] == 1
    assert {k: v_now[k] for k in public} == public
    assert set(alert_images(centre, alert_id)) == {"probe", "frame", "reference"}  # the centre's own readable copies


def check_van_holds_no_watchlist(centre: Store, van: Store, deployment: int) -> None:
    with van.session() as s:
        assert s.scalars(select(WatchlistEntry)).all() == [] and s.scalars(select(Watchlist)).all() == []
        assert s.scalar(select(DeletionLog.kind).where(DeletionLog.kind == "watchlist", DeletionLog.record_id == deployment))
    assert list((van.home / "watchlists").iterdir()) == []
    with centre.session() as s:  # told of it, and its own copy deleted at the close too
        assert s.scalar(select(DeletionLog.id).where(DeletionLog.kind == "van-watchlist", DeletionLog.record_id == deployment))
        assert s.scalar(select(Watchlist.id).where(Watchlist.deployment_id == deployment)) is None
