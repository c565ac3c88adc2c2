"""Verification reports: the data (JSON for API clients) and the view a page shows of it.

A stored item's auditor report is the evidence as of now (its stored bytes re-inspected once, thumbnails
taken from that same read) next to the stored decision. :func:`summary` turns any verdict dict into what
the report page, the public ``/verify`` result and the public view of a stored item show first: the label
in plain words from :mod:`provenance.vocabulary`, what it means, the signer, the signing time and the state.
An invalid verdict overrides everything: its manifest's statements are marked unverifiable (C2PA UX
guidance for invalid manifests), never shown as fact. The public view (:func:`public_view`) carries only
what the badge and the public manifest already say: no token names, no declaration, no override reasons.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from pydantic import BaseModel, Field

from provenance import ProvenanceError, Verdict, inspect, media
from provenance.vocabulary import meaning, source_type_name
from service.badges.decisions import decision_of, signer_name, stored_item
from service.badges.render import look
from service.context import ServiceContext
from service.log import tree as log_tree
from service.pages.words import WORDS
from service.store import queries
from service.store.db import ArticleVersion, Asset
from service.store.ids import REF

#: Thumbnails taken from one read of a file for a page (each bounded by the library's limits).
MAX_THUMBNAILS: Final = 24


@dataclass(frozen=True)
class Report:
    """A report's JSON contract (``data``) and, for its page, the thumbnails of the same read."""

    data: dict[str, Any]
    images: Mapping[str, str] = field(default_factory=dict, repr=False)  # data: URIs by resource identifier
    active_thumbnail: str | None = None  # identifier of the active manifest's own thumbnail


class ReportLink(BaseModel):
    """A signed link opening one report page, without a token, until it expires."""

    url: str = Field(description="The report page; anyone holding this URL can open it until it expires")
    expires_at: str = Field(description="ISO 8601 (UTC): when the link stops working")


def _image_type(blob: bytes) -> str | None:
    """The sniffed type of a thumbnail's bytes, if it is an image we show (never the manifest's word for it)."""
    try:
        kind = media.sniff(blob)
    except ProvenanceError:
        return None
    return kind if kind in media.THUMBNAIL_TYPES else None


def thumbnails(verdict: Verdict) -> dict[str, str]:
    """data: URIs of the thumbnails taken from the verified file's one read, by identifier."""
    return {
        identifier: f"data:{media_type};base64,{base64.b64encode(blob).decode()}"
        for identifier, blob in verdict.thumbnails.items()
        if (media_type := _image_type(blob)) is not None
    }


def _report(verdict: Verdict) -> Report:
    active = verdict.active_manifest
    own = active.thumbnail.identifier if active and active.thumbnail else None
    return Report(verdict.to_dict(), thumbnails(verdict), own)


def verification(verdict: Verdict) -> Report:
    """The report of a stateless verification (``POST /v1/verify``, the ``/verify`` page)."""
    return _report(verdict)


def _stamped_by(ctx: ServiceContext, token_id: int | None) -> dict[str, Any] | None:
    if token_id is None:
        return None
    with ctx.session() as session:
        token = queries.token(session, token_id)
    return {"token": token.name, "role": token.role} if token else None


def _log_evidence(ctx: ServiceContext, item_id: str, version: int | None = None) -> dict[str, Any]:
    """The item's entries in the transparency log, each with its inclusion proof against the latest
    checkpoint (``provenance audit verify-log CHECKPOINT --evidence REPORT`` checks them offline)."""
    with ctx.session() as session:
        return log_tree.evidence(session, item_id, version)


def _stored(row: Asset | ArticleVersion) -> dict[str, Any]:
    return {"state": row.state, "labels": row.labels, "trust_fingerprint": row.trust_fingerprint}


def asset_report(ctx: ServiceContext, row: Asset, *, images: int = 0) -> Report:
    """The auditor report of a stored asset (``images`` > 0: with up to that many thumbnails, same read)."""
    live = inspect(ctx.blobs.get(row.stamped_sha256), ctx.trust, limits=ctx.settings.limits, thumbnails=images)
    report = _report(live)  # the evidence as of now, not as stored
    data = {
        "kind": "image",
        "id": row.id,
        "stored_decision": _stored(row),
        "verification": report.data,
        "upload": row.upstream,
        "declaration": row.declaration,
        "signer_chain": row.signer_chain,
        "stamped_at": row.created_at.isoformat(),
        "stamped_by": _stamped_by(ctx, row.token_id),
        "transparency_log": _log_evidence(ctx, row.id),
    }
    return Report(data, report.images, report.active_thumbnail)


def article_report(ctx: ServiceContext, row: ArticleVersion) -> Report:
    """The auditor report of a stored article version (text and detached manifest re-inspected)."""
    live = inspect(
        ctx.blobs.get(row.text_sha256),
        ctx.trust,
        sidecar=ctx.blobs.get(row.manifest_sha256),
        limits=ctx.settings.limits,
    )
    data = {
        "kind": "article",
        "id": row.article_id,
        "version": row.version,
        "external_id": row.external_id,
        "stored_decision": _stored(row),
        "verification": live.to_dict(),
        "signer_chain": row.signer_chain,
        "stamped_at": row.created_at.isoformat(),
        "stamped_by": _stamped_by(ctx, row.token_id),
        "transparency_log": _log_evidence(ctx, row.article_id, row.version),
    }
    return Report(data)


# --- what a page shows ---------------------------------------------------------------------------------------


def mark(state: str, labels: list[str], lang: str) -> tuple[str, str, str]:
    """The label in plain words, its tone and what it means, for a decision (words from the vocabulary and
    the page-word table only)."""
    words = WORDS[lang]
    if state not in ("invalid", "trusted", "untrusted", "unavailable"):
        return words["report_no_credentials"], "absent", words["report_meaning_absent"]
    badge = look(state, labels, lang)  # the words and tone the badge itself shows
    if state == "invalid":
        explained = meaning("content_credentials_invalid", lang)
    elif state == "trusted":
        explained = meaning(labels[0], lang) if labels else words["report_meaning_trusted"]
    else:
        explained = words[f"report_meaning_{state}"]
    return badge.text, badge.tone, explained


def _action(action: dict[str, Any], lang: str) -> dict[str, Any]:
    uri = action.get("digital_source_type")
    return {
        "action": action.get("action") or "—",
        "source": (source_type_name(uri, lang) or uri) if isinstance(uri, str) else None,
        "source_uri": uri if isinstance(uri, str) else None,
        "agent": action.get("software_agent"),
    }


def _node(node: dict[str, Any], lang: str, images: Mapping[str, str]) -> dict[str, Any]:
    thumb = node.get("thumbnail")
    identifier = str(thumb.get("identifier")) if isinstance(thumb, dict) else None
    signer = node.get("signer") if isinstance(node.get("signer"), dict) else {}
    return {
        "state": str(node.get("state") or "absent"),
        "title": node.get("title") or node.get("label") or "—",
        "relationship": node.get("relationship"),
        "signer": signer_name(signer),
        "signed_at": signer.get("time") if signer else None,
        "actions": [_action(a, lang) for a in node.get("actions") or [] if isinstance(a, dict)],
        "failures": [str(code) for code in node.get("failures") or []],
        "truncated": bool(node.get("truncated")),
        "thumbnail": images.get(identifier) if identifier else None,
        "children": [_node(child, lang, images) for child in node.get("ingredients") or [] if isinstance(child, dict)],
    }


def summary(
    verdict: dict[str, Any],
    lang: str,
    images: Mapping[str, str] | None = None,
    active_thumbnail: str | None = None,
    *,
    decision: tuple[str, list[str]] | None = None,
) -> dict[str, Any]:
    """What a page shows of ``verdict`` (a :meth:`Verdict.to_dict`, live or stored) in ``lang``: the summary,
    then the ingredient tree. ``decision`` (state, labels) overrides the verdict's own, for a stored item
    whose decision is the one its badge shows."""
    images = images or {}
    state, labels = decision or (str(verdict.get("state") or "absent"), list(verdict.get("labels") or []))
    text, tone, explained = mark(state, labels, lang)
    signer = verdict.get("signer") if isinstance(verdict.get("signer"), dict) else {}
    reasons = [r for r in verdict.get("reasons") or [] if isinstance(r, dict)]
    return {
        "state": state,
        "invalid": state == "invalid",
        "mark": text,
        "tone": tone,
        "meaning": explained,
        "labels": labels,
        "signer": signer_name(signer),
        "signed_at": signer.get("time") if signer else None,
        "title": verdict.get("title"),
        "claim_generator": verdict.get("claim_generator"),
        "actions": [_action(a, lang) for a in verdict.get("actions") or [] if isinstance(a, dict)],
        "thumbnail": images.get(active_thumbnail) if active_thumbnail else None,
        "reasons": [{"text": r.get("text") or "", "counted": bool(r.get("counted"))} for r in reasons],
        "uncounted_ai_claims": sum(1 for r in reasons if not r.get("counted")),
        "tree": [_node(i, lang, images) for i in verdict.get("ingredients") or [] if isinstance(i, dict)],
        "media_type": verdict.get("media_type"),
        "sha256": verdict.get("sha256"),
        "error": verdict.get("error"),  # a stored verdict of bytes that could not be read at all
    }


def upload_view(upload: Any, lang: str) -> dict[str, Any] | None:
    """What the report page shows of an upload's own provenance, as it was before stamping (images only)."""
    if not isinstance(upload, dict):
        return None
    state = str(upload.get("state") or "absent")
    text, tone, _meaning = mark(state, list(upload.get("labels") or []), lang)
    return {"sha256": upload.get("sha256"), "media_type": upload.get("media_type"), "state": state,
            "mark": text, "tone": tone}  # fmt: skip


def codes(verdict: dict[str, Any]) -> list[dict[str, Any]]:
    """Every validation status code of ``verdict``, failures first, for the evidence section."""
    groups = verdict.get("codes")
    if not isinstance(groups, dict):
        return []
    return [
        {"group": group, **code}
        for group in ("failure", "informational", "success")
        for code in groups.get(group) or []
        if isinstance(code, dict)
    ]


# --- the public view of a stored item -------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicItem:
    """A stored item as its public verification view shows it: the stored decision and verdict, no more."""

    ref: str
    kind: str  # "image" | "article"
    id: str
    version: int | None
    state: str
    labels: list[str]
    verdict: dict[str, Any]
    stamped_at: str
    downloads: dict[str, str]  # public links: content/manifest of an image, text/manifest of an article


def _public_asset(row: Asset, ref: str) -> PublicItem:
    base = f"/v1/assets/{row.id}"
    return PublicItem(
        ref, "image", row.id, None, row.state, list(row.labels), row.verdict, row.created_at.isoformat(),
        {"content": f"{base}/content", "manifest": f"{base}/manifest.c2pa"},
    )  # fmt: skip


def _public_version(row: ArticleVersion, ref: str) -> PublicItem:
    base = f"/v1/articles/{row.article_id}/v{row.version}"
    return PublicItem(
        ref, "article", row.article_id, row.version, row.state, list(row.labels), row.verdict,
        row.created_at.isoformat(), {"text": f"{base}.txt", "manifest": f"{base}.c2pa"},
    )  # fmt: skip


def public_view(ctx: ServiceContext, ref: str) -> PublicItem | None:
    """The stored item a badge ``ref`` answers with, with the decision that badge shows (state ``withdrawn``
    and no verdict for a withdrawn item), or ``None``: ``ref`` is an asset id, an article id (its latest
    version) or the sha256 of original or stamped bytes (or of an article text)."""
    if not REF.fullmatch(ref):
        return None
    with ctx.session() as session:
        row = stored_item(session, ref)  # the row the badge answers with (one lookup)
        if row is None:
            return None
        decision = decision_of(session, ref, row)
    item = _public_asset(row, ref) if isinstance(row, Asset) else _public_version(row, ref)
    if decision.state == "withdrawn":  # nothing of it is shown any more
        return replace(item, state="withdrawn", labels=[], verdict={}, downloads={})
    return replace(item, state=decision.state, labels=list(decision.labels))
