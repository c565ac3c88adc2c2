"""The one ingest path: used by the API and by ``make run`` to load the samples.

upload → inspect → stamp → store. Invariant (durability): blobs are written and fsynced first, then
the row and its audit event are committed in one transaction; the caller acknowledges only after
the commit. A crash in between leaves an orphan blob, never a row pointing at nothing. The blob
store's shared lock is held from the first blob write until that commit (or the failure), so the
collector (``provenance gc``) cannot remove what this request may still reference.
Storage that refuses a write (a full or read-only disk, under the blobs or the database) raises a
:class:`~service.store.errors.StorageError`: no row, no audit event, no temporary file; a blob this
request committed before the refusal is an orphan the collector removes.
Idempotent: the asset id is derived from the upload's hash and the declaration, so the same upload
with the same declaration is the same asset; an ``Idempotency-Key`` replays the first answer.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from provenance import InputError, UpstreamConflictError, stamp
from provenance.articles import ArticlePayload, parse_payload, stamp_article
from provenance.articles import ArticleVersion as SignedVersion
from provenance.errors import VersionConflictError
from provenance.models import Verdict
from provenance.softbinding import SoftBinding
from provenance.stamp import NON_AI_SOURCES
from provenance.trust import chain_summary
from service.context import ServiceContext
from service.ingest.schemas import Declaration
from service.security.tokens import Caller
from service.store import queries
from service.store.db import ArticleVersion, Asset, AuditEvent, SoftBindingEntry
from service.store.errors import StorageError, commit
from service.store.ids import article_id, asset_id


def _with_note(verdict: dict[str, Any], timestamp_note: str | None) -> dict[str, Any]:
    """The stored verdict, flagged when an optional timestamp could not be obtained."""
    return {**verdict, "timestamp_note": timestamp_note} if timestamp_note else verdict


# Writes of originals overlap their stamping (the fsync is the slow part); a thread each for two at once.
_writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="provenance-blob")


def _commit(
    ctx: ServiceContext, row: Asset | ArticleVersion, event: AuditEvent, made: str, binding: SoftBindingEntry | None
) -> IntegrityError | None:
    """Commit ``row`` with its audit event and its soft binding's index entry; the integrity error if a
    concurrent request's row won the race.

    Raises :class:`StorageError` when the database refuses the write for lack of space or of write access:
    then neither is stored, and the blob ``made`` (this request's own, see :func:`_discard`) is removed.
    Any other database error is raised unchanged.
    """
    with ctx.session() as session:
        session.add(row)
        session.add(event)
        if binding is not None:
            session.add(binding)
        try:
            return commit(session)
        except StorageError:
            _discard(ctx, made)
            raise


def _index_entry(
    binding: SoftBinding | None, verdict: Verdict, item_id: str, version: int | None = None
) -> SoftBindingEntry | None:
    """The resolver's index entry for a stamp's soft binding (none without one)."""
    manifest = verdict.active_manifest
    if binding is None or manifest is None or manifest.label is None:
        return None
    return SoftBindingEntry.of(manifest.label, binding.kind, binding.code, item_id, version)


def _discard(ctx: ServiceContext, digest: str) -> None:
    """Remove a blob only this request made (a stamped output: its manifest is unique to one signing)."""
    ctx.blobs.discard(digest)  # best-effort: one left behind is an orphan the collector removes


def _signed_facts(payload: ArticlePayload) -> tuple[object, ...]:
    """What a version's manifest states besides its text (the text is compared by its canonical digest)."""
    return (payload.byline, payload.language, payload.url, payload.source, payload.edit_source, payload.review)


def _repeats(ctx: ServiceContext, row: ArticleVersion, payload: ArticlePayload, payload_bytes: bytes) -> bool:
    """Whether ``payload`` asks for exactly what ``row`` already holds: the same canonical text with the
    same declared facts (a repeat is answered with the stored row; anything else is a conflict)."""
    if row.payload_sha256 == hashlib.sha256(payload_bytes).hexdigest():
        return True
    if row.text_sha256 != hashlib.sha256(payload.canonical_text()).hexdigest():
        return False
    return _signed_facts(parse_payload(ctx.blobs.get(row.payload_sha256))) == _signed_facts(payload)


def _version_conflict(external_id: str, version: int) -> VersionConflictError:
    return VersionConflictError(
        f"version {version} of {external_id!r} is already stored with other text or other declared facts",
        hint="a stored version does not change: send the correction as the next version number",
    )


def _ai_declarations(same_bytes: Sequence[Asset]) -> list[Asset]:
    """The assets made from the same original bytes that carry a trusted AI label (every label is one)."""
    return [row for row in same_bytes if row.state == "trusted" and row.labels]


@dataclass(frozen=True)
class Ingested:
    row: Asset
    created: bool


def _existing(
    session: Session, ident: str, caller: Caller | None, key: str | None, same_bytes: Sequence[Asset] | None = None
) -> Asset | None:
    """The stored asset this upload repeats; raises if its Idempotency-Key was used for another upload.
    ``same_bytes``: the assets already read for the upload's bytes (:func:`queries.assets_from_upload`), where
    the one with this id is whenever it exists (its id derives from those bytes), unless the list is cut."""
    if key is not None and caller is not None:
        row = queries.asset_by_idempotency_key(session, caller.token_id, key)
        if row is not None:
            if row.id != ident:
                raise InputError("this Idempotency-Key was already used for a different upload")
            return row
    if same_bytes is not None:
        found = next((row for row in same_bytes if row.id == ident), None)
        if found is not None or len(same_bytes) < queries.MAX_SHARING:
            return found
    return queries.asset(session, ident)


def ingest_asset(
    ctx: ServiceContext,
    data: bytes,
    declaration: Declaration,
    caller: Caller | None,
    idempotency_key: str | None = None,
) -> Ingested:
    """Inspect, stamp and durably store an upload; return the stored asset (existing one if repeated)."""
    upload_sha256 = hashlib.sha256(data).hexdigest()
    ident = asset_id(upload_sha256, declaration.canonical())
    with ctx.session() as session:
        same_bytes = queries.assets_from_upload(session, upload_sha256)  # one read answers both questions
        existing = _existing(session, ident, caller, idempotency_key, same_bytes)
        if existing is not None:
            return Ingested(existing, created=False)
        earlier = _ai_declarations(same_bytes)
    if earlier and declaration.source in NON_AI_SOURCES and not declaration.override_upstream:
        first = earlier[0]
        raise UpstreamConflictError(
            f"these bytes were stamped before as {first.id} with the labels {', '.join(first.labels)}, "
            f"but the declaration is {declaration.source.value!r}",
            hint="declare ai_generated/ai_edited, or give override_upstream with the reason (it is recorded)",
        )
    request = declaration.stamp_request()
    with ctx.blobs.writing() as blobs:  # held until the row has committed: the collector keeps off its blobs
        # The original is written and fsynced while the upload is stamped (in a parsing worker); it becomes
        # visible only once the stamp succeeded, and a refused upload leaves nothing behind.
        staging = _writer.submit(blobs.stage, data, upload_sha256)
        try:
            result = stamp(
                data,
                request,
                ctx.signer,
                ctx.trust,
                limits=ctx.settings.limits,
                timestamping=ctx.timestamping,
                self_check=ctx.settings.stamp_self_check,
                upload_sha256=upload_sha256,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                staging.result().discard()
            raise
        staging.result().commit()
        stamped_sha256 = blobs.put(result.data, result.verdict.sha256)
        row = Asset(
            id=ident,
            upload_sha256=upload_sha256,
            stamped_sha256=stamped_sha256,
            manifest=result.manifest,  # a few KB, also inside the stamped file: kept in the row
            media_type=result.media_type,
            declaration=declaration.canonical(),
            state=result.verdict.state.value,
            labels=list(result.verdict.labels),
            verdict=_with_note(result.verdict.to_dict(), result.timestamp_note),
            upstream=result.upstream.to_dict(),
            signer_chain=chain_summary(ctx.signer.certificate_chain_pem),
            trust_fingerprint=ctx.trust.fingerprint,
            token_id=caller.token_id if caller else None,
            idempotency_key=idempotency_key if caller else None,
        )
        detail: dict[str, Any] = {"labels": row.labels, "source": declaration.source.value, "sha256": upload_sha256}
        if earlier and declaration.source in NON_AI_SOURCES:  # an override of our own earlier AI declaration
            detail["overrides"] = {"assets": [a.id for a in earlier], "reason": declaration.override_upstream}
        event = AuditEvent(kind="stamp", token_id=caller.token_id if caller else None, subject=ident, detail=detail)
        entry = _index_entry(result.soft_binding, result.verdict, ident)
        lost = _commit(ctx, row, event, stamped_sha256, entry)
    if lost is None:
        return Ingested(row, created=True)
    # A concurrent request committed first: the same upload (answered as a repeat) or another upload
    # under the same Idempotency-Key (refused as in the sequential case). This stamped output is unused.
    _discard(ctx, stamped_sha256)
    with ctx.session() as session:
        winner = _existing(session, ident, caller, idempotency_key)
    if winner is None:
        raise lost
    return Ingested(winner, created=False)


@dataclass(frozen=True)
class IngestedArticle:
    row: ArticleVersion
    created: bool


def ingest_article(ctx: ServiceContext, payload_bytes: bytes, caller: Caller | None) -> IngestedArticle:
    """Stamp a CMS article payload; a new version of a known external id becomes a correction."""
    payload = parse_payload(payload_bytes)
    ident = article_id(payload.external_id)
    with ctx.session() as session:
        # One read decides: a version above the latest is a correction of the latest; any other is a
        # repeat, a conflict or out of date (two reads could see a concurrent commit in between).
        latest = queries.latest_version(session, ident)
        if latest is not None and latest.version >= payload.version:
            existing = latest if latest.version == payload.version else queries.version(session, ident, payload.version)
            if existing is None:
                raise InputError(f"version {payload.version} is older than the stored version {latest.version}")
            if not _repeats(ctx, existing, payload, payload_bytes):
                raise _version_conflict(payload.external_id, payload.version)
            return IngestedArticle(existing, created=False)
    previous = None
    if latest is not None:
        previous = SignedVersion(ctx.blobs.get(latest.text_sha256), ctx.blobs.get(latest.manifest_sha256))
    result = stamp_article(
        payload,
        ctx.signer,
        ctx.trust,
        previous=previous,
        timestamping=ctx.timestamping,
        limits=ctx.settings.limits,
        self_check=ctx.settings.stamp_self_check,
    )
    with ctx.blobs.writing() as blobs:  # held until the row has committed: the collector keeps off its blobs
        text_sha256 = blobs.put(result.text)
        manifest_sha256 = blobs.put(result.manifest)
        payload_sha256 = blobs.put(payload_bytes)
        row = ArticleVersion(
            article_id=ident,
            version=payload.version,
            external_id=payload.external_id,
            text_sha256=text_sha256,
            manifest_sha256=manifest_sha256,
            payload_sha256=payload_sha256,
            state=result.verdict.state.value,
            labels=list(result.verdict.labels),
            verdict=_with_note(result.verdict.to_dict(), result.timestamp_note),
            signer_chain=chain_summary(ctx.signer.certificate_chain_pem),
            trust_fingerprint=ctx.trust.fingerprint,
            token_id=caller.token_id if caller else None,
        )
        detail: dict[str, Any] = {
            "labels": row.labels,
            "external_id": payload.external_id,
            "source": payload.source.value,
        }
        if result.override_upstream and latest is not None and result.previous is not None:
            # A human correction of an AI-labelled version: why, as signed into the manifest (the label stays).
            detail["overrides"] = {
                "version": latest.version,
                "labels": list(result.previous.labels),
                "reason": result.override_upstream,
            }
        event = AuditEvent(
            kind="stamp_article",
            token_id=caller.token_id if caller else None,
            subject=f"{ident}/v{payload.version}",
            detail=detail,
        )
        entry = _index_entry(result.soft_binding, result.verdict, ident, payload.version)
        lost = _commit(ctx, row, event, manifest_sha256, entry)
    if lost is None:
        return IngestedArticle(row, created=True)
    # A concurrent request stored this version first: a repeat only if its text is this text.
    _discard(ctx, manifest_sha256)
    with ctx.session() as session:
        winner = queries.version(session, ident, payload.version)
    if winner is None:
        raise lost
    if not _repeats(ctx, winner, payload, payload_bytes):
        raise _version_conflict(payload.external_id, payload.version)
    return IngestedArticle(winner, created=False)
