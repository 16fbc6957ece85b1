"""Central and van roles, piece by piece: keys and enrolment, deployment packages and every reason a van
refuses one, the outbox the van keeps, the centre's intake (idempotent, in order), the sync listener's
mutual TLS, and the commands. The two-process test with a cut link is tests/test_van_sync.py."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, update
from typer.testing import CliRunner

from browser_helpers import free_port
from lfr_helpers import hopper_subject, ready_deployment
from openlfr.api.sync import SyncListener, sync_server
from openlfr.cli.main import app
from openlfr.errors import StoreError
from openlfr.live import runner
from openlfr.services import audit, deployments, outbox, packages, vans
from openlfr.services.common import now_utc, utc, watchlist_image_context, watchlist_template_context
from openlfr.storage import Store
from openlfr.storage.models import Alert, Deployment, WatchlistEntry
from openlfr.storage.sync_models import VAN_STREAM, ImportedPackage, OutboxItem, SyncedAlert, SyncItem

OFFICER = "officer-van"


@pytest.fixture
def centre(tmp_path: Path, engine) -> Store:
    store = Store(tmp_path / "centre")
    vans.init_centre(store, ["127.0.0.1"])
    hopper_subject(store, engine)
    yield store
    store.close()


def sqlite_store(home: Path) -> Store:
    """A node on its own SQLite file, as vans are, even where the centre's tests run on PostgreSQL."""
    return Store(home, database_url=f"sqlite:///{home / 'openlfr.db'}")


def make_van(tmp_path: Path, centre: Store, name: str, url: str = "https://127.0.0.1:9") -> Store:
    """A van home: keys made, registered at the centre, enrolled (centre key pinned)."""
    store = sqlite_store(tmp_path / name)
    made = vans.init_van(store, name)
    bundle = vans.register_van(centre, name, made.public_file.read_bytes(), "admin")
    vans.enrol(store, bundle, url)
    return store


@pytest.fixture
def van(tmp_path: Path, centre: Store) -> Store:
    store = make_van(tmp_path, centre, "van-1")
    yield store
    store.close()


@pytest.fixture
def deployment(centre: Store, tmp_path: Path) -> int:
    return ready_deployment(centre, tmp_path / "clip.mp4")


def nothing_imported(store: Store) -> None:
    """A refused package leaves no deployment, no watchlist row or file, no import record."""
    with store.session() as s:
        assert s.scalars(select(Deployment)).all() == []
        assert s.scalars(select(WatchlistEntry)).all() == []
        assert s.scalars(select(ImportedPackage)).all() == []
    folder = store.home / "watchlists"
    assert not folder.exists() or list(folder.iterdir()) == []


def refused(store: Store, data: bytes, match: str, **kwargs) -> None:
    with pytest.raises(packages.PackageRefused, match=match):
        packages.import_package(store, data, OFFICER, **kwargs)
    nothing_imported(store)
    event = audit.search(store, action="package.refused", limit=1)[0]
    assert match.split(":")[0].lower() in event["details"]["reason"].lower()


def envelope(data: bytes) -> dict:
    return json.loads(data)


# --- packages ---------------------------------------------------------------------------------------


@pytest.mark.both_databases  # the centre on each backend; vans always on SQLite
def test_package_carries_the_authorised_deployment_to_the_van(centre: Store, van: Store, deployment: int) -> None:
    made = packages.export_package(centre, deployment, "van-1", "planner")
    assert audit.search(centre, action="package.export")[0]["details"]["package"] == made.package_id
    assert b"Grace Hopper" not in made.data and b"clip.mp4" not in made.data  # sealed: nothing readable in the file
    result = packages.import_package(van, made.data, OFFICER)
    assert result.deployment_id == deployment and result.subjects == 1
    with centre.session() as s:
        c = deployments.get(s, deployment)
        c_fields = {f: getattr(c, f) for f in packages.DEPLOYMENT_FIELDS}
        c_times = {t: utc(getattr(c, t)) for t in packages.DEPLOYMENT_TIMES}
        c_entries = [(e.subject_reference, e.name, e.category, e.reason) for e in c.watchlist.entries]
        pack = c.watchlist.pack_id
        c_templates = [centre.cipher.decrypt(e.template, watchlist_template_context(pack, e.id)) for e in c.watchlist.entries]
        c_images = [centre.read_blob(e.image_file, watchlist_image_context(e.id)) for e in c.watchlist.entries]
    with van.session() as s:
        v = deployments.get(s, deployment)
        assert v.status == "authorised" and v.watchlist.approved_at is not None
        assert {f: getattr(v, f) for f in packages.DEPLOYMENT_FIELDS} == c_fields
        assert {t: utc(getattr(v, t)) for t in packages.DEPLOYMENT_TIMES} == c_times
        assert [(e.subject_reference, e.name, e.category, e.reason) for e in v.watchlist.entries] == c_entries
        templates = [van.cipher.decrypt(e.template, watchlist_template_context(pack, e.id)) for e in v.watchlist.entries]
        assert v.watchlist.pack_id == pack and templates == c_templates
        assert [van.read_blob(e.image_file, watchlist_image_context(e.id)) for e in v.watchlist.entries] == c_images
    assert deployments.camera_sources(van, deployment)[0].source == str(centre.home.parent / "clip.mp4")
    frozen = deployments.load_watchlist(van, deployment)  # what the live runner loads
    assert frozen.size == 1 and frozen.templates.shape[0] == len(c_templates)
    assert audit.search(van, action="package.import")[0]["details"]["package"] == made.package_id
    assert runner.recover_interrupted(centre) == []
    assert packages.runs_on_van(centre, deployment) == "van-1" and packages.runs_on_van(van, deployment) is None
    assert packages.van_package_problem(van) is None


def test_only_an_authorised_deployment_is_packaged_and_for_one_van(centre: Store, tmp_path: Path, deployment: int) -> None:
    now = now_utc()
    planned = deployments.plan(
        centre, "Not yet", "Somewhere", "crime-hotspot", now, now + timedelta(hours=1), 0.45,
        [deployments.CameraSpec("cam", "x.mp4")], "planner",
    )  # fmt: skip
    make_van(tmp_path, centre, "van-1").close()
    make_van(tmp_path, centre, "van-2").close()
    with pytest.raises(StoreError, match="must be authorised"):
        packages.export_package(centre, planned, "van-1", "planner")
    packages.export_package(centre, deployment, "van-1", "planner")
    with pytest.raises(StoreError, match="runs on one van"):
        packages.export_package(centre, deployment, "van-2", "planner")
    with pytest.raises(StoreError, match="it goes live there, not here"):
        runner.run_deployment(centre, None, deployment)  # type: ignore[arg-type]


def test_van_refuses_an_unsigned_package(centre: Store, van: Store, deployment: int) -> None:
    data = envelope(packages.export_package(centre, deployment, "van-1", "planner").data)
    del data["signature"]
    refused(van, json.dumps(data).encode(), "it is unsigned")


def test_van_refuses_a_package_with_one_byte_altered(centre: Store, van: Store, deployment: int) -> None:
    made = packages.export_package(centre, deployment, "van-1", "planner")
    data = envelope(made.data)
    ciphertext = bytearray(base64.b64decode(data["ciphertext"]))
    ciphertext[len(ciphertext) // 2] ^= 0x01
    data["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    refused(van, json.dumps(data).encode(), "its signature does not verify")
    later = envelope(made.data)  # the header is signed too: a stretched time window is an alteration
    later["header"]["not_after"] = (now_utc() + timedelta(days=30)).isoformat()
    refused(van, json.dumps(later).encode(), "its signature does not verify")


def test_van_refuses_a_package_signed_by_another_centre(centre: Store, van: Store, deployment: int, tmp_path: Path) -> None:
    made = packages.export_package(centre, deployment, "van-1", "planner")
    impostor = sqlite_store(tmp_path / "impostor")
    vans.init_centre(impostor, ["127.0.0.1"])
    data = envelope(made.data)
    header = data["header"]
    signed = packages._SIGNED + packages._canonical(header) + base64.b64decode(data["ciphertext"])
    data["signature"] = base64.b64encode(vans.centre_signing_key(impostor).sign(signed)).decode()
    refused(van, json.dumps(data).encode(), "its signature does not verify")
    impostor.close()


def test_van_refuses_a_package_meant_for_another_van(centre: Store, van: Store, deployment: int, tmp_path: Path) -> None:
    make_van(tmp_path, centre, "van-2").close()
    made = packages.export_package(centre, deployment, "van-2", "planner")
    refused(van, made.data, "it is meant for van 'van-2'")


def test_van_refuses_a_package_outside_its_time_window(centre: Store, van: Store, deployment: int) -> None:
    made = packages.export_package(centre, deployment, "van-1", "planner")
    header = envelope(made.data)["header"]
    end, start_lead = (packages.datetime.fromisoformat(header[k]) for k in ("not_after", "not_before"))
    refused(van, made.data, "expired", now=end + timedelta(seconds=1))
    refused(van, made.data, "too early", now=start_lead - timedelta(seconds=1))
    assert packages.import_package(van, made.data, OFFICER, now=end - timedelta(seconds=1)).deployment_id == deployment


def test_van_refuses_a_package_twice_and_garbage(centre: Store, van: Store, deployment: int) -> None:
    made = packages.export_package(centre, deployment, "van-1", "planner")
    packages.import_package(van, made.data, OFFICER)
    with pytest.raises(packages.PackageRefused, match="imported already"):
        packages.import_package(van, made.data, OFFICER)
    with pytest.raises(packages.PackageRefused, match="not an OpenLFR deployment package"):
        packages.import_package(van, b"\x00garbage", OFFICER)


# --- the outbox -------------------------------------------------------------------------------------


def items(store: Store, stream: str) -> list[OutboxItem]:
    with store.session() as s:
        return list(s.scalars(select(OutboxItem).where(OutboxItem.stream == stream).order_by(OutboxItem.seq)))


def imported(centre: Store, van: Store, deployment: int) -> str:
    return packages.import_package(van, packages.export_package(centre, deployment, "van-1", "planner").data, OFFICER).package_id


def fake_alert(store: Store, deployment_id: int) -> int:
    """An alert as the live runner stores one, with its three encrypted images."""
    from openlfr.services.alerts import NewAlert, record_alert

    entry = deployments.load_watchlist(store, deployment_id)
    image = np.full((120, 100, 3), 128, np.uint8)
    return record_alert(
        store,
        NewAlert(deployment_id, "cam-1", 7, entry.entry_ids[0], entry.references[0], entry.names[0], entry.categories[0],
                 0.71, 0.45, now_utc(), 80.0, image, image),
    )  # fmt: skip


def test_every_audited_action_on_a_van_is_queued_in_order_per_stream(centre: Store, van: Store, deployment: int) -> None:
    package = imported(centre, van, deployment)
    alert_id = fake_alert(van, deployment)
    from openlfr.services.alerts import record_outcome

    record_outcome(van, alert_id, "engaged-confirmed", OFFICER)
    queued = items(van, package)
    assert [i.action for i in queued] == ["package.import", "alert.create", "alert.outcome"]
    assert [i.seq for i in queued] == [1, 2, 3]
    assert queued[1].payload["alert"]["outcome"] is None and queued[2].payload["alert"]["outcome"] == "engaged-confirmed"
    assert queued[2].payload["event"]["hash"] == audit.search(van, action="alert.outcome")[0]["hash"]
    assert [i.action for i in items(van, VAN_STREAM)][:2] == ["van.init", "van.enrol"]
    assert outbox.backlog(van)[0] == len(items(van, package)) + len(items(van, VAN_STREAM))
    assert items(centre, VAN_STREAM) == []  # a centre queues nothing


def test_catch_up_and_reconcile_report_what_no_hook_saw(centre: Store, van: Store, deployment: int, monkeypatch) -> None:
    package = imported(centre, van, deployment)
    monkeypatch.setattr(audit, "_listeners", [])  # a process that never loaded the outbox
    alert_id = fake_alert(van, deployment)
    assert [i.action for i in items(van, package)] == ["package.import"]
    monkeypatch.undo()
    assert outbox.catch_up(van) >= 1
    assert [i.action for i in items(van, package)] == ["package.import", "alert.create"]
    with van.session() as s:  # a crash between a change and its audit event: the row changed, no event
        s.execute(update(Alert).where(Alert.id == alert_id).values(outcome="no-action", adjudication="no-match", outcome_by="x"))
        s.execute(update(Deployment).where(Deployment.id == deployment).values(faces_seen=12))
    assert outbox.reconcile(van) == 2
    last = items(van, package)[-2:]
    assert [i.action for i in last] == ["outbox.reconcile", "deployment.counts"]
    assert last[0].payload["alert"]["outcome"] == "no-action" and last[1].payload["deployment"]["faces_seen"] == 12
    assert outbox.reconcile(van) == 0  # reported once


def wire(store: Store, stream: str) -> list[dict]:
    return outbox._pending(store, stream, 0)


@pytest.mark.both_databases
def test_centre_takes_items_once_and_in_order(centre: Store, van: Store, deployment: int, tmp_path: Path) -> None:
    package = imported(centre, van, deployment)
    alert_id = fake_alert(van, deployment)
    sent = wire(van, package)
    assert "images" in sent[1] and set(sent[1]["images"]) == {"probe", "frame", "reference"}
    gap = outbox.receive(centre, "van-1", package, sent[1:])
    assert gap == {"acked": 0, "new": 0, "repeats": 0, "gap": True}
    first = outbox.receive(centre, "van-1", package, sent[:1])
    assert first["acked"] == 1
    again = outbox.receive(centre, "van-1", package, sent)  # a resend after a lost answer
    assert again == {"acked": 2, "new": 1, "repeats": 1, "gap": False}
    assert outbox.receive(centre, "van-1", package, sent)["repeats"] == 2
    with centre.session() as s:
        assert s.scalar(select(SyncItem.seq).where(SyncItem.stream == package).order_by(SyncItem.seq.desc())) == 2
        assert len(s.scalars(select(SyncedAlert)).all()) == 1
        alert = s.scalars(select(Alert).where(Alert.deployment_id == deployment)).one()
        assert alert.subject_reference == "GH-1" and alert.probe_file is not None
    from openlfr.services.alerts import alert_context, alert_images

    with van.session() as s:
        van_frame = van.read_blob(s.get(Alert, alert_id).frame_file, alert_context(alert_id, "frame_file"))
    assert alert_images(centre, alert.id)["frame"] == van_frame  # the centre's own encrypted copy
    changed = [dict(sent[0], payload={**sent[0]["payload"], "event": {**sent[0]["payload"]["event"], "actor": "someone else"}})]
    changed[0].pop("digest")
    with pytest.raises(outbox.SyncRefused, match="differs"):
        outbox.receive(centre, "van-1", package, changed)
    make_van(tmp_path, centre, "van-2").close()
    with pytest.raises(outbox.SyncRefused, match="not a deployment package issued to van 'van-2'"):
        outbox.receive(centre, "van-2", package, sent[:1])


# --- the listener's mutual TLS ----------------------------------------------------------------------


@pytest.mark.both_databases
def test_sync_listener_admits_only_registered_unrevoked_vans(centre: Store, van: Store, deployment: int, tmp_path: Path) -> None:
    port = free_port()
    listener = SyncListener(sync_server(centre, "127.0.0.1", port))
    listener.start()
    url = f"https://127.0.0.1:{port}"
    try:
        imported(centre, van, deployment)
        vans.set_centre_url(van, url)
        report = outbox.sync_once(van)
        assert report.pending == 0 and report.sent == sum(report.acked.values())
        receipt = audit.search(centre, action="sync.receive", limit=1)[0]  # audited as the van, from its address
        assert (receipt["actor"], receipt["role"], receipt["source"]) == ("van:van-1", "van", "127.0.0.1")
        me = vans.identity(van)
        ca = me.ca_certificate
        with pytest.raises(httpx.HTTPError):  # no client certificate: the TLS handshake fails
            httpx.get(f"{url}/sync/v1/state", verify=outbox.ssl.create_default_context(cadata=ca), timeout=5)
        stranger = tmp_path / "stranger"  # a certificate from another CA
        other = sqlite_store(stranger)
        vans.init_centre(other, ["127.0.0.1"])
        key, cert, _ = vans.centre_tls_files(other)
        context = outbox.ssl.create_default_context(cadata=ca)
        context.load_cert_chain(cert, key)
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/sync/v1/state", verify=context, timeout=5)
        other.close()
        vans.revoke_van(centre, "van-1", "admin")
        with pytest.raises(outbox.SyncError, match="403"):
            outbox.sync_once(van)
    finally:
        listener.stop()


def test_sync_routes_are_in_the_policy_table() -> None:
    from openlfr.api.policy import RULES
    from openlfr.api.routes.sync import router

    for route in router.routes:
        for method in route.methods:
            assert RULES[f"{method} {route.path}"] == frozenset({"van"})


# --- the commands -----------------------------------------------------------------------------------


def test_commands_enrol_a_van_and_carry_a_package(tmp_path: Path, engine, model_home: Path) -> None:
    run = CliRunner().invoke
    centre_home, van_home = tmp_path / "c", tmp_path / "v"
    store = Store(centre_home)
    hopper_subject(store, engine)
    deployment = ready_deployment(store, tmp_path / "clip.mp4")
    store.close()
    r = run(app, ["centre", "init", "--host", "127.0.0.1", "--home", str(centre_home)])
    assert r.exit_code == 0, r.output
    r = run(app, ["van", "init", "--name", "van-9", "--home", str(van_home)])
    assert r.exit_code == 0 and "BEGIN PUBLIC KEY" in r.output, r.output
    public = van_home / "keys" / "node" / "van.pub"
    enrolment = tmp_path / "van-9.enrol.json"
    args = ["vans", "register", "van-9", "--public-key", str(public), "--out", str(enrolment), "--home", str(centre_home)]
    assert run(app, args).exit_code == 0
    r = run(app, ["van", "enrol", str(enrolment), "--centre-url", "https://127.0.0.1:9", "--home", str(van_home)])
    assert r.exit_code == 0 and "enrolled" in r.output, r.output
    package = tmp_path / "d.pkg"
    r = run(app, ["deployments", "package", str(deployment), "--van", "van-9", "--out", str(package), "--home", str(centre_home)])
    assert r.exit_code == 0, r.output
    r = run(app, ["van", "import", str(package), "--home", str(van_home), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["deployment_id"] == deployment
    r = run(app, ["van", "import", str(package), "--home", str(van_home)])
    assert r.exit_code == 2 and "imported already" in r.output
    r = run(app, ["van", "sync", "--home", str(van_home)])  # nothing listens there: a clear line, exit 2
    assert r.exit_code == 2 and "cannot be reached" in r.output and "stays queued" in r.output
    r = run(app, ["van", "status", "--home", str(van_home), "--json"])
    assert json.loads(r.stdout)["pending"] > 0
    with Store(van_home).session() as s:  # the private keys are files, never rows
        assert s.scalar(select(ImportedPackage.package_id)) is not None
    key_text = (van_home / "keys" / "node" / "van-package.key").read_bytes()
    assert b"PRIVATE KEY" in key_text and key_text not in (van_home / "openlfr.db").read_bytes()
    assert isinstance(vans.parse_van_public(public.read_bytes())[1], ec.EllipticCurvePublicKey)


def test_a_van_is_ready_only_while_it_holds_a_valid_package(centre: Store, van: Store, deployment: int, engine) -> None:
    """/readyz on a van: not ready before a package is imported, ready while it is inside its window."""
    from fastapi.testclient import TestClient

    from openlfr.api.app import create_app

    def ready() -> tuple[int, dict]:
        with TestClient(create_app(store=van, engine=engine, role="van")) as client:
            answer = client.get("/readyz")
            return answer.status_code, answer.json()

    status, body = ready()
    assert status == 503 and body["failed"] == ["deployment_package"]
    imported(centre, van, deployment)
    status, body = ready()
    assert status == 200 and body["checks"]["deployment_package"]["ok"], body
