"""Connections against the real `provenance serve` process: slow clients cannot exhaust it, and
``X-Forwarded-For`` counts only from configured proxies (service/server.py)."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from provenance.keys import init_dev_keys
from service.settings import load_settings

from .databases import Database
from .server_support import Server, serve

HALF_OPEN = 2000
#: Partial request heads a slow-loris client sends before it stalls: a piece of the request line, or
#: a request line and some headers without the blank line that ends them.
STALLS = (b"GET /heal", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = HALF_OPEN + 200
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"needs {need} open files, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    directory = tmp_path_factory.mktemp("connections") / "keys"
    init_dev_keys(directory, "Connections Newsroom")
    return directory


@contextmanager
def running(
    database: Database, keys: Path, tmp_path: Path, *extra: str, open_files: int | None = None, **settings: str
) -> Iterator[Server]:
    """The service with ``PROVENANCE_<NAME>`` settings; its log must show no traceback and no error."""
    env = {f"PROVENANCE_{name.upper()}": value for name, value in settings.items()}
    tmp_path.mkdir(parents=True, exist_ok=True)
    with serve(database, tmp_path / "var", keys, *extra, env=env, open_files=open_files) as server:
        yield server
    log = server.log.read_text()
    assert "Traceback" not in log, log
    assert "ERROR" not in log, log


def address(server: Server) -> tuple[str, int]:
    host, port = server.base.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@contextmanager
def stalled(server: Server, count: int, heads: tuple[bytes, ...] = STALLS) -> Iterator[list[socket.socket]]:
    """``count`` connections, opened one after the other, each stalled after a partial request head."""
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            sock = socket.create_connection(address(server), timeout=10)
            sock.sendall(heads[i % len(heads)])
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def is_open(sock: socket.socket) -> bool:
    """Whether the server still holds ``sock`` (no end of stream, no reset, nothing sent)."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # b"" is the server's close; data would be an answer
        return False
    except BlockingIOError:
        return True
    except ConnectionError:
        return False
    finally:
        sock.settimeout(10)


def closed_within(sock: socket.socket, timeout: float) -> float:
    """Seconds until the server closes ``sock`` (reading and discarding what it sends); fails after ``timeout``."""
    start = time.monotonic()
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
    except ConnectionError:
        pass
    return time.monotonic() - start


def healthz_seconds(server: Server) -> float:
    start = time.monotonic()
    response = httpx.get(f"{server.base}/healthz", timeout=10)
    assert response.status_code == 200
    return time.monotonic() - start


def test_healthz_answers_while_2000_half_open_connections_are_held(
    database: Database, keys: Path, tmp_path: Path
) -> None:
    with running(database, keys, tmp_path) as server, stalled(server, HALF_OPEN) as socks:
        assert healthz_seconds(server) < 2.0
        assert sum(is_open(sock) for sock in socks) == HALF_OPEN  # held (header_timeout is 10 s), not refused
        assert healthz_seconds(server) < 2.0


def test_with_1024_open_files_2000_half_open_connections_cannot_starve_healthz(
    database: Database, keys: Path, tmp_path: Path
) -> None:
    # A common CI default: the cap follows the limit (1024 - 256 reserved), and the oldest stalled
    # connections make room instead of the operating system refusing everyone.
    with running(database, keys, tmp_path, open_files=1024) as server, stalled(server, HALF_OPEN) as socks:
        assert healthz_seconds(server) < 2.0
        held = sum(is_open(sock) for sock in socks)
        assert 700 <= held <= 1024 - 256
        assert all(is_open(sock) for sock in socks[-100:])  # the newest are kept
    assert "open-file limit 1024 leaves room for 768 connections" in server.log.read_text()


def test_a_request_head_must_arrive_within_header_timeout(database: Database, keys: Path, tmp_path: Path) -> None:
    def silent(sock: socket.socket) -> float:
        return closed_within(sock, 5)

    def partial_line(sock: socket.socket) -> float:
        sock.sendall(STALLS[0])
        return closed_within(sock, 5)

    def partial_headers(sock: socket.socket) -> float:
        sock.sendall(STALLS[1])
        return closed_within(sock, 5)

    def trickle(sock: socket.socket) -> float:
        # One byte every 0.2 s: never idle, but the deadline is for the whole head.
        head = iter(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100)
        done = threading.Event()

        def send() -> None:
            for byte in head:
                if done.wait(0.2):
                    return
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return

        sender = threading.Thread(target=send)
        sender.start()
        try:
            return closed_within(sock, 5)
        finally:
            done.set()
            sender.join()

    def after_keep_alive_response(sock: socket.socket) -> float:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        response = b""
        while not response.endswith(b'{"status":"ok"}'):
            response += sock.recv(4096)
        assert response.startswith(b"HTTP/1.1 200 ")
        sock.sendall(STALLS[1])  # the next request stalls: its deadline runs from the response
        return closed_within(sock, 5)

    cases = {
        "nothing sent": silent,
        "partial request line": partial_line,
        "partial headers": partial_headers,
        "one byte every 0.2 s": trickle,
        "partial head after a keep-alive response": after_keep_alive_response,
    }
    with running(database, keys, tmp_path, header_timeout="1") as server:
        socks = {name: socket.create_connection(address(server), timeout=10) for name in cases}
        try:
            with ThreadPoolExecutor(len(cases)) as pool:
                futures = {name: pool.submit(case, socks[name]) for name, case in cases.items()}
                seconds = {name: future.result() for name, future in futures.items()}
        finally:
            for sock in socks.values():
                sock.close()
        for name, elapsed in seconds.items():
            assert 0.8 <= elapsed < 3.0, f"{name}: closed after {elapsed:.2f} s"
        assert healthz_seconds(server) < 2.0  # a prompt client is unaffected


def test_at_the_connection_cap_the_longest_waiting_connection_makes_room(
    database: Database, keys: Path, tmp_path: Path
) -> None:
    with running(database, keys, tmp_path, max_connections="50", public_verify_per_minute="1000") as server:
        with stalled(server, 50) as socks:
            time.sleep(0.3)  # all accepted, in order
            assert healthz_seconds(server) < 2.0  # evicts the oldest stalled connection
            assert closed_within(socks[0], 2) < 2
            assert all(is_open(sock) for sock in socks[-10:])
            assert healthz_seconds(server) < 2.0

        # Every connection busy with a request (all but the last byte of its body sent): a new one is
        # refused at once, not queued.
        upload = httpx.Request(
            "POST", f"{server.base}/verify", files={"file": ("x.jpg", b"not an image", "image/jpeg")}
        )
        head = b"".join(
            [b"POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"]
            + [b"%s: %s\r\n" % (name, value) for name, value in upload.headers.raw if name.lower() != b"host"]
            + [b"\r\n"]
        )
        body = upload.read()
        with stalled(server, 50, (head + body[:-1],)) as busy:
            time.sleep(0.3)
            with socket.create_connection(address(server), timeout=5) as refused:
                answer = b""
                while chunk := refused.recv(4096):
                    answer += chunk
                assert answer.startswith(b"HTTP/1.1 503 ")
            for sock in busy:  # finish the uploads: each gets its answer
                sock.sendall(body[-1:])
            for sock in busy:
                assert sock.recv(4096).startswith(b"HTTP/1.1 422 ")
        time.sleep(0.3)
        assert healthz_seconds(server) < 2.0  # room again once they are gone


def verify_statuses(server: Server, forwarded_for: list[str]) -> list[int]:
    """POST /verify (the public page, rate-limited per client address) once per X-Forwarded-For."""
    statuses = []
    for client in forwarded_for:
        response = httpx.post(
            f"{server.base}/verify",
            headers={"X-Forwarded-For": client, "X-Forwarded-Proto": "https"},
            files={"file": ("x.jpg", b"not an image", "image/jpeg")},
            timeout=30,
        )
        statuses.append(response.status_code)
    return statuses


def test_x_forwarded_for_is_ignored_unless_from_a_trusted_proxy(database: Database, keys: Path, tmp_path: Path) -> None:
    clients = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]
    with running(database, keys, tmp_path / "direct", public_verify_per_minute="2") as server:
        statuses = verify_statuses(server, clients)
    assert 429 not in statuses[:2]
    assert statuses[2:] == [429, 429]  # a new X-Forwarded-For per request does not reset the limit

    config = tmp_path / "proxied.toml"
    config.write_text('trusted_proxies = ["127.0.0.1"]\npublic_verify_per_minute = 2\n')
    with running(database, keys, tmp_path / "proxied", "--config", str(config)) as server:
        statuses = verify_statuses(server, [*clients, clients[0], clients[0]])
    assert 429 not in statuses[:5]  # the proxy's X-Forwarded-For is the client: one bucket each
    assert statuses[5] == 429  # the first client's third request


@pytest.mark.slow  # two workers start (~5 s)
def test_workers_apply_the_connection_settings_of_the_config_file(
    database: Database, keys: Path, tmp_path: Path
) -> None:
    config = tmp_path / "workers.toml"
    config.write_text("header_timeout = 1.0\n")
    with running(database, keys, tmp_path, "--workers", "2", "--config", str(config)) as server:
        start = time.monotonic()
        with stalled(server, 4) as socks:
            for sock in socks:  # whichever worker accepted it
                closed_within(sock, 5)
                assert 0.8 <= time.monotonic() - start < 3.0
        assert healthz_seconds(server) < 2.0


@pytest.mark.parametrize(
    ("value", "trusted"),
    [
        pytest.param("10.0.0.0/8, 127.0.0.1", ["10.0.0.0/8", "127.0.0.1"], id="network and address"),
        pytest.param("::1,fd00::/8", ["::1", "fd00::/8"], id="IPv6"),
        pytest.param("", [], id="empty: proxy headers ignored"),
        pytest.param("*", None, id="everyone: refused, not a wildcard"),
        pytest.param("10.0.0.1/8", None, id="host bits set: refused, uvicorn would never match it"),
        pytest.param("proxy.internal", None, id="a name: refused, peers are addresses"),
    ],
)
def test_trusted_proxies_are_addresses_or_networks(value: str, trusted: list[str] | None) -> None:
    if trusted is None:
        with pytest.raises(ValueError, match="trusted_proxies"):
            load_settings(trusted_proxies=value)
    else:
        assert load_settings(trusted_proxies=value).trusted_proxies == trusted
