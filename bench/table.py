"""The one row contract every benchmark's ``--json`` output shares, so ``bench_all.py`` can print one table.

A benchmark that supports ``--json`` adds a top-level key ``"table"`` to its JSON object (every other key
stays as it was): a list of rows, each a dict with exactly these keys, built with :func:`make_row` and written
with :func:`rows_json`::

    benchmark     str           the script's short name: "core", "articles", "isolation", "hostile", "service"
    what          str           the row, for a reader: "stamp, 1 MB JPEG, unsigned upload"
    anchor        str           what ours is compared with: "raw c2pa-python sign", "nginx, static SVG"
    anchor_value  float | None  the anchor's number (None: the row has no anchor, e.g. a step only ours does)
    value         float         ours, in ``unit``
    unit          str           "ms", "s", "MiB", "req/s", "uploads/s"
    ratio         float | None  the script's own ratio: ours/raw for times, ours/anchor for throughputs
                                (:func:`make_row` computes value / anchor_value unless given; None without anchor)
    aim           str           the target on the ratio, "≤ 1.15" or "≥ 0.50"; "" when the row is informational
    met           bool | None   whether the ratio meets the aim (:func:`judge`); None when there is no aim

Use from a script (``bench/`` is on ``sys.path`` when a script in it runs)::

    from table import make_row, rows_json
    rows = [make_row("service", "badge .svg (1 worker)", "nginx, static SVG", nginx_rps, rps, "req/s", aim="≥ 0.40")]
    json.dump({..., "table": rows_json(rows)}, sys.stdout)

``bench_all.py`` reads the rows back with :func:`parse_rows` (which refuses a row with missing or extra
keys) and prints them with :func:`markdown`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

#: Aim operators, as written in an aim string ("≤ 1.15"); the ASCII spellings are accepted too.
AIM_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "≤": operator.le,
    "<=": operator.le,
    "≥": operator.ge,
    ">=": operator.ge,
}


class TableError(ValueError):
    """A row or an aim string that does not follow the contract."""


@dataclass(frozen=True)
class Row:
    """One line of the combined table (the module docstring defines each field)."""

    benchmark: str
    what: str
    anchor: str
    anchor_value: float | None
    value: float
    unit: str
    ratio: float | None
    aim: str
    met: bool | None


ROW_KEYS = frozenset(field.name for field in fields(Row))


def judge(aim: str, ratio: float | None) -> bool | None:
    """Whether ``ratio`` meets ``aim`` ("≤ 1.15", "≥ 0.50"); None for an informational row or no ratio.

    Raises :class:`TableError` for an aim that is neither empty nor an operator followed by a number.
    """
    if not aim.strip():
        return None
    op, _, number = aim.strip().partition(" ")
    if op not in AIM_OPERATORS:
        raise TableError(f"aim {aim!r}: expected '≤ N' or '≥ N'")
    try:
        bound = float(number)
    except ValueError:
        raise TableError(f"aim {aim!r}: {number!r} is not a number") from None
    if ratio is None or math.isnan(ratio):
        return None
    return AIM_OPERATORS[op](ratio, bound)


def make_row(
    benchmark: str,
    what: str,
    anchor: str,
    anchor_value: float | None,
    value: float,
    unit: str,
    *,
    aim: str = "",
    ratio: float | None = None,
) -> Row:
    """A row whose ``met`` is judged from ``aim``; ``ratio`` defaults to value / anchor_value (None without one)."""
    if ratio is None and anchor_value:
        ratio = value / anchor_value
    return Row(benchmark, what, anchor, anchor_value, value, unit, ratio, aim, judge(aim, ratio))


def rows_json(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """The rows as the ``"table"`` value of a script's JSON output."""
    return [asdict(r) for r in rows]


def parse_rows(value: object) -> list[Row]:
    """Rows read back from a script's ``"table"``; raises :class:`TableError` on anything off-contract."""
    if not isinstance(value, list):
        raise TableError(f'"table" is a {type(value).__name__}, not a list')
    rows = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise TableError(f"row {i} is a {type(item).__name__}, not an object")
        missing, extra = ROW_KEYS - item.keys(), item.keys() - ROW_KEYS
        if missing or extra:
            raise TableError(f"row {i}: missing keys {sorted(missing)}, unexpected keys {sorted(extra)}")
        rows.append(Row(**item))
    return rows


COLUMNS = ("benchmark", "what", "anchor", "anchor value", "ours", "unit", "ratio", "aim", "met")


def number(value: float | None) -> str:
    """A measurement as the table shows it: thousands grouped, about three significant digits."""
    if value is None:
        return "-"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.1f}"
    if size >= 0.01 or size == 0:
        return f"{value:.2f}"
    return f"{value:.2g}"


def _verdict(met: bool | None) -> str:
    return "" if met is None else ("met" if met else "missed")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: Iterable[Row]) -> str:
    """The rows as one Markdown table (the columns of :data:`COLUMNS`), without a trailing newline."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = (r.benchmark, r.what, r.anchor, number(r.anchor_value), number(r.value), r.unit, number(r.ratio), r.aim)
        lines.append("| " + " | ".join(_cell(c) for c in (*cells, _verdict(r.met))) + " |")
    return "\n".join(lines)
