"""What the resolver answers: fingerprints of what a client sends, the stored manifests they match, the
manifest stores by id, and the badge of a matching original.

A match never verifies the copy in hand: it finds an original whose own, stored decision (verified when it
was stamped, and again after every trust change) is what the answer shows, worded as a recovered manifest
("credentials found for a matching original"), with how close the match is.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from provenance import softbinding
from provenance.errors import InputError, UnsupportedMediaError
from provenance.softbinding import SoftBinding
from provenance.vocabulary import recovered_text
from service.badges.decisions import decision_of
from service.badges.render import as_dict
from service.context import ServiceContext
from service.problems import Problem
from service.records.lookup import gone
from service.resolver.index import MAX_RESULTS, Match, entry, matches
from service.store import queries

#: Media types ``byContent`` and ``POST /v1/badges/match`` fingerprint as text (UTF-8).
TEXT_TYPES: Final = frozenset({"text/plain"})
#: What a manifest store is served as (C2PA: ``application/c2pa``).
C2PA_MEDIA_TYPE: Final = "application/c2pa"


def binding_of_value(alg: str, value: str) -> SoftBinding:
    """A binding a client named (``alg`` and ``value``); a 400 problem when it is not one we resolve."""
    try:
        return softbinding.parse_value(alg, value)
    except InputError as exc:
        raise Problem(400, "invalid-binding", "Not a soft binding this service resolves", str(exc)) from None


def binding_of_content(ctx: ServiceContext, data: bytes, media_type: str) -> SoftBinding:
    """The fingerprint of content a client sent: text (``text/plain``, UTF-8) by its ISCC Text-Code, anything
    else as an image (sniffed from the bytes, decoded in an isolated worker under the service's limits).
    Raises a 415 problem for what has no fingerprint here, library errors (4xx) for hostile input."""
    if not data:
        raise Problem(400, "empty-body", "Empty body", "send the image or the text to match")
    if media_type in TEXT_TYPES:
        try:
            return softbinding.text_binding(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise Problem(400, "invalid-text", "Not UTF-8 text", "text/plain bodies are UTF-8") from None
    try:
        return softbinding.image_binding(data, limits=ctx.settings.limits)
    except UnsupportedMediaError:
        raise
    except InputError as exc:
        if "featureless" in str(exc) or "cannot be decoded" in str(exc):
            raise Problem(415, "unsupported-media", "No fingerprint", str(exc)) from None
        raise


def find(ctx: ServiceContext, binding: SoftBinding, max_results: int = MAX_RESULTS) -> list[Match]:
    with ctx.session() as session:
        return matches(session, binding, max_results)


def query_result(found: list[Match], base: str) -> dict[str, Any]:
    """The Soft Binding Resolution API's ``c2pa.softBindingQueryResult``, with what each match is: the item
    and its badge (extensions; a client that knows only the API reads ``manifestId`` and ``similarityScore``)."""
    return {
        "matches": [
            {
                "manifestId": m.manifest_id,
                "similarityScore": m.similarity,
                "distance": m.distance,
                "item": m.item_id,
                "badge": f"{base}/v1/badges/{m.item_id}.json",
            }
            for m in found
        ]
    }


@dataclass(frozen=True)
class ManifestStore:
    data: bytes
    item_id: str
    etag: str


def manifest_store(ctx: ServiceContext, manifest_id: str) -> ManifestStore:
    """The stored manifest store of ``manifest_id`` (a 404 problem when unknown, 410 once withdrawn)."""
    with ctx.session() as session:
        found = entry(session, manifest_id)
        if found is None:
            raise Problem(404, "not-found", "Unknown manifest", "no manifest with this id is stored here")
        withdrawal = queries.withdrawal(session, found.item_id)
        if withdrawal is not None:
            raise gone(found.item_id, withdrawal)
        if found.version is None:
            asset = queries.asset(session, found.item_id)
            data = asset.manifest if asset is not None else None
        else:
            version = queries.version(session, found.item_id, found.version)
            data = ctx.blobs.get(version.manifest_sha256) if version is not None else None
    if data is None:  # an index entry outlived its row: never expected (rows are not deleted)
        raise Problem(404, "not-found", "Unknown manifest", "no manifest with this id is stored here")
    return ManifestStore(data, found.item_id, f'"{hashlib.sha256(data).hexdigest()}"')


def match_badge(ctx: ServiceContext, binding: SoftBinding, lang: str) -> dict[str, Any]:
    """The badge answer for content that carries no ref: the nearest matching original's badge, said as a
    recovered manifest, or that nothing matched."""
    with ctx.session() as session:
        found = matches(session, binding, 1)
        if not found:
            return {"state": "no_match", "text": recovered_text("no_matching_original", lang), "lang": lang}
        best = found[0]
        if best.version is None:
            row: Any = queries.asset(session, best.item_id)
        else:
            row = queries.version(session, best.item_id, best.version)
        decision = decision_of(session, best.item_id, row)
    return {
        "state": "matching_original",
        "text": recovered_text("matching_original", lang),
        "note": recovered_text("matching_original_note", lang),
        "lang": lang,
        "match": {"manifest_id": best.manifest_id, "distance": best.distance, "similarity": best.similarity},
        # The original's own badge, as GET /v1/badges/{id}.json shows it: its verified decision, not the copy's.
        "original": as_dict(decision, lang),
    }
