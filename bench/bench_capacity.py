"""What bounds the write path: signatures per second and durable commits per second (docs/scaling.md).

Two measurements, each side by side in one run:

- **Signatures/s**: the C2PA claim signature of one stamp (ES256 over a claim-sized payload), with the key in
  memory (``FileKeySigner``) and on a PKCS#11 token (SoftHSM2, ``Pkcs11Signer``: one ``C_Sign`` per stamp).
  SoftHSM2 is software; a network HSM adds its round trip, so take the token figure as an upper bound and
  put the vendor's signatures/s next to it.
- **Commits/s**: the transaction of one upload (an asset row with its label row, its audit event and its
  change-feed row), durable: SQLite in WAL mode with ``synchronous=FULL`` (the service's settings) and
  PostgreSQL with ``fsync=on, synchronous_commit=on`` (a throwaway cluster of Debian's postgresql, started
  here), with 1 and 4 writer threads.

Run: ``.venv/bin/python bench/bench_capacity.py [--seconds 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from sqlalchemy.engine import Engine

from provenance.keys import FileKeySigner, Pkcs11Config, init_pkcs11_keys, issue_chain, load_signer
from service.store.db import Asset, AuditEvent, Change, make_engine, make_sessionmaker
from service.store.schema import upgrade

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "1234"
CLAIM = os.urandom(3000)  # about the size of a stamp's signed claim


def rate(work: Callable[[], None], seconds: float, threads: int = 1) -> float:
    """Calls of ``work`` per second, over ``seconds``, from ``threads`` threads."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        while time.perf_counter() < stop:
            work()
            done[slot] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started)


def signatures(seconds: float, scratch: Path) -> dict[str, float]:
    chain = issue_chain("Bench Newsroom")
    in_memory = FileKeySigner.from_pem(chain.key_pem, chain.chain_pem)
    results = {"key in memory (ES256)": rate(lambda: in_memory.sign(CLAIM), seconds)}
    util = shutil.which("softhsm2-util")
    if util is None or not SOFTHSM.exists():
        print("SoftHSM2 is not installed (scripts/install-system-deps): token figure left out")
        return results
    (scratch / "tokens").mkdir()
    conf = scratch / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {scratch / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", "bench", "--pin", PIN, "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    keys = scratch / "keys"
    init_pkcs11_keys(keys, Pkcs11Config(SOFTHSM, "bench", "signer", PIN), "Bench Newsroom")
    token = load_signer(keys, PIN)
    results["SoftHSM2 token (ES256)"] = rate(lambda: token.sign(CLAIM), seconds)
    return results


def upload_transaction(engine: Engine) -> Callable[[], None]:
    sessions = make_sessionmaker(engine)

    def commit() -> None:
        asset_id = "img_" + uuid.uuid4().hex[:24]
        with sessions() as session:
            session.add(
                Asset(
                    id=asset_id,
                    upload_sha256=os.urandom(32).hex(),
                    stamped_sha256=os.urandom(32).hex(),
                    manifest=CLAIM,
                    media_type="image/jpeg",
                    declaration={"source": "ai_generated", "external_id": asset_id},
                    state="trusted",
                    labels=["ai_generated"],
                    verdict={"state": "trusted"},
                    upstream={},
                    signer_chain=[],
                    trust_fingerprint="f" * 64,
                )
            )
            session.add(AuditEvent(kind="stamp", subject=asset_id, detail={"labels": ["ai_generated"]}))
            session.add(Change(kind="image", ref=asset_id, reason="stamped"))
            session.commit()

    return commit


def commits(seconds: float, scratch: Path) -> dict[str, float]:
    from tests.databases import PostgresCluster
    from tests.server_support import free_port

    results: dict[str, float] = {}
    sqlite = make_engine(f"sqlite:///{scratch / 'bench.sqlite3'}")
    upgrade(sqlite)
    for threads in (1, 4):
        results[f"SQLite (WAL, synchronous=FULL), {threads} thread(s)"] = rate(
            upload_transaction(sqlite), seconds, threads
        )
    sqlite.dispose()
    cluster = PostgresCluster.start(free_port())
    try:
        conninfo = f"host=127.0.0.1 port={cluster.port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:  # the test cluster runs without fsync
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                conn.execute(f"ALTER SYSTEM SET {setting} = on")
            conn.execute("SELECT pg_reload_conf()")
        cluster.create_database("bench")
        postgres = make_engine(cluster.url("bench"))
        upgrade(postgres)
        for threads in (1, 4):
            results[f"PostgreSQL (fsync on), {threads} thread(s)"] = rate(
                upload_transaction(postgres), seconds, threads
            )
        postgres.dispose()
    finally:
        cluster.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    try:
        print(f"{'signatures':55} {'per s':>10}")
        for name, value in signatures(args.seconds, scratch).items():
            print(f"{name:55} {value:10,.0f}")
        print(f"\n{'durable upload transactions':55} {'per s':>10}")
        for name, value in commits(args.seconds, scratch).items():
            print(f"{name:55} {value:10,.0f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
