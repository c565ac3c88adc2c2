"""Full verification reports of stored items: the evidence as of now (re-inspected), with the stored decision."""

from __future__ import annotations

from typing import Any

from provenance import inspect
from service import markup
from service.context import ServiceContext
from service.store import queries
from service.store.db import ArticleVersion, Asset


def _stamped_by(ctx: ServiceContext, token_id: int | None) -> dict[str, Any] | None:
    if token_id is None:
        return None
    with ctx.session() as session:
        token = queries.token(session, token_id)
    return {"token": token.name, "role": token.role} if token else None


def asset_report(ctx: ServiceContext, row: Asset) -> dict[str, Any]:
    # The evidence as of now, not as stored.
    live = inspect(ctx.blobs.get(row.stamped_sha256), ctx.trust, limits=ctx.settings.limits)
    return {
        "kind": "image",
        "id": row.id,
        "stored_decision": {"state": row.state, "labels": row.labels, "trust_fingerprint": row.trust_fingerprint},
        "verification": live.to_dict(),
        "upload": row.upstream,
        "declaration": row.declaration,
        "signer_chain": row.signer_chain,
        "stamped_at": row.created_at.isoformat(),
        "stamped_by": _stamped_by(ctx, row.token_id),
    }


def article_report(ctx: ServiceContext, row: ArticleVersion) -> dict[str, Any]:
    live = inspect(
        ctx.blobs.get(row.text_sha256),
        ctx.trust,
        sidecar=ctx.blobs.get(row.manifest_sha256),
        limits=ctx.settings.limits,
    )
    return {
        "kind": "article",
        "id": row.article_id,
        "version": row.version,
        "external_id": row.external_id,
        "stored_decision": {"state": row.state, "labels": row.labels, "trust_fingerprint": row.trust_fingerprint},
        "verification": live.to_dict(),
        "signer_chain": row.signer_chain,
        "stamped_at": row.created_at.isoformat(),
        "stamped_by": _stamped_by(ctx, row.token_id),
    }


def _rows(value: Any, depth: int = 0) -> str:
    if isinstance(value, dict):
        inner = "".join(f"<tr><th>{markup.text(k)}</th><td>{_rows(v, depth + 1)}</td></tr>" for k, v in value.items())
        return f"<table>{inner}</table>"
    if isinstance(value, list):
        return "<ol>" + "".join(f"<li>{_rows(v, depth + 1)}</li>" for v in value) + "</ol>" if value else "—"
    return markup.text("" if value is None else value)


def html_report(report: dict[str, Any]) -> str:
    """A plain, script-free HTML rendering of a report (every key and value through :func:`markup.text`)."""
    title = f"Verification report: {report.get('id', 'file')}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{markup.text(title)}</title></head>'
        f"<body><h1>{markup.text(title)}</h1>{_rows(report)}</body></html>"
    )
