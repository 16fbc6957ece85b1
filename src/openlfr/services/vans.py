"""Who is the centre, who is a van, and the keys that prove it.

The **centre** holds three things no van has: an Ed25519 *signing key* (every deployment package
carries its signature), a small *certificate authority* (EC P-256) that issues each registered van
a TLS client certificate, and the sync listener's TLS server certificate from that CA. A **van**
holds an X25519 *package key* (packages are encrypted to it) and a P-256 *TLS key* (its client
certificate's). All private keys are files in the node's key folder — ``$OPENLFR_NODE_KEYS``, else
``<data dir>/keys/node`` beside the data key — never rows of the database; the database holds only
public halves, certificates and, on a van, the centre's pinned signing key.

Enrolment, in order: ``openlfr van init --name NAME`` (van: makes its keys, prints the public ones),
``openlfr vans register NAME --public-key FILE`` (centre: issues the client certificate and writes an
enrolment file), ``openlfr van enrol FILE --centre-url URL`` (van: pins the centre's signing key and
CA from that file). The enrolment file holds only public material, but whoever can swap it can make
the van trust another centre: carry it by hand, or compare the key ids both ends print.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select

from openlfr.errors import NotFoundError, OpenLFRError, StoreError
from openlfr.services import audit
from openlfr.services.common import now_utc, utc
from openlfr.storage import Store
from openlfr.storage.models import AuditEvent
from openlfr.storage.store import private_dir, write_private
from openlfr.storage.sync_models import Van, VanIdentity

ENV_NODE_KEYS = "OPENLFR_NODE_KEYS"
ENROLMENT_FORMAT = "openlfr-van-enrolment/1"
#: File names in the key folder.
CENTRE_SIGNING_KEY = "centre-signing.key"
CENTRE_CA_KEY = "centre-ca.key"
CENTRE_CA_CERT = "centre-ca.crt"
CENTRE_SYNC_KEY = "centre-sync.key"
CENTRE_SYNC_CERT = "centre-sync.crt"
VAN_PACKAGE_KEY = "van-package.key"
VAN_TLS_KEY = "van-tls.key"
VAN_TLS_CERT = "van-tls.crt"
VAN_PUBLIC = "van.pub"
#: How long the certificates the centre issues are valid.
CA_DAYS, CERT_DAYS = 3650, 730
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_PEM = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)


class NodeKeyError(OpenLFRError):
    """A node key or certificate is missing, malformed, or does not belong to this node."""


def keys_dir(home: Path, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The node's key folder: ``explicit``, else ``$OPENLFR_NODE_KEYS``, else ``<home>/keys/node`` (created 0700)."""
    chosen = explicit or os.environ.get(ENV_NODE_KEYS)
    folder = Path(chosen).expanduser().resolve() if chosen else Path(home) / "keys" / "node"
    private_dir(folder.parent)
    return private_dir(folder)


def key_id(raw: bytes) -> str:
    """A short fingerprint of a raw public key, to compare by eye at both ends."""
    return hashlib.sha256(raw).hexdigest()[:16]


def _raw(public: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _pem_private(key: Ed25519PrivateKey | X25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem_public(key: X25519PublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _create(path: Path, data: bytes) -> None:
    """Write a new key file 0600, never replacing one: a replaced key orphans everything made with it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise NodeKeyError(f"{path} already exists: refusing to replace it") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _load_private(path: Path, kind: type, what: str) -> Any:
    if not path.is_file():
        raise NodeKeyError(f"no {what} at {path}")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise NodeKeyError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, kind):
        raise NodeKeyError(f"{path} is not the expected kind of key for the {what}")
    return key


# --- The centre -------------------------------------------------------------------------------------


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OpenLFR"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _issue(
    subject: str,
    public: ec.EllipticCurvePublicKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate | None,
    days: int,
    usage: x509.ObjectIdentifier | None,
    hosts: list[str] | None = None,
) -> x509.Certificate:
    """A certificate for ``public`` signed by the CA (self-signed when ``ca_cert`` is None: the CA itself)."""
    now = datetime.now(UTC)
    issuer = ca_cert.subject if ca_cert is not None else _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if ca_cert is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True).add_extension(
            x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True
        )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


@dataclass(frozen=True)
class CentreKeys:
    folder: Path
    signing_key_id: str
    hosts: tuple[str, ...]


def init_centre(store: Store, hosts: list[str], keys: str | os.PathLike[str] | None = None) -> CentreKeys:
    """Make the centre's signing key, CA and sync server certificate (for ``hosts``: the names and
    addresses vans will connect to). Refuses to replace any of them."""
    if not hosts:
        raise OpenLFRError("name at least one host (name or address) the vans will reach the centre's sync listener at")
    folder = keys_dir(store.home, keys)
    for name in (CENTRE_SIGNING_KEY, CENTRE_CA_KEY, CENTRE_SYNC_KEY):
        if (folder / name).exists():
            raise NodeKeyError(f"{folder / name} already exists: this centre is already initialised")
    signing = Ed25519PrivateKey.generate()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _issue("OpenLFR centre CA", ca_key.public_key(), ca_key, None, CA_DAYS, None)
    sync_key = ec.generate_private_key(ec.SECP256R1())
    sync_cert = _issue(
        "openlfr-centre-sync", sync_key.public_key(), ca_key, ca_cert, CERT_DAYS, ExtendedKeyUsageOID.SERVER_AUTH, hosts
    )
    _create(folder / CENTRE_SIGNING_KEY, _pem_private(signing))
    _create(folder / CENTRE_CA_KEY, _pem_private(ca_key))
    _create(folder / CENTRE_SYNC_KEY, _pem_private(sync_key))
    write_private(folder / CENTRE_CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM))
    write_private(folder / CENTRE_SYNC_CERT, sync_cert.public_bytes(serialization.Encoding.PEM))
    kid = key_id(_raw(signing.public_key()))
    audit.record(store, "centre.init", "centre", None, {"signing_key_id": kid, "hosts": hosts})
    return CentreKeys(folder, kid, tuple(hosts))


def centre_signing_key(store: Store, keys: str | os.PathLike[str] | None = None) -> Ed25519PrivateKey:
    folder = keys_dir(store.home, keys)
    return _load_private(folder / CENTRE_SIGNING_KEY, Ed25519PrivateKey, "centre signing key ('openlfr centre init')")


def _centre_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _load_private(folder / CENTRE_CA_KEY, ec.EllipticCurvePrivateKey, "centre CA key ('openlfr centre init')")
    return key, x509.load_pem_x509_certificate((folder / CENTRE_CA_CERT).read_bytes())


def centre_tls_files(store: Store, keys: str | os.PathLike[str] | None = None) -> tuple[Path, Path, Path]:
    """(server key, server certificate, CA certificate) for the sync listener."""
    folder = keys_dir(store.home, keys)
    files = (folder / CENTRE_SYNC_KEY, folder / CENTRE_SYNC_CERT, folder / CENTRE_CA_CERT)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise NodeKeyError(f"the sync listener needs {', '.join(missing)}: run 'openlfr centre init --host NAME' first")
    return files


def parse_van_public(data: bytes) -> tuple[X25519PublicKey, ec.EllipticCurvePublicKey]:
    """The two public keys ``openlfr van init`` printed: the package key (X25519) and the TLS key (P-256)."""
    package = tls = None
    for block in _PEM.findall(data):
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise NodeKeyError(f"the van's public key file holds a malformed key: {exc}") from exc
        if isinstance(key, X25519PublicKey):
            package = key
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            tls = key
    if package is None or tls is None:
        raise NodeKeyError(
            "the van's public key file must hold its X25519 package key and its P-256 TLS key ('openlfr van init')"
        )
    return package, tls


def register_van(store: Store, name: str, public_keys: bytes, by: str, keys: str | os.PathLike[str] | None = None) -> dict:
    """Register a van: keep its public keys, issue its client certificate. Returns the enrolment file's
    content (the van's certificate, the CA and the centre's signing key: all public)."""
    if not _NAME.fullmatch(name):
        raise OpenLFRError("a van's name is 1-63 lower-case letters, digits and hyphens, starting with a letter or digit")
    package, tls = parse_van_public(public_keys)
    folder = keys_dir(store.home, keys)
    ca_key, ca_cert = _centre_ca(folder)
    signing = centre_signing_key(store, keys)
    with store.session() as s:
        if s.scalar(select(Van).where(Van.name == name)) is not None:
            raise StoreError(f"a van named {name!r} is already registered")
        cert = _issue(name, tls, ca_key, ca_cert, CERT_DAYS, ExtendedKeyUsageOID.CLIENT_AUTH)
        der = cert.public_bytes(serialization.Encoding.DER)
        s.add(
            Van(
                name=name,
                package_key=base64.b64encode(_raw(package)).decode(),
                tls_public_key=_pem_public(tls).decode(),
                certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
                certificate_sha256=hashlib.sha256(der).hexdigest(),
                registered_by=by,
            )
        )
    centre_kid = key_id(_raw(signing.public_key()))
    audit.record(
        store, "van.register", "van", name,
        {"package_key_id": key_id(_raw(package)), "certificate_sha256": hashlib.sha256(der).hexdigest()}, actor=by,
    )  # fmt: skip
    return {
        "format": ENROLMENT_FORMAT,
        "van": name,
        "centre_signing_key": base64.b64encode(_raw(signing.public_key())).decode(),
        "centre_key_id": centre_kid,
        "ca_certificate": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        "client_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }


def revoke_van(store: Store, name: str, by: str) -> None:
    """Stop accepting a van's certificate (a lost or stolen van); its packages can no longer report."""
    with store.session() as s:
        van = s.scalar(select(Van).where(Van.name == name))
        if van is None:
            raise NotFoundError(f"no van named {name!r}")
        if van.revoked_at is not None:
            raise StoreError(f"van {name!r} is already revoked")
        van.revoked_at, van.revoked_by = now_utc(), by
    audit.record(store, "van.revoke", "van", name, {}, actor=by)


def van_for_certificate(store: Store, der: bytes | None) -> str | None:
    """The registered, unrevoked van whose client certificate this is; None otherwise."""
    if not der:
        return None
    with store.session() as s:
        van = s.scalar(select(Van).where(Van.certificate_sha256 == hashlib.sha256(der).hexdigest()))
        return van.name if van is not None and van.revoked_at is None else None


def list_vans(store: Store) -> list[dict]:
    with store.session() as s:
        return [
            {
                "name": v.name,
                "package_key_id": key_id(base64.b64decode(v.package_key)),
                "registered_by": v.registered_by,
                "registered_at": utc(v.registered_at).isoformat(),
                "revoked": v.revoked_at is not None,
            }
            for v in s.scalars(select(Van).order_by(Van.name))
        ]


# --- A van ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VanKeys:
    name: str
    folder: Path
    public_file: Path
    public_text: str
    package_key_id: str


def _public_text(name: str, package: X25519PublicKey, tls: ec.EllipticCurvePublicKey) -> str:
    return (
        f"# OpenLFR van {name}: package key (X25519), then TLS key (P-256)\n" + (_pem_public(package) + _pem_public(tls)).decode()
    )


def init_van(store: Store, name: str, keys: str | os.PathLike[str] | None = None) -> VanKeys:
    """Make this node a van called ``name``: its package and TLS keys (files, 0600), and the public
    file to hand to the centre. From now on every audited action here is queued for the centre."""
    if not _NAME.fullmatch(name):
        raise OpenLFRError("a van's name is 1-63 lower-case letters, digits and hyphens, starting with a letter or digit")
    folder = keys_dir(store.home, keys)
    with store.session() as s:
        existing = s.get(VanIdentity, 1)
        if existing is not None:
            raise StoreError(f"this node is already the van {existing.name!r}")
    package = X25519PrivateKey.generate()
    tls = ec.generate_private_key(ec.SECP256R1())
    _create(folder / VAN_PACKAGE_KEY, _pem_private(package))
    try:
        _create(folder / VAN_TLS_KEY, _pem_private(tls))
    except NodeKeyError:
        (folder / VAN_PACKAGE_KEY).unlink()
        raise
    text = _public_text(name, package.public_key(), tls.public_key())
    (folder / VAN_PUBLIC).write_text(text)
    with store.session() as s:  # events before this one are the node's past, not the centre's business
        s.add(VanIdentity(id=1, name=name, audit_cursor=s.scalar(select(func.max(AuditEvent.seq))) or 0))
    kid = key_id(_raw(package.public_key()))
    audit.record(store, "van.init", "van", name, {"package_key_id": kid})
    return VanKeys(name, folder, folder / VAN_PUBLIC, text, kid)


def van_package_key(store: Store, keys: str | os.PathLike[str] | None = None) -> X25519PrivateKey:
    folder = keys_dir(store.home, keys)
    return _load_private(folder / VAN_PACKAGE_KEY, X25519PrivateKey, "van package key ('openlfr van init')")


def van_tls_files(store: Store, keys: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """(client certificate, TLS key) for connecting to the centre."""
    folder = keys_dir(store.home, keys)
    files = (folder / VAN_TLS_CERT, folder / VAN_TLS_KEY)
    if not all(f.is_file() for f in files):
        raise NodeKeyError(f"the van's TLS certificate or key is missing from {folder}: enrol it ('openlfr van enrol')")
    return files


@dataclass(frozen=True)
class Identity:
    name: str
    enrolled: bool
    centre_signing_key: Ed25519PublicKey | None
    centre_key_id: str | None
    ca_certificate: str | None
    centre_url: str | None


def identity(store: Store) -> Identity | None:
    """This node's van identity; None on a centre."""
    with store.session() as s:
        row = s.get(VanIdentity, 1)
        if row is None:
            return None
        raw = base64.b64decode(row.centre_signing_key) if row.centre_signing_key else None
        return Identity(
            row.name,
            row.enrolled_at is not None,
            Ed25519PublicKey.from_public_bytes(raw) if raw else None,
            key_id(raw) if raw else None,
            row.ca_certificate,
            row.centre_url,
        )


def require_enrolled(store: Store) -> Identity:
    found = identity(store)
    if found is None:
        raise StoreError("this node is not a van: run 'openlfr van init --name NAME' first")
    if not found.enrolled or found.centre_signing_key is None:
        raise StoreError(f"van {found.name!r} is not enrolled: pin the centre with 'openlfr van enrol FILE --centre-url URL'")
    return found


def enrol(store: Store, bundle: dict | bytes, centre_url: str, keys: str | os.PathLike[str] | None = None) -> Identity:
    """Pin the centre's signing key and CA from its enrolment file and keep the client certificate."""
    data = json.loads(bundle) if isinstance(bundle, bytes | str) else bundle
    if not isinstance(data, dict) or data.get("format") != ENROLMENT_FORMAT:
        raise OpenLFRError(f"not an OpenLFR enrolment file (expected format {ENROLMENT_FORMAT})")
    if not centre_url.startswith("https://"):
        raise OpenLFRError("the centre's sync address must be https:// (the link is mutually authenticated TLS)")
    me = identity(store)
    if me is None:
        raise StoreError("this node is not a van: run 'openlfr van init --name NAME' first")
    if data.get("van") != me.name:
        raise NodeKeyError(f"this enrolment file is for van {data.get('van')!r}, not this van ({me.name!r})")
    try:
        raw = base64.b64decode(data["centre_signing_key"])
        Ed25519PublicKey.from_public_bytes(raw)
        ca = x509.load_pem_x509_certificate(data["ca_certificate"].encode())
        cert = x509.load_pem_x509_certificate(data["client_certificate"].encode())
        cert.verify_directly_issued_by(ca)
    except (KeyError, ValueError, TypeError) as exc:
        raise NodeKeyError(f"the enrolment file is malformed or its certificate was not issued by its CA: {exc}") from exc
    folder = keys_dir(store.home, keys)
    tls = _load_private(folder / VAN_TLS_KEY, ec.EllipticCurvePrivateKey, "van TLS key ('openlfr van init')")
    if _pem_public(cert.public_key()) != _pem_public(tls.public_key()):  # type: ignore[arg-type]
        raise NodeKeyError("the certificate in the enrolment file is not for this van's TLS key")
    if me.centre_signing_key is not None and key_id(raw) != me.centre_key_id:
        raise NodeKeyError(
            f"this van already trusts centre key {me.centre_key_id}; the file carries {key_id(raw)}: refusing to switch centres"
        )
    write_private(folder / VAN_TLS_CERT, data["client_certificate"].encode())
    with store.session() as s:
        row = s.get(VanIdentity, 1)
        row.centre_signing_key = data["centre_signing_key"]
        row.ca_certificate = data["ca_certificate"]
        row.client_certificate = data["client_certificate"]
        row.centre_url = centre_url.rstrip("/")
        row.enrolled_at = now_utc()
    audit.record(store, "van.enrol", "van", me.name, {"centre_key_id": key_id(raw), "centre_url": centre_url})
    return identity(store)  # type: ignore[return-value]


def set_centre_url(store: Store, centre_url: str) -> None:
    """Where the centre's sync listener is (it may move; the pinned keys may not)."""
    if not centre_url.startswith("https://"):
        raise OpenLFRError("the centre's sync address must be https://")
    with store.session() as s:
        row = s.get(VanIdentity, 1)
        if row is None:
            raise StoreError("this node is not a van")
        row.centre_url = centre_url.rstrip("/")
    audit.record(store, "van.centre_url", "van", None, {"centre_url": centre_url})
