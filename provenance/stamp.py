"""stamp: an upload + the newsroom's declaration -> the upload with the publisher's signed manifest.

Invariants:

* Provenance is never erased. An upload that carries a manifest becomes the ``parentOf``
  ingredient of the new manifest (the SDK would otherwise silently replace it). An upload whose
  manifest cannot be parsed, or that only points at a remote manifest, is refused.
* An AI claim is never silently contradicted. If the upload's manifest, trusted or valid from a
  signer we do not recognise, or any of its ingredients says AI and the declaration says
  ``camera`` or ``human``, stamping is refused unless an override reason is given; the reason is
  signed into the manifest.
* Pixels are never re-encoded: the SDK only inserts the manifest.
* The manifest carries a ``c2pa.soft-binding`` assertion, the ISCC Image-Code of the pixels
  (:mod:`provenance.softbinding`), unless the image gets none (featureless, or not decodable by Pillow).
* The result is re-inspected and must be ``trusted`` under the configured anchors, and must keep
  every AI label the upload had, or nothing is returned. The SDK reads the signed bytes back and checks
  the signature and every hash; whether it also decides the signing chain's trust again on every stamp
  is :mod:`provenance.selfcheck`'s choice (``self_check``). When an invalid upstream manifest makes the
  result invalid, that is the upload's fault (an :class:`InputError`), not a signing failure.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from provenance import __version__, _c2pa, assertions, policy, selfcheck, softbinding
from provenance.errors import (
    InputError,
    SigningError,
    UnsupportedMediaError,
    UpstreamConflictError,
    VerificationError,
)
from provenance.inspect import inspect_checked, sha256_later, verdict_of
from provenance.keys.signers import Signer
from provenance.media import DEFAULT_LIMITS, STAMPABLE, Limits, check_input
from provenance.models import State, Verdict
from provenance.selfcheck import SelfCheck
from provenance.softbinding import SoftBinding
from provenance.timestamps import Timestamping, probe
from provenance.trust import TrustConfig

CLAIM_GENERATOR: Final = "newsroom-provenance"
PARENT_INGREDIENT_ID: Final = "upload"

EMPTY_SOURCE_TYPE: Final = "http://c2pa.org/digitalsourcetype/empty"


class Source(enum.StrEnum):
    """What the newsroom declares about the image it uploads."""

    AI_GENERATED = "ai_generated"
    AI_EDITED = "ai_edited"
    CAMERA = "camera"
    HUMAN = "human"
    UNKNOWN = "unknown"


#: The IPTC digital source type each declaration is signed as (``unknown`` makes no claim).
SOURCE_TYPES: Final = {
    Source.AI_GENERATED: policy.IPTC + "trainedAlgorithmicMedia",
    Source.AI_EDITED: policy.IPTC + "compositeWithTrainedAlgorithmicMedia",
    Source.CAMERA: policy.IPTC + "digitalCapture",
    Source.HUMAN: policy.IPTC + "digitalCreation",
    Source.UNKNOWN: None,
}

#: Declarations that contradict an upstream AI claim.
NON_AI_SOURCES: Final = frozenset({Source.CAMERA, Source.HUMAN})

MAX_TITLE = 512  # characters


# The upload's digest is computed concurrently and filled in at the end; this is the placeholder.
def _pending_digest() -> str:
    return ""


MAX_REASON = 2000  # characters


@dataclass(frozen=True)
class StampRequest:
    """The newsroom's declaration about one upload."""

    source: Source
    title: str | None = None
    override_upstream: str | None = None  # reason for contradicting an upstream AI claim
    upload_name: str = "upload"  # title given to the upstream ingredient
    credit: str | None = None  # recorded in the declaration assertion (never a label source)
    external_id: str | None = None  # the CMS's id for the asset, recorded likewise

    def __post_init__(self) -> None:
        for name in ("title", "credit", "external_id"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_TITLE:
                raise InputError(f"{name} is longer than {MAX_TITLE} characters")
        if self.override_upstream is not None:
            if not self.override_upstream.strip():
                raise InputError("the override reason must not be empty")
            if len(self.override_upstream) > MAX_REASON:
                raise InputError(f"the override reason is longer than {MAX_REASON} characters")


@dataclass(frozen=True)
class StampedAsset:
    """A signed asset, its verdict (trusted by construction) and the verdict on the upload."""

    data: bytes
    media_type: str
    verdict: Verdict
    upstream: Verdict
    manifest: bytes  # the manifest store embedded in ``data``, on its own
    #: Set when timestamping was configured but optional and the TSA did not answer: why there is none.
    timestamp_note: str | None = None
    #: The fingerprint signed as its ``c2pa.soft-binding`` assertion (``None``: the image gets none).
    soft_binding: SoftBinding | None = None


def upstream_ai_labels(upstream: Verdict) -> tuple[str, ...]:
    """AI labels the upload's own provenance claims, counting valid-but-unrecognised signers too."""
    decision = policy.evaluate(
        upstream.state,
        upstream.active_manifest,
        kind=policy.AssetKind.IMAGE,
        accept=frozenset({State.TRUSTED, State.UNTRUSTED}),
    )
    return decision.labels


def override_assertion(reason: str, declared_source: str, labels: tuple[str, ...], upstream: Verdict) -> dict[str, Any]:
    """The signed record of a declaration that contradicts upstream AI ``labels``, and why."""
    return {
        "label": assertions.UPSTREAM_OVERRIDE,
        "data": {
            "reason": reason,
            "declared_source": declared_source,
            "upstream_labels": list(labels),
            "upstream_manifest": upstream.active_manifest.label if upstream.active_manifest else None,
        },
    }


def require_verified(verdict: Verdict, upstream_labels: tuple[str, ...], what: str) -> None:
    """Raise :class:`VerificationError` unless ``verdict`` is trusted and keeps every upstream label.

    A label counts as kept when it is present or outranked (``ai_edited`` under ``ai_generated``).
    """
    if verdict.state is not State.TRUSTED:
        failures = ", ".join(sorted(verdict.codes.failure_codes())) or "no failure codes"
        raise VerificationError(
            f"{what} verifies as {verdict.state.value}, not trusted ({failures})",
            hint="the signing certificate must chain to one of the configured trust anchors",
        )
    lost = [label for label in upstream_labels if not policy.kept(label, verdict.labels)]
    if lost:
        raise VerificationError(f"{what} would lose the upstream labels {', '.join(lost)}")


def _manifest(
    request: StampRequest, upstream: Verdict, conflict: tuple[str, ...], binding: SoftBinding | None
) -> dict[str, Any]:
    agent = {"name": CLAIM_GENERATOR, "version": __version__}
    source_type = SOURCE_TYPES[request.source]
    first: dict[str, Any]
    if upstream.state is State.ABSENT:
        first = {"action": "c2pa.created", "digitalSourceType": source_type or EMPTY_SOURCE_TYPE}
    else:
        first = {"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_INGREDIENT_ID]}}
        if source_type:
            first["digitalSourceType"] = source_type
    first["softwareAgent"] = agent
    entries: list[dict[str, Any]] = [
        {
            "label": "c2pa.actions.v2",
            "data": {"actions": [first, {"action": "c2pa.published", "softwareAgent": agent}]},
        },
        {
            "label": assertions.DECLARATION,
            "data": {
                "source": request.source.value,
                "policy_version": policy.POLICY_VERSION,
                **{k: v for k, v in (("credit", request.credit), ("external_id", request.external_id)) if v},
            },
        },
    ]
    if conflict and request.override_upstream:
        entries.append(override_assertion(request.override_upstream, request.source.value, conflict, upstream))
    if binding is not None:
        entries.append(softbinding.assertion(binding))
    manifest: dict[str, Any] = {"claim_generator_info": [agent], "assertions": entries}
    if request.title:
        manifest["title"] = request.title
    return manifest


def timestamp_url(timestamping: Timestamping | None) -> tuple[str | None, str | None]:
    """(TSA URL to sign with, note) after probing the TSA; raises :class:`SigningError` when a required
    TSA does not answer within its timeout."""
    if timestamping is None:
        return None, None
    problem = probe(timestamping)
    if problem is None:
        return timestamping.url, None
    if timestamping.required:
        raise SigningError(problem, hint="the timestamp authority is required; nothing was signed")
    return None, f"signed without a timestamp: {problem}"


def sign_verified(
    data: bytes,
    media_type: str,
    manifest: dict[str, Any],
    signer: Signer,
    trust: TrustConfig,
    ingredients: Sequence[_c2pa.Ingredient],
    tsa_url: str | None,
    *,
    limits: Limits,
    self_check: SelfCheck,
    embed: bool = True,
    soft_binding: int | None = None,
) -> tuple[_c2pa.Signed, Verdict]:
    """Sign, and the verdict of the SDK's read of what was signed (the same isolated call): with the
    signing chain's trust decided again, or taken from :mod:`provenance.selfcheck` as ``self_check`` says.
    ``soft_binding``: as for :func:`provenance._c2pa.sign`."""
    known = selfcheck.known_trusted(signer, trust, self_check, timestamped=tsa_url is not None)
    signed = _c2pa.sign(
        data,
        media_type,
        manifest,
        signer,
        trust,
        ingredients,
        tsa_url,
        limits=limits,
        embed=embed,
        verify_trust=known is None,
        soft_binding=soft_binding,
    )
    verdict = verdict_of(
        signed.verification(),
        sha256=sha256_later(signed.data),
        size=len(signed.data),
        media_type=media_type,
        trust=trust,
        known_chain=known,
    )
    if known is None and self_check is SelfCheck.CACHED_CHAIN:
        selfcheck.remember(signer, trust, verdict)
    return signed, verdict


def stamp(
    data: bytes,
    request: StampRequest,
    signer: Signer,
    trust: TrustConfig,
    *,
    limits: Limits = DEFAULT_LIMITS,
    timestamping: Timestamping | None = None,
    self_check: SelfCheck = SelfCheck.CACHED_CHAIN,
    upload_sha256: str | None = None,
) -> StampedAsset:
    """Sign ``data`` with the publisher's manifest recording ``request``.

    Every SDK call runs isolated under ``limits`` (:mod:`provenance.isolation`); ``self_check`` says how
    the result is re-verified (:mod:`provenance.selfcheck`). ``upload_sha256``: the hex sha256 of ``data``
    when the caller has already computed it (it becomes the upstream verdict's digest unchecked).
    Raises :class:`InputError` (bad, unsupported or too complex upload, remote-only manifest),
    :class:`~provenance.errors.ManifestError` (upload's manifest unparseable),
    :class:`UpstreamConflictError` (declaration contradicts an upstream AI claim, no override),
    :class:`~provenance.errors.SigningError` and :class:`VerificationError` (the result is not
    trusted under ``trust`` or lost an upstream AI label).
    """
    info = check_input(data, limits)
    if info.media_type not in STAMPABLE:
        raise UnsupportedMediaError(
            f"cannot stamp {info.media_type}",
            hint="stamp takes JPEG, PNG, WebP, TIFF, AVIF or HEIC images",
        )
    # Hashed on the other core while we read and sign, unless the caller has the digest.
    upload_digest = sha256_later(data) if upload_sha256 is None else lambda: upload_sha256
    # An upload that may carry a manifest is read first: its fingerprint is computed meanwhile, in a second
    # worker. One that cannot has nothing to read: its fingerprint is computed in the signing call.
    fingerprint = softbinding.image_binding_later(data, limits=limits) if info.may_carry_manifest else None
    upstream = inspect_checked(data, info, trust, _pending_digest, limits=limits)
    if upstream.state is State.UNAVAILABLE:
        raise InputError(
            f"the upload only references a remote manifest ({upstream.remote_manifest_url or 'no URL'}), "
            "which is never fetched; stamping it would hide that provenance"
        )
    if upstream.active_manifest is not None and any(n.truncated for n in upstream.active_manifest.walk()):
        raise InputError(
            "the upload's provenance chain is too deep or too large to evaluate in full; "
            "stamping it could hide an AI claim"
        )
    claimed = upstream_ai_labels(upstream)
    if claimed and request.source in NON_AI_SOURCES and not request.override_upstream:
        raise UpstreamConflictError(
            f"the upload's provenance says {', '.join(claimed)} but the declaration is {request.source.value!r}",
            hint='declare ai_generated/ai_edited, or pass --override-upstream "reason" to record why',
        )
    parents = []
    if upstream.state is not State.ABSENT:
        parents.append(_c2pa.Ingredient(data, upstream.media_type, request.upload_name, PARENT_INGREDIENT_ID))
    # The pixels are not re-encoded: the upload's fingerprint is the stamped file's.
    binding = fingerprint() if fingerprint is not None else None
    manifest = _manifest(request, upstream, claimed if request.source in NON_AI_SOURCES else (), binding)
    tsa_url, timestamp_note = timestamp_url(timestamping)
    # The SDK reads the signed bytes back in the same isolated call (its own post-sign check is off: it
    # does not check trust and never reads its output).
    signed, verdict = sign_verified(
        data,
        upstream.media_type,
        manifest,
        signer,
        trust,
        parents,
        tsa_url,
        limits=limits,
        self_check=self_check,
        soft_binding=limits.max_pixels if fingerprint is None else None,
    )
    if fingerprint is None and signed.binding is not None:
        binding = softbinding.signed_binding(signed.binding)
    if verdict.state is State.INVALID and upstream.state is State.INVALID:
        # The upload's own manifest is broken in a way the SDK carries into any manifest that keeps it
        # as an ingredient: the upload's fault (a 422), not a failure of our signing.
        failures = ", ".join(sorted(upstream.codes.failure_codes())) or "no failure codes"
        raise InputError(
            f"the upload's own manifest is invalid ({failures}) and makes the stamped file invalid too",
            hint="provenance is never dropped: upload the original file, or one whose manifest verifies",
        )
    require_verified(verdict, upstream.labels, "the stamped file")
    return StampedAsset(
        signed.data,
        upstream.media_type,
        verdict,
        dataclasses.replace(upstream, sha256=upload_digest()),
        signed.manifest,
        timestamp_note,
        binding,
    )
