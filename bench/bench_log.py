"""What the transparency log costs: on the upload path (µs and bytes per entry), in sequencing, and in size.

Run from the project root::

    .venv/bin/python bench/bench_log.py                        # SQLite and PostgreSQL
    .venv/bin/python bench/bench_log.py --databases sqlite --commits 1000 --entries 50000

For each database (SQLite: the embedded default, durable as the service opens it; PostgreSQL: a throwaway
cluster as the tests start it, ``fsync=off``, so the figures are the work and not the disk):

1. **Upload path, the row.** A real stamped asset is stored again and again under new ids, through the
   service's own engine and ORM session (its label rows, its ``before_flush`` hooks), and each commit is
   timed with the log's hooks (:func:`service.store.db._log_events`: one ``log_entries`` row in the same
   transaction) and without them, interleaved pair by pair; the median difference is what an entry costs.
2. **Upload path, whole.** ``ingest_asset`` (inspect, stamp, store: what ``POST /v1/assets`` does after
   reading the body) of distinct images with the hook and without, interleaved: the ratio.
3. **Sequencing.** ``--entries`` pending entries are sequenced by :func:`service.log.sequencer.sequence_once`
   rounds of ``log_batch`` (4096) entries: entries/s, and a round's time.
4. **Size.** The bytes of an entry (its C2SP bundle record), what the database holds per entry (the
   ``log_entries`` row with its index, the hash tiles, the checkpoints; measured with SQLite's ``dbstat``
   and PostgreSQL's ``pg_total_relation_size``), and the static files a mirror holds (bundles and tiles):
   each as MB per million stamps. A checkpoint is signed per round that had entries, so its share depends
   on the traffic: given for a round per entry (one stamp a second or fewer) and for full rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.orm import Session

from provenance.tlog import TILE_WIDTH
from service.context import ServiceContext, build_context
from service.ingest.pipeline import ingest_asset
from service.ingest.schemas import Declaration
from service.log.sequencer import sequence_once
from service.settings import load_settings
from service.store.db import Asset, LogCheckpoint, LogEntry, LogTile, _log_events, _write_log_events
from tests import images
from tests.databases import PostgresCluster
from tests.server_support import free_port

MB_PER_MILLION = 1_000_000 / 1e6  # bytes per entry -> MB per million entries
COPIED = ("upload_sha256", "stamped_sha256", "manifest", "media_type", "declaration", "state", "labels", "verdict")
COPIED += ("upstream", "signer_chain", "trust_fingerprint", "source")


class Hook:
    """The log's flush hooks, switched on and off between samples."""

    on = True

    def set(self, on: bool) -> None:
        if on != self.on:
            for name, hook in (("before_flush", _log_events), ("after_flush", _write_log_events)):
                (event.listen if on else event.remove)(Session, name, hook)
            self.on = on


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def bench_row(ctx: ServiceContext, hook: Hook, model: Asset, commits: int) -> dict[str, float]:
    """Median µs of one asset commit with and without its log entry, interleaved."""
    timed: dict[bool, list[float]] = {True: [], False: []}
    for i in range(commits):
        for on in (True, False) if i % 2 == 0 else (False, True):
            hook.set(on)
            row = Asset(**{c: getattr(model, c) for c in COPIED}, id=f"bench-{on:d}-{i:07d}")
            with ctx.session() as session:
                started = time.perf_counter()
                session.add(row)
                session.commit()
                timed[on].append(time.perf_counter() - started)
    hook.set(True)
    with_log, without = median_us(timed[True]), median_us(timed[False])
    return {"commit_with_us": with_log, "commit_without_us": without, "entry_us": with_log - without}


def bench_ingest(ctx: ServiceContext, hook: Hook, count: int) -> dict[str, float]:
    """Median ms of a whole ingest with and without the log, interleaved on distinct images."""
    declaration = Declaration.model_validate({"source": "ai_generated", "title": "Generated illustration"})
    timed: dict[bool, list[float]] = {True: [], False: []}
    for i in range(count):
        for on in (True, False) if i % 2 == 0 else (False, True):
            hook.set(on)
            data = images.jpeg(640, 480, seed=90_000 + 2 * i + on)
            started = time.perf_counter()
            ingest_asset(ctx, data, declaration, None)
            timed[on].append(time.perf_counter() - started)
    hook.set(True)
    with_log, without = statistics.median(timed[True]) * 1e3, statistics.median(timed[False]) * 1e3
    return {"ingest_with_ms": with_log, "ingest_without_ms": without, "ingest_ratio": with_log / without}


def pend(ctx: ServiceContext, total: int) -> None:
    """Pending entries up to ``total`` (copies of a real pending stamp entry, under new item ids)."""
    with ctx.session() as session:
        have = session.scalar(select(func.count()).select_from(LogEntry)) or 0
        model = session.scalars(select(LogEntry).order_by(LogEntry.id.desc()).limit(1)).one()
        record, at = model.record, model.at
    for start in range(have, total, 10_000):
        rows = [
            {"event": "stamp", "item_id": f"pend-{i:08d}", "record": {**record, "item": f"pend-{i:08d}"}, "at": at}
            for i in range(start, min(total, start + 10_000))
        ]
        with ctx.session() as session:
            session.execute(insert(LogEntry), rows)
            session.commit()


def bench_sequence(ctx: ServiceContext, batch: int) -> dict[str, float]:
    rounds: list[float] = []
    added = 0
    started = time.perf_counter()
    while True:
        begun = time.perf_counter()
        done = sequence_once(ctx.engine, ctx.sessions, ctx.log_key, batch)
        if done.added == 0:
            break
        rounds.append(time.perf_counter() - begun)
        added += done.added
    elapsed = time.perf_counter() - started
    return {"sequenced": added, "entries_per_s": added / elapsed, "round_ms": statistics.median(rounds) * 1e3}


def table_bytes(ctx: ServiceContext, tables: list[str]) -> int:
    with ctx.engine.connect() as connection:
        if ctx.engine.dialect.name == "postgresql":  # the live rows: autovacuum reuses a sequenced row's old version
            vacuum = connection.execution_options(isolation_level="AUTOCOMMIT")
            for t in tables:
                vacuum.execute(text(f"VACUUM FULL {t}"))
            return sum(int(connection.scalar(text(f"SELECT pg_total_relation_size('{t}')")) or 0) for t in tables)
        # Every page of the table and of its indexes.
        pages = "SELECT SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master WHERE tbl_name = :t)"
        return sum(int(connection.scalar(text(pages), {"t": t}) or 0) for t in tables)


def sizes(ctx: ServiceContext) -> dict[str, float]:
    with ctx.session() as session:
        count = session.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.idx.is_not(None))) or 0
        entry = session.scalar(select(func.avg(func.length(LogEntry.entry))).where(LogEntry.idx.is_not(None)))
        note = session.scalars(select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)).one()
    checkpoint_bytes = len(note.note) + len(note.root) + 8 + 8  # the note, the root, the size and the time
    entries_db = table_bytes(ctx, ["log_entries"]) / count
    tiles_db = table_bytes(ctx, ["log_tiles"]) / count
    # A mirror's files: each entry in a bundle (a 2-byte length, then the entry) and the hash tiles (32 bytes a
    # hash at level 0, a 256th of that at each level above); partial tiles are not kept once full.
    tiles_static = 32 * sum(count // TILE_WIDTH**level for level in range(4) if count // TILE_WIDTH**level) / count
    return {
        "entries": count,
        "entry_bytes": float(entry or 0),
        "db_entry_bytes": entries_db,
        "db_tile_bytes": tiles_db,
        "checkpoint_bytes": checkpoint_bytes,
        "static_bundle_bytes": 2 + float(entry or 0),
        "static_tile_bytes": tiles_static,
    }


def run(url: str | None, tmp: Path, options: argparse.Namespace) -> dict[str, float]:
    from provenance.keys import init_dev_keys

    keys, data = tmp / "keys", tmp / "var"
    init_dev_keys(keys, "Bench Newsroom")
    settings = load_settings(data_dir=data, keys_dir=keys, database_url=url, log_level="warning")
    hook = Hook()
    with closing(build_context(settings)) as ctx:
        declaration = Declaration.model_validate({"source": "ai_generated", "title": "Generated illustration"})
        model = ingest_asset(ctx, images.jpeg(640, 480, seed=1), declaration, None).row
        for i in range(20):  # warm: the engine's pool, the statement caches
            ingest_asset(ctx, images.jpeg(640, 480, seed=100 + i), declaration, None)
        figures = bench_row(ctx, hook, model, options.commits)
        figures |= bench_ingest(ctx, hook, options.ingests)
        pend(ctx, options.entries)
        figures |= bench_sequence(ctx, options.batch)
        figures |= sizes(ctx)
        with ctx.session() as session:
            figures["checkpoints"] = session.scalar(select(func.count()).select_from(LogCheckpoint)) or 0
            figures["tiles"] = session.scalar(select(func.count()).select_from(LogTile)) or 0
    return figures


def report(name: str, f: dict[str, float], batch: int) -> None:
    per_entry_db = f["db_entry_bytes"] + f["db_tile_bytes"]
    print(f"\n{name}")
    print(
        f"  commit of a stored asset: {f['commit_without_us']:.0f} µs without its entry, "
        f"{f['commit_with_us']:.0f} µs with"
    )
    print(f"  an entry on the upload path: {f['entry_us']:.0f} µs; bytes: {f['entry_bytes']:.0f} (the entry)")
    print(f"  whole ingest: {f['ingest_without_ms']:.1f} ms without, {f['ingest_with_ms']:.1f} ms with: "
          f"{f['ingest_ratio']:.3f}x")  # fmt: skip
    print(f"  sequencing: {f['entries_per_s']:,.0f} entries/s ({f['sequenced']:,.0f} entries, "
          f"{f['round_ms']:.0f} ms a round of {batch} entries)")  # fmt: skip
    print(f"  database per entry: {f['db_entry_bytes']:.0f} B row + {f['db_tile_bytes']:.1f} B tiles "
          f"+ checkpoints {f['checkpoint_bytes']:.0f} B a round")  # fmt: skip
    print(f"  per million stamps: database {per_entry_db * MB_PER_MILLION:,.0f} MB "
          f"(+ {f['checkpoint_bytes'] * MB_PER_MILLION:,.0f} MB of checkpoints at a round per stamp, "
          f"{f['checkpoint_bytes'] / batch * MB_PER_MILLION:,.2f} MB at full rounds); "
          f"static files {(f['static_bundle_bytes'] + f['static_tile_bytes']) * MB_PER_MILLION:,.0f} MB")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--commits", type=int, default=2000, help="timed commit pairs (with and without)")
    parser.add_argument("--ingests", type=int, default=150, help="timed ingest pairs")
    parser.add_argument("--entries", type=int, default=200_000, help="entries to sequence")
    parser.add_argument("--batch", type=int, default=4096, help="entries a sequencing round (log_batch)")
    options = parser.parse_args(argv)
    t0 = time.perf_counter()
    for name in options.databases:
        with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
            if name == "sqlite":
                report("SQLite (durable, the embedded default)", run(None, Path(tmp), options), options.batch)
                continue
            cluster = PostgresCluster.start(free_port())
            try:
                cluster.create_database("bench")
                report("PostgreSQL (fsync=off)", run(cluster.url("bench"), Path(tmp), options), options.batch)
            finally:
                cluster.stop()
    print(f"\n({dt.timedelta(seconds=round(time.perf_counter() - t0))} in all)")


if __name__ == "__main__":
    main()
