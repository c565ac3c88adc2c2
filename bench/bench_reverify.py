"""Re-verifications per second with 1 and with 2 `provenance worker` processes, on PostgreSQL.

Starts a throwaway PostgreSQL cluster (as the tests do), stamps a few distinct images, seeds ``--items``
rows that point at their bytes and were decided under another trust (so each re-verification is real
SDK work on real stamped files), then for 1 and 2 workers: marks every row stale again, runs
``provenance reverify`` (queued for the workers, waited for) and prints items/s; then the ratio.

    .venv/bin/python bench/bench_reverify.py [--items 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provenance.keys import init_dev_keys
from service.context import build_context
from service.ingest.pipeline import ingest_asset
from service.ingest.schemas import Declaration
from service.settings import load_settings
from service.store.db import Asset
from tests import images
from tests.databases import PostgresCluster
from tests.server_support import CLI, free_port

STALE = "0" * 64
ORIGINALS = 4  # distinct stamped files the rows point at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="items per reverify_batch job")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    options = parser.parse_args()
    cluster = PostgresCluster.start(free_port())
    try:
        with tempfile.TemporaryDirectory(prefix="bench-reverify-") as tmp:
            rates = run(cluster, Path(tmp), options.items, options.batch, options.workers)
    finally:
        cluster.stop()
    for count, rate in rates.items():
        print(f"{count} worker(s): {rate:.1f} items/s")
    if len(rates) >= 2:
        first, *_, last = rates
        print(f"ratio {last}/{first} workers: {rates[last] / rates[first]:.2f}")


def run(cluster: PostgresCluster, tmp: Path, items: int, batch: int, counts: list[int]) -> dict[int, float]:
    keys, data = tmp / "keys", tmp / "var"
    init_dev_keys(keys, "Bench Newsroom")
    cluster.create_database("bench")
    url = cluster.url("bench")
    settings = load_settings(data_dir=data, keys_dir=keys, database_url=url)
    env = {**os.environ, "PROVENANCE_DATABASE_URL": url, "PROVENANCE_REVERIFY_BATCH_SIZE": str(batch)}
    env["PROVENANCE_LOG_LEVEL"] = "warning"
    where = ["--data-dir", str(data), "--keys-dir", str(keys)]
    rates: dict[int, float] = {}
    with closing(build_context(settings)) as ctx:
        seed(ctx, items)
        for count in counts:
            with ctx.session() as session:  # every row stale again
                session.execute(update(Asset).values(trust_fingerprint=STALE))
                session.commit()
            workers = [subprocess.Popen([*CLI, "worker", *where], env=env) for _ in range(count)]
            try:
                assert ctx.jobs is not None
                while ctx.jobs.workers_alive() < count:
                    time.sleep(0.2)
                start = time.perf_counter()
                subprocess.run([*CLI, "reverify", *where], env=env, check=True)
                rates[count] = (items + ORIGINALS) / (time.perf_counter() - start)
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(timeout=120)
            print(f"{count} worker(s): {rates[count]:.1f} items/s", flush=True)
    return rates


def seed(ctx: Any, items: int) -> None:
    rows = [
        ingest_asset(ctx, images.jpeg(seed=7000 + i), Declaration.model_validate({"source": "ai_generated"}), None).row
        for i in range(ORIGINALS)
    ]
    columns = ("upload_sha256", "stamped_sha256", "manifest", "media_type", "declaration", "verdict", "upstream")
    for start in range(0, items, 5000):
        values = [
            {
                **{c: getattr(rows[i % ORIGINALS], c) for c in columns},
                "id": f"bench-{i:07d}",
                "signer_chain": rows[i % ORIGINALS].signer_chain,
                "state": "trusted",
                "labels": ["ai_generated"],
                "trust_fingerprint": STALE,
                "source": "ai_generated",
            }
            for i in range(start, min(items, start + 5000))
        ]
        with ctx.session() as session:
            session.execute(insert(Asset), values)
            session.commit()


if __name__ == "__main__":
    main()
