"""PKCS#11 signer: the private key never leaves the token (HSM, smart card, SoftHSM2 in tests).

It implements :class:`provenance.keys.Signer`, so the C2PA adapter reaches it through the callback
seam; any token error (wrong PIN, missing key, token gone) becomes a :class:`SigningError` carrying
the cause instead of the SDK's opaque "COSE signature invalid". A KMS signer is the same shape: a
``sign(data) -> signature`` callable plus the certificate chain.

The PIN is passed in by the caller (from a secret file or the environment, read by the CLI); it is
never logged and not part of ``repr``.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from provenance.errors import KeyMaterialError, SigningError
from provenance.keys.signers import Algorithm, alg_for_key

_CURVES = {Algorithm.ES256: "secp256r1", Algorithm.ES384: "secp384r1"}
_DIGESTS = {Algorithm.ES256: hashlib.sha256, Algorithm.ES384: hashlib.sha384}


@dataclass(frozen=True)
class Pkcs11Config:
    """Where the key is: the PKCS#11 module, the token and the key label, and the user PIN."""

    module: Path
    token_label: str
    key_label: str
    pin: str = field(repr=False)


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as exc:  # pragma: no cover - the dev and service installs include it
        raise KeyMaterialError("PKCS#11 support needs the python-pkcs11 package") from exc
    return pkcs11


def _open(config: Pkcs11Config) -> tuple[Any, Any]:
    """(library, token) for ``config``; raises :class:`KeyMaterialError` when either is missing."""
    pkcs11 = _pkcs11()
    try:
        library = pkcs11.lib(str(config.module))
        token = library.get_token(token_label=config.token_label)
    except (pkcs11.exceptions.PKCS11Error, RuntimeError, OSError) as exc:
        raise KeyMaterialError(
            f"PKCS#11 token {config.token_label!r} not available through {config.module}: {type(exc).__name__}"
        ) from exc
    return library, token


def generate_key(
    config: Pkcs11Config, alg: Algorithm = Algorithm.ES256
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """Generate a signing key on the token (never extractable): EC for ES256/ES384, RSA-2048 for PS256.
    Returns its public key."""
    if alg not in _CURVES and alg is not Algorithm.PS256:
        raise KeyMaterialError(f"generating {alg.value} keys on a token is not supported; use es256, es384 or ps256")
    pkcs11 = _pkcs11()
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters

    _, token = _open(config)
    attribute = pkcs11.Attribute
    private_template = {attribute.SENSITIVE: True, attribute.EXTRACTABLE: False}
    try:
        with token.open(rw=True, user_pin=config.pin) as session:
            if list(
                session.get_objects(
                    {attribute.LABEL: config.key_label, attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}
                )
            ):
                raise KeyMaterialError(f"the token already holds a key labelled {config.key_label!r}")
            if alg is Algorithm.PS256:
                public_rsa, _secret = session.generate_keypair(
                    pkcs11.KeyType.RSA, 2048, store=True, label=config.key_label, private_template=private_template
                )
                exponent = int.from_bytes(public_rsa[attribute.PUBLIC_EXPONENT], "big")
                modulus = int.from_bytes(public_rsa[attribute.MODULUS], "big")
                return rsa.RSAPublicNumbers(exponent, modulus).public_key()
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC, {attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[alg])}, local=True
            )
            public, _private = params.generate_keypair(
                store=True, label=config.key_label, private_template=private_template
            )
            der = encode_ec_public_key(public)
    except pkcs11.exceptions.PKCS11Error as exc:
        raise KeyMaterialError(f"the token refused to generate the key: {type(exc).__name__}") from exc
    key = serialization.load_der_public_key(der)
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyMaterialError("the token returned an unexpected public key")
    return key


class Pkcs11Signer:
    """Signs claims on a PKCS#11 token: ES256 / ES384 (ECDSA over the SHA-2 digest, raw r||s) and
    PS256 (RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt)."""

    def __init__(self, config: Pkcs11Config, chain_pem: bytes) -> None:
        self._config = config
        self._chain_pem = chain_pem
        self._lock = threading.Lock()  # a PKCS#11 session is not safe to share between threads
        self._session: Any = None
        try:
            leaf = x509.load_pem_x509_certificates(chain_pem)[0]
        except (ValueError, IndexError) as exc:
            raise KeyMaterialError("the certificate chain for the token key is not valid PEM") from exc
        public = leaf.public_key()
        self._alg = alg_for_key(public)
        if isinstance(public, rsa.RSAPublicKey):
            self._size = (public.key_size + 7) // 8
        elif isinstance(public, ec.EllipticCurvePublicKey):
            self._size = 2 * ((public.curve.key_size + 7) // 8)
        else:
            raise KeyMaterialError("the token signer supports EC P-256, P-384 and RSA certificates")

    @property
    def alg(self) -> Algorithm:
        return self._alg

    @property
    def certificate_chain_pem(self) -> bytes:
        return self._chain_pem

    def _key(self) -> Any:
        pkcs11 = _pkcs11()
        if self._session is None:
            _, token = _open(self._config)
            self._session = token.open(user_pin=self._config.pin)
        return self._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=self._config.key_label)

    def check(self) -> None:
        """Log in and find the key now (raises :class:`SigningError` with the cause), so a bad PIN or a
        missing key is reported at start-up rather than at the first upload."""
        with self._lock:
            self._call(lambda key: key)

    def _call(self, operation: Any) -> Any:
        pkcs11 = _pkcs11()
        try:
            return operation(self._key())
        except pkcs11.exceptions.PinIncorrect as exc:
            self._close()
            raise SigningError("the PKCS#11 token refused the PIN") from exc
        except pkcs11.exceptions.NoSuchKey as exc:
            self._close()
            raise SigningError(f"no key labelled {self._config.key_label!r} on the token") from exc
        except (pkcs11.exceptions.PKCS11Error, KeyMaterialError) as exc:
            self._close()  # e.g. token removed: the next call opens a fresh session
            raise SigningError(f"the PKCS#11 token failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        """Log out and close the token session (a later ``sign`` opens a new one)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):  # already failing: the original error is what matters
                session.close()

    def sign(self, data: bytes) -> bytes:
        pkcs11 = _pkcs11()
        mechanism = pkcs11.Mechanism
        if self._alg is Algorithm.PS256:
            pss = (mechanism.SHA256, pkcs11.MGF.SHA256, 32)
            with self._lock:
                signature: bytes = self._call(
                    lambda key: key.sign(data, mechanism=mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=pss)
                )
        else:
            digest = _DIGESTS[self._alg](data).digest()
            with self._lock:
                signature = self._call(lambda key: key.sign(digest, mechanism=mechanism.ECDSA))
        if len(signature) != self._size:
            raise SigningError("the PKCS#11 token returned a signature of unexpected length")
        return signature


#: DER of the Ed25519 curve's object identifier (1.3.101.112), the EC_PARAMS of an Edwards key.
_ED25519_PARAMS = bytes.fromhex("06032b6570")


def _ed25519_public(der_point: bytes) -> bytes:
    """The 32-byte public key from an Edwards key's EC_POINT (a DER OCTET STRING, or the raw bytes)."""
    if len(der_point) == 34 and der_point[:2] == b"\x04\x20":
        return der_point[2:]
    if len(der_point) == 32:
        return der_point
    raise KeyMaterialError("the token returned an Ed25519 public key of an unexpected form")


def generate_log_key(config: Pkcs11Config) -> bytes:
    """Generate the transparency log's Ed25519 key on the token (never extractable); returns its public key."""
    pkcs11 = _pkcs11()
    attribute = pkcs11.Attribute
    _, token = _open(config)
    try:
        with token.open(rw=True, user_pin=config.pin) as session:
            if list(
                session.get_objects(
                    {attribute.LABEL: config.key_label, attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY}
                )
            ):
                raise KeyMaterialError(f"the token already holds a key labelled {config.key_label!r}")
            params = session.create_domain_parameters(
                pkcs11.KeyType.EC_EDWARDS, {attribute.EC_PARAMS: _ED25519_PARAMS}, local=True
            )
            public, _private = params.generate_keypair(
                store=True,
                label=config.key_label,
                mechanism=pkcs11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                private_template={attribute.SENSITIVE: True, attribute.EXTRACTABLE: False},
            )
            return _ed25519_public(bytes(public[attribute.EC_POINT]))
    except pkcs11.exceptions.PKCS11Error as exc:
        raise KeyMaterialError(f"the token refused to generate the log key: {type(exc).__name__}") from exc


class Pkcs11LogKey:
    """The transparency log's Ed25519 key on a PKCS#11 token (CKM_EDDSA): signs checkpoints."""

    def __init__(self, config: Pkcs11Config, name: str) -> None:
        self._config = config
        self._name = name
        self._lock = threading.Lock()  # a PKCS#11 session is not safe to share between threads
        self._session: Any = None
        self._public: bytes | None = None

    def __repr__(self) -> str:
        return f"Pkcs11LogKey({self._name!r}, token={self._config.token_label!r})"

    @property
    def name(self) -> str:
        return self._name

    def _call(self, operation: Any) -> Any:
        pkcs11 = _pkcs11()
        with self._lock:
            try:
                if self._session is None:
                    _, token = _open(self._config)
                    self._session = token.open(user_pin=self._config.pin)
                return operation(self._session)
            except pkcs11.exceptions.PinIncorrect as exc:
                self._close()
                raise KeyMaterialError("the PKCS#11 token refused the PIN for the log key") from exc
            except pkcs11.exceptions.NoSuchKey as exc:
                self._close()
                raise KeyMaterialError(f"no log key labelled {self._config.key_label!r} on the token") from exc
            except pkcs11.exceptions.PKCS11Error as exc:
                self._close()
                raise KeyMaterialError(f"the PKCS#11 token failed: {type(exc).__name__}") from exc

    def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                session.close()

    @property
    def public_key(self) -> bytes:
        if self._public is None:
            pkcs11 = _pkcs11()
            self._public = self._call(
                lambda session: _ed25519_public(
                    bytes(
                        session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=self._config.key_label)[
                            pkcs11.Attribute.EC_POINT
                        ]
                    )
                )
            )
        return self._public

    def sign(self, message: bytes) -> bytes:
        pkcs11 = _pkcs11()
        signature: bytes = self._call(
            lambda session: session.get_key(
                object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=self._config.key_label
            ).sign(message, mechanism=pkcs11.Mechanism.EDDSA)
        )
        return signature

    def close(self) -> None:
        with self._lock:
            self._close()
