"""The AI-disclosure compliance report (EU AI Act Art. 50): ``GET /v1/reports/ai-disclosure?from=&to=``.

One request answers a regulator's question, "which AI content did you publish, and was it labelled?":
every image and article version stamped in the half-open period ``[from, to)``, oldest first, each with
its declared source, the decision it got (state and labels), whether its badge shows an AI label, any
override of an AI claim with its reason, its withdrawal (who, when, why) and every withdraw/reinstate
decision about it, and the editorial review of an article version when one was signed; then totals
(per label, per source, AI declared / labelled / declared but unlabelled, overrides, withdrawn).

Read-only, from the stored record and the audit log (nothing is re-verified: the stored decisions are what
the badges showed). Bounded: a period with more than :data:`MAX_ITEMS` items is refused with a 422 that
says how many it holds, before any row is read.

CSV (``Accept: text/csv`` or ``?format=csv``): UTF-8, one header row, one row per item, then one empty
row and a totals section with its own header row (``total,key,count``). A cell that a spreadsheet would
run as a formula (starting with ``=``, ``+``, ``-``, ``@``, TAB or CR) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable
from typing import Annotated, Any, Final, Literal

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response

from provenance.policy import LABEL_ORDER
from service.context import ServiceContext
from service.problems import Problem
from service.records.find import invalid, utc
from service.store import queries
from service.store.db import utcnow

MAX_ITEMS: Final = 100_000  # items per report (assets plus article versions)
#: How far a stamp's audit event may lie from its row's stamping time (both are taken in one request).
EVENT_SLACK: Final = dt.timedelta(minutes=5)
WITHDRAWAL_KINDS: Final = ("withdraw", "reinstate")
STAMP_KINDS: Final = ("stamp", "stamp_article")

COLUMNS: Final = (
    "kind", "id", "version", "external_id", "stamped_at", "stamped_by", "declared_source", "ai_declared",
    "state", "labels", "labelled", "override_reason", "withdrawn_at", "withdrawn_by", "withdrawal_reason",
    "withdrawal_decisions", "review_editor", "review_reviewed_at", "review_scope",
)  # fmt: skip
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _ai(source: str | None) -> bool:
    """Whether a declared source is an AI one (images: ai_generated, ai_edited; articles: ai_generated,
    ai_assisted)."""
    return bool(source) and str(source).startswith("ai_")


def _review(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {"editor": value.get("editor"), "reviewed_at": value.get("reviewed_at"), "scope": value.get("scope")}


class _Names:
    """Token names by id, read once for the whole report."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names

    def of(self, token_id: Any) -> str | None:
        return self.names.get(token_id) if isinstance(token_id, int) else None


def _history(events: Iterable[Any], names: _Names) -> dict[str, list[dict[str, Any]]]:
    history: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        history.setdefault(event.subject, []).append(
            {
                "action": event.kind,
                "at": event.at.isoformat(),
                "by": names.of(event.token_id),
                "reason": event.detail.get("reason"),
            }
        )
    return history


def build(ctx: ServiceContext, start: dt.datetime, end: dt.datetime, max_items: int = MAX_ITEMS) -> dict[str, Any]:
    """The report for ``[start, end)`` (UTC-aware bounds); raises a 422 :class:`Problem` when ``start`` is not
    before ``end`` or the period holds more than ``max_items`` items."""
    if start >= end:
        raise invalid("to", "must be after from")
    with ctx.session() as session:
        count = queries.count_stamped(session, start, end)
        if count > max_items:
            raise Problem(
                422, "report-too-large", "Report too large",
                f"the period holds {count} items, more than {max_items}: ask for shorter periods", items=count,
            )  # fmt: skip
        assets = queries.disclosure_assets(session, start, end)
        versions = queries.disclosure_versions(session, start, end)
        stamps = queries.events_between(session, STAMP_KINDS, start - EVENT_SLACK, end + EVENT_SLACK)
        ids = [a.id for a in assets] + list(dict.fromkeys(v.article_id for v in versions))
        withdrawals = queries.withdrawals(session, ids)
        decisions = queries.events_about(session, WITHDRAWAL_KINDS, ids)
        in_period = queries.events_between(session, WITHDRAWAL_KINDS, start, end)
        token_ids: set[int | None] = {row.token_id for row in [*assets, *versions]}
        token_ids.update(w.token_id for w in withdrawals.values())
        token_ids.update(e.token_id for e in [*decisions, *in_period])
        known = [i for i in token_ids if i is not None]
        names = _Names({i: t.name for i, t in queries.tokens(session, known).items()})
    overrides = {e.subject: e.detail["overrides"] for e in stamps if isinstance(e.detail.get("overrides"), dict)}
    history = _history(decisions, names)

    def withdrawal(item_id: str) -> dict[str, Any] | None:
        row = withdrawals.get(item_id)
        if row is None:
            return None
        return {"withdrawn_at": row.withdrawn_at.isoformat(), "by": names.of(row.token_id), "reason": row.reason}

    items: list[dict[str, Any]] = []
    for a in assets:
        reason = a.declaration.get("override_upstream") if isinstance(a.declaration, dict) else None
        overridden = overrides.get(a.id)
        items.append(
            {
                "kind": "image", "id": a.id, "version": None, "external_id": a.external_id,
                "stamped_at": a.created_at.isoformat(), "stamped_by": names.of(a.token_id),
                "declared_source": a.source, "ai_declared": _ai(a.source), "state": a.state,
                "labels": list(a.labels), "labelled": a.state == "trusted" and bool(a.labels),
                "override": {"reason": reason, "overrides": overridden} if reason or overridden else None,
                "withdrawal": withdrawal(a.id), "withdrawal_decisions": history.get(a.id, []), "review": None,
            }
        )  # fmt: skip
    for v in versions:
        overridden = overrides.get(f"{v.article_id}/v{v.version}")
        items.append(
            {
                "kind": "article", "id": v.article_id, "version": v.version, "external_id": v.external_id,
                "stamped_at": v.created_at.isoformat(), "stamped_by": names.of(v.token_id),
                "declared_source": v.source, "ai_declared": _ai(v.source), "state": v.state,
                "labels": list(v.labels), "labelled": v.state == "trusted" and bool(v.labels),
                "override": {"reason": overridden.get("reason"), "overrides": overridden} if overridden else None,
                "withdrawal": withdrawal(v.article_id), "withdrawal_decisions": history.get(v.article_id, []),
                "review": _review(v.review),
            }
        )  # fmt: skip
    items.sort(key=lambda item: (item["stamped_at"], item["id"], item["version"] or 0))
    return {
        "report": "ai-disclosure",
        "regulation": "EU AI Act, Article 50 (transparency of AI-generated or manipulated content)",
        "from": start.isoformat(),
        "to": end.isoformat(),
        "period": "half-open: from <= stamped_at < to",
        "generated_at": utcnow().isoformat(),
        "totals": totals(items),
        "items": items,
        "withdrawal_decisions_in_period": [
            {
                "action": e.kind,
                "at": e.at.isoformat(),
                "kind": e.detail.get("kind"),
                "id": e.subject,
                "by": names.of(e.token_id),
                "reason": e.detail.get("reason"),
            }
            for e in in_period
        ],
    }


def totals(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts over the report's items: per label (an item with two labels counts for both; ``none``: no
    label), per declared source, and the answer to the regulator's question."""
    labels: Counter[str] = Counter({label: 0 for label in LABEL_ORDER})
    sources: Counter[str] = Counter()
    for item in items:
        labels.update(item["labels"] or ["none"])
        sources[item["declared_source"] or "unrecorded"] += 1
    ai = [item for item in items if item["ai_declared"]]
    return {
        "items": len(items),
        "images": sum(item["kind"] == "image" for item in items),
        "article_versions": sum(item["kind"] == "article" for item in items),
        "by_label": {**dict(labels), "none": labels.get("none", 0)},
        "by_source": dict(sorted(sources.items())),
        "ai_declared": len(ai),
        "ai_declared_labelled": sum(item["labelled"] for item in ai),
        "ai_declared_unlabelled": sum(not item["labelled"] for item in ai),
        "labelled": sum(item["labelled"] for item in items),
        "overrides": sum(item["override"] is not None for item in items),
        "withdrawn": sum(item["withdrawal"] is not None for item in items),
    }


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: ``None`` empty, booleans ``true``/``false``, and a leading
    formula character (``= + - @``, TAB, CR) neutralised with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _row(item: dict[str, Any]) -> list[Any]:
    withdrawal = item["withdrawal"] or {}
    review = item["review"] or {}
    override = item["override"] or {}
    decisions = "; ".join(f"{d['action']} {d['at']}" for d in item["withdrawal_decisions"])
    return [
        item["kind"], item["id"], item["version"], item["external_id"], item["stamped_at"], item["stamped_by"],
        item["declared_source"], item["ai_declared"], item["state"], ";".join(item["labels"]), item["labelled"],
        override.get("reason") if item["override"] else None, withdrawal.get("withdrawn_at"), withdrawal.get("by"),
        withdrawal.get("reason"), decisions, review.get("editor"), review.get("reviewed_at"), review.get("scope"),
    ]  # fmt: skip


def to_csv(report: dict[str, Any]) -> str:
    """The report as CSV: header, one row per item, an empty row, then ``total,key,count`` rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for item in report["items"]:
        writer.writerow([safe_cell(cell) for cell in _row(item)])
    writer.writerow([])
    writer.writerow(("total", "key", "count"))
    counts = report["totals"]
    for name in ("items", "images", "article_versions", "ai_declared", "ai_declared_labelled",
                 "ai_declared_unlabelled", "labelled", "overrides", "withdrawn"):  # fmt: skip
        writer.writerow(("all", name, counts[name]))
    for label, count in counts["by_label"].items():
        writer.writerow(("label", safe_cell(label), count))
    for source, count in counts["by_source"].items():
        writer.writerow(("source", safe_cell(source), count))
    return out.getvalue()


FromQuery = Annotated[
    dt.datetime, Query(alias="from", description="Start of the period, inclusive (ISO 8601; no offset: UTC)")
]
ToQuery = Annotated[dt.datetime, Query(description="End of the period, exclusive (ISO 8601; no offset: UTC)")]
FormatQuery = Annotated[
    Literal["json", "csv"] | None, Query(description="`csv` or `json`; otherwise the Accept header decides")
]
#: OpenAPI: the two representations of the report.
RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "The report: JSON (items, totals) or CSV (items, then a `total,key,count` section)",
        "content": {"application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}},
    }
}


def respond(request: Request, ctx: ServiceContext, start: dt.datetime, end: dt.datetime, fmt: str | None) -> Response:
    """The report for ``[start, end)`` as JSON or, if asked for (``fmt`` or ``Accept: text/csv``), as CSV."""
    report = build(ctx, utc(start, "from"), utc(end, "to"))
    if fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", "")):
        name = f"ai-disclosure-{report['from'][:10]}-{report['to'][:10]}.csv"
        return Response(
            to_csv(report).encode(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"},
        )
    return JSONResponse(report)
