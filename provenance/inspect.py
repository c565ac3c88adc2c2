"""inspect: bytes (+ optional detached manifest) -> :class:`~provenance.models.Verdict`.

Invariant: a verdict's ``labels`` are non-empty only when its ``state`` is ``trusted``, and they
come from :func:`provenance.policy.decide` alone. The state is read from the SDK's status codes,
not only from its summary state: the SDK reports an untrusted signer as "Valid" with the failure
``signingCredential.untrusted``, and any failure code we do not recognise makes a manifest invalid.
The asset's state is its active manifest's: whatever the SDK calls "Invalid" stays invalid, but an
unrecognised *ingredient* signer (which the SDK rolls up as "Valid") only makes that ingredient
untrusted; every ingredient carries its own state.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from provenance import _c2pa, assertions, media, policy, selfcheck, softbinding
from provenance.errors import InputError, ManifestError
from provenance.media import DEFAULT_LIMITS, Limits, MediaInfo, check_input
from provenance.models import (
    Action,
    ArticleClaim,
    Codes,
    ManifestNode,
    Review,
    SignerInfo,
    SoftBindingClaim,
    State,
    StatusCode,
    Thumbnail,
    Verdict,
)
from provenance.policy import AssetKind
from provenance.trust import TrustConfig

SDK_VERSION = _c2pa.SDK_VERSION

# Failure codes that mean "correct but not trusted" rather than "broken".
TRUST_FAILURES = frozenset({"signingCredential.untrusted"})
# CAWG identity assertions are not used for labels; their credential not being trusted is reported
# but does not make the C2PA claim itself invalid or untrusted.
IDENTITY_TRUST_FAILURES = frozenset({"cawg.x509.credential.untrusted", "cawg.ica.untrusted_issuer"})
_NON_FATAL = TRUST_FAILURES | IDENTITY_TRUST_FAILURES

# Legacy (C2PA 1.x) ingredient ``validation_status`` lists mix outcomes; these are not failures.
_LEGACY_NON_FAILURE_SUFFIXES = (
    ".validated",
    ".match",
    ".trusted",
    ".insideValidity",
    ".notRevoked",
    ".skipped",
    ".unknownProvenance",
    ".accessible",
)
_LEGACY_INFORMATIONAL = frozenset(
    {"timeStamp.untrusted", "timeStamp.malformed", "timeStamp.mismatch", "algorithm.deprecated"}
)

MAX_INGREDIENT_DEPTH = 32  # levels below the active manifest
MAX_INGREDIENT_NODES = 2000  # nodes in the whole tree: a store can reuse manifests, so trees can explode
MAX_SOFT_BINDINGS = 8  # soft-binding assertions reported per manifest (a hostile one may carry many)


def _codes(entries: Any) -> tuple[StatusCode, ...]:
    if not isinstance(entries, list):
        return ()
    out = []
    for entry in entries:
        if isinstance(entry, Mapping) and isinstance(entry.get("code"), str):
            out.append(StatusCode(entry["code"], entry.get("url"), entry.get("explanation")))
    return tuple(out)


def _status(block: Any) -> Codes:
    if not isinstance(block, Mapping):
        return Codes()
    return Codes(_codes(block.get("success")), _codes(block.get("informational")), _codes(block.get("failure")))


def _classify(failures: frozenset[str], successes: frozenset[str], sdk_state: str | None) -> State:
    if sdk_state == "Invalid" or failures - _NON_FATAL:
        return State.INVALID
    if failures & TRUST_FAILURES:
        return State.UNTRUSTED
    if sdk_state == "Trusted" or "signingCredential.trusted" in successes:
        return State.TRUSTED
    return State.UNTRUSTED


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _claim_generator(manifest: Mapping[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], Mapping):
        name = _text(info[0].get("name"))
        version = _text(info[0].get("version"))
        if name:
            return f"{name} {version}" if version else name
    return _text(manifest.get("claim_generator"))


def _signer(manifest: Mapping[str, Any]) -> SignerInfo | None:
    info = manifest.get("signature_info")
    if not isinstance(info, Mapping):
        return None
    return SignerInfo(
        common_name=_text(info.get("common_name")),
        # The SDK calls it "issuer", but it is the organisation (O) of the signing certificate's subject.
        organization=_text(info.get("issuer")),
        alg=(_text(info.get("alg")) or "").lower() or None,
        serial=_text(info.get("cert_serial_number")),
        time=_text(info.get("time")),
    )


def _software_agent(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return _text(value.get("name"))
    return _text(value)


def _actions(manifest: Mapping[str, Any]) -> tuple[Action, ...]:
    out: list[Action] = []
    for assertion in manifest.get("assertions") or ():
        if not isinstance(assertion, Mapping):
            continue
        label = assertion.get("label")
        if not isinstance(label, str) or not label.startswith("c2pa.actions"):
            continue
        data = assertion.get("data")
        actions = data.get("actions") if isinstance(data, Mapping) else None
        for entry in actions or ():
            if isinstance(entry, Mapping) and isinstance(entry.get("action"), str):
                out.append(
                    Action(
                        action=entry["action"],
                        digital_source_type=_text(entry.get("digitalSourceType")),
                        software_agent=_software_agent(entry.get("softwareAgent")),
                    )
                )
    return tuple(out)


def _assertion_labels(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    labels = []
    for assertion in manifest.get("assertions") or ():
        if isinstance(assertion, Mapping) and isinstance(assertion.get("label"), str):
            labels.append(assertion["label"])
    return tuple(labels)


def _soft_bindings(manifest: Mapping[str, Any]) -> tuple[SoftBindingClaim, ...]:
    out = []
    for assertion in manifest.get("assertions") or ():
        if isinstance(assertion, Mapping) and assertion.get("label") == softbinding.LABEL:
            data = assertion.get("data")
            alg = _text(data.get("alg")) if isinstance(data, Mapping) else None
            if alg is not None:
                binding = softbinding.from_assertion(data)
                out.append(SoftBindingClaim(alg, binding.value if binding else None))
    return tuple(out[:MAX_SOFT_BINDINGS])


def _article_claim(manifest: Mapping[str, Any]) -> ArticleClaim | None:
    for assertion in manifest.get("assertions") or ():
        if not isinstance(assertion, Mapping) or assertion.get("label") != assertions.ARTICLE:
            continue
        data = assertion.get("data")
        if not isinstance(data, Mapping):
            return None
        external_id, version = _text(data.get("external_id")), data.get("version")
        if external_id is None or not isinstance(version, int) or isinstance(version, bool):
            return None
        return ArticleClaim(
            external_id=external_id,
            version=version,
            url=_text(data.get("url")),
            language=_text(data.get("language")),
            byline=_text(data.get("byline")),
            canonical_profile=_text(data.get("canonical_profile")),
            source=_text(data.get("source")),
            review=_review(data.get("review")),
        )
    return None


def _review(data: Any) -> Review | None:
    """The signed editorial review of an article assertion (``None`` unless editor and time are text)."""
    if not isinstance(data, Mapping):
        return None
    editor, reviewed_at = _text(data.get("editor")), _text(data.get("reviewed_at"))
    if editor is None or reviewed_at is None:
        return None
    return Review(editor=editor, reviewed_at=reviewed_at, scope=_text(data.get("scope")))


def _thumbnail(obj: Mapping[str, Any]) -> Thumbnail | None:
    ref = obj.get("thumbnail")
    if isinstance(ref, Mapping) and _text(ref.get("format")) and _text(ref.get("identifier")):
        return Thumbnail(str(ref["format"]), str(ref["identifier"]))
    return None


def _legacy_failures(entries: Any) -> tuple[StatusCode, ...]:
    return tuple(
        c
        for c in _codes(entries)
        if not c.code.endswith(_LEGACY_NON_FAILURE_SUFFIXES) and c.code not in _LEGACY_INFORMATIONAL
    )


def _dedupe(codes: Iterable[StatusCode]) -> tuple[StatusCode, ...]:
    seen: dict[tuple[str, str | None], StatusCode] = {}
    for c in codes:
        seen.setdefault((c.code, c.url), c)
    return tuple(seen.values())


class _TreeBuilder:
    def __init__(self, report: Mapping[str, Any]) -> None:
        manifests = report.get("manifests")
        self.manifests: Mapping[str, Any] = manifests if isinstance(manifests, Mapping) else {}
        results = report.get("validation_results")
        deltas = results.get("ingredientDeltas") if isinstance(results, Mapping) else None
        self.nodes = 0
        self.deltas: dict[str, Codes] = {}
        for delta in deltas or ():
            if isinstance(delta, Mapping) and isinstance(delta.get("ingredientAssertionURI"), str):
                self.deltas[delta["ingredientAssertionURI"]] = _status(delta.get("validationDeltas"))

    def node(
        self,
        label: str,
        state: State,
        codes: Codes,
        relationship: str | None,
        title: str | None,
        depth: int,
        seen: frozenset[str],
        thumbnail: Thumbnail | None = None,
    ) -> ManifestNode:
        manifest = self.manifests.get(label)
        if not isinstance(manifest, Mapping):
            return ManifestNode(
                label=label, state=State.UNAVAILABLE, title=title, relationship=relationship, codes=codes
            )
        ingredients: list[ManifestNode] = []
        entries = [e for e in manifest.get("ingredients") or () if isinstance(e, Mapping)]
        truncated = bool(entries) and (
            depth >= MAX_INGREDIENT_DEPTH or self.nodes + len(entries) > MAX_INGREDIENT_NODES
        )
        if not truncated:
            self.nodes += len(entries)
            for entry in entries:
                ingredients.append(self.ingredient(label, entry, depth + 1, seen | {label}))
        return ManifestNode(
            label=label,
            state=state,
            title=_text(manifest.get("title")) or title,
            relationship=relationship,
            signer=_signer(manifest),
            claim_generator=_claim_generator(manifest),
            actions=_actions(manifest),
            assertion_labels=_assertion_labels(manifest),
            article=_article_claim(manifest),
            soft_bindings=_soft_bindings(manifest),
            ingredients=tuple(ingredients),
            codes=codes,
            truncated=truncated,
            thumbnail=thumbnail or _thumbnail(manifest),
        )

    def ingredient(self, parent_label: str, entry: Mapping[str, Any], depth: int, seen: frozenset[str]) -> ManifestNode:
        title = _text(entry.get("title"))
        relationship = _text(entry.get("relationship")) or "componentOf"
        label = _text(entry.get("active_manifest"))
        assertion_label = _text(entry.get("label")) or "c2pa.ingredient"
        current = self.deltas.get(f"self#jumbf=/c2pa/{parent_label}/c2pa.assertions/{assertion_label}", Codes())
        stored_results = entry.get("validation_results")
        stored = _status(stored_results.get("activeManifest")) if isinstance(stored_results, Mapping) else Codes()
        legacy = _legacy_failures(entry.get("validation_status"))
        codes = Codes(
            success=_dedupe((*stored.success, *current.success)),
            informational=_dedupe((*stored.informational, *current.informational)),
            failure=_dedupe((*stored.failure, *legacy, *current.failure)),
        )
        thumbnail = _thumbnail(entry)
        if label is None:
            return ManifestNode(
                label=None, state=State.ABSENT, title=title, relationship=relationship, codes=codes, thumbnail=thumbnail
            )
        if label in seen:
            # A manifest that lists itself as its own ancestor is malformed; never loop on it.
            return ManifestNode(label=label, state=State.INVALID, title=title, relationship=relationship, codes=codes)
        # ``current`` holds only the *differences* between this read's validation and the results
        # stored when the ingredient was added (C2PA ingredientDeltas), so trust is the stored
        # verdict unless the current read contradicts it.
        failures = codes.failure_codes()
        if failures - _NON_FATAL:
            state = State.INVALID
        elif current.failure_codes() & TRUST_FAILURES:
            state = State.UNTRUSTED
        elif "signingCredential.trusted" in current.success_codes() or (
            "signingCredential.trusted" in stored.success_codes() and not stored.failure_codes() & TRUST_FAILURES
        ):
            state = State.TRUSTED
        else:
            state = State.UNTRUSTED
        return self.node(label, state, codes, relationship, title, depth, seen, thumbnail)


REVOKED = "signingCredential.revoked"


def _is_revoked(node: ManifestNode, revoked: frozenset[int]) -> bool:
    serial = node.signer.serial if node.signer else None
    return bool(serial and serial.isdigit() and int(serial) in revoked)


def _apply_revocations(node: ManifestNode, revoked: frozenset[int]) -> ManifestNode:
    """Manifests signed by a certificate on the operator's revocation list become invalid."""
    ingredients = tuple(_apply_revocations(i, revoked) for i in node.ingredients)
    if not _is_revoked(node, revoked):
        return dataclasses.replace(node, ingredients=ingredients) if ingredients != node.ingredients else node
    failure = StatusCode(REVOKED, None, "the signing certificate is on the operator's revocation list")
    codes = dataclasses.replace(node.codes, failure=(*node.codes.failure, failure))
    return dataclasses.replace(node, state=State.INVALID, codes=codes, ingredients=ingredients)


def asset_kind(media_type: str) -> AssetKind:
    """Which label vocabulary applies to a media type."""
    if media_type == media.TEXT:
        return AssetKind.ARTICLE
    if media_type in media.IMAGE_TYPES:
        return AssetKind.IMAGE
    return AssetKind.OTHER


def verdict_from_report(
    report: Mapping[str, Any],
    *,
    sha256: str,
    size: int,
    media_type: str,
    trust: TrustConfig,
    known_chain: selfcheck.ChainDecision | None = None,
) -> Verdict:
    """Build a verdict from an SDK report (the part of :func:`inspect` after reading).

    ``known_chain``: the report was read with trust verification off, and the chain of the certificate
    with that serial is known trusted under ``trust`` (:mod:`provenance.selfcheck`). The active manifest
    is then trusted if the SDK reported no failure at all and that certificate signed it.
    """
    active_label = _text(report.get("active_manifest"))
    results = report.get("validation_results")
    codes = _status(results.get("activeManifest")) if isinstance(results, Mapping) else Codes()
    sdk_state = _text(report.get("validation_state"))
    if active_label is None:
        raise ManifestError("manifest store has no active manifest")
    state = _classify(codes.failure_codes(), codes.success_codes(), sdk_state)
    builder = _TreeBuilder(report)
    active = builder.node(active_label, state, codes, None, None, 0, frozenset())
    if known_chain is not None and state is State.UNTRUSTED and not codes.failure and sdk_state == "Valid":
        serial = active.signer.serial if active.signer else None
        if serial == str(known_chain.serial):
            state = State.TRUSTED
            codes = dataclasses.replace(codes, success=(*codes.success, selfcheck.cached_trust_code()))
            active = dataclasses.replace(active, state=state, codes=codes)
    if active.state is State.UNAVAILABLE:
        # The SDK leaves out an active manifest it could not decode; that is only acceptable
        # when it also called the store invalid.
        if state is not State.INVALID:
            raise ManifestError("the active manifest is missing from the manifest store")
        active = ManifestNode(label=active_label, state=State.INVALID, codes=codes)
    if trust.revoked_serials:
        active = _apply_revocations(active, trust.revoked_serials)
        state, codes = active.state, active.codes
    decision = policy.decide(state, active, kind=asset_kind(media_type))
    return Verdict(
        sha256=sha256,
        size=size,
        media_type=media_type,
        state=state,
        labels=decision.labels,
        reasons=decision.reasons,
        codes=codes,
        active_manifest=active,
        remote_manifest_url=None,
        trust_fingerprint=trust.fingerprint,
        sdk_version=SDK_VERSION,
        policy_version=decision.policy_version,
        # Like a label, a review is shown only from a trusted manifest.
        review=active.article.review if state is State.TRUSTED and active.article else None,
    )


# Hashing a large file on the other core while the SDK reads it hides the hash's cost: hashlib
# releases the GIL, and so does the SDK's native code. Below this size a thread costs more than it saves.
CONCURRENT_HASH_MIN = 256 * 1024  # bytes
_hasher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="provenance-sha256")


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_later(data: bytes) -> Callable[[], str]:
    """Start hashing ``data``; the returned function gives the hex digest when it is needed."""
    if len(data) < CONCURRENT_HASH_MIN:
        digest = _sha256_hex(data)
        return lambda: digest
    return _hasher.submit(_sha256_hex, data).result


def inspect(
    data: bytes,
    trust: TrustConfig,
    *,
    sidecar: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
    thumbnails: int = 0,
) -> Verdict:
    """Verify the C2PA provenance of ``data`` and decide its labels.

    The SDK reads the bytes in an isolated worker under ``limits`` (:mod:`provenance.isolation`).
    With ``thumbnails`` > 0, up to that many image thumbnails of the manifest store are returned in
    ``Verdict.thumbnails``, taken from the same read. Returns a verdict whatever the provenance says
    (absent, tampered, untrusted...). Raises :class:`~provenance.errors.InputError` for empty,
    truncated, oversized, unsupported or too complex input (``InputTooComplexError``: the parse hit
    its memory or time cap) and :class:`~provenance.errors.ManifestError` for a manifest the SDK
    cannot parse.
    """
    info = check_input(data, limits)
    if info.media_type == media.TEXT and sidecar is None:
        raise InputError(
            "a text file carries no embedded manifest",
            hint="pass its detached manifest with --sidecar (embedded text manifests, C2PA 2.4 A.8, are not supported)",
        )
    return inspect_checked(data, info, trust, sha256_later(data), sidecar=sidecar, limits=limits, thumbnails=thumbnails)


def inspect_checked(
    data: bytes,
    info: MediaInfo,
    trust: TrustConfig,
    sha256: Callable[[], str],
    *,
    sidecar: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
    thumbnails: int = 0,
) -> Verdict:
    """:func:`inspect` for bytes already checked by :func:`~provenance.media.check_input`."""
    outcome: _c2pa.ReadOutcome
    if sidecar is None and not info.may_carry_manifest:
        outcome = _c2pa.Absent()  # no place in these bytes where a manifest could be
    else:
        outcome = _c2pa.read(data, info.media_type, trust, sidecar, limits=limits, thumbnails=thumbnails)
    return verdict_of(outcome, sha256=sha256, size=len(data), media_type=info.media_type, trust=trust)


def verdict_of(
    outcome: _c2pa.ReadOutcome,
    *,
    sha256: Callable[[], str],
    size: int,
    media_type: str,
    trust: TrustConfig,
    known_chain: selfcheck.ChainDecision | None = None,
) -> Verdict:
    """The verdict on an asset from the SDK's read of it (e.g. the re-read that comes with a signature;
    ``known_chain`` as for :func:`verdict_from_report`)."""
    if isinstance(outcome, _c2pa.StoreReport):
        verdict = verdict_from_report(
            outcome.report, sha256=sha256(), size=size, media_type=media_type, trust=trust, known_chain=known_chain
        )
        return dataclasses.replace(verdict, thumbnails=outcome.thumbnails) if outcome.thumbnails else verdict
    state = State.ABSENT if isinstance(outcome, _c2pa.Absent) else State.UNAVAILABLE
    return Verdict(
        sha256=sha256(),
        size=size,
        media_type=media_type,
        state=state,
        labels=(),
        reasons=(),
        codes=Codes(),
        active_manifest=None,
        remote_manifest_url=outcome.url if isinstance(outcome, _c2pa.RemoteOnly) else None,
        trust_fingerprint=trust.fingerprint,
        sdk_version=SDK_VERSION,
        policy_version=policy.POLICY_VERSION,
    )
