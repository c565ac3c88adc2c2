"""Finding stored items: ``GET /v1/assets`` and ``GET /v1/articles``, filtered, in pages.

Order: stamping time, newest first; among equal times the id (then, for articles, the version) descending,
so the order is total and stable while rows are added. Pages are keyset pages: the cursor is an opaque
token (url-safe base64 of the last item's sort key), so a page costs one index range scan however deep
it is, and an item stamped while a client pages through is never shown twice. A cursor that does not
decode to a sort key of this finder is a 422 naming ``cursor``; one that decodes is only a position.

Filters (each an equality on an indexed column, all of them must hold): ``external_id``, ``label`` (a label
id, or ``none`` for items without a label), ``state``, ``source`` (the declared one), ``withdrawn``, and
the stamping time, half-open: ``since <= stamped < until`` (ISO 8601; a time without an offset is UTC).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import Depends, Query

from provenance.articles import MAX_EXTERNAL_ID, MAX_VERSION, ArticleSource
from provenance.models import State
from provenance.policy import LABEL_ORDER
from provenance.stamp import Source
from service import problems
from service.context import ServiceContext
from service.problems import Problem
from service.records.schemas import (
    ArticleFound,
    ArticlePage,
    ArticlePublic,
    AssetFound,
    AssetPage,
    AssetPublic,
    WithdrawalPublic,
)
from service.store import queries
from service.store.db import ArticleVersion, Asset, Withdrawal
from service.store.ids import ARTICLE_ID, ASSET_ID

MAX_LIMIT: Final = 200  # items per page
DEFAULT_LIMIT: Final = 50
MAX_CURSOR: Final = 200  # characters
LABEL_FILTERS: Final = (*LABEL_ORDER, queries.NO_LABEL)

_NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"  # PostgreSQL cannot even compare a NUL


def invalid(field: str, message: str) -> Problem:
    """A 422 ``/problems/invalid-request`` naming the query parameter ``field``, worded as FastAPI's own
    validation errors are (:func:`service.problems.invalid`)."""
    return problems.invalid([{"loc": ["query", field], "msg": message}])


def utc(value: dt.datetime, field: str) -> dt.datetime:
    """``value`` in UTC; a time without an offset is taken as UTC. A time that cannot be shifted into UTC
    is a 422 naming the query parameter ``field``."""
    try:
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise invalid(field, "not a representable time") from exc


ExternalIdQuery = Annotated[
    str | None, Query(max_length=MAX_EXTERNAL_ID, pattern=_NO_CONTROLS, description="The CMS's id, exactly")
]
LabelQuery = Annotated[
    str | None,
    Query(
        pattern=f"^({'|'.join(LABEL_FILTERS)})$",
        description=f"Items carrying this label ({', '.join(LABEL_ORDER)}), or `none` for items without a label",
    ),
]
StateQuery = Annotated[State | None, Query(description="The stored verification state")]
SinceQuery = Annotated[dt.datetime | None, Query(description="Stamped at or after (ISO 8601; no offset: UTC)")]
UntilQuery = Annotated[dt.datetime | None, Query(description="Stamped before (ISO 8601, exclusive; no offset: UTC)")]
WithdrawnQuery = Annotated[bool | None, Query(description="Only withdrawn items (true) or only published (false)")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT})")]
CursorQuery = Annotated[
    str | None, Query(max_length=MAX_CURSOR, description="`next_cursor` of the previous page (opaque)")
]


@dataclass(frozen=True)
class Page:
    """What a finder was asked: the filters, the page size and where to start."""

    filters: queries.Filters
    limit: int
    cursor: str | None


def _page(
    external_id: str | None,
    label: str | None,
    state: State | None,
    source: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    withdrawn: bool | None,
    limit: int,
    cursor: str | None,
) -> Page:
    start = utc(since, "since") if since is not None else None
    end = utc(until, "until") if until is not None else None
    if start is not None and end is not None and start > end:
        raise invalid("until", "must not be before since")
    filters = queries.Filters(
        external_id=external_id,
        label=label,
        state=state.value if state else None,
        source=source,
        since=start,
        until=end,
        withdrawn=withdrawn,
    )
    return Page(filters, limit, cursor)


def asset_page(
    external_id: ExternalIdQuery = None,
    label: LabelQuery = None,
    state: StateQuery = None,
    source: Annotated[Source | None, Query(description="The declared source")] = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    withdrawn: WithdrawnQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page:
    return _page(external_id, label, state, source.value if source else None, since, until, withdrawn, limit, cursor)


def article_page(
    external_id: ExternalIdQuery = None,
    label: LabelQuery = None,
    state: StateQuery = None,
    source: Annotated[ArticleSource | None, Query(description="The declared source")] = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    withdrawn: WithdrawnQuery = None,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> Page:
    return _page(external_id, label, state, source.value if source else None, since, until, withdrawn, limit, cursor)


AssetPageDep = Annotated[Page, Depends(asset_page)]
ArticlePageDep = Annotated[Page, Depends(article_page)]


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str, kind: str) -> list[Any]:
    """The sort key in ``cursor`` after its kind tag, or a 422 naming ``cursor``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise invalid("cursor", "not a cursor of this list (use next_cursor as it was given)") from exc
    if not isinstance(key, list) or not key or key[0] != kind:
        raise invalid("cursor", "not a cursor of this list (use next_cursor as it was given)")
    return key[1:]


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise invalid("cursor", "not a cursor of this list (use next_cursor as it was given)")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid("cursor", "not a cursor of this list (use next_cursor as it was given)") from exc
    if parsed.tzinfo is None:
        raise invalid("cursor", "not a cursor of this list (use next_cursor as it was given)")
    return parsed.astimezone(dt.UTC)


def asset_cursor(row: Asset) -> str:
    return _encode(["a", row.created_at.isoformat(), row.id])


def article_cursor(row: ArticleVersion) -> str:
    return _encode(["v", row.created_at.isoformat(), row.article_id, row.version])


def _asset_after(cursor: str | None) -> tuple[dt.datetime, str] | None:
    if cursor is None:
        return None
    key = _decode(cursor, "a")
    if len(key) != 2 or not isinstance(key[1], str) or not ASSET_ID.fullmatch(key[1]):
        raise invalid("cursor", "not a cursor of this list (use next_cursor as it was given)")
    return _time(key[0]), key[1]


def _article_after(cursor: str | None) -> tuple[dt.datetime, str, int] | None:
    if cursor is None:
        return None
    key = _decode(cursor, "v")
    if (
        len(key) != 3
        or not isinstance(key[1], str)
        or not ARTICLE_ID.fullmatch(key[1])
        or type(key[2]) is not int
        or not 1 <= key[2] <= MAX_VERSION
    ):
        raise invalid("cursor", "not a cursor of this list (use next_cursor as it was given)")
    return _time(key[0]), key[1], key[2]


@dataclass(frozen=True)
class Withdrawals:
    """The withdrawals of a set of items, with the names of the tokens that made them."""

    rows: dict[str, Withdrawal]
    names: dict[int, str]

    @classmethod
    def of(cls, ctx: ServiceContext, item_ids: list[str]) -> Withdrawals:
        with ctx.session() as session:
            rows = queries.withdrawals(session, item_ids)
            ids = [w.token_id for w in rows.values() if w.token_id is not None]
            names = {token_id: token.name for token_id, token in queries.tokens(session, ids).items()}
        return cls(rows, names)

    def public(self, item_id: str) -> WithdrawalPublic | None:
        row = self.rows.get(item_id)
        if row is None:
            return None
        return WithdrawalPublic.of(row, self.names.get(row.token_id) if row.token_id is not None else None)


def found_asset(base: str, row: Asset, withdrawals: Withdrawals) -> AssetFound:
    public = AssetPublic.of(base, row, withdrawals.rows.get(row.id))
    return AssetFound(**public.model_dump(), source=row.source, withdrawal=withdrawals.public(row.id))


def found_article(base: str, row: ArticleVersion, withdrawals: Withdrawals) -> ArticleFound:
    public = ArticlePublic.of(base, row, withdrawals.rows.get(row.article_id))
    return ArticleFound(**public.model_dump(), source=row.source, withdrawal=withdrawals.public(row.article_id))


def find_assets(ctx: ServiceContext, base: str, page: Page) -> AssetPage:
    """One page of the assets ``page`` asks for (one more is read to know whether another page follows)."""
    after = _asset_after(page.cursor)
    with ctx.session() as session:
        rows = queries.find_assets(session, page.filters, after, page.limit + 1)
    more, rows = len(rows) > page.limit, rows[: page.limit]
    withdrawals = Withdrawals.of(ctx, [row.id for row in rows])
    return AssetPage(
        items=[found_asset(base, row, withdrawals) for row in rows],
        next_cursor=asset_cursor(rows[-1]) if more else None,
    )


def find_articles(ctx: ServiceContext, base: str, page: Page) -> ArticlePage:
    """One page of the article versions ``page`` asks for."""
    after = _article_after(page.cursor)
    with ctx.session() as session:
        rows = queries.find_versions(session, page.filters, after, page.limit + 1)
    more, rows = len(rows) > page.limit, rows[: page.limit]
    withdrawals = Withdrawals.of(ctx, [row.article_id for row in rows])
    return ArticlePage(
        items=[found_article(base, row, withdrawals) for row in rows],
        next_cursor=article_cursor(rows[-1]) if more else None,
    )
