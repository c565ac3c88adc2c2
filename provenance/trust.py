"""Trust configuration: which certificate authorities make a signer "trusted".

A :class:`TrustConfig` is an explicit value passed to ``inspect`` and ``stamp``; the library never
discovers anchors on its own. Its ``fingerprint`` changes whenever the anchors, EKU configuration
or allow-list change, so stored verdicts can be recomputed when trust changes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from provenance.errors import ConfigurationError

_SHA256 = hashes.SHA256()


def _parse_pems(pem: str, what: str) -> tuple[x509.Certificate, ...]:
    if not pem.strip():
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(pem.encode()))
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not valid PEM certificate data: {exc}") from exc


@dataclass(frozen=True)
class TrustConfig:
    """Trust anchors (PEM roots), optional EKU ``trust_config`` text, end-entity allow-list, and the
    operator's revocation list (serial numbers of signing certificates that must no longer count)."""

    anchors_pem: str = ""
    trust_config: str | None = None
    allowed_list_pem: str | None = None
    revoked_serials: frozenset[int] = frozenset()
    #: Roots of the timestamp authorities whose timestamps count. The SDK keeps one anchor pool, so
    #: these are added to it; the EKU configuration keeps a TSA certificate from signing claims.
    tsa_anchors_pem: str = ""

    def __post_init__(self) -> None:
        _parse_pems(self.anchors_pem, "trust anchors")
        if self.allowed_list_pem:
            _parse_pems(self.allowed_list_pem, "allowed list")
        _parse_pems(self.tsa_anchors_pem, "TSA anchors")

    @classmethod
    def from_files(cls, anchor_files: Iterable[Path], trust_config: Path | None = None) -> TrustConfig:
        """Concatenate the PEM files given; raise :class:`ConfigurationError` if one is unreadable or not PEM."""
        parts: list[str] = []
        for path in anchor_files:
            try:
                text = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"cannot read trust anchors {path}: {exc}") from exc
            if not _parse_pems(text, f"trust anchors file {path}"):
                raise ConfigurationError(f"trust anchors file {path} contains no certificate")
            parts.append(text.strip() + "\n")
        config_text = None
        if trust_config is not None:
            try:
                config_text = trust_config.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"cannot read trust config {trust_config}: {exc}") from exc
        return cls("".join(parts), config_text)

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return _parse_pems(self.anchors_pem, "trust anchors")

    def anchor_subjects(self) -> list[str]:
        return [cert.subject.rfc4514_string() for cert in self.anchors]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over the normalised trust material; stable across processes."""
        h = hashlib.sha256()
        for cert in sorted(c.fingerprint(_SHA256) for c in self.anchors):
            h.update(b"anchor:" + cert)
        h.update(b"config:" + (self.trust_config or "").encode())
        h.update(b"allowed:" + (self.allowed_list_pem or "").encode())
        for serial in sorted(self.revoked_serials):
            h.update(b"revoked:" + str(serial).encode())
        for cert in sorted(c.fingerprint(_SHA256) for c in _parse_pems(self.tsa_anchors_pem, "TSA anchors")):
            h.update(b"tsa:" + cert)
        return h.hexdigest()

    @property
    def sdk_anchors_pem(self) -> str:
        """Signer and TSA anchors together, as the SDK wants them."""
        return "".join(part.strip() + "\n" for part in (self.anchors_pem, self.tsa_anchors_pem) if part.strip())

    def with_tsa_anchors(self, files: Iterable[Path]) -> TrustConfig:
        """This configuration plus TSA roots read from ``files``."""
        extra = TrustConfig.from_files(files).anchors_pem if files else ""
        return dataclasses.replace(self, tsa_anchors_pem=self.tsa_anchors_pem + extra)

    def with_revocations(self, path: Path) -> TrustConfig:
        """This configuration plus the serials listed in ``path`` (see :func:`parse_revocation_list`)."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read the revocation list {path}: {exc}") from exc
        return dataclasses.replace(self, revoked_serials=self.revoked_serials | parse_revocation_list(text))


def parse_revocation_list(text: str) -> frozenset[int]:
    """Certificate serial numbers, one per line: decimal, ``0x``-hex or colon-separated hex; ``#`` comments.

    Raises :class:`ConfigurationError` naming the first line that is none of these.
    """
    serials = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            if line.lower().startswith("0x"):
                serials.add(int(line, 16))
            elif ":" in line:
                serials.add(int(line.replace(":", ""), 16))
            else:
                serials.add(int(line, 10))
        except ValueError:
            raise ConfigurationError(f"revocation list line {number} is not a certificate serial: {line!r}") from None
    return frozenset(serials)


def chain_summary(chain_pem: bytes) -> list[dict[str, str]]:
    """Subject, issuer, validity, serial and sha256 fingerprint of each certificate in a PEM chain (parsed
    once per chain: every stamp stores its signer's; each call gets its own copy)."""
    return [dict(cert) for cert in _chain_summary(chain_pem)]


@lru_cache(maxsize=16)
def _chain_summary(chain_pem: bytes) -> tuple[dict[str, str], ...]:
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise ConfigurationError(f"certificate chain is not valid PEM: {exc}") from exc
    return tuple(
        {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "serial": format(cert.serial_number, "x"),
            "sha256": cert.fingerprint(_SHA256).hex(),
        }
        for cert in certs
    )
