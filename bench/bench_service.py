"""Service benchmark: badge lookups against nginx, upload ingest against raw c2pa-python stamping.

Run from the project root (needs ``wrk`` and ``nginx`` on PATH: ``apt-get install -y wrk nginx``)::

    .venv/bin/python bench/bench_service.py                       # workers 1 and 2, 10 s per wrk run
    .venv/bin/python bench/bench_service.py --duration 5 --workers 2
    .venv/bin/python bench/bench_service.py --json > out.json     # machine-readable
    .venv/bin/python bench/bench_service.py --uvicorn "--http h11" # uvicorn with options, not `serve`

In one run it prepares a temporary data and keys dir (``provenance keys init``), starts the real
service (``provenance serve``) per ``--workers`` value, waits for ``/readyz``, creates a newsroom
token and uploads one AI-generated JPEG. It then starts nginx (``bench/nginx.conf.template``)
serving the very SVG bytes of that asset's badge as a static file, and runs ``wrk -t2 -c64
--latency`` against, one after the other:

* nginx's static SVG and its 304 (the reference);
* a minimal bare ASGI app under the same uvicorn, returning the same bytes (the ceiling for any
  Python handler; skip with ``--no-reference``);
* ``GET /v1/badges/{id}.svg``, ``.json``, and ``.svg`` with ``If-None-Match`` (the 304 path).

Then it times uploads (``POST /v1/assets``) of distinct ~1 MB noisy JPEGs, sequentially and with
``--upload-concurrency`` (4) concurrent clients, against raw c2pa-python stamping of the same files
in-process (one Context, one Signer, thumbnails off: ``bench_core.RawSdk``) with as many threads:
a plain sign (the issue's anchor) and a sign that also computes and embeds the ISCC image code
every stamp carries as its soft binding (``sign+code``, like for like).

Targets (docs): badge lookups >= 40% of nginx's req/s with p99 <= 5 ms at 64 connections; upload
ingest >= 50% of raw stamp throughput. Every process started here is stopped at the end, also on
errors and on Ctrl-C. The service runs with ``PROVENANCE_RATE_LIMIT_PER_MINUTE`` raised so the
per-token limit does not throttle the upload runs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for entry in (str(ROOT), str(BENCH)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import httpx  # noqa: E402
from bench_core import RawSdk, noisy_jpeg  # noqa: E402
from table import Row, make_row, rows_json  # noqa: E402

from provenance.keys import Algorithm, DevKeyPaths, IssuedChain  # noqa: E402

VENV_BIN = Path(sys.executable).parent
PROVENANCE = VENV_BIN / "provenance"
UVICORN = VENV_BIN / "uvicorn"
TEMPLATE = BENCH / "nginx.conf.template"

BADGE_RPS_RATIO = 0.40  # badge req/s / nginx req/s
BADGE_P99_MS = 5.0
UPLOAD_RATIO = 0.50  # uploads/s / raw stamps/s
DECLARATION = '{"source":"ai_generated"}'

#: A bare ASGI app for the reference row: the same body and headers as a badge, nothing else.
BARE_ASGI = """
import os
BODY = open(os.environ["BENCH_SVG"], "rb").read()
START = {"type": "http.response.start", "status": 200, "headers": [
    (b"content-type", b"image/svg+xml"), (b"etag", b'"0123456789abcdef0123456789abcdef"'),
    (b"cache-control", b"public, max-age=60"), (b"content-security-policy", b"default-src 'none'"),
    (b"x-content-type-options", b"nosniff"), (b"access-control-allow-origin", b"*"),
    (b"vary", b"Accept-Language"), (b"content-length", str(len(BODY)).encode())]}
MSG = {"type": "http.response.body", "body": BODY}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send(MSG)
"""


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without settings that would point the service elsewhere, plus ``extra``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_") and k.upper() != "DATABASE_URL"}
    return {**inherited, **(extra or {})}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------- processes


class Processes:
    """Every child started here, each in its own session so its whole group can be stopped."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        logfile = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            env=clean_env(env),
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=ROOT,
        )
        logfile.close()
        self.running.append((name, proc))
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the group of a child we started (own session)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        # workers of a multi-process server may outlive their parent for a moment
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        self.running = [(n, p) for n, p in self.running if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self.running)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def wait_ready(url: str, proc: subprocess.Popen[bytes], procs: Processes, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited with {proc.returncode}:\n{procs.log_tail(name)}")
        with contextlib.suppress(OSError):
            if http_get(url)[0] == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"{name} not ready at {url} after {timeout:.0f} s:\n{procs.log_tail(name)}")


# ---------------------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    name: str
    url: str
    workers: int | None
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non_2xx_3xx: int
    socket_errors: int
    badge: bool  # the badge targets apply to this row
    busy_before: float = 0.0  # CPU use by other processes just before the chosen run
    all_rps: list[float] = field(default_factory=list)  # every repetition
    all_p99_ms: list[float] = field(default_factory=list)
    ratio: float | None = None  # rps / nginx rps
    refs: int = 1  # distinct badge refs (or static files) the run cycles through
    anchor: str = "nginx static svg"  # the row whose req/s ``ratio`` divides by


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(output: str) -> dict[str, float]:
    def number(pattern: str) -> float:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output without {pattern!r}:\n{output}")
        return float(match.group(1))

    result = {"rps": number(r"^Requests/sec:\s+([\d.]+)"), "requests": number(r"^\s*(\d+) requests in")}
    for pct in ("50", "90", "99"):
        match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output without a {pct}% latency (was --latency given?):\n{output}")
        result[f"p{pct}_ms"] = float(match.group(1)) * _UNITS[match.group(2)]
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["non_2xx_3xx"] = float(non.group(1)) if non else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = float(sum(int(g) for g in errors.groups())) if errors else 0.0
    return result


def cpu_busy(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over ``seconds`` (from /proc/stat; 0.0 where unavailable)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(args: argparse.Namespace) -> float:
    """Wait (up to ``--quiet-wait`` s) until other work leaves the CPUs mostly idle; return the last busy fraction.

    Nothing of ours is running between wrk runs except an idle server, so a busy machine means
    another process would share the cores with the measurement.
    """
    deadline = time.monotonic() + args.quiet_wait
    busy = cpu_busy()
    while busy > args.quiet_threshold and time.monotonic() < deadline:
        log(f"    machine busy ({busy:.0%} of CPUs used by other processes), waiting ...")
        busy = cpu_busy(2.0)
    if busy > args.quiet_threshold:
        log(f"    WARNING: measuring on a busy machine ({busy:.0%} of CPUs in use by others)")
    return busy


def run_wrk(
    args: argparse.Namespace, url: str, headers: dict[str, str], duration: int, script: Path | None = None
) -> str:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return done.stdout


def measure(
    args: argparse.Namespace,
    name: str,
    url: str,
    workers: int | None,
    *,
    expect: int,
    headers: dict[str, str] | None = None,
    badge: bool = False,
    script: Path | None = None,
    refs: int = 1,
) -> WrkResult:
    """wrk against ``url`` (with ``script``: against the paths it cycles through, ``refs`` of them)."""
    headers = headers or {}
    status, _, _ = http_get(url, headers)
    if status != expect:
        raise SystemExit(f"{name}: {url} answered {status}, expected {expect}")
    runs = []
    for attempt in range(args.repeat):
        busy = wait_quiet(args)
        if args.warmup > 0:
            run_wrk(args, url, headers, args.warmup, script)
        log(f"  wrk {name} (workers={workers or '-'}) {args.duration:g}s [{attempt + 1}/{args.repeat}] ...")
        parsed = parse_wrk(run_wrk(args, url, headers, args.duration, script))
        parsed["busy_before"] = busy
        runs.append(parsed)
        log(f"    {parsed['rps']:,.0f} req/s, p50 {parsed['p50_ms']:.2f} ms, p99 {parsed['p99_ms']:.2f} ms")
    # the run with the median req/s (with --repeat 2, the better one), p99 from that same run
    parsed = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
    result = WrkResult(
        name=name,
        url=url,
        workers=workers,
        rps=parsed["rps"],
        p50_ms=parsed["p50_ms"],
        p90_ms=parsed["p90_ms"],
        p99_ms=parsed["p99_ms"],
        requests=int(parsed["requests"]),
        non_2xx_3xx=int(parsed["non_2xx_3xx"]),
        socket_errors=int(parsed["socket_errors"]),
        badge=badge,
        busy_before=parsed["busy_before"],
        all_rps=[r["rps"] for r in runs],
        all_p99_ms=[r["p99_ms"] for r in runs],
        refs=refs,
    )
    return result


# ------------------------------------------------------------------------------------ uploads


@dataclass
class UploadResult:
    workers: int
    mode: str
    concurrency: int
    n: int
    seconds: float
    per_second: float
    median_ms: float
    raw_per_second: float = 0.0  # raw c2pa-python sign, the anchor
    ratio: float = 0.0
    raw_code_per_second: float = 0.0  # raw sign + the same ISCC code every stamp carries: like for like
    ratio_code: float = 0.0


def make_images(count: int, first_seed: int) -> list[bytes]:
    """Distinct ~1 MB JPEGs (1600x1200, noise, quality 90): no two uploads share a hash."""
    return [noisy_jpeg(1600, 1200, 48, first_seed + i) for i in range(count)]


BODIES = ("multipart", "raw")  # a multipart form, or the bytes as the body with the declaration in a header


def upload_all(
    base: str, token: str, images: list[bytes], concurrency: int, body: str = "multipart"
) -> tuple[float, list[float]]:
    """Upload every image once with ``concurrency`` clients; (wall seconds, per-request seconds)."""
    lock = threading.Lock()
    queue = list(enumerate(images))
    latencies: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    index, data = queue.pop(0)
                start = time.perf_counter()
                if body == "raw":
                    headers = {"Content-Type": "image/jpeg", "Provenance-Declaration": DECLARATION}
                    response = http.post("/v1/assets", content=data, headers=headers)
                else:
                    response = http.post(
                        "/v1/assets",
                        files={"file": (f"bench-{index}.jpg", data, "image/jpeg")},
                        data={"declaration": DECLARATION},
                    )
                elapsed = time.perf_counter() - start
                if response.status_code != 201:
                    raise RuntimeError(f"upload {index}: {response.status_code} {response.text[:300]}")
                answer = response.json()
                if answer["state"] != "trusted" or not answer["labels"]:
                    raise RuntimeError(f"upload {index}: unexpected decision {answer['state']} {answer['labels']}")
                with lock:
                    latencies.append(elapsed)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(client) for _ in range(concurrency)]:
            future.result()
    return time.perf_counter() - start, latencies


RAW_KINDS = ("sign", "sign+code")  # RawSdk.sign, RawSdk.sign_with_code (the soft binding every stamp carries)


def raw_stamp_all(chain: IssuedChain, images: list[bytes], concurrency: int, kind: str = "sign") -> float:
    """Raw c2pa-python stamps/s over ``images``: one Context and Signer per thread, reused. ``kind`` "sign" is a
    plain sign; "sign+code" also computes the ISCC image code and embeds it as a soft binding, as a stamp does."""
    lock = threading.Lock()
    queue = list(images)
    sdks = [RawSdk(chain) for _ in range(concurrency)]
    try:
        sign = {"sign": RawSdk.sign, "sign+code": RawSdk.sign_with_code}[kind]
        sign(sdks[0], images[0])  # warm-up (not counted)

        def worker(sdk: RawSdk) -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    data = queue.pop(0)
                sign(sdk, data)

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(worker, sdk) for sdk in sdks]:
                future.result()
        return len(images) / (time.perf_counter() - start)
    finally:
        for sdk in sdks:
            sdk.close()


def load_chain(keys_dir: Path) -> IssuedChain:
    paths = DevKeyPaths.in_dir(keys_dir)
    return IssuedChain(
        paths.root_cert.read_bytes(), paths.chain.read_bytes(), paths.signer_key.read_bytes(), Algorithm.ES256
    )


# ------------------------------------------------------------------------------------- set-up


@dataclass
class Setup:
    tmp: Path
    data_dir: Path
    keys_dir: Path
    procs: Processes
    token: str = ""
    asset_id: str = ""
    svg: bytes = b""
    etag: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def service_env(setup: Setup) -> dict[str, str]:
    return {
        "PROVENANCE_DATA_DIR": str(setup.data_dir),
        "PROVENANCE_KEYS_DIR": str(setup.keys_dir),
        "PROVENANCE_RATE_LIMIT_PER_MINUTE": "10000000",  # uploads are timed, not throttled
        **setup.extra.get("service_env", {}),  # --service-env
    }


@contextlib.contextmanager
def service(args: argparse.Namespace, setup: Setup, workers: int) -> Iterator[str]:
    """The real service with ``workers`` processes; yields its base URL."""
    port = free_port()
    name = f"service-w{workers}"
    if args.uvicorn is None:
        argv = [str(PROVENANCE), "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--data-dir", str(setup.data_dir), "--keys-dir", str(setup.keys_dir), "--workers", str(workers)]
    else:
        argv = [str(UVICORN), "--factory", args.app, "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", str(workers), "--log-level", "warning", *shlex.split(args.uvicorn)]
    proc = setup.procs.start(name, argv, service_env(setup))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/readyz", proc, setup.procs, name)
        yield base
    finally:
        setup.procs.stop(proc)


@contextlib.contextmanager
def badge_tier(args: argparse.Namespace, setup: Setup, workers: int) -> Iterator[str]:
    """``provenance serve-badges`` (granian) with ``workers`` processes on the service's data; its base URL."""
    port = free_port()
    name = f"badge-tier-w{workers}"
    argv = [str(PROVENANCE), "serve-badges", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", str(setup.data_dir), "--workers", str(workers)]
    proc = setup.procs.start(name, argv, service_env(setup))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/readyz", proc, setup.procs, name)
        wait_preloaded(base, setup.extra.get("refs_loaded", 1))
        yield base
    finally:
        setup.procs.stop(proc)


def wait_preloaded(base: str, count: int, timeout: float = 120.0) -> None:
    """Wait until the badge cache holds ``count`` decisions (the preload runs in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _, body = http_get(base + "/readyz")
        if status == 200 and json.loads(body).get("cached_decisions", count) >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"{base}: the badge cache never held {count} decisions")


#: wrk script cycling through the paths of a file, one per line (each wrk thread from its own start).
CYCLE_LUA = """
local paths = {}
for line in io.lines("$paths") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def cycle_script(setup: Setup, name: str, paths: list[str]) -> Path:
    listing = setup.tmp / f"{name}.paths"
    listing.write_text("\n".join(paths) + "\n")
    script = setup.tmp / f"{name}.lua"
    script.write_text(string.Template(CYCLE_LUA).substitute(paths=str(listing)))
    return script


def add_refs(setup: Setup, count: int) -> list[str]:
    """The uploaded asset's id and ``count - 1`` more: copies of its row under new ids, written straight into
    the service's SQLite database (what a badge reads of a row: state, labels, signer, time; no manifest and
    no blobs, which no badge reads). The newest first, as the badge cache preloads them."""
    database = setup.data_dir / "provenance.sqlite3"
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM assets WHERE id = ?", (setup.asset_id,)).fetchone())
        verdict = json.loads(row["verdict"])
        row.update(manifest=b"", upstream="{}", signer_chain="[]", verdict=json.dumps({"signer": verdict["signer"]}))
        columns = list(row)
        copies = []
        for i in range(1, count):
            copy = dict(row, id=f"img_{i:024x}", upload_sha256=f"{i:064x}", stamped_sha256=f"{i:064x}")
            copy["created_at"] = f"2026-01-01 00:{i // 60_000_000:02d}:{i // 1_000_000 % 60:02d}.{i % 1_000_000:06d}"
            copies.append(tuple(copy[c] for c in columns))
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO assets ({', '.join(columns)}) VALUES ({marks})", copies)
        db.commit()
    setup.extra["refs_loaded"] = count
    return [setup.asset_id, *(f"img_{i:024x}" for i in range(1, count))]


@contextlib.contextmanager
def bare_asgi(args: argparse.Namespace, setup: Setup, workers: int, svg_path: Path) -> Iterator[str]:
    """The reference app under the same uvicorn configuration as the service (``--uvicorn`` ARGS too)."""
    module = setup.tmp / "bare" / "bench_bare_asgi.py"
    module.parent.mkdir(exist_ok=True)
    module.write_text(BARE_ASGI)
    port = free_port()
    argv = [str(UVICORN), "bench_bare_asgi:app", "--app-dir", str(module.parent), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    argv += shlex.split(args.uvicorn or "")
    name = f"bare-asgi-w{workers}"
    proc = setup.procs.start(name, argv, {"BENCH_SVG": str(svg_path)})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/", proc, setup.procs, name)
        yield base
    finally:
        setup.procs.stop(proc)


@contextlib.contextmanager
def nginx(setup: Setup, svg: bytes, files: int = 0) -> Iterator[str]:
    """nginx serving ``svg`` as ``/badge.svg``, and as ``/b/0.svg`` ... ``/b/{files - 1}.svg`` (hard links to
    it: one open() per request of a distinct path, as for so many badges as files); yields the first URL."""
    # nginx workers drop root privileges, so this tree (and only this one) must be world-readable
    prefix = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    try:
        prefix.chmod(0o755)
        www = prefix / "www"
        www.mkdir(mode=0o755)
        (www / "badge.svg").write_bytes(svg)
        (www / "badge.svg").chmod(0o644)
        if files:
            (www / "b").mkdir(mode=0o755)
            for i in range(files):
                source = www / f"copy-{i // 60_000}.svg"  # a file takes at most 65,000 links (ext4)
                if i % 60_000 == 0:
                    shutil.copyfile(www / "badge.svg", source)
                    source.chmod(0o644)
                os.link(source, www / "b" / f"{i}.svg")
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(
            string.Template(TEMPLATE.read_text()).substitute(
                prefix=str(prefix), port=str(port), root=str(www), cache_control=setup.extra["cache_control"]
            )
        )
        argv = ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise SystemExit(f"nginx config test failed:\n{checked.stderr}")
        proc = setup.procs.start("nginx", argv)
        url = f"http://127.0.0.1:{port}/badge.svg"
        try:
            wait_ready(url, proc, setup.procs, "nginx")
            yield url
        finally:
            setup.procs.stop(proc)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def prepare(setup: Setup, base: str) -> None:
    """Token, one AI-generated upload, its badge bytes and ETag."""
    done = subprocess.run(
        [
            *(str(PROVENANCE), "tokens", "create", "--role", "newsroom", "--name", "bench"),
            *("--data-dir", str(setup.data_dir), "--keys-dir", str(setup.keys_dir)),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=clean_env(service_env(setup)),
    )
    if done.returncode != 0:
        raise SystemExit(f"tokens create failed: {done.stderr or done.stdout}")
    setup.token = done.stdout.strip().splitlines()[-1]
    image = noisy_jpeg(800, 600, 40, 7)
    response = httpx.post(
        base + "/v1/assets",
        headers={"Authorization": f"Bearer {setup.token}"},
        files={"file": ("bench.jpg", image, "image/jpeg")},
        data={"declaration": DECLARATION},
        timeout=60,
    )
    if response.status_code not in (200, 201):
        raise SystemExit(f"upload failed: {response.status_code} {response.text[:500]}")
    asset = response.json()
    setup.asset_id = asset["id"]
    setup.extra["asset"] = {"id": asset["id"], "state": asset["state"], "labels": asset["labels"]}
    status, headers, body = http_get(f"{base}/v1/badges/{setup.asset_id}.svg")
    if status != 200 or headers.get("content-type") != "image/svg+xml":
        raise SystemExit(f"badge svg: {status} {headers}")
    setup.svg, setup.etag = body, headers["etag"]
    setup.extra["cache_control"] = headers.get("cache-control", "public, max-age=60")


# -------------------------------------------------------------------------------------- output


def print_table(
    env: dict[str, Any], wrk: list[WrkResult], uploads: list[UploadResult], raw: dict[str, dict[str, float]]
) -> None:
    print(
        f"{env['cpus']} CPUs, Python {env['python']}, wrk -t{env['threads']} -c{env['connections']} "
        f"-d{env['duration']:g}s, server: {env['server']}"
    )
    if env["service_env"]:
        print("service environment: " + " ".join(f"{k}={v}" for k, v in env["service_env"].items()))
    print(f"asset {env['asset']['id']} ({env['asset']['state']}, {', '.join(env['asset']['labels'])})")
    print()
    header = (
        f"{'workers':>7}  {'target':<26} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'/nginx':>7}  "
        f"{'rps>=0.40':<9} {'p99<=5ms':<8} {'errors':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in wrk:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
        rps_ok = p99_ok = ""
        if row.badge and row.ratio is not None:
            rps_ok = "ok" if row.ratio >= BADGE_RPS_RATIO else "MISS"
            p99_ok = "ok" if row.p99_ms <= BADGE_P99_MS else "MISS"
        busy = "*" if row.busy_before > env["quiet_threshold"] else ""
        print(
            f"{row.workers if row.workers is not None else '-':>7}  {row.name + busy:<26} {row.rps:9,.0f} "
            f"{row.p50_ms:7.2f} {row.p99_ms:7.2f} {ratio:>7}  {rps_ok:<9} {p99_ok:<8} "
            f"{row.non_2xx_3xx + row.socket_errors:>6}"
        )
    if uploads:
        print()
        for kind in RAW_KINDS:
            rates = ", ".join(
                f"{rates[kind]:.1f} ({threads} thread{'s' if threads != '1' else ''})" for threads, rates in raw.items()
            )
            print(f"raw c2pa-python {kind} stamps/s on the same ~1 MB files: {rates}")
        header = (
            f"{'workers':>7}  {'uploads':<28} {'n':>4} {'uploads/s':>10} {'median ms':>10} {'sign/s':>7} "
            f"{'ratio':>6} {'+code/s':>7} {'ratio':>6}  >=0.50"
        )
        print(header)
        print("-" * len(header))
        for up in uploads:
            met = "/".join("ok" if ratio >= UPLOAD_RATIO else "MISS" for ratio in (up.ratio, up.ratio_code))
            print(
                f"{up.workers:>7}  {up.mode:<28} {up.n:>4} {up.per_second:10.2f} {up.median_ms:10.1f} "
                f"{up.raw_per_second:7.2f} {up.ratio:6.2f} {up.raw_code_per_second:7.2f} {up.ratio_code:6.2f}  {met}"
            )
    print()
    print("/nginx = req/s over nginx's static SVG req/s; errors = non-2xx/3xx responses + socket errors.")
    print(f"wrk runs on the same {env['cpus']} cores as the server under test (for nginx too).")
    if any(row.busy_before > env["quiet_threshold"] for row in wrk):
        print("* measured while other processes kept the machine busy: not comparable.")
    print("uploads: POST /v1/assets (a multipart form, or raw: the bytes as the body, the declaration in a header;")
    print("durable: blobs fsynced, SQLite synchronous=FULL) of distinct")
    print("files; ratio = uploads/s over raw stamps/s with as many threads as concurrent clients: sign is a plain")
    print("c2pa-python sign (the issue's anchor); +code also computes and embeds the ISCC code every stamp carries.")


# ---------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace, setup: Setup) -> dict[str, Any]:
    init = subprocess.run(
        [str(PROVENANCE), "keys", "init", "--keys-dir", str(setup.keys_dir)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=clean_env(),
    )
    if init.returncode != 0:
        raise SystemExit(f"keys init failed: {init.stderr or init.stdout}")

    with service(args, setup, args.workers[0]) as base:
        prepare(setup, base)
    refs = add_refs(setup, max(args.refs)) if not args.no_badges else [setup.asset_id]
    svg_path = setup.tmp / "badge.svg"
    svg_path.write_bytes(setup.svg)

    wrk: list[WrkResult] = []
    if not args.no_badges:
        log("nginx ...")
        with nginx(setup, setup.svg, max(args.refs)) as url:
            status, _, body = http_get(url)
            if status != 200 or body != setup.svg:
                raise SystemExit("nginx does not serve the badge bytes")
            nginx_row = measure(args, "nginx static svg", url, None, expect=200)
            wrk.append(nginx_row)
            # nginx's own (mtime-size) ETag for its 304 path
            etag = http_get(url)[1].get("etag", "")
            if etag:
                wrk.append(
                    measure(args, "nginx static svg 304", url, None, expect=304, headers={"If-None-Match": etag})
                )
            for count in args.refs:
                script = cycle_script(setup, f"nginx-{count}", [f"/b/{i}.svg" for i in range(count)])
                first = url.replace("/badge.svg", "/b/0.svg")
                wrk.append(
                    measure(args, f"nginx {count:,} static files", first, None, expect=200, script=script, refs=count)
                )

    chain = load_chain(setup.keys_dir)
    uploads: list[UploadResult] = []
    raw: dict[str, dict[str, float]] = {}
    images: dict[tuple[int, int, str], list[bytes]] = {}
    if args.uploads > 0:
        log(f"generating {args.uploads * 2 * len(BODIES) * len(args.workers)} distinct ~1 MB JPEGs ...")
        seed = 1000
        for workers in args.workers:
            for concurrency in (1, args.upload_concurrency):
                for body in BODIES:
                    images[workers, concurrency, body] = make_images(args.uploads, seed)
                    seed += args.uploads
        first = args.workers[0]
        log("raw c2pa-python stamping ...")
        wait_quiet(args)
        for concurrency in (1, args.upload_concurrency):
            files = images[first, concurrency, BODIES[0]]
            raw[str(concurrency)] = {kind: raw_stamp_all(chain, files, concurrency, kind) for kind in RAW_KINDS}
        log(f"  stamps/s by threads: {raw}")

    for workers in args.workers:
        log(f"service --workers {workers} ...")
        if not args.no_badges and not args.no_reference:
            with bare_asgi(args, setup, workers, svg_path) as base:
                wrk.append(measure(args, "bare ASGI (same bytes)", base + "/", workers, expect=200))
        with service(args, setup, workers) as base:
            badge = f"{base}/v1/badges/{setup.asset_id}"
            if not args.no_badges:
                status, _, body = http_get(badge + ".svg")
                if body != setup.svg:
                    raise SystemExit("the service's badge bytes changed between runs")
                wrk.append(measure(args, "badge .svg", badge + ".svg", workers, expect=200, badge=True))
                wrk.append(measure(args, "badge .json", badge + ".json", workers, expect=200, badge=True))
                wrk.append(
                    measure(
                        args,
                        "badge .svg 304",
                        badge + ".svg",
                        workers,
                        expect=304,
                        headers={"If-None-Match": setup.etag},
                        badge=True,
                    )
                )
                for count in args.refs:
                    wrk.append(measure_refs(args, setup, "badge .svg", base, workers, refs[:count]))
            for concurrency, body in itertools.product(
                sorted({1, args.upload_concurrency}) if args.uploads > 0 else [], BODIES
            ):
                mode = ("sequential" if concurrency == 1 else f"concurrency {concurrency}") + f", {body}"
                log(f"  uploads {mode}: {args.uploads} x ~1 MB ...")
                files = images[workers, concurrency, body]
                # one untimed upload first (connection, thread pool, first-request costs)
                warm = make_images(1, 900_000 + workers * 10 + concurrency + 5 * BODIES.index(body))
                upload_all(base, setup.token, warm, 1, body)
                wait_quiet(args)
                seconds, latencies = upload_all(base, setup.token, files, concurrency, body)
                raw_rate, raw_code_rate = (raw[str(concurrency)][kind] for kind in RAW_KINDS)
                result = UploadResult(
                    workers=workers,
                    mode=mode,
                    concurrency=concurrency,
                    n=len(files),
                    seconds=seconds,
                    per_second=len(files) / seconds,
                    median_ms=statistics.median(latencies) * 1e3,
                    raw_per_second=raw_rate,
                    ratio=len(files) / seconds / raw_rate,
                    raw_code_per_second=raw_code_rate,
                    ratio_code=len(files) / seconds / raw_code_rate,
                )
                uploads.append(result)
                log(
                    f"    {result.per_second:.2f} uploads/s, median {result.median_ms:.0f} ms, "
                    f"ratio {result.ratio:.2f} (sign), {result.ratio_code:.2f} (sign+code)"
                )

        if not args.no_badges:
            with badge_tier(args, setup, workers) as base:
                badge = f"{base}/v1/badges/{setup.asset_id}"
                for count in args.refs:
                    wrk.append(measure_refs(args, setup, "badge tier .svg", base, workers, refs[:count]))
                wrk.append(measure(args, "badge tier .json", badge + ".json", workers, expect=200, badge=True))
                wrk.append(
                    measure(
                        args,
                        "badge tier .svg 304",
                        badge + ".svg",
                        workers,
                        expect=304,
                        headers={"If-None-Match": setup.etag},
                        badge=True,
                    )
                )

    nginx_rps = next((r.rps for r in wrk if r.name == "nginx static svg"), None)
    for row in wrk:
        if nginx_rps and row.name != "nginx static svg":
            row.ratio = row.rps / nginx_rps
    return {"wrk": wrk, "uploads": uploads, "raw": raw}


def measure_refs(
    args: argparse.Namespace, setup: Setup, name: str, base: str, workers: int, refs: list[str]
) -> WrkResult:
    """Badge ``.svg`` requests cycling through ``refs`` (as many distinct badges as a site shows)."""
    wait_preloaded(base, len(refs))
    script = cycle_script(
        setup, f"{name.replace(' ', '-')}-w{workers}-{len(refs)}", [f"/v1/badges/{r}.svg" for r in refs]
    )
    url = f"{base}/v1/badges/{refs[0]}.svg"
    return measure(
        args, f"{name}, {len(refs):,} refs", url, workers, expect=200, badge=True, script=script, refs=len(refs)
    )


def table_rows(wrk: list[WrkResult], uploads: list[UploadResult]) -> list[Row]:
    """The rows of ``make bench``'s one table (bench/table.py): req/s against nginx's static SVG (badge rows
    aim at 0.40, and their p99 must also be within 5 ms to count as met), uploads/s against raw stamps/s."""
    nginx_rps = next((r.rps for r in wrk if r.name == "nginx static svg"), None)
    rows = []
    for r in wrk:
        if r.name == "nginx static svg" or nginx_rps is None:
            continue
        workers = f", {r.workers} worker{'s' if r.workers != 1 else ''}" if r.workers else ""
        what = f"{r.name}{workers} (p99 {r.p99_ms:.2f} ms)"
        row = make_row("service", what, "nginx, static SVG", nginx_rps, r.rps, "req/s", aim="≥ 0.40" if r.badge else "")
        if r.badge and r.p99_ms > BADGE_P99_MS:
            row = dataclasses.replace(row, met=False)
        rows.append(row)
    for u in uploads:
        what = (
            f"upload ingest, {u.mode}, {u.workers} worker{'s' if u.workers != 1 else ''} (median {u.median_ms:.0f} ms)"
        )
        for anchor, rate in (("raw c2pa-python sign/s", u.raw_per_second), ("raw sign+code/s", u.raw_code_per_second)):
            rows.append(make_row("service", what, anchor, rate, u.per_second, "uploads/s", aim="≥ 0.50"))
    return rows


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed wrk seconds before each run (default 2)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="service worker counts to measure (default: 1 2)"
    )
    parser.add_argument("--uploads", type=int, default=20, help="timed uploads per variant (default 20; 0 skips)")
    parser.add_argument("--upload-concurrency", type=int, default=4, help="concurrent upload clients (default 4)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="wrk runs per target; the median-req/s run is reported (default 1)"
    )
    parser.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.25,
        help="before each wrk run, wait while more than this fraction of the CPUs is busy (default 0.25)",
    )
    parser.add_argument("--quiet-wait", type=float, default=60, help="longest wait for a quiet machine (s, default 60)")
    parser.add_argument(
        "--refs",
        type=int,
        nargs="+",
        default=[10, 10_000, 100_000],
        help="distinct badge refs (and nginx files) per scale run (default: 10 10000 100000)",
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the bare ASGI reference row")
    parser.add_argument("--no-badges", action="store_true", help="skip nginx and the badge runs")
    parser.add_argument(
        "--uvicorn",
        metavar="ARGS",
        default=None,
        help='run `uvicorn --factory service.asgi:app ARGS` instead of `provenance serve` (e.g. "--http h11")',
    )
    parser.add_argument(
        "--app",
        default="service.asgi:app",
        metavar="MODULE:FACTORY",
        help="the app factory for --uvicorn (default service.asgi:app)",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        type=_key_value,
        metavar="KEY=VALUE",
        help="extra environment for the service, repeatable (e.g. PROVENANCE_BADGE_CACHE_SECONDS=3600)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.app != "service.asgi:app" and args.uvicorn is None:
        args.uvicorn = ""  # --app implies running uvicorn directly
    if args.uploads > 0 and args.upload_concurrency < 2:
        parser.error("--upload-concurrency must be at least 2 (sequential is always measured)")
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None and not args.no_badges]
    if missing:
        parser.error(f"{' and '.join(missing)} not found: apt-get install -y wrk nginx")

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    (tmp / "logs").mkdir()
    setup = Setup(tmp=tmp, data_dir=tmp / "data", keys_dir=tmp / "keys", procs=Processes(tmp / "logs"))
    setup.extra["service_env"] = dict(args.service_env)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.perf_counter()
    try:
        results = run(args, setup)
    finally:
        setup.procs.stop_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    env = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "threads": args.threads,
        "connections": args.connections,
        "duration": args.duration,
        "server": "provenance serve" if args.uvicorn is None else f"uvicorn --factory {args.app} {args.uvicorn}",
        "service_env": dict(args.service_env),
        "asset": setup.extra.get("asset", {"id": "-", "state": "-", "labels": []}),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "quiet_threshold": args.quiet_threshold,
        "repeat": args.repeat,
    }
    wrk, uploads, raw = results["wrk"], results["uploads"], results["raw"]
    if args.json:
        json.dump(
            {
                "environment": env,
                "targets": {
                    "badge_rps_ratio": BADGE_RPS_RATIO,
                    "badge_p99_ms": BADGE_P99_MS,
                    "upload_ratio": UPLOAD_RATIO,
                },
                "wrk": [asdict(r) for r in wrk],
                "uploads": [asdict(u) for u in uploads],
                "raw_stamps_per_second": raw,
                "table": rows_json(table_rows(wrk, uploads)),
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_table(env, wrk, uploads, raw)
    missed = any(
        r.badge and r.ratio is not None and (r.ratio < BADGE_RPS_RATIO or r.p99_ms > BADGE_P99_MS) for r in wrk
    ) or any(min(u.ratio, u.ratio_code) < UPLOAD_RATIO for u in uploads)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted; every process started here was stopped")
        sys.exit(130)
