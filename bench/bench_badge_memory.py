"""Badge memory benchmark: a process's resident memory across 100,000 distinct unknown badge refs.

Run from the project root::

    .venv/bin/python bench/bench_badge_memory.py            # 100,000 refs
    .venv/bin/python bench/bench_badge_memory.py --refs 20000

Anyone can ask for badges of refs that do not exist. This starts the real service (a temporary data
and keys dir, SQLite), asks its badge app for ``--refs`` distinct unknown ``sha256-…`` refs in each
format (``GET /v1/badges/{ref}.svg`` and ``.json`` through the ASGI app, in process), and reports the
process's resident memory (``VmRSS``) before, every 20,000 refs, and after, with the sizes of the
badge caches (bounded by ``service.badges.MAX_CACHED``, least recently used first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from provenance.keys import init_dev_keys  # noqa: E402
from service.app import create_app  # noqa: E402
from service.badges.app import MAX_CACHED  # noqa: E402
from service.settings import load_settings  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        init_dev_keys(Path(tmp) / "keys", "Bench Newsroom")
        app = create_app(load_settings(data_dir=Path(tmp) / "var", keys_dir=Path(tmp) / "keys"))
        service = app.api.state.badges
        with TestClient(app) as client:
            for i in range(1000):  # warm-up: the code paths, the allocator
                client.get(f"/v1/badges/sha256-{i:064x}.svg")
            rows = [("after warm-up", 0, rss_mib(), len(service._cache), len(service._decisions))]
            for i in range(args.refs):
                ref = f"sha256-{(i + 10**6):064x}"
                assert client.get(f"/v1/badges/{ref}.svg").status_code == 404
                assert client.get(f"/v1/badges/{ref}.json").status_code == 404
                if (i + 1) % 20_000 == 0 or i + 1 == args.refs:
                    rows.append(("", i + 1, rss_mib(), len(service._cache), len(service._decisions)))
    print(f"# badge memory: {args.refs:,} distinct unknown refs, 2 formats each; cache cap {MAX_CACHED:,} entries\n")
    print("| point | unknown refs asked | VmRSS MiB | rendered badges cached | decisions cached |")
    print("|---|---|---|---|---|")
    for label, refs, rss, rendered, decisions in rows:
        print(f"| {label} | {refs:,} | {rss:.1f} | {rendered:,} | {decisions:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
