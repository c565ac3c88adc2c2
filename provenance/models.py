"""Typed results of the library: what a manifest says and what we concluded from it.

Everything here is a frozen dataclass built from the SDK's report by ``inspect``; nothing else
in the library (policy, stamp, CLI, service) reads SDK dictionaries.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class State(enum.StrEnum):
    """Verdict on a manifest (or on a whole asset: the verdict on its active manifest).

    ``absent``: no manifest. ``unavailable``: only a remote reference that we did not fetch.
    ``invalid``: present but fails a check. ``untrusted``: intact and correctly signed, but the
    signer does not chain to a configured trust anchor. ``trusted``: intact and trusted.
    """

    ABSENT = "absent"
    UNAVAILABLE = "unavailable"
    INVALID = "invalid"
    UNTRUSTED = "untrusted"
    TRUSTED = "trusted"


@dataclass(frozen=True)
class StatusCode:
    """One C2PA validation status entry, as reported by the SDK."""

    code: str
    url: str | None = None
    explanation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "url": self.url, "explanation": self.explanation}


@dataclass(frozen=True)
class Codes:
    """Raw validation status codes, grouped as the C2PA spec groups them."""

    success: tuple[StatusCode, ...] = ()
    informational: tuple[StatusCode, ...] = ()
    failure: tuple[StatusCode, ...] = ()

    def failure_codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.failure)

    def success_codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.success)

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": [c.to_dict() for c in self.success],
            "informational": [c.to_dict() for c in self.informational],
            "failure": [c.to_dict() for c in self.failure],
        }


@dataclass(frozen=True)
class Action:
    """One entry of a ``c2pa.actions`` / ``c2pa.actions.v2`` assertion."""

    action: str
    digital_source_type: str | None = None
    software_agent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "digital_source_type": self.digital_source_type,
            "software_agent": self.software_agent,
        }


@dataclass(frozen=True)
class SignerInfo:
    """Who signed a claim, as the SDK reports it from the signing certificate."""

    common_name: str | None
    organization: str | None  # O of the signing certificate's subject
    alg: str | None
    serial: str | None
    time: str | None  # signing time from a timestamp, when there is one

    def display(self) -> str:
        parts = [p for p in (self.common_name, self.organization) if p]
        return " / ".join(parts) if parts else "unknown signer"

    def to_dict(self) -> dict[str, Any]:
        return {
            "common_name": self.common_name,
            "organization": self.organization,
            "alg": self.alg,
            "serial": self.serial,
            "time": self.time,
        }


@dataclass(frozen=True)
class Review:
    """Human review of an article's text, signed in its article assertion: who took editorial responsibility.

    It records responsibility; it never removes a label (an AI-written text stays labelled once reviewed).
    """

    editor: str  # the newsroom or desk whose editors reviewed the text
    reviewed_at: str  # ISO 8601 date-time with a UTC offset, as the CMS sent it
    scope: str | None = None  # what was reviewed, e.g. "full text"

    def to_dict(self) -> dict[str, Any]:
        return {"editor": self.editor, "reviewed_at": self.reviewed_at, "scope": self.scope}


@dataclass(frozen=True)
class ArticleClaim:
    """The signed ``org.newsroom-provenance.article`` assertion: which CMS article a manifest is for."""

    external_id: str
    version: int
    url: str | None = None
    language: str | None = None
    byline: str | None = None
    canonical_profile: str | None = None
    source: str | None = None
    review: Review | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "version": self.version,
            "url": self.url,
            "language": self.language,
            "byline": self.byline,
            "canonical_profile": self.canonical_profile,
            "source": self.source,
            "review": self.review.to_dict() if self.review else None,
        }


@dataclass(frozen=True)
class Thumbnail:
    """A thumbnail stored in the manifest store (fetch it with :func:`provenance.inspect.thumbnail`)."""

    format: str
    identifier: str

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "identifier": self.identifier}


@dataclass(frozen=True)
class SoftBindingClaim:
    """A ``c2pa.soft-binding`` assertion of a manifest: its algorithm and, for ``io.iscc.v0``, the ISCC code
    it carries (``ISCC:...``; ``None`` for other algorithms or a value that is not an ISCC Content-Code).
    A fingerprint finds candidate originals; it is never a label source."""

    alg: str
    code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alg": self.alg, "code": self.code}


@dataclass(frozen=True)
class ManifestNode:
    """A manifest and, recursively, the ingredients it declares.

    For the active manifest ``relationship`` is ``None``. For an ingredient without provenance of
    its own, ``label`` is ``None`` and ``state`` is ``absent``. ``truncated`` is true when this
    manifest's ingredients were not read because the tree exceeds the inspection limits.
    """

    label: str | None
    state: State
    title: str | None = None
    relationship: str | None = None
    signer: SignerInfo | None = None
    claim_generator: str | None = None
    actions: tuple[Action, ...] = ()
    assertion_labels: tuple[str, ...] = ()
    ingredients: tuple[ManifestNode, ...] = ()
    codes: Codes = field(default_factory=Codes)
    truncated: bool = False
    article: ArticleClaim | None = None
    thumbnail: Thumbnail | None = None
    soft_bindings: tuple[SoftBindingClaim, ...] = ()

    def walk(self) -> list[ManifestNode]:
        """This node and all its descendants, depth first."""
        out = [self]
        for ingredient in self.ingredients:
            out.extend(ingredient.walk())
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "state": self.state.value,
            "title": self.title,
            "relationship": self.relationship,
            "signer": self.signer.to_dict() if self.signer else None,
            "claim_generator": self.claim_generator,
            "actions": [a.to_dict() for a in self.actions],
            "assertions": list(self.assertion_labels),
            "failures": [c.code for c in self.codes.failure],
            "truncated": self.truncated,
            "article": self.article.to_dict() if self.article else None,
            "thumbnail": self.thumbnail.to_dict() if self.thumbnail else None,
            "soft_bindings": [b.to_dict() for b in self.soft_bindings],
            "ingredients": [i.to_dict() for i in self.ingredients],
        }


@dataclass(frozen=True)
class Reason:
    """Why a label was (or was not) given: which manifest, action, source type and signer.

    ``counted`` is false for AI claims that were seen but could not produce a label (their
    manifest is not trusted, or is invalid); they are reported so that no AI claim disappears
    silently.
    """

    label: str | None
    counted: bool
    manifest: str | None
    path: tuple[str, ...]  # titles from the active manifest down to this one
    action: str | None
    digital_source_type: str | None
    signer: str | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "counted": self.counted,
            "manifest": self.manifest,
            "path": list(self.path),
            "action": self.action,
            "digital_source_type": self.digital_source_type,
            "signer": self.signer,
            "text": self.text,
        }


@dataclass(frozen=True)
class Decision:
    """Output of the label policy."""

    labels: tuple[str, ...]
    reasons: tuple[Reason, ...]
    policy_version: str


@dataclass(frozen=True)
class Verdict:
    """Everything ``inspect`` concluded about one asset."""

    sha256: str
    size: int
    media_type: str
    state: State
    labels: tuple[str, ...]
    reasons: tuple[Reason, ...]
    codes: Codes
    active_manifest: ManifestNode | None
    remote_manifest_url: str | None
    trust_fingerprint: str
    sdk_version: str
    policy_version: str
    #: Image thumbnails of the manifest store by resource identifier, when ``inspect`` was asked for
    #: them; untrusted content (bounded in number and size), never part of the JSON contract.
    thumbnails: Mapping[str, bytes] = field(default_factory=dict, repr=False, compare=False)
    #: The editorial review signed in the article assertion, set only when the verdict is ``trusted`` and the
    #: manifest is the one of the article it is shown as; never taken from an unsigned payload.
    review: Review | None = None

    @property
    def signer(self) -> SignerInfo | None:
        return self.active_manifest.signer if self.active_manifest else None

    @property
    def claim_generator(self) -> str | None:
        return self.active_manifest.claim_generator if self.active_manifest else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``provenance inspect --json``."""
        active = self.active_manifest
        return {
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
            "state": self.state.value,
            "labels": list(self.labels),
            "reasons": [r.to_dict() for r in self.reasons],
            "codes": self.codes.to_dict(),
            "signer": self.signer.to_dict() if self.signer else None,
            "claim_generator": self.claim_generator,
            "active_manifest": active.label if active else None,
            "title": active.title if active else None,
            "actions": [a.to_dict() for a in active.actions] if active else [],
            "article": active.article.to_dict() if active and active.article else None,
            "soft_bindings": [b.to_dict() for b in active.soft_bindings] if active else [],
            "ingredients": [i.to_dict() for i in active.ingredients] if active else [],
            "remote_manifest_url": self.remote_manifest_url,
            "trust_fingerprint": self.trust_fingerprint,
            "sdk_version": self.sdk_version,
            "policy_version": self.policy_version,
            # Present only when there is a verified review (the stored verdict's contract: absent when none).
            **({"review": self.review.to_dict()} if self.review else {}),
        }
