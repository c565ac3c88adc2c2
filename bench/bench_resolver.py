"""Resolver benchmark: a fingerprint lookup (``/matches/byBinding``) on 1,000,000 stored soft bindings.

Run from the project root::

    .venv/bin/python bench/bench_resolver.py                       # 1,000,000 rows, SQLite and PostgreSQL
    .venv/bin/python bench/bench_resolver.py --rows 100000 --databases sqlite

Builds the schema with the shipped migrations, bulk-loads ``--rows`` soft bindings whose codes have 32 of
their 64 bits set (as ISCC Image-Codes do: each bit says whether a DCT coefficient is above the median, so
the chunks are as unevenly spread as in a real index, not uniformly random) and 0.1 % of them withdrawn,
then times :func:`service.resolver.index.matches` (the query of every lookup endpoint): a stored code
exactly, one half the threshold away, one at the threshold (``MAX_DISTANCE``), and a code that matches nothing. The
anchor, in the same run, is the same query without the multi-index probe (a scan checking every row's
distance), which is what an unindexed store would do. PostgreSQL is a throwaway cluster
(``tests.databases.PostgresCluster``: Debian's postgresql, ``fsync=off``), analysed after the load.
"""

from __future__ import annotations

import argparse
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

from sqlalchemy import insert, select, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from provenance.softbinding import ALG, MAX_DISTANCE, SoftBinding  # noqa: E402
from service.resolver import index  # noqa: E402
from service.store.db import SoftBindingEntry, Withdrawal, code_chunks, make_engine, signed64  # noqa: E402
from service.store.schema import upgrade  # noqa: E402

BATCH = 20_000


def balanced_code(rng: random.Random) -> int:
    """A 64-bit code with 32 bits set, like an ISCC Image-Code."""
    value = 0
    for bit in rng.sample(range(64), 32):
        value |= 1 << bit
    return value


def flipped(code: int, bits: int, rng: random.Random) -> int:
    for bit in rng.sample(range(64), bits):
        code ^= 1 << bit
    return code


def load(engine: Engine, rows: int, rng: random.Random) -> tuple[list[int], float]:
    started = time.perf_counter()
    kept: list[int] = []
    with engine.begin() as connection:
        for start in range(0, rows, BATCH):
            batch, withdrawn = [], []
            for i in range(start, min(rows, start + BATCH)):
                code = balanced_code(rng)
                if len(kept) < 1000 and i % 997 == 0:
                    kept.append(code)
                c0, c1, c2 = code_chunks(code)
                item = f"img_{i:024x}"
                batch.append({"manifest_id": f"urn:c2pa:{i:032x}", "kind": "image", "code": signed64(code),
                              "c0": c0, "c1": c1, "c2": c2, "item_id": item, "version": None})  # fmt: skip
                if i % 1000 == 999:
                    withdrawn.append({"item_id": item, "kind": "image", "reason": "bench"})
            connection.execute(insert(SoftBindingEntry), batch)
            if withdrawn:
                connection.execute(insert(Withdrawal), withdrawn)
    seconds = time.perf_counter() - started
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    else:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return kept, seconds


def scan(session: Session, binding: SoftBinding) -> list[Any]:
    """The anchor: the same answer from a scan (every row's distance checked, no index probe)."""
    distance = index._distance(session, signed64(binding.code)).label("distance")
    query = (
        select(SoftBindingEntry.manifest_id, distance)
        .where(SoftBindingEntry.kind == binding.kind, distance <= MAX_DISTANCE)
        .order_by(distance)
        .limit(index.MAX_RESULTS)
    )
    return list(session.execute(query))


def timed(engine: Engine, run: Callable[[Session, SoftBinding], Any], codes: list[int]) -> tuple[float, float, float]:
    """Median and worst milliseconds over the query codes (after one warm-up), and the mean result size."""
    times, sizes = [], []
    with Session(engine) as session:
        run(session, SoftBinding(ALG, "", "image", codes[0]))
        for code in codes:
            started = time.perf_counter()
            found = run(session, SoftBinding(ALG, "", "image", code))
            times.append((time.perf_counter() - started) * 1000)
            sizes.append(len(found))
    return statistics.median(times), max(times), statistics.mean(sizes)


def run(kind: str, rows: int, queries: int, anchor_queries: int) -> None:
    rng = random.Random(13)
    directory = Path(tempfile.mkdtemp(prefix="bench-resolver-"))
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
        kept, seconds = load(engine, rows, rng)
        print(f"\n{kind}: {rows:,} soft bindings loaded in {seconds:.0f} s; threshold {MAX_DISTANCE} bits")
        print(
            f"{'lookup (nearest 20)':34} {'median ms':>10} {'worst ms':>10} {'matches':>8} {'scan ms':>9} {'ratio':>7}"
        )
        cases = {
            "a stored code": [kept[i % len(kept)] for i in range(queries)],
            f"{MAX_DISTANCE // 2} bits from a stored code": [
                flipped(kept[i % len(kept)], MAX_DISTANCE // 2, rng) for i in range(queries)
            ],
            f"{MAX_DISTANCE} bits (threshold)": [
                flipped(kept[i % len(kept)], MAX_DISTANCE, rng) for i in range(queries)
            ],
            "no match (a new image)": [balanced_code(rng) for _ in range(queries)],
        }
        for name, codes in cases.items():
            median, worst, found = timed(engine, index.matches, codes)
            anchor, _worst, _found = timed(engine, scan, codes[:anchor_queries])
            ratio = anchor / max(median, 1e-6)
            print(f"{name:34} {median:10.2f} {worst:10.2f} {found:8.2f} {anchor:9.1f} {ratio:6.0f}x")
        engine.dispose()
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=50, help="lookups timed per case")
    parser.add_argument("--anchor-queries", type=int, default=3, help="scans timed per case (slow)")
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for kind in args.databases:
        run(kind, args.rows, args.queries, args.anchor_queries)


if __name__ == "__main__":
    main()
