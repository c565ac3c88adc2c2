"""Finder benchmark: ``GET /v1/assets`` filters and cursor pages on 1,000,000 stored assets.

Run from the project root::

    .venv/bin/python bench/bench_find.py                       # 1,000,000 rows, SQLite and PostgreSQL
    .venv/bin/python bench/bench_find.py --rows 200000 --databases sqlite

Builds the schema with the shipped migrations (so the indexes measured are the ones deployed), bulk-loads
``--rows`` assets (sources, labels, states, external ids and withdrawals in realistic proportions, one
stamping time every ~30 s over a year, 5 % of them sharing a time with another row) and their label
rows, then times each finder query of :func:`service.store.queries.find_assets` (50 items, the API's
default page) and the report's period count: the median and the worst of ``--repeat`` runs, and how a
page deep in the list (a cursor half-way) compares with the first page. PostgreSQL is a throwaway cluster
(``tests.databases.PostgresCluster``: Debian's postgresql, ``fsync=off``), analysed after the load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from service.store import queries  # noqa: E402
from service.store.db import Asset, AssetLabel, Token, Withdrawal, make_engine  # noqa: E402
from service.store.schema import upgrade  # noqa: E402

BATCH = 10_000
START = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
# (source, labels, share): what newsrooms declare, and the label each declaration gets when trusted.
MIX = [("camera", [], 0.55), ("ai_generated", ["ai_generated"], 0.2), ("ai_edited", ["ai_edited"], 0.15),
       ("human", [], 0.08), ("unknown", [], 0.02)]  # fmt: skip


def _pick(rng: random.Random) -> tuple[str, list[str]]:
    x = rng.random()
    for source, labels, share in MIX:
        if x < share:
            return source, labels
        x -= share
    return MIX[0][0], MIX[0][1]


def load(engine: Engine, rows: int) -> dict[str, Any]:
    """Bulk-load ``rows`` assets (Core inserts: the ORM's label hook is bypassed, so label rows are written
    here); return facts the queries need (a mid-list cursor, an external id, a day)."""
    rng = random.Random(7)
    with Session(engine) as session:
        session.add(Token(name="bench", role="newsroom", secret_sha256="0" * 64))
        session.commit()
    at = START
    middle: tuple[dt.datetime, str] | None = None
    started = time.perf_counter()
    with engine.begin() as connection:
        for offset in range(0, rows, BATCH):
            assets, labels, withdrawn = [], [], []
            for i in range(offset, min(rows, offset + BATCH)):
                if rng.random() >= 0.05:  # 5 % share their time with the previous row: the id decides
                    at += dt.timedelta(seconds=rng.randint(1, 60), microseconds=rng.randint(0, 999_999))
                source, given = _pick(rng)
                state = "trusted" if rng.random() < 0.95 else rng.choice(["untrusted", "invalid"])
                given = given if state == "trusted" else []
                if state == "trusted" and rng.random() < 0.01:
                    given = [*given, "ai_reported"]  # a rare label (1 %)
                ident = f"img_{i:024x}"
                assets.append(
                    {"id": ident, "upload_sha256": f"{i:064x}", "stamped_sha256": f"{i + rows:064x}",
                     "manifest": b"", "media_type": "image/jpeg", "declaration": {"source": source},
                     "state": state, "labels": given, "verdict": {}, "upstream": {}, "signer_chain": [],
                     "trust_fingerprint": "f", "created_at": at, "token_id": 1, "idempotency_key": None,
                     "source": source, "external_id": f"cms-{i}"}
                )  # fmt: skip
                labels += [{"asset_id": ident, "label": label, "created_at": at} for label in given]
                if rng.random() < 0.001:
                    withdrawn.append({"item_id": ident, "kind": "image", "withdrawn_at": at, "reason": "bench"})
                if i == rows // 2:
                    middle = (at, ident)
            connection.execute(insert(Asset), assets)
            if labels:
                connection.execute(insert(AssetLabel), labels)
            if withdrawn:
                connection.execute(insert(Withdrawal), withdrawn)
    seconds = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    assert middle is not None
    return {"middle": middle, "external_id": f"cms-{rows // 3}", "day": START + (at - START) / 2, "load_s": seconds}


def timed(engine: Engine, run: Callable[[Session], Any], repeat: int) -> tuple[float, float, int]:
    """Median and worst milliseconds of ``repeat`` runs (after one warm-up), and the result size."""
    times = []
    size = 0
    with Session(engine) as session:
        result = run(session)
        size = len(result) if isinstance(result, list) else int(result)
        for _ in range(repeat):
            started = time.perf_counter()
            run(session)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times), size


def scenarios(facts: dict[str, Any]) -> dict[str, Callable[[Session], Any]]:
    f = queries.Filters
    middle, day = facts["middle"], facts["day"]
    week = {"since": day, "until": day + dt.timedelta(days=7)}

    def find(filters: queries.Filters, after: Any = None) -> Callable[[Session], Any]:
        return lambda session: queries.find_assets(session, filters, after, 51)

    return {
        "first page, no filter": find(f()),
        "page half-way (cursor), no filter": find(f(), middle),
        "label ai_generated (20 %)": find(f(label="ai_generated")),
        "label ai_generated, half-way": find(f(label="ai_generated"), middle),
        "label ai_reported (1 %)": find(f(label="ai_reported")),
        "label none (~65 %)": find(f(label="none")),
        "state invalid (2.5 %)": find(f(state="invalid")),
        "source camera (55 %)": find(f(source="camera")),
        "source unknown (2 %), half-way": find(f(source="unknown"), middle),
        "external_id (one row)": find(f(external_id=facts["external_id"])),
        "since/until one week": find(f(**week)),
        "label ai_edited + one week": find(f(label="ai_edited", **week)),
        "state invalid + source human": find(f(state="invalid", source="human")),
        "withdrawn (0.1 %)": find(f(withdrawn=True)),
        "report count, one month": lambda session: queries.count_stamped(session, day, day + dt.timedelta(days=30)),
    }


def run(kind: str, rows: int, repeat: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-find-"))
    cluster = None
    if kind == "postgresql":
        from tests.databases import PostgresCluster
        from tests.server_support import free_port

        cluster = PostgresCluster.start(free_port())
        cluster.create_database("bench")
        url = cluster.url("bench")
    else:
        url = f"sqlite:///{directory / 'bench.db'}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        facts = load(engine, rows)
        print(f"\n{kind}: {rows:,} assets loaded in {facts['load_s']:.0f} s (batches of {BATCH:,})")
        print(f"{'query (page of 50)':40} {'median ms':>10} {'worst ms':>10} {'rows':>7}")
        results = {}
        for name, query in scenarios(facts).items():
            median, worst, size = timed(engine, query, repeat)
            results[name] = median
            print(f"{name:40} {median:10.2f} {worst:10.2f} {size:7}")
        ratio = results["page half-way (cursor), no filter"] / max(results["first page, no filter"], 1e-6)
        print(f"half-way page / first page: {ratio:.2f}x (keyset pages cost the same at any depth)")
        engine.dispose()
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for kind in args.databases:
        run(kind, args.rows, args.repeat)


if __name__ == "__main__":
    main()
