"""selfcheck: how a stamp verifies its own output before it is returned.

Every signed result is read back by the SDK from the bytes it wrote (in the signing worker), which
checks the claim signature and every hash, ingredients included. What may differ is whether that read
also decides, again, whether the signing certificate chains to a trust anchor:

* ``full``: it does, on every stamp (the slowest, and what the tests run).
* ``cached_chain`` (the default): the first stamp of a signer under a trust configuration is re-read in
  full; when it comes out trusted, that decision about the *chain* is kept, and later stamps are read
  back with trust verification off and count as trusted only if the SDK found no failure at all and
  their active manifest is signed by that very certificate (its serial). The chain's trust cannot change
  between two stamps unless the trust configuration or the certificate chain does, and either makes a
  new key here; a decision is also kept no longer than :data:`CHAIN_DECISION_SECONDS` and never past the
  leaf certificate's expiry. A stamp that asks a timestamp authority is always re-read in full: the
  timestamp's trust is decided in the same step.

Labels are never taken from the cache: they come from the re-read manifest, as in ``full``.
"""

from __future__ import annotations

import enum
import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from provenance.keys.signers import Signer
from provenance.models import State, StatusCode, Verdict
from provenance.trust import TrustConfig

#: Longest a chain's trust decision is reused before the next stamp re-reads in full (seconds).
CHAIN_DECISION_SECONDS: Final = 3600.0
#: Success code added to a verdict whose signer's trust is the cached decision (not an SDK code).
CACHED_TRUST: Final = "provenance.signingCredential.trustedCached"
CACHED_TRUST_EXPLANATION: Final = (
    "signature and hashes verified by the SDK; the signing chain's trust is the decision of a full "
    "verification of this certificate under the same trust configuration"
)
MAX_DECISIONS: Final = 64  # signers x trust configurations kept (a process uses one or two)


class SelfCheck(enum.StrEnum):
    """How a stamp re-verifies what it signed."""

    FULL = "full"
    CACHED_CHAIN = "cached_chain"


@dataclass(frozen=True)
class ChainDecision:
    """A signing chain known trusted under one trust configuration, until ``until`` (``time.time()``)."""

    serial: int  # the leaf certificate's
    until: float


_decisions: dict[tuple[str, str], ChainDecision] = {}
_lock = threading.Lock()


def _key(signer: Signer, trust: TrustConfig) -> tuple[str, str]:
    return hashlib.sha256(signer.certificate_chain_pem).hexdigest(), trust.fingerprint


def known_trusted(signer: Signer, trust: TrustConfig, mode: SelfCheck, *, timestamped: bool) -> ChainDecision | None:
    """The cached trust decision a stamp with ``signer`` under ``trust`` may use (``None``: re-read in full)."""
    if mode is SelfCheck.FULL or timestamped:
        return None
    key = _key(signer, trust)
    with _lock:
        decision = _decisions.get(key)
        if decision is not None and decision.until <= time.time():
            del _decisions[key]
            return None
    return decision


def remember(signer: Signer, trust: TrustConfig, verdict: Verdict) -> None:
    """Keep the chain's trust decision from a *full* re-read that found the signed result trusted."""
    signer_info = verdict.active_manifest.signer if verdict.active_manifest else None
    if verdict.state is not State.TRUSTED or signer_info is None:
        return
    leaf = x509.load_pem_x509_certificates(signer.certificate_chain_pem)[0]
    if signer_info.serial != str(leaf.serial_number):
        return  # not the certificate we signed with: decide nothing
    until = min(time.time() + CHAIN_DECISION_SECONDS, leaf.not_valid_after_utc.timestamp())
    with _lock:
        if len(_decisions) >= MAX_DECISIONS:
            _decisions.clear()
        _decisions[_key(signer, trust)] = ChainDecision(leaf.serial_number, until)


def forget() -> None:
    """Drop every cached decision (the next stamp of each signer is re-read in full)."""
    with _lock:
        _decisions.clear()


def cached_trust_code() -> StatusCode:
    return StatusCode(CACHED_TRUST, None, CACHED_TRUST_EXPLANATION)
