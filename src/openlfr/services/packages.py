"""Deployment packages: an authorised deployment carried from the centre to the one van that runs it.

A package holds everything the van needs to run the deployment with no link at all: the deployment
as authorised (place, times, threshold, N-of-M confirmation, calibration reference, the authorising
officer's note), its cameras with their full addresses, and its frozen watchlist — each entry's
template and the reference image officers compare alerts with, and the subject's name, reference,
category and reason.

Sealed to the van: an ephemeral X25519 key agrees a secret with the van's package key, HKDF-SHA256
turns it into an AES-256-GCM key, and the plain header (package id, van, deployment, time window,
the ephemeral key, the nonce) is the cipher's associated data. Signed by the centre: Ed25519 over the
header and the ciphertext, checked against the key the van pinned at enrolment. The van refuses —
with one clear line, nothing written but the audited refusal — a package that is unsigned, altered,
meant for another van, imported before, or outside its time window: from 24 hours before the planned
start (when the watchlist may first exist) to the planned end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, text

from openlfr.errors import NotFoundError, StoreError
from openlfr.services import audit, deployments, vans
from openlfr.services.common import now_utc, utc, watchlist_image_context, watchlist_template_context
from openlfr.storage import Store
from openlfr.storage.models import Deployment, Watchlist, WatchlistEntry
from openlfr.storage.sync_models import DeploymentPackage, ImportedPackage, Van

FORMAT = "openlfr-deployment-package/1"
_SIGNED = b"openlfr deployment package v1\n"
_KDF_INFO = b"openlfr deployment package v1: AES-256-GCM key"
#: The deployment's fields a package carries, as the centre authorised them.
DEPLOYMENT_FIELDS = (
    "id", "name", "location_name", "latitude", "longitude", "use_case", "threshold", "confirm_n", "confirm_m",
    "created_by", "authorised_by", "authorisation_note", "watchlist_size", "calibration_reference", "estimated_fpir",
    "estimated_fpir_low", "estimated_fpir_high", "estimate_method", "threshold_override",
)  # fmt: skip
DEPLOYMENT_TIMES = ("planned_start", "planned_end", "created_at", "authorised_at")


class PackageRefused(StoreError):
    """A van refused a package; the message says why in words an officer can act on."""

    def __init__(self, message: str, package_id: str | None = None) -> None:
        super().__init__(f"deployment package refused: {message}")
        self.package_id = package_id


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _aead_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    """HKDF-SHA256 over the X25519 secret, salted with both public keys (so the key is bound to them)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=_KDF_INFO).derive(shared)


def _iso(value: datetime | None) -> str | None:
    return utc(value).isoformat() if value is not None else None


# --- At the centre ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    package_id: str
    van: str
    deployment_id: int
    subjects: int
    images: int
    not_before: str
    not_after: str
    sha256: str
    data: bytes


def export_package(
    store: Store,
    deployment_id: int,
    van_name: str,
    by: str,
    keys: str | os.PathLike[str] | None = None,
    now: datetime | None = None,
) -> Exported:
    """Seal an authorised deployment for ``van_name`` and sign it; audited. A deployment runs on one van."""
    now = now or now_utc()
    signing = vans.centre_signing_key(store, keys)
    cameras = deployments.camera_sources(store, deployment_id)
    with store.session() as s:
        van = s.scalar(select(Van).where(Van.name == van_name))
        if van is None:
            raise NotFoundError(f"no van named {van_name!r} is registered ('openlfr vans register')")
        if van.revoked_at is not None:
            raise StoreError(f"van {van_name!r} was revoked; it can be given no deployment")
        d = deployments.get(s, deployment_id)
        deployments.require_status(d, "authorised", action="be packaged for a van")
        if now >= utc(d.planned_end):
            raise StoreError(f"deployment {deployment_id}'s planned end has passed")
        other = s.scalar(
            select(Van.name).join(DeploymentPackage).where(DeploymentPackage.deployment_id == deployment_id, Van.id != van.id)
        )
        if other is not None:
            raise StoreError(f"deployment {deployment_id} was packaged for van {other!r}: a deployment runs on one van")
        wl = d.watchlist
        if wl is None or wl.approved_at is None:
            raise StoreError(f"deployment {deployment_id} has no approved watchlist")
        entries = [
            {
                "subject_reference": e.subject_reference,
                "name": e.name,
                "category": e.category,
                "reason": e.reason,
                "image": _b64(store.read_blob(e.image_file, watchlist_image_context(e.id))),
                "template": _b64(store.cipher.decrypt(e.template, watchlist_template_context(wl.pack_id, e.id))),
            }
            for e in wl.entries
        ]
        deployment = {f: getattr(d, f) for f in DEPLOYMENT_FIELDS} | {t: _iso(getattr(d, t)) for t in DEPLOYMENT_TIMES}
        watchlist = {
            "pack_id": wl.pack_id,
            "built_by": wl.built_by,
            "built_at": _iso(wl.built_at),
            "approved_by": wl.approved_by,
            "approved_at": _iso(wl.approved_at),
            "entries": entries,
        }
        not_before = utc(d.planned_start) - deployments.WATCHLIST_LEAD
        not_after = utc(d.planned_end)
        recipient = base64.b64decode(van.package_key)
    package_id = str(uuid.uuid4())
    content = {
        "format": FORMAT,
        "package_id": package_id,
        "van": van_name,
        "deployment": deployment,
        "cameras": [{"name": c.name, "source": c.source, "record": c.record, "min_face_px": c.min_face_px} for c in cameras],
        "watchlist": watchlist,
    }
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    nonce = os.urandom(12)
    header = {
        "format": FORMAT,
        "package_id": package_id,
        "van": van_name,
        "van_key_id": vans.key_id(recipient),
        "centre_key_id": vans.key_id(
            signing.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ),
        "deployment_id": deployment_id,
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "issued_at": now.isoformat(),
        "ephemeral_key": _b64(ephemeral_raw),
        "nonce": _b64(nonce),
    }
    key = _aead_key(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient)), ephemeral_raw, recipient)
    ciphertext = AESGCM(key).encrypt(nonce, _canonical(content), _canonical(header))
    signature = signing.sign(_SIGNED + _canonical(header) + ciphertext)
    data = json.dumps({"header": header, "ciphertext": _b64(ciphertext), "signature": _b64(signature)}).encode()
    digest = hashlib.sha256(data).hexdigest()
    with store.session() as s:
        van_id = s.scalar(select(Van.id).where(Van.name == van_name))
        s.add(
            DeploymentPackage(
                package_id=package_id, deployment_id=deployment_id, van_id=van_id, created_by=by,
                not_before=not_before, not_after=not_after, sha256=digest,
            )
        )  # fmt: skip
    subjects = len({e["subject_reference"] for e in entries})
    audit.record(
        store, "package.export", "deployment", deployment_id,
        {"package": package_id, "van": van_name, "subjects": subjects, "images": len(entries), "sha256": digest,
         "not_before": not_before.isoformat(), "not_after": not_after.isoformat()},
        actor=by,
    )  # fmt: skip
    return Exported(
        package_id, van_name, deployment_id, subjects, len(entries), not_before.isoformat(), not_after.isoformat(), digest, data
    )


def runs_on_van(store: Store, deployment_id: int) -> str | None:
    """The van a deployment was packaged for (at the centre); None when it runs here."""
    with store.session() as s:
        return s.scalar(select(Van.name).join(DeploymentPackage).where(DeploymentPackage.deployment_id == deployment_id).limit(1))


def package_stream(store: Store, package_id: str) -> tuple[str, int] | None:
    """(van, centre deployment id) of a package the centre issued; None when it issued no such package."""
    with store.session() as s:
        row = s.execute(
            select(Van.name, DeploymentPackage.deployment_id).join(Van).where(DeploymentPackage.package_id == package_id)
        ).first()
        return (row[0], row[1]) if row else None


# --- On a van --------------------------------------------------------------------------------------


def read_header(data: bytes) -> dict:
    """The package's plain header (who it is for, which deployment, when valid); nothing is checked."""
    try:
        envelope = json.loads(data)
        header = envelope["header"]
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("wrong format")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise PackageRefused(f"this is not an OpenLFR deployment package ({FORMAT})") from exc
    return header


@dataclass(frozen=True)
class Imported:
    package_id: str
    deployment_id: int
    name: str
    subjects: int
    images: int
    cameras: list[str]
    not_after: str


def import_package(
    store: Store, data: bytes, by: str, keys: str | os.PathLike[str] | None = None, now: datetime | None = None
) -> Imported:
    """Check, open and store a package as a local authorised deployment with its approved, frozen
    watchlist. A refusal is audited (and so reported to the centre) and leaves nothing else behind."""
    now = now or now_utc()
    try:
        return _import(store, data, by, keys, now)
    except PackageRefused as refused:
        audit.record(
            store, "package.refused", "package", refused.package_id,
            {"reason": str(refused), "sha256": hashlib.sha256(data).hexdigest()}, actor=by,
        )  # fmt: skip
        raise


def _check(store: Store, data: bytes, now: datetime) -> tuple[dict, bytes]:
    """The checks, in order; returns the header and the ciphertext of a package this van may open."""
    header = read_header(data)
    package_id = str(header.get("package_id"))
    envelope = json.loads(data)
    signature = envelope.get("signature")
    if not signature:
        raise PackageRefused("it is unsigned: only packages signed by the centre are accepted", package_id)
    me = vans.identity(store)
    if me is None or not me.enrolled or me.centre_signing_key is None:
        raise PackageRefused("this van is not enrolled, so it trusts no centre key yet ('openlfr van enrol')", package_id)
    try:
        ciphertext = base64.b64decode(envelope["ciphertext"], validate=True)
        me.centre_signing_key.verify(base64.b64decode(signature, validate=True), _SIGNED + _canonical(header) + ciphertext)
    except (InvalidSignature, KeyError, ValueError, TypeError):
        raise PackageRefused(
            f"its signature does not verify against the centre key this van trusts ({me.centre_key_id}): it was altered "
            "after signing, or signed by someone else",
            package_id,
        ) from None
    if header.get("van") != me.name:
        raise PackageRefused(f"it is meant for van {header.get('van')!r}, not this van ({me.name!r})", package_id)
    not_before, not_after = (datetime.fromisoformat(header[k]) for k in ("not_before", "not_after"))
    if now < not_before:
        raise PackageRefused(
            f"too early: it is valid from {not_before.isoformat()} (24 hours before the planned start), now is {now.isoformat()}",
            package_id,
        )
    if now >= not_after:
        raise PackageRefused(f"expired: the deployment's planned end ({not_after.isoformat()}) has passed", package_id)
    with store.session() as s:
        if s.scalar(select(ImportedPackage.id).where(ImportedPackage.package_id == package_id)) is not None:
            raise PackageRefused(f"package {package_id} was imported already", package_id)
        if s.get(Deployment, header.get("deployment_id")) is not None:
            raise PackageRefused(f"a deployment {header.get('deployment_id')} already exists on this van", package_id)
    return header, ciphertext


def _import(store: Store, data: bytes, by: str, keys: str | os.PathLike[str] | None, now: datetime) -> Imported:
    header, ciphertext = _check(store, data, now)
    package_id = header["package_id"]
    private = vans.van_package_key(store, keys)
    mine = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        ephemeral = base64.b64decode(header["ephemeral_key"])
        key = _aead_key(private.exchange(X25519PublicKey.from_public_bytes(ephemeral)), ephemeral, mine)
        content = json.loads(AESGCM(key).decrypt(base64.b64decode(header["nonce"]), ciphertext, _canonical(header)))
    except (InvalidTag, ValueError, KeyError):
        raise PackageRefused("it cannot be opened with this van's package key (sealed to another key)", package_id) from None
    dep = content["deployment"]
    if content.get("package_id") != package_id or dep.get("id") != header["deployment_id"] or content.get("van") != header["van"]:
        raise PackageRefused("its sealed content does not match its signed header", package_id)
    wl_data = content["watchlist"]
    written: list[str] = []
    try:
        with store.session() as s:
            d = Deployment(
                **{f: dep[f] for f in DEPLOYMENT_FIELDS},
                **{t: datetime.fromisoformat(dep[t]) if dep[t] else None for t in DEPLOYMENT_TIMES},
                status="authorised",
            )
            s.add(d)
            s.flush()
            if s.get_bind().dialect.name == "postgresql":  # the centre's id was given: move the sequence past it
                s.execute(text("SELECT setval(pg_get_serial_sequence('deployments', 'id'), (SELECT MAX(id) FROM deployments))"))
            for cam in content["cameras"]:
                spec = deployments.CameraSpec(cam["name"], cam["source"], cam["record"], cam["min_face_px"])
                row = deployments._camera(store, spec)  # the same redaction and sealing as planning
                d.cameras.append(row)
                s.flush()
                deployments._seal_source(store, row, spec.source)
            wl = Watchlist(
                deployment=d,
                pack_id=wl_data["pack_id"],
                built_by=wl_data["built_by"],
                built_at=datetime.fromisoformat(wl_data["built_at"]),
                approved_by=wl_data["approved_by"],
                approved_at=datetime.fromisoformat(wl_data["approved_at"]),
            )
            s.add(wl)
            pairs = []
            for item in wl_data["entries"]:
                entry = WatchlistEntry(
                    subject_reference=item["subject_reference"], name=item["name"], category=item["category"],
                    reason=item["reason"], image_file="", template=b"",
                )  # fmt: skip
                wl.entries.append(entry)
                pairs.append((entry, item))
            s.flush()
            for entry, item in pairs:
                entry.image_file = store.write_blob(
                    "watchlists", base64.b64decode(item["image"]), watchlist_image_context(entry.id)
                )
                written.append(entry.image_file)
                template = base64.b64decode(item["template"])
                entry.template = store.cipher.encrypt(template, watchlist_template_context(wl.pack_id, entry.id))
            s.add(
                ImportedPackage(
                    package_id=package_id, deployment_id=d.id, sha256=hashlib.sha256(data).hexdigest(), imported_by=by,
                    not_before=datetime.fromisoformat(header["not_before"]),
                    not_after=datetime.fromisoformat(header["not_after"]),
                )
            )  # fmt: skip
            result = Imported(
                package_id, d.id, d.name, len({e["subject_reference"] for e in wl_data["entries"]}), len(pairs),
                [c["name"] for c in content["cameras"]], header["not_after"],
            )  # fmt: skip
    except BaseException:
        for f in written:
            store.delete_blob(f)
        raise
    audit.record(
        store, "package.import", "deployment", result.deployment_id,
        {"package": package_id, "subjects": result.subjects, "images": result.images, "cameras": result.cameras,
         "not_after": result.not_after},
        actor=by,
    )  # fmt: skip
    return result


def van_package_problem(store: Store, now: datetime | None = None) -> str | None:
    """Why this van could not run a deployment now (for ``/readyz``); None when it holds a valid package:
    imported, inside its time window, its deployment not yet closed."""
    now = now or now_utc()
    me = vans.identity(store)
    if me is None:
        return "this node is not a van ('openlfr van init')"
    if not me.enrolled:
        return f"van {me.name} is not enrolled with a centre ('openlfr van enrol')"
    with store.session() as s:
        rows = s.execute(select(ImportedPackage, Deployment.status).join(Deployment)).all()
        usable = [p for p, status in rows if status != "closed" and utc(p.not_before) <= now < utc(p.not_after)]
    if not usable:
        return "no deployment package inside its time window with its deployment still open ('openlfr van import')"
    return None
