"""Race benchmark: many rounds of concurrent writers against two server processes on one database.

Run from the project root::

    .venv/bin/python bench/bench_races.py                 # 30 rounds of each race, both databases
    .venv/bin/python bench/bench_races.py --rounds 100 --racers 8 --databases postgresql

For each database (the embedded SQLite; a throwaway PostgreSQL cluster, as the tests start it) this
starts two real ``provenance serve`` processes on one data directory (one blob store) and one database,
and runs ``--rounds`` rounds of each race, ``--racers`` requests released together by a barrier and
spread over both processes:

- identical uploads (the same bytes and declaration): expected one 201 and the rest 200, one asset;
- one ``Idempotency-Key`` with different uploads: expected one 201 and the rest 422;
- corrections of one article to the same new version with different text: one 201, the rest 409.

It reports the answers by status, rounds whose outcome was not exactly the expected one, any 5xx,
the median and 95th percentile of a round's wall time, and at the end the stamped files no row
points to (expected: none; originals and texts that losers share by content are counted apart), then
what ``provenance gc`` removed and what is left (expected: nothing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import create_engine, select  # noqa: E402

from provenance.articles import parse_payload  # noqa: E402
from provenance.keys import init_dev_keys  # noqa: E402
from service.store.db import ArticleVersion, Asset  # noqa: E402
from tests import images  # noqa: E402
from tests.databases import Database, PostgresCluster  # noqa: E402
from tests.server_support import Server, create_token, free_port, serve  # noqa: E402

SAMPLE = ROOT / "samples" / "articles" / "ai-weather.json"

Call = Callable[[], httpx.Response]


def together(calls: list[Call]) -> tuple[list[int], float]:
    barrier = threading.Barrier(len(calls))

    def run(call: Call) -> int:
        barrier.wait()
        return call().status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(len(calls)) as pool:
        codes = list(pool.map(run, calls))
    return codes, time.perf_counter() - started


class Race:
    def __init__(self, name: str, expected: Counter[int]) -> None:
        self.name, self.expected = name, expected
        self.codes: Counter[int] = Counter()
        self.unexpected = 0
        self.times: list[float] = []

    def record(self, codes: list[int], seconds: float) -> None:
        self.codes.update(codes)
        self.unexpected += Counter(codes) != self.expected
        self.times.append(seconds)

    def row(self) -> str:
        p95 = statistics.quantiles(self.times, n=20)[-1] if len(self.times) > 1 else self.times[0]
        answers = ", ".join(f"{n} x {code}" for code, n in sorted(self.codes.items()))
        server_errors = sum(n for code, n in self.codes.items() if code >= 500)
        return (
            f"| {self.name} | {len(self.times)} | {answers} | {self.unexpected} | {server_errors} | "
            f"{statistics.median(self.times) * 1000:.0f} | {p95 * 1000:.0f} |"
        )


def image_of(seed: int) -> bytes:
    """A distinct JPEG per seed (``images.jpeg`` repeats every 256 seeds)."""
    return images.encode(images.noise(320, 240, seed), "JPEG", quality=90)


def correction(version: int, headline: str) -> bytes:
    payload = json.loads(SAMPLE.read_text())
    payload.update(version=version, headline=headline)
    return json.dumps(payload).encode()


def run(database: Database, rounds: int, racers: int, root: Path) -> tuple[list[Race], int, int, str]:
    keys, data_dir = root / "keys", root / "var"
    init_dev_keys(keys, "Race Newsroom")
    with ExitStack() as stack:
        unlimited = {"PROVENANCE_RATE_LIMIT_PER_MINUTE": "100000000"}  # the per-token limit is not under test
        servers = [stack.enter_context(serve(database, data_dir, keys, env=unlimited)) for _ in range(2)]
        token = create_token(servers[0], "newsroom")
        headers = {"Authorization": f"Bearer {token}"}
        spread = [servers[n % 2] for n in range(racers)]

        def post(server: Server, path: str, extra: dict[str, str] | None = None, **kwargs: object) -> Call:
            return lambda: httpx.post(server.base + path, headers={**headers, **(extra or {})}, timeout=120, **kwargs)  # type: ignore[arg-type]

        def upload(data: bytes) -> dict[str, object]:
            return {"files": {"file": ("x.jpg", data, "image/jpeg")}, "data": {"declaration": '{"source": "camera"}'}}

        same = Race("identical uploads", Counter({201: 1, 200: racers - 1}))
        keyed = Race("one Idempotency-Key, different uploads", Counter({201: 1, 422: racers - 1}))
        fixes = Race("corrections with different text", Counter({201: 1, 409: racers - 1}))
        inputs: set[str] = set()
        for n in range(rounds):
            image = image_of(10_000 + n)
            inputs.add(hashlib.sha256(image).hexdigest())
            same.record(*together([post(s, "/v1/assets", **upload(image)) for s in spread]))
            bodies = [image_of(20_000 + n * racers + k) for k in range(racers)]
            inputs |= {hashlib.sha256(b).hexdigest() for b in bodies}
            key = {"Idempotency-Key": f"round-{n}"}
            keyed.record(
                *together([post(s, "/v1/assets", key, **upload(b)) for s, b in zip(spread, bodies, strict=True)])
            )
            base = correction(1, f"Round {n}")
            payload = json.loads(base)
            payload["external_id"] = f"race/{n}"
            base = json.dumps(payload).encode()
            assert post(servers[0], "/v1/articles", content=base)().status_code == 201
            texts = []
            for k in range(racers):
                payload.update(version=2, headline=f"Round {n}, correction {k}")
                texts.append(json.dumps(payload).encode())
            for body in (base, *texts):
                inputs.add(hashlib.sha256(body).hexdigest())
                inputs.add(hashlib.sha256(parse_payload(body).canonical_text()).hexdigest())
            fixes.record(*together([post(s, "/v1/articles", content=t) for s, t in zip(spread, texts, strict=True)]))
        url = database.url(data_dir) or f"sqlite:///{data_dir / 'provenance.sqlite3'}"
    engine = create_engine(url)
    with engine.connect() as connection:
        referenced = {
            *connection.scalars(select(Asset.upload_sha256)),
            *connection.scalars(select(Asset.stamped_sha256)),
        }
        for column in (ArticleVersion.text_sha256, ArticleVersion.manifest_sha256, ArticleVersion.payload_sha256):
            referenced |= set(connection.scalars(select(column)))
    engine.dispose()
    unreferenced = blob_names(data_dir) - referenced
    shared = len(unreferenced & inputs)
    collected = subprocess.run(
        [sys.executable, "-m", "service.cli", "gc", "--data-dir", str(data_dir), "--keys-dir", str(keys)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **database.env(data_dir)},
    )
    left = len(blob_names(data_dir) - referenced)
    return [same, keyed, fixes], len(unreferenced) - shared, shared, f"{collected.stdout.strip()}; {left} left"


def blob_names(data_dir: Path) -> set[str]:
    return {p.parent.name + p.name for p in (data_dir / "blobs").glob("*/*") if not p.name.startswith(".")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--racers", type=int, default=8)
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"{args.rounds} rounds of each race, {args.racers} racers over two server processes\n")
    print("| database | race | rounds | answers | rounds not as expected | 5xx | round p50 ms | round p95 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.databases:
        cluster = PostgresCluster.start(free_port()) if kind == "postgresql" else None
        try:
            with tempfile.TemporaryDirectory(prefix="bench-races-") as tmp:
                races, stamped, shared, gc = run(Database(kind, cluster), args.rounds, args.racers, Path(tmp))
        finally:
            if cluster is not None:
                cluster.stop()
        for race in races:
            print(f"| {kind} {race.row()}")
        print(
            f"| {kind} | unreferenced blobs | stamped: {stamped} | shared by content: {shared} | then gc: {gc} | | | |"
        )


if __name__ == "__main__":
    main()
