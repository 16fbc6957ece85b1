"""The store on SQLite and on PostgreSQL: one set of models and migrations, the operators' ``db`` commands,
several processes opening one database at once, and no key ever in the database."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from cryptography.hazmat.primitives import serialization
from sqlalchemy import MetaData, func, inspect, select, text
from typer.testing import CliRunner

import openlfr.storage.sync_models  # noqa: F401  (the centre's and vans' tables are part of the schema)
import pg
from lfr_helpers import hopper_subject, ready_deployment, walking_clip
from openlfr.cli.main import app
from openlfr.live.runner import run_deployment
from openlfr.services import audit, demo_images, users
from openlfr.storage import Store
from openlfr.storage import store as store_module
from openlfr.storage.crypto import ENV_KEY
from openlfr.storage.models import Alert, Base, ReferenceImage

runner = CliRunner()


def alembic(store: Store, action: str, revision: str) -> None:
    """One Alembic step on ``store`` the way Store runs them, with the key and the data folder."""
    config = store_module._alembic_config()
    with store.engine.begin() as connection:
        config.attributes.update(connection=connection, cipher=store.cipher, home=store.home)
        getattr(command, action)(config, revision)


def db(home: Path, *args: str):
    return runner.invoke(app, ["db", *args, "--home", str(home)], env={"COLUMNS": "200"})


def test_migrations_are_one_line_to_one_head() -> None:
    """Two migrations made in parallel on one parent would leave two heads, and no database could reach 'head'."""
    script = ScriptDirectory.from_config(store_module._alembic_config())
    assert len(script.get_heads()) == 1, script.get_heads()
    assert store_module.head_revision() == script.get_current_head()


@pytest.mark.both_databases  # on SQLite and PostgreSQL (tests/pg.py)
@pytest.mark.empty_database
def test_schema_at_head_matches_the_models_and_goes_down_and_up_again(tmp_path: Path, database: str) -> None:
    """Every migration runs forwards and backwards on this database, and head is exactly what the models say."""
    store = Store(tmp_path / "home")
    assert store_module.current_revision(store.engine) == store_module.head_revision()
    reflected = MetaData()
    reflected.reflect(bind=store.engine)
    tables = set(reflected.tables) - {"alembic_version"}
    assert tables == set(Base.metadata.tables)
    inspector = inspect(store.engine)
    for name, table in Base.metadata.tables.items():
        assert {c["name"] for c in inspector.get_columns(name)} == set(table.columns.keys()), name
    alembic(store, "downgrade", "base")
    assert set(inspect(store.engine).get_table_names()) <= {"alembic_version"}
    alembic(store, "upgrade", "head")
    assert store_module.current_revision(store.engine) == store_module.head_revision()
    store.close()


@pytest.mark.both_databases  # on SQLite and PostgreSQL (tests/pg.py)
@pytest.mark.empty_database
def test_db_check_and_migrate_for_operators(tmp_path: Path, database: str) -> None:
    home = tmp_path / "home"
    behind = db(home, "check")
    assert behind.exit_code == 1, behind.output
    assert "pending" in behind.output and "openlfr db migrate" in behind.output
    assert not (home / "keys").exists()  # checking creates nothing: no key, no schema

    done = db(home, "migrate")
    assert done.exit_code == 0, done.output
    assert "up to date" in done.output
    current = db(home, "check", "--json")
    assert current.exit_code == 0, current.output
    assert '"up_to_date": true' in current.output and '"pending": []' in current.output

    store = Store(home)
    previous = ScriptDirectory.from_config(store_module._alembic_config()).get_revision(store_module.head_revision())
    alembic(store, "downgrade", previous.down_revision)
    stale = db(home, "check")
    assert stale.exit_code == 1 and "1 migration(s) pending" in stale.output and store_module.head_revision() in stale.output
    with store.engine.begin() as c:  # a newer OpenLFR migrated this database
        c.execute(text("UPDATE alembic_version SET version_num = 'zzzz'"))
    unknown = db(home, "check")
    assert unknown.exit_code == 1 and "unknown to this version" in unknown.output
    refused = db(home, "migrate")
    assert refused.exit_code == 2 and "newer OpenLFR" in refused.output
    store.close()


def test_db_check_names_an_unreachable_database_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(store_module.ENV_DATABASE_URL, "postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    result = db(tmp_path / "home", "check")
    assert result.exit_code == 2 and "cannot read the database" in result.output
    assert "secret" not in result.output  # the password is not printed


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
@pytest.mark.empty_database
def test_server_processes_starting_together_migrate_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several servers opening a new PostgreSQL database at the same moment: the migration lock lets one
    create the schema and the others find it done (without it they race to create the same tables)."""
    monkeypatch.setenv(ENV_KEY, base64.urlsafe_b64encode(os.urandom(32)).decode())  # servers share the data key
    n = 4
    start = threading.Barrier(n)
    opened: list[Store] = []
    failures: list[BaseException] = []

    def open_store(i: int) -> None:
        start.wait()
        try:
            opened.append(Store(tmp_path / f"home-{i}"))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_store, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)  # a deadline for a failure (racing migrations can wait on each other for good), not a timing
    assert not any(t.is_alive() for t in threads), "opening the store hung"
    assert not failures, failures
    assert {store_module.current_revision(s.engine) for s in opened} == {store_module.head_revision()}
    for s in opened:
        s.close()


@pytest.mark.both_databases  # on SQLite and PostgreSQL (tests/pg.py)
def test_no_key_is_ever_in_the_database(tmp_path: Path, engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a subject, a deployment with an alert, accounts, tokens and a signed checkpoint, the database holds
    neither the data key (nor the audit chain's key derived from it) nor the audit signing key, in any encoding."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(audit.ENV_AUDIT_KEY, raising=False)
    home = tmp_path / "home"
    store = Store(home)
    hopper_subject(store, engine)
    deployment_id = ready_deployment(store, walking_clip(tmp_path / "clip.mp4", [demo_images.grace_hopper()], seconds=1.5))
    run_deployment(store, engine, deployment_id, realtime=False, retention_every_s=None)
    admin = users.create_user(store, "admin", "Admin", "administrator", "a long enough password", "test")
    users.create_token(store, admin.id, "script", created_by="admin")
    key_file, _pub, _kid = audit.init_key(home, tmp_path / "keys" / "audit.key")
    audit.write_checkpoint(store, tmp_path / "checkpoints", audit.load_signing_key(home, key_file))

    data_key = base64.urlsafe_b64decode((home / "keys" / "data.key").read_bytes().strip())
    signing = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    signing_raw = signing.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    secrets = {
        "data key": data_key,
        "audit chain key": store.derive_key(audit.KEY_PURPOSE),
        "audit signing key": signing_raw,
    }
    stored = pg.stored_bytes(store)
    with store.session() as s:  # the scan sees what is there: encrypted templates and the audit trail
        template = s.scalars(select(ReferenceImage.template)).first()
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
    assert template is not None and bytes(template) in stored and b"alert.create" in stored
    for what, secret in secrets.items():
        for form in (secret, secret.hex().encode(), base64.b64encode(secret), base64.urlsafe_b64encode(secret)):
            assert form not in stored, f"the {what} is in the database"
    pem_body = b"".join(key_file.read_bytes().splitlines()[1:-1])
    assert pem_body not in stored
    store.close()
