"""Signers: the one interface every signing key sits behind.

A signer knows its algorithm, its certificate chain (leaf first, then intermediates; never the
root) and how to sign bytes. The C2PA adapter only ever calls :meth:`Signer.sign`, so a key file,
a callback into a KMS, or (later) a PKCS#11 token are interchangeable.

Signatures are returned in the form COSE expects: raw ``r || s`` for ECDSA, RSASSA-PSS for PS256,
and the 64-byte Ed25519 signature.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from provenance.errors import KeyMaterialError, SigningError


class Algorithm(enum.Enum):
    """C2PA claim-signing algorithms this product supports."""

    ES256 = "es256"
    ES384 = "es384"
    PS256 = "ps256"
    ED25519 = "ed25519"


@runtime_checkable
class Signer(Protocol):
    """Anything that can sign a C2PA claim."""

    @property
    def alg(self) -> Algorithm: ...

    @property
    def certificate_chain_pem(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes:
        """Return the signature of ``data``; raise :class:`SigningError` on failure."""
        ...


def _load_chain(chain_pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise KeyMaterialError(f"certificate chain is not valid PEM: {exc}") from exc
    if not certs:
        raise KeyMaterialError("certificate chain is empty")
    return certs


def alg_for_key(key: object) -> Algorithm:
    """The C2PA signing algorithm for a private key or its public half (P-256, P-384, RSA, Ed25519)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return Algorithm.ES256
        if isinstance(key.curve, ec.SECP384R1):
            return Algorithm.ES384
        raise KeyMaterialError(f"unsupported EC curve {key.curve.name}")
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return Algorithm.PS256
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return Algorithm.ED25519
    raise KeyMaterialError(f"unsupported private key type {type(key).__name__}")


@dataclass(frozen=True)
class FileKeySigner:
    """Signs with a private key held in memory, loaded from a PEM file.

    The algorithm follows from the key: P-256 -> ES256, P-384 -> ES384, RSA -> PS256,
    Ed25519 -> Ed25519. The key must match the leaf certificate.
    """

    _key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = field(repr=False)
    _chain_pem: bytes
    _alg: Algorithm

    @classmethod
    def from_pem(cls, key_pem: bytes, chain_pem: bytes) -> FileKeySigner:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyMaterialError(f"private key is not a readable unencrypted PEM key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
            raise KeyMaterialError(f"unsupported private key type {type(key).__name__}")
        alg = alg_for_key(key)
        leaf = _load_chain(chain_pem)[0]
        if leaf.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise KeyMaterialError("private key does not match the first certificate of the chain")
        return cls(key, chain_pem, alg)

    @classmethod
    def from_files(cls, key_path: Path, chain_path: Path) -> FileKeySigner:
        try:
            key_pem = key_path.read_bytes()
            chain_pem = chain_path.read_bytes()
        except OSError as exc:
            raise KeyMaterialError(
                f"cannot read signing key material: {exc.strerror}: {exc.filename}",
                hint="run `provenance keys init` to create development keys",
            ) from exc
        return cls.from_pem(key_pem, chain_pem)

    @property
    def alg(self) -> Algorithm:
        return self._alg

    @property
    def certificate_chain_pem(self) -> bytes:
        return self._chain_pem

    def unsafe_private_key_pem(self) -> bytes:
        """The private key as PKCS#8 PEM, to hand to the C2PA SDK's native signer.

        Unsafe: it is the secret. Never log, return or persist it.
        """
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, data: bytes) -> bytes:
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            digest = hashes.SHA256() if self._alg is Algorithm.ES256 else hashes.SHA384()
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        return key.sign(data)


@dataclass(frozen=True)
class CallbackSigner:
    """Delegates signing to a callable: the seam for KMS/HSM signers.

    ``callback(data) -> signature`` must return a signature in COSE form for ``alg``. Any
    exception it raises is reported as a :class:`SigningError` carrying the original message.
    """

    callback: Callable[[bytes], bytes]
    _alg: Algorithm
    _chain_pem: bytes

    @classmethod
    def create(cls, callback: Callable[[bytes], bytes], alg: Algorithm, chain_pem: bytes) -> CallbackSigner:
        _load_chain(chain_pem)
        return cls(callback, alg, chain_pem)

    @property
    def alg(self) -> Algorithm:
        return self._alg

    @property
    def certificate_chain_pem(self) -> bytes:
        return self._chain_pem

    def sign(self, data: bytes) -> bytes:
        try:
            signature = self.callback(data)
        except SigningError:
            raise
        except Exception as exc:  # the callback is foreign code: report, never crash the SDK
            raise SigningError(f"signer callback failed: {exc}") from exc
        if not isinstance(signature, bytes | bytearray) or not signature:
            raise SigningError("signer callback returned no signature")
        return bytes(signature)
