"""Development certificate authority: root CA -> intermediate CA -> C2PA signing leaf.

The leaf follows the profile the C2PA SDK (c2pa-rs) accepts for claim signing: X.509 v3,
keyUsage digitalSignature (critical), extendedKeyUsage emailProtection, subject and authority
key identifiers, basicConstraints CA:FALSE. The intermediate carries basicConstraints
CA:TRUE, pathlen 0. The chain file holds leaf + intermediate (the root is the trust anchor and
is never sent in the chain).

Invariant: private keys are written with mode 0600 and existing key material is never
overwritten unless the caller passes ``force=True``. Root and intermediate private keys are
not kept: a dev CA issues exactly one signer; run ``keys init --force`` to rotate.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from provenance.errors import KeyMaterialError
from provenance.keys.files import write_file
from provenance.keys.logkey import ensure_log_key
from provenance.keys.pkcs11 import Pkcs11Config, Pkcs11Signer, generate_key
from provenance.keys.signers import Algorithm, FileKeySigner

ROOT_CERT = "root.pem"
CHAIN = "chain.pem"
SIGNER_KEY = "signer.key"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class DevKeyPaths:
    """Where ``init_dev_keys`` put its files."""

    root_cert: Path  # trust anchor (PEM)
    chain: Path  # leaf + intermediate (PEM)
    signer_key: Path  # leaf private key, PKCS#8 PEM, mode 0600

    @classmethod
    def in_dir(cls, keys_dir: Path) -> DevKeyPaths:
        return cls(keys_dir / ROOT_CERT, keys_dir / CHAIN, keys_dir / SIGNER_KEY)


@dataclass(frozen=True)
class IssuedChain:
    """A freshly issued chain, in memory (used by ``init_dev_keys`` and by test-asset scripts)."""

    root_pem: bytes
    chain_pem: bytes  # leaf + intermediate
    key_pem: bytes = field(repr=False)  # the secret: never in a repr, a log or a traceback
    alg: Algorithm


def _new_key(alg: Algorithm) -> PrivateKey:
    if alg is Algorithm.ES256:
        return ec.generate_private_key(ec.SECP256R1())
    if alg is Algorithm.ES384:
        return ec.generate_private_key(ec.SECP384R1())
    if alg is Algorithm.PS256:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg is Algorithm.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyMaterialError(f"unsupported signing algorithm {alg.value!r}")


def _name(org: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        ]
    )


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=False,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def issue_chain(
    org: str,
    alg: Algorithm = Algorithm.ES256,
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    ocsp_url: str | None = None,
    leaf_public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | None = None,
) -> IssuedChain:
    """Issue root -> intermediate -> leaf in memory.

    ``not_before``/``not_after`` bound the leaf only (test scripts use them to make an expired
    signer); ``ocsp_url`` adds an Authority Information Access OCSP location to the leaf (used
    to prove the verifier never contacts it). With ``leaf_public_key`` (a key kept on a token) the
    leaf certifies that key and ``key_pem`` is empty.
    """
    now = dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = _new_key(alg) if leaf_public_key is None else None
    leaf_public = leaf_public_key if leaf_public_key is not None else leaf_key.public_key()  # type: ignore[union-attr]

    root_name = _name(org, f"{org} Root CA (development)")
    inter_name = _name(org, f"{org} Intermediate CA (development)")
    leaf_name = _name(org, f"{org} Content Signer (development)")

    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    inter = (
        x509.CertificateBuilder()
        .subject_name(inter_name)
        .issuer_name(root_name)
        .public_key(inter_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_builder = (
        x509.CertificateBuilder()
        .subject_name(leaf_name)
        .issuer_name(inter_name)
        .public_key(leaf_public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(hours=1))
        .not_valid_after(not_after or now + dt.timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_LEAF_KEY_USAGE, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key()), critical=False)
    )
    if ocsp_url:
        leaf_builder = leaf_builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]
            ),
            critical=False,
        )
    leaf = leaf_builder.sign(inter_key, hashes.SHA256())

    pem = serialization.Encoding.PEM
    key_pem = (
        leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        if leaf_key is not None
        else b""
    )
    return IssuedChain(
        root_pem=root.public_bytes(pem),
        chain_pem=leaf.public_bytes(pem) + inter.public_bytes(pem),
        key_pem=key_pem,
        alg=alg,
    )


def init_dev_keys(
    keys_dir: Path, org: str = "Example Newsroom", alg: Algorithm = Algorithm.ES256, *, force: bool = False
) -> DevKeyPaths:
    """Create a development CA and signing key in ``keys_dir``.

    Raises :class:`KeyMaterialError` if any of the files already exists and ``force`` is false.
    """
    paths = DevKeyPaths.in_dir(keys_dir)
    existing = [p for p in (paths.root_cert, paths.chain, paths.signer_key) if p.exists()]
    if existing and not force:
        raise KeyMaterialError(
            f"key material already exists: {', '.join(str(p) for p in existing)}",
            hint="pass --force to replace it",
        )
    if not org.strip():
        raise KeyMaterialError("organisation name must not be empty")
    keys_dir.mkdir(parents=True, exist_ok=True)
    issued = issue_chain(org.strip(), alg)
    write_file(paths.signer_key, issued.key_pem, 0o600)
    write_file(paths.chain, issued.chain_pem, 0o644)
    write_file(paths.root_cert, issued.root_pem, 0o644)
    ensure_log_key(keys_dir, org)
    return paths


PKCS11_CONFIG = "pkcs11.json"
RETIRED = "retired"


def retired_roots(keys_dir: Path) -> list[Path]:
    """Roots of earlier signing identities (``keys_dir/retired/*/root.pem``), still trusted so that what
    they signed keeps its state; delete a directory to stop trusting it (e.g. after a compromise)."""
    return sorted((keys_dir / RETIRED).glob("*/root.pem"))


def rotate_keys(keys_dir: Path, org: str = "Example Newsroom", alg: Algorithm = Algorithm.ES256) -> Path:
    """Retire the active signing identity (kept under ``retired/<UTC time>/``, its root still trusted)
    and create a new one as the active identity. Returns the retired directory.

    Raises :class:`KeyMaterialError` if there is no active identity or it lives on a token (rotate a
    token key with ``keys init --pkcs11 --force`` and a new key label).
    """
    paths = DevKeyPaths.in_dir(keys_dir)
    if (keys_dir / PKCS11_CONFIG).exists():
        raise KeyMaterialError("the active key is on a PKCS#11 token", hint="generate a new token key instead")
    if not all(p.exists() for p in (paths.root_cert, paths.chain, paths.signer_key)):
        raise KeyMaterialError(f"no active signing identity in {keys_dir}", hint="run `provenance keys init`")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    retired = keys_dir / RETIRED / stamp
    retired.mkdir(parents=True)
    for path in (paths.root_cert, paths.chain, paths.signer_key):
        os.replace(path, retired / path.name)
    init_dev_keys(keys_dir, org, alg)
    return retired


def init_pkcs11_keys(
    keys_dir: Path,
    config: Pkcs11Config,
    org: str = "Example Newsroom",
    alg: Algorithm = Algorithm.ES256,
    *,
    force: bool = False,
) -> DevKeyPaths:
    """Generate the signing key on a PKCS#11 token and a development chain certifying it.

    Writes ``chain.pem``, ``root.pem`` and ``pkcs11.json`` (module, token and key labels; never the
    PIN). Raises :class:`KeyMaterialError` if files exist (without ``force``) or the token refuses.
    """
    paths = DevKeyPaths.in_dir(keys_dir)
    existing = [p for p in (paths.root_cert, paths.chain, paths.signer_key, keys_dir / PKCS11_CONFIG) if p.exists()]
    if existing and not force:
        raise KeyMaterialError(
            f"key material already exists: {', '.join(str(p) for p in existing)}", hint="pass --force to replace it"
        )
    public = generate_key(config, alg)
    issued = issue_chain(org.strip(), alg, leaf_public_key=public)
    keys_dir.mkdir(parents=True, exist_ok=True)
    if paths.signer_key.exists():
        paths.signer_key.unlink()  # the key now lives on the token
    description = {"module": str(config.module), "token_label": config.token_label, "key_label": config.key_label}
    write_file(keys_dir / PKCS11_CONFIG, (json.dumps(description, indent=2) + "\n").encode(), 0o644)
    write_file(paths.chain, issued.chain_pem, 0o644)
    write_file(paths.root_cert, issued.root_pem, 0o644)
    ensure_log_key(keys_dir, org)
    return paths


def load_signer(keys_dir: Path, pin: str | None = None) -> FileKeySigner | Pkcs11Signer:
    """The signer configured in ``keys_dir``: a PKCS#11 token if ``pkcs11.json`` is there, else the key file.

    Raises :class:`KeyMaterialError` when the material is missing, or a token is configured without a PIN.
    """
    paths = DevKeyPaths.in_dir(keys_dir)
    token_file = keys_dir / PKCS11_CONFIG
    if not token_file.exists():
        return FileKeySigner.from_files(paths.signer_key, paths.chain)
    if not pin:
        raise KeyMaterialError(
            "the signing key is on a PKCS#11 token but no PIN was given",
            hint="set PROVENANCE_PKCS11_PIN or pass --pin-file",
        )
    try:
        description = json.loads(token_file.read_text())
        config = Pkcs11Config(Path(description["module"]), description["token_label"], description["key_label"], pin)
        chain = paths.chain.read_bytes()
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyMaterialError(f"cannot read the PKCS#11 configuration in {keys_dir}: {exc}") from exc
    return Pkcs11Signer(config, chain)
