"""What a supervisor, a load balancer and Prometheus ask a node: ``/healthz``, ``/readyz``, ``/metrics``.

* ``/healthz`` — the process answers. Touches neither the store nor the keys, so it stays cheap and
  says only "restart me" when it fails (systemd, Docker's HEALTHCHECK).
* ``/readyz`` — the node can do its work now: the store is reachable and migrated to the newest
  schema, the data key and (where configured) the audit signing key are present and usable, the
  model pack files are present and, for a van, its deployment package is valid. 200 or 503 with a
  JSON body naming every check, so a proxy sends no officer to a node that would fail them. The body
  holds no file-system path or secret; the server log has the details.
* ``/metrics`` — Prometheus text (:mod:`openlfr.metrics`). It carries no personal data, so the policy
  table lets it be read without an account (Prometheus is not a person and should not hold a staff
  password). It does show, as it happens, which deployments are live and how many alerts they raise:
  keep it on the internal interface (the reverse proxy must not publish it), or set
  ``$OPENLFR_METRICS_TOKEN`` and the route answers 401 unless the scrape sends
  ``Authorization: Bearer <that token>`` (Prometheus: ``authorization: {credentials_file: …}``).

All three are in :data:`openlfr.api.policy.RULES` as public routes and stay out of the OpenAPI document.
"""

from __future__ import annotations

import base64
import functools
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from openlfr import __version__
from openlfr.metrics import CONTENT_TYPE_LATEST
from openlfr.storage import Store

log = logging.getLogger(__name__)

#: What ``openlfr serve --role`` accepts: the force's centre, or a van (edge node) at a deployment.
ROLES = ("central", "van")
ENV_METRICS_TOKEN = "OPENLFR_METRICS_TOKEN"
#: Encrypted and decrypted by /readyz to prove the key on disk is the one the server encrypts with.
_KEY_PROBE_CONTEXT = "openlfr readyz key probe"

router = APIRouter(include_in_schema=False)


def valid_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@functools.cache
def _schema_heads() -> frozenset[str]:
    """The newest Alembic revision(s) this version of OpenLFR migrates to."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import openlfr.storage.store as store_module

    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def check_store(store: Store) -> Check:
    """Reachable and migrated: a node on an older schema, or on a fresh empty database, is not ready."""
    from alembic.runtime.migration import MigrationContext

    url = store.engine.url
    on_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if on_file and not Path(url.database).is_file():  # connecting would create an empty file
        return Check("store", False, "the SQLite database file (openlfr.db in the data folder) is missing")
    try:
        with store.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception as exc:  # any driver's failure to connect or read
        log.warning("readyz: store unreachable: %s", exc)
        return Check("store", False, f"the database cannot be reached ({type(exc).__name__}; see the server log)")
    heads = set(_schema_heads())
    if current != heads:
        found = ", ".join(sorted(current)) or "none"
        return Check("store", False, f"the schema is not migrated: at {found}, this version needs {', '.join(sorted(heads))}")
    return Check("store", True, f"{url.get_backend_name()} reachable, schema at {', '.join(sorted(heads))}")


def check_data_key(store: Store) -> Check:
    """Present where the next start will look for it, and the very key this server encrypts with.

    A key file deleted under a running server goes unnoticed until the restart, which would then make a
    new key and leave every stored image and template unreadable; this check says so first.
    """
    from openlfr.storage.crypto import ENV_KEY, Cipher, KeyError_

    env = os.environ.get(ENV_KEY)
    where = f"${ENV_KEY}" if env else "keys/data.key in the data folder"
    try:
        if env:
            key = base64.urlsafe_b64decode(env.encode())
        else:
            path = store.home / "keys" / "data.key"
            if not path.is_file():
                why = f"missing: {where} (restore it from its backup before a restart makes a new one)"
                return Check("data_key", False, why)
            key = base64.urlsafe_b64decode(path.read_bytes().strip())
    except (OSError, ValueError) as exc:
        log.warning("readyz: data key unreadable: %s", exc)
        return Check("data_key", False, f"{where} cannot be read or is not URL-safe base64")
    if len(key) != 32:
        return Check("data_key", False, f"{where} does not hold a 32-byte key")
    try:
        Cipher(key).decrypt(store.cipher.encrypt(b"ready", _KEY_PROBE_CONTEXT), _KEY_PROBE_CONTEXT)
    except KeyError_:
        return Check("data_key", False, f"{where} is not the key this server's data is encrypted with")
    return Check("data_key", True, f"{where} present and usable")


def check_audit_key(store: Store, required: bool) -> Check:
    """The Ed25519 key that signs audit checkpoints (kept outside the data folder), when checkpoints are
    configured or ``$OPENLFR_AUDIT_KEY`` names one; the audit chain's own key derives from the data key."""
    from openlfr.services import audit

    if not required:
        why = "not required: no audit checkpoints configured (the chain's own key derives from the data key)"
        return Check("audit_key", True, why)
    try:
        key = audit.load_signing_key(store.home)
        key.public_key().verify(key.sign(b"ready"), b"ready")
    except Exception as exc:  # missing, inside the data folder, not Ed25519, unreadable
        log.warning("readyz: audit signing key unusable: %s", exc)
        return Check(
            "audit_key", False, "the audit signing key is missing or unusable (see the server log; 'openlfr audit init-key')"
        )
    return Check("audit_key", True, "present and usable: signs checkpoints")


@dataclass
class Readiness:
    """Everything ``/readyz`` checks, and what it needs to know to check it."""

    store: Store
    role: str = "central"
    engine: Any = None
    pack: str | None = None
    audit_checkpoints: str | os.PathLike[str] | None = None
    _packs: dict[str, Any] = field(default_factory=dict)

    def checks(self) -> list[Check]:
        from openlfr.services import audit

        required = bool(self.audit_checkpoints or os.environ.get(audit.ENV_CHECKPOINTS) or os.environ.get(audit.ENV_AUDIT_KEY))
        found = [
            check_store(self.store),
            check_data_key(self.store),
            check_audit_key(self.store, required),
            self.check_models(),
        ]
        return found + [check(self) for check in ROLE_CHECKS[self.role]]

    def check_models(self) -> Check:
        """The model pack files the server would load on first need (watchlists, custody search)."""
        if self.engine is not None:
            return Check("models", True, f"engine supplied: {self.engine.pack_id}")
        from openlfr.models import CUSTODY_PACK, resolve_pack

        missing = []
        for purpose, name in (("watchlist", self.pack), ("custody", self.pack or CUSTODY_PACK)):
            try:
                if purpose not in self._packs:  # a local pack is checksummed when resolved: once is enough
                    self._packs[purpose] = resolve_pack(name)
            except Exception as exc:
                log.warning("readyz: model pack for %s unusable: %s", purpose, exc)
                return Check("models", False, f"the {purpose} model pack cannot be resolved (see the server log)")
            pack = self._packs[purpose]
            files = (pack.detector, pack.recognizer, pack.second_landmarks, pack.second)
            missing += [f"{purpose} {f.kind}" for f in files if f is not None and not f.path.is_file()]
        if missing:
            return Check("models", False, f"model files missing: {', '.join(missing)}")
        return Check("models", True, ", ".join(f"{p}: {pack.pack_id}" for p, pack in self._packs.items()))


def check_deployment_package(readiness: Readiness) -> Check:
    """A van is ready only with a valid deployment package: enrolled with its centre, a package it
    imported (signature, addressee and time window were checked on import) inside its time window,
    its deployment not yet closed."""
    from openlfr.services.packages import van_package_problem

    problem = van_package_problem(readiness.store)
    return Check("deployment_package", problem is None, problem or "a deployment package inside its time window")


#: The checks only one role has, after the common ones.
ROLE_CHECKS: dict[str, tuple[Callable[[Readiness], Check], ...]] = {
    "central": (),
    "van": (check_deployment_package,),
}


@router.get("/healthz")
async def healthz(request: Request) -> dict:
    """Alive: the process answers requests. Nothing else is touched."""
    return {"status": "alive", "role": request.app.state.role, "version": __version__}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    checks = request.app.state.readiness.checks()
    ok = all(c.ok for c in checks)
    body = {
        "status": "ready" if ok else "not ready",
        "role": request.app.state.role,
        "failed": [c.name for c in checks if not c.ok],
        "checks": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in checks},
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    token = os.environ.get(ENV_METRICS_TOKEN, "")
    if token:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return JSONResponse(
                {"detail": f"send the metrics token (${ENV_METRICS_TOKEN}) as a bearer token"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
