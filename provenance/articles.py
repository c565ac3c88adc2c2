"""articles: CMS payload -> canonical text + detached signed manifest; corrections as a chain.

An article is bound by a detached manifest (C2PA external manifest, ``application/c2pa``) whose
hard binding covers the canonical text (:mod:`provenance.canonical`). The manifest carries
``c2pa.created`` with the IPTC source type of the declaration and a signed
``org.newsroom-provenance.article`` assertion naming the CMS article (external id, version, url,
language, byline, canonical profile, and the optional editorial ``review``: editor, reviewed_at, scope).

A correction (a new version of the same external id) is a new manifest whose ``parentOf``
ingredient is the previous version, opened (carrying the declaration of the whole article) and
edited (``humanEdits`` unless declared otherwise). The SDK cannot parse text, so the previous
version's manifest and its validation results are handed to it explicitly; they come from a full
verification of the previous text against its manifest, which must be trusted. Every manifest also
carries a ``c2pa.soft-binding`` assertion: the ISCC Text-Code of the canonical text
(:mod:`provenance.softbinding`).

Invariants: labels come from verified claims only (the payload's ``source`` becomes a signed
action; nothing else in it can produce a label); a manifest shown under another article id or
version earns no label; an AI claim in an earlier version is never dropped by a correction. A review records
human responsibility and never removes a label; a verdict shows it only from a trusted manifest signed for
the article it is shown as (:attr:`~provenance.models.Verdict.review`), never from an unsigned payload.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

from provenance import __version__, _c2pa, assertions, canonical, media, policy, softbinding
from provenance.canonical import BodyFormat
from provenance.errors import InputError, InputTooLargeError, UpstreamConflictError
from provenance.inspect import inspect
from provenance.keys.signers import Signer
from provenance.media import DEFAULT_LIMITS, Limits
from provenance.models import ArticleClaim, Reason, Review, State, Verdict
from provenance.selfcheck import SelfCheck
from provenance.softbinding import SoftBinding
from provenance.stamp import (
    CLAIM_GENERATOR,
    MAX_REASON,
    override_assertion,
    require_verified,
    sign_verified,
    timestamp_url,
)
from provenance.timestamps import Timestamping
from provenance.trust import TrustConfig

MAX_PAYLOAD = 5 * 1024 * 1024  # bytes of CMS JSON; a long article is ~100 KB
MAX_FIELD = 2048  # characters, for every field but the body and headline
MAX_HEADLINE = 1000  # characters
MAX_VERSION = 2**31 - 1  # a version number fits every database's integer column
#: Characters of an external id: it names the article (the id is derived from it) and fits the service's
#: ``article_versions.external_id`` column, VARCHAR(300), which PostgreSQL enforces and SQLite does not.
MAX_EXTERNAL_ID = 300
MAX_EDITOR = 200  # characters of ``review.editor``: a newsroom or desk name
MAX_SCOPE = 200  # characters of ``review.scope``, e.g. "full text"
MAX_REVIEWED_AT = 64  # characters of ``review.reviewed_at``, an ISO 8601 date-time
_REVIEW_FIELDS: Final = frozenset({"editor", "reviewed_at", "scope"})
PREVIOUS_INGREDIENT_ID: Final = "previous-version"
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


class ArticleSource(enum.StrEnum):
    """What the CMS declares about an article (``source``) or about a correction (``edit_source``)."""

    AI_GENERATED = "ai_generated"
    AI_ASSISTED = "ai_assisted"
    HUMAN = "human"


#: The source type signed on the article's origin action (``c2pa.created`` / ``c2pa.opened``).
SOURCE_TYPES: Final = {
    ArticleSource.AI_GENERATED: policy.IPTC + "trainedAlgorithmicMedia",
    ArticleSource.AI_ASSISTED: policy.IPTC + "compositeWithTrainedAlgorithmicMedia",
    ArticleSource.HUMAN: policy.IPTC + "digitalCreation",
}
#: The source type signed on a correction's ``c2pa.edited`` action.
EDIT_SOURCE_TYPES: Final = {
    ArticleSource.AI_GENERATED: policy.IPTC + "trainedAlgorithmicMedia",
    ArticleSource.AI_ASSISTED: policy.IPTC + "compositeWithTrainedAlgorithmicMedia",
    ArticleSource.HUMAN: policy.IPTC + "humanEdits",
}
_BODY_FIELDS: Final = {
    "body_html": BodyFormat.HTML,
    "body_markdown": BodyFormat.MARKDOWN,
    "body_text": BodyFormat.TEXT,
}


@dataclass(frozen=True)
class ArticlePayload:
    """A validated CMS payload for one version of one article."""

    external_id: str
    version: int
    headline: str
    byline: str
    language: str
    url: str
    body: str
    body_format: BodyFormat
    source: ArticleSource
    standfirst: str | None = None
    edit_source: ArticleSource = ArticleSource.HUMAN  # what kind of edit a correction is
    #: Why a ``human`` correction contradicts the previous version's AI label (signed; the label stays).
    override_upstream: str | None = None
    review: Review | None = None  # human review and editorial responsibility, signed into the assertion

    def canonical_text(self) -> bytes:
        """The ``news-text-canonical/1`` bytes the manifest binds."""
        try:
            return canonical.canonical_text(self.headline, self.standfirst, self.body, self.body_format)
        except ValueError as exc:
            raise InputError(f"article {self.external_id!r}: {exc}") from exc

    @property
    def file_stem(self) -> str:
        """A safe file name for this version: the external id with unsafe characters replaced, plus ``.vN``."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", self.external_id).strip(".-") or "article"
        return f"{slug[:120]}.v{self.version}"


def _optional(doc: dict[str, Any], name: str, limit: int = MAX_FIELD) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"article payload field {name!r} must be a string")
    if len(value) > limit:
        raise InputError(f"article payload field {name!r} is longer than {limit} characters")
    if _SURROGATE.search(value):  # JSON can escape one (\ud800), but it is no text: UTF-8 cannot encode it
        raise InputError(f"article payload field {name!r} has a lone surrogate (not a Unicode character)")
    return value


def _identifier(doc: dict[str, Any], name: str, limit: int) -> str:
    """A required field that names something: at most ``limit`` characters, none of them a control character
    (a NUL cannot even be stored by PostgreSQL)."""
    value = _required(doc, name, limit)
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InputError(f"article payload field {name!r} has a control character")
    return value


def _required(doc: dict[str, Any], name: str, limit: int = MAX_FIELD) -> str:
    value = _optional(doc, name, limit)
    if value is None:
        raise InputError(f"article payload is missing {name!r}")
    if not value.strip():
        raise InputError(f"article payload field {name!r} is empty")
    return value


def _source(doc: dict[str, Any], name: str, default: ArticleSource | None) -> ArticleSource:
    value = doc.get(name)
    if value is None and default is not None:
        return default
    allowed = [s.value for s in ArticleSource]
    if value not in allowed:
        raise InputError(f"article payload field {name!r} must be one of {', '.join(allowed)}")
    return ArticleSource(value)


def _review(doc: dict[str, Any]) -> Review | None:
    """The optional ``review`` object: ``editor`` and ``reviewed_at`` required, ``scope`` optional, nothing else."""
    value = doc.get("review")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError("article payload field 'review' must be an object with editor, reviewed_at and scope")
    unknown = sorted(set(value) - _REVIEW_FIELDS)
    if unknown:
        raise InputError(f"article payload field 'review.{unknown[0]}' is not known (editor, reviewed_at, scope)")
    fields = {f"review.{key}": item for key, item in value.items()}
    editor = _identifier(fields, "review.editor", MAX_EDITOR)
    reviewed_at = _identifier(fields, "review.reviewed_at", MAX_REVIEWED_AT)
    try:
        moment = dt.datetime.fromisoformat(reviewed_at)
    except ValueError:
        moment = None
    if moment is None or "T" not in reviewed_at.upper() or moment.utcoffset() is None:
        raise InputError(
            "article payload field 'review.reviewed_at' must be an ISO 8601 date-time with a UTC offset",
            hint="e.g. 2026-11-28T09:30:00Z",
        )
    scope = _optional(fields, "review.scope", MAX_SCOPE)
    if scope is not None and (not scope.strip() or any(unicodedata.category(ch) == "Cc" for ch in scope)):
        raise InputError("article payload field 'review.scope' must be text without control characters")
    return Review(editor=editor, reviewed_at=reviewed_at, scope=scope)


def looks_like_payload(data: bytes) -> bool:
    """Whether ``data`` is a JSON object (a CMS payload) rather than canonical text."""
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(stripped), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    except (RecursionError, ValueError):
        return True  # nested absurdly deep, or a number too long to convert: let parse_payload reject it clearly


def parse_payload(data: bytes, *, max_bytes: int = MAX_PAYLOAD) -> ArticlePayload:
    """Parse and validate a CMS article payload (UTF-8 JSON).

    Raises :class:`InputError` naming the problem: too large, not UTF-8, not JSON, not an object,
    a missing, empty or mistyped field, no body or more than one body, an unknown source.
    """
    if not data.strip():
        raise InputError("empty article payload")
    if len(data) > max_bytes:
        raise InputTooLargeError(f"article payload is {len(data)} bytes; the limit is {max_bytes}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"article payload is not valid UTF-8 (byte {exc.start})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"article payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise InputError("article payload is nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts (4,300)
        raise InputError(f"article payload has a value that cannot be read: {exc}") from exc
    if not isinstance(doc, dict):
        raise InputError("article payload must be a JSON object")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_VERSION:
        raise InputError(f"article payload field 'version' must be an integer from 1 to {MAX_VERSION}")
    bodies = [name for name in _BODY_FIELDS if doc.get(name) is not None]
    if len(bodies) != 1:
        raise InputError("article payload needs exactly one of body_html, body_markdown, body_text")
    url = _required(doc, "url")
    if not re.match(r"https?://[^\s/]+", url):
        raise InputError("article payload field 'url' must be an http(s) URL")
    payload = ArticlePayload(
        external_id=_identifier(doc, "external_id", MAX_EXTERNAL_ID),
        version=version,
        headline=_required(doc, "headline", MAX_HEADLINE),
        byline=_required(doc, "byline"),
        language=_required(doc, "language", 35),
        url=url,
        body=_required(doc, bodies[0], max_bytes),
        body_format=_BODY_FIELDS[bodies[0]],
        source=_source(doc, "source", None),
        standfirst=_optional(doc, "standfirst"),
        edit_source=_source(doc, "edit_source", ArticleSource.HUMAN),
        override_upstream=_optional(doc, "override_upstream", MAX_REASON),
        review=_review(doc),
    )
    payload.canonical_text()  # an empty headline or body after canonicalisation is bad input too
    return payload


@dataclass(frozen=True)
class ArticleVersion:
    """A stamped version: the canonical text and its detached manifest."""

    text: bytes
    manifest: bytes


@dataclass(frozen=True)
class StampedArticle:
    """The result of :func:`stamp_article`: files to write and the verified verdict."""

    name: str  # file stem: write ``name.txt`` and ``name.c2pa``
    text: bytes
    manifest: bytes
    verdict: Verdict
    previous: Verdict | None
    timestamp_note: str | None = None  # why there is no timestamp, when one was optional
    override_upstream: str | None = None  # the reason signed for contradicting the previous AI label, if any
    #: The ISCC Text-Code of the canonical text, signed as its ``c2pa.soft-binding`` (``None``: it gets none).
    soft_binding: SoftBinding | None = None


def _article_assertion(payload: ArticlePayload) -> dict[str, Any]:
    data: dict[str, Any] = {
        "external_id": payload.external_id,
        "version": payload.version,
        "url": payload.url,
        "language": payload.language,
        "byline": payload.byline,
        "canonical_profile": canonical.PROFILE,
        "source": payload.source.value,
    }
    if payload.review is not None:
        review = payload.review
        data["review"] = {"editor": review.editor, "reviewed_at": review.reviewed_at}
        if review.scope is not None:
            data["review"]["scope"] = review.scope
    return {"label": assertions.ARTICLE, "data": data}


def _manifest(
    payload: ArticlePayload, previous: Verdict | None, override: str | None, binding: SoftBinding | None
) -> dict[str, Any]:
    agent = {"name": CLAIM_GENERATOR, "version": __version__}
    source_type = SOURCE_TYPES[payload.source]
    actions: list[dict[str, Any]]
    if previous is None:
        actions = [{"action": "c2pa.created", "digitalSourceType": source_type, "softwareAgent": agent}]
    else:
        actions = [
            {
                "action": "c2pa.opened",
                "digitalSourceType": source_type,
                "parameters": {"ingredientIds": [PREVIOUS_INGREDIENT_ID]},
                "softwareAgent": agent,
            },
            {
                "action": "c2pa.edited",
                "digitalSourceType": EDIT_SOURCE_TYPES[payload.edit_source],
                "softwareAgent": agent,
            },
        ]
    actions.append({"action": "c2pa.published", "softwareAgent": agent})
    entries: list[dict[str, Any]] = [
        {"label": "c2pa.actions.v2", "data": {"actions": actions}},
        _article_assertion(payload),
    ]
    if override and previous is not None:
        entries.append(override_assertion(override, payload.source.value, previous.labels, previous))
    if binding is not None:
        entries.append(softbinding.assertion(binding))
    return {"claim_generator_info": [agent], "title": canonical.normalize(payload.headline), "assertions": entries}


def _check_previous(
    payload: ArticlePayload, previous: ArticleVersion, trust: TrustConfig, limits: Limits
) -> tuple[Verdict, ArticleClaim]:
    verdict = inspect(previous.text, trust, sidecar=previous.manifest, limits=limits)
    if verdict.state is not State.TRUSTED:
        failures = ", ".join(sorted(verdict.codes.failure_codes())) or "no failure codes"
        raise InputError(f"the previous version does not verify as trusted: it is {verdict.state.value} ({failures})")
    claim = verdict.active_manifest.article if verdict.active_manifest else None
    if claim is None:
        raise InputError("the previous version's manifest does not name an article")
    if claim.external_id != payload.external_id:
        raise InputError(f"the previous version is article {claim.external_id!r}, not {payload.external_id!r}")
    if payload.version <= claim.version:
        raise InputError(f"a correction needs a version above {claim.version}; the payload says {payload.version}")
    return verdict, claim


def stamp_article(
    payload: ArticlePayload,
    signer: Signer,
    trust: TrustConfig,
    *,
    previous: ArticleVersion | None = None,
    override_upstream: str | None = None,
    timestamping: Timestamping | None = None,
    limits: Limits = DEFAULT_LIMITS,
    self_check: SelfCheck = SelfCheck.CACHED_CHAIN,
) -> StampedArticle:
    """Canonicalise ``payload``, sign a detached manifest for it and verify the result.

    With ``previous`` (the prior version's text and manifest) the new manifest is a correction
    whose parent is that version. ``override_upstream`` defaults to the payload's own. Raises
    :class:`InputError` (bad payload, previous version not trusted or not the same article or not
    older), :class:`UpstreamConflictError` (declared ``human`` while the previous version carries an
    AI label, without ``override_upstream``), :class:`~provenance.errors.SigningError` and
    :class:`VerificationError`.``self_check`` says how the
    manifest is re-verified (:mod:`provenance.selfcheck`).
    """
    if override_upstream is None:
        override_upstream = payload.override_upstream
    if override_upstream is not None and not (0 < len(override_upstream.strip()) <= MAX_REASON):
        raise InputError(f"the override reason must be 1 to {MAX_REASON} characters")
    text = payload.canonical_text()
    previous_verdict: Verdict | None = None
    ingredients: list[_c2pa.Ingredient] = []
    if previous is not None:
        previous_verdict, claim = _check_previous(payload, previous, trust, limits)
        title = f"{payload.external_id} v{claim.version}"
        ingredients.append(
            _c2pa.Ingredient(previous.text, media.TEXT, title, PREVIOUS_INGREDIENT_ID, sidecar=previous.manifest)
        )
    claimed = previous_verdict.labels if previous_verdict is not None else ()
    conflict = bool(claimed) and payload.source is ArticleSource.HUMAN
    if conflict and not override_upstream:
        raise UpstreamConflictError(
            f"version {payload.version} is declared 'human' but the previous version is labelled {', '.join(claimed)}",
            hint='declare ai_generated/ai_assisted, or pass --override-upstream "reason" to record why',
        )
    binding = softbinding.optional_text_binding(text.decode("utf-8"))
    manifest_def = _manifest(payload, previous_verdict, override_upstream if conflict else None, binding)
    tsa_url, timestamp_note = timestamp_url(timestamping)
    # The text and its new manifest are read back in the signing call (``self_check``: provenance.selfcheck).
    signed, verdict = sign_verified(
        text,
        media.TEXT,
        manifest_def,
        signer,
        trust,
        ingredients,
        tsa_url,
        limits=limits,
        self_check=self_check,
        embed=False,
    )
    manifest = signed.manifest
    require_verified(verdict, previous_verdict.labels if previous_verdict else (), "the article manifest")
    signed_override = override_upstream if conflict else None
    return StampedArticle(
        payload.file_stem, text, manifest, verdict, previous_verdict, timestamp_note, signed_override, binding
    )


def inspect_article(
    payload: ArticlePayload, manifest: bytes, trust: TrustConfig, *, limits: Limits = DEFAULT_LIMITS
) -> Verdict:
    """Verify a CMS payload against a detached manifest.

    The payload is canonicalised and verified like the ``.txt``; in addition the signed article
    assertion must name the payload's external id and version, otherwise no label is given (the
    state still says whether the manifest itself is intact and trusted).
    """
    verdict = inspect(payload.canonical_text(), trust, sidecar=manifest, limits=limits)
    claim = verdict.active_manifest.article if verdict.active_manifest else None
    if claim is not None and (claim.external_id, claim.version) == (payload.external_id, payload.version):
        return verdict
    signed_for = f"article {claim.external_id!r} version {claim.version}" if claim else "no article"
    reason = Reason(
        label=None,
        counted=False,
        manifest=verdict.active_manifest.label if verdict.active_manifest else None,
        path=(),
        action=None,
        digital_source_type=None,
        signer=verdict.signer.display() if verdict.signer else None,
        text=(
            f"not counted (wrong article): the manifest is signed for {signed_for}, "
            f"shown as {payload.external_id!r} version {payload.version}"
        ),
    )
    # Neither a label nor a review is shown for a manifest signed for another article.
    return dataclasses.replace(verdict, labels=(), reasons=(*verdict.reasons, reason), review=None)
