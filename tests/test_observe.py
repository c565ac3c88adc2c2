"""Observation through the real `provenance serve` process: JSON log lines, request ids, the log level and
access-log settings, rejection counters per reason, and who may read /metrics.

Every log assertion reads the server's whole log (stdout and stderr, ``Server.log``) after the server has
stopped, so the writer thread has written everything; a secret is looked for in the whole text.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provenance.keys import init_dev_keys

from . import images
from .databases import Database
from .server_support import CLI, Server, create_token, free_port, serve

GENERATED_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]+")  # the process's random prefix, a counter
UNKNOWN_ASSET = "img_" + "0" * 24
ACCESS_FIELDS = {"ts", "level", "logger", "msg", "request_id", "method", "route", "path", "status", "duration_ms",
                 "token_name"}  # fmt: skip


def stopped_log(server: Server) -> tuple[str, list[dict[str, Any]]]:
    """The server's whole log after it stopped, and its log lines: each one JSON object. (``serve`` also
    prints where to open the pages, for people, on standard output: those lines are not log lines.)"""
    server.stop()
    text = server.log.read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)  # a cut or interleaved line fails here
            assert isinstance(entry, dict), line
            lines.append(entry)
    assert lines, "the server logged nothing"
    assert "Traceback" not in text
    return text, lines


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "provenance.access"]


def the_line_of(lines: list[dict[str, Any]], response: httpx.Response) -> dict[str, Any]:
    """The one request line of ``response`` (found by the request id it was answered with)."""
    request_id = response.headers["x-request-id"]
    found = [line for line in request_lines(lines) if line["request_id"] == request_id]
    assert len(found) == 1, (request_id, found)
    return found[0]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Observed Newsroom")
    return data, keys


@pytest.fixture
def server(database: Database, dirs: tuple[Path, Path]) -> Iterator[Server]:
    data, keys = dirs
    with serve(database, data, keys) as running:
        yield running


# --------------------------------------------------------------------------------------------------
# One JSON line per request, request ids
# --------------------------------------------------------------------------------------------------

#: X-Request-ID values that must be replaced (never echoed, never logged), by what is wrong with them.
HOSTILE_IDS: dict[str, bytes] = {
    "one character too long": b"r" * 129,
    "a space": b"req id-7731",
    "quotes and braces (log injection)": b'x","status":200,"token_name":"admin',
    "angle brackets": b"<script>alert(7731)</script>",
    "non-ASCII": "requête-7731".encode(),
    "a semicolon": b"req;7731",
    "empty": b"",
}


def test_one_json_line_per_request_with_id_route_status_duration_and_token_name(server: Server) -> None:
    base = server.base
    newsroom = create_token(server, "newsroom")  # named "newsroom test"
    upload = httpx.post(
        f"{base}/v1/assets",
        headers={"Authorization": f"Bearer {newsroom}", "X-Request-ID": "upload-7731.a:b=c+d/e_f"},
        files={"file": ("render.jpg", images.jpeg(seed=51), "image/jpeg")},
        data={"declaration": json.dumps({"source": "ai_generated"})},
        timeout=30,
    )
    assert upload.status_code == 201, upload.text
    assert upload.headers["x-request-id"] == "upload-7731.a:b=c+d/e_f"  # echoed as sent
    asset_id = upload.json()["id"]
    badge = httpx.get(f"{base}/v1/badges/{asset_id}.svg")
    assert badge.status_code == 200
    assert GENERATED_ID.fullmatch(badge.headers["x-request-id"])  # none sent: one was made
    again = httpx.get(f"{base}/v1/badges/{asset_id}.svg", headers={"If-None-Match": badge.headers["etag"]})
    assert again.status_code == 304
    batch = httpx.get(f"{base}/v1/badges", params={"refs": asset_id})
    record = httpx.get(f"{base}/v1/assets/{asset_id}", headers={"X-Request-ID": "q" * 128})  # the longest kept
    assert record.headers["x-request-id"] == "q" * 128
    missing = httpx.get(f"{base}/v1/assets/{UNKNOWN_ASSET}")
    unmatched = httpx.get(f"{base}/no/such/route")
    bad_secret = "pv_" + "Z9" * 20
    refused = httpx.post(f"{base}/v1/articles", headers={"Authorization": f"Bearer {bad_secret}"}, content=b"{}")
    assert (batch.status_code, missing.status_code, unmatched.status_code, refused.status_code) == (200, 404, 404, 401)
    assert refused.headers["x-request-id"] != missing.headers["x-request-id"]  # one id per request

    text, lines = stopped_log(server)
    expected = {  # response -> (route, token name)
        "upload": (upload, "/v1/assets", "newsroom test"),
        "badge": (badge, "/v1/badges/{ref}.{format}", None),
        "badge 304": (again, "/v1/badges/{ref}.{format}", None),
        "badge batch": (batch, "/v1/badges", None),
        "record": (record, "/v1/assets/{asset_id}", None),
        "unknown record": (missing, "/v1/assets/{asset_id}", None),
        "unmatched": (unmatched, "unmatched", None),
        "bad token": (refused, "/v1/articles", None),
    }
    for name, (response, route, token_name) in expected.items():
        line = the_line_of(lines, response)
        assert set(line) == ACCESS_FIELDS, name
        assert (line["level"], line["msg"], line["method"]) == ("info", "request", response.request.method), name
        assert (line["route"], line["status"], line["token_name"]) == (route, response.status_code, token_name), name
        assert line["path"] == response.request.url.path, name
        assert isinstance(line["duration_ms"], float), name
        assert line["duration_ms"] >= 0, name
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"]), name
    # Only these requests and the readiness probes of `serve` were served: one line each, nothing more.
    others = [line for line in request_lines(lines) if line["route"] != "/readyz"]
    assert len(others) == len(expected)
    assert newsroom not in text  # the token's name, never the token
    assert bad_secret not in text
    assert "Z9Z9" not in text


def test_a_server_stopped_by_sigterm_loses_no_line(server: Server) -> None:
    # uvicorn ends the process by raising SIGTERM again after its shutdown: no atexit runs after that.
    answers = [httpx.get(f"{server.base}/healthz", headers={"X-Request-ID": f"last-{n}"}) for n in range(20)]
    _text, lines = stopped_log(server)
    logged = {line["request_id"] for line in request_lines(lines)}
    assert {a.headers["x-request-id"] for a in answers} <= logged
    messages = [line["msg"] for line in lines if line["logger"] == "uvicorn.error"]
    assert messages[-2:] == ["Application shutdown complete.", f"Finished server process [{server.process.pid}]"]


def test_a_hostile_request_id_is_replaced_never_echoed_nor_logged(server: Server) -> None:
    answers: dict[str, list[httpx.Response]] = {}
    for name, value in HOSTILE_IDS.items():
        answers[name] = [  # the API, the badge hot path and a 404 alike
            httpx.get(f"{server.base}{path}", headers=[(b"X-Request-ID", value)])
            for path in ("/healthz", f"/v1/badges/{UNKNOWN_ASSET}.svg", "/v1/assets/nothing-here")
        ]
    text, lines = stopped_log(server)
    for name, responses in answers.items():
        for answer in responses:
            assert GENERATED_ID.fullmatch(answer.headers["x-request-id"]), (name, answer.headers["x-request-id"])
            assert the_line_of(lines, answer)["status"] == answer.status_code, name
    assert len({answer.headers["x-request-id"] for group in answers.values() for answer in group}) == 3 * len(answers)
    assert "7731" not in text
    assert "r" * 129 not in text


# --------------------------------------------------------------------------------------------------
# Secrets: a bearer token and a PKCS#11 PIN are never logged
# --------------------------------------------------------------------------------------------------

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "582914736"  # distinctive: found only if it leaked


@pytest.fixture
def token_keys(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A keys dir whose signing key is on a SoftHSM2 token (made by `provenance keys init --pkcs11`), and the
    environment that reaches the token."""
    util = shutil.which("softhsm2-util")
    assert SOFTHSM.exists(), "SoftHSM2 is installed by .ci/run (apt-get install softhsm2)"
    assert util is not None
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {"SOFTHSM2_CONF": str(conf)}
    init = [util, "--init-token", "--free", "--label", "observed", "--pin", PIN, "--so-pin", "5678"]
    subprocess.run(init, check=True, capture_output=True, env=env)
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    keys = tmp_path / "keys"
    subprocess.run(
        [*CLI, "keys", "init", "--keys-dir", str(keys), "--pkcs11", str(SOFTHSM), "--token-label", "observed",
         "--key-label", "signer", "--pin-file", str(pin_file)],
        check=True, capture_output=True, env={**os.environ, **env}, timeout=120,
    )  # fmt: skip
    return keys, env


def test_bearer_tokens_and_the_pkcs11_pin_never_reach_the_log(
    database: Database, tmp_path: Path, token_keys: tuple[Path, dict[str, str]]
) -> None:
    keys, env = token_keys
    debug = {**env, "PROVENANCE_PKCS11_PIN": PIN, "PROVENANCE_LOG_LEVEL": "debug"}  # every line there is
    with serve(database, tmp_path / "var", keys, env=debug) as server:
        server.env.update(debug)  # the token commands load the signer too
        newsroom, auditor = create_token(server, "newsroom"), create_token(server, "auditor")
        signed = httpx.post(
            f"{server.base}/v1/assets",
            headers={"Authorization": f"Bearer {newsroom}"},
            files={"file": ("render.jpg", images.jpeg(seed=52), "image/jpeg")},
            data={"declaration": json.dumps({"source": "ai_generated"})},
            timeout=60,
        )
        assert signed.status_code == 201, signed.text  # signed on the token, with the PIN
        wrong_role = httpx.post(f"{server.base}/v1/articles", headers={"Authorization": f"Bearer {auditor}"})
        malformed = httpx.get(f"{server.base}/v1/assets/{signed.json()['id']}/report",
                              headers={"Authorization": f"Token {newsroom} {PIN}"})  # fmt: skip
        assert (wrong_role.status_code, malformed.status_code) == (403, 401)
        text, lines = stopped_log(server)
    assert any(line["level"] == "debug" for line in lines)
    assert the_line_of(lines, wrong_role)["token_name"] == "auditor test"  # refused, and named
    for secret in (PIN, newsroom, auditor, newsroom.removeprefix("pv_"), auditor.removeprefix("pv_")):
        assert secret not in text


def test_a_wrong_pin_stops_the_start_without_logging_it(
    database: Database, tmp_path: Path, token_keys: tuple[Path, dict[str, str]]
) -> None:
    keys, env = token_keys
    wrong = "6193028475"
    started = subprocess.run(
        [*CLI, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "var"), "--keys-dir", str(keys)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **database.env(tmp_path / "var"), **env, "PROVENANCE_PKCS11_PIN": wrong,
             "PROVENANCE_LOG_LEVEL": "debug"},
    )  # fmt: skip
    assert started.returncode != 0
    assert "PIN" in started.stdout + started.stderr  # the operator is told what is wrong
    assert wrong not in started.stdout + started.stderr


# --------------------------------------------------------------------------------------------------
# Log level and access-log switch
# --------------------------------------------------------------------------------------------------

#: The connection cap is set beyond the open-file limit so that start-up logs one warning.
TOO_MANY = {"PROVENANCE_MAX_CONNECTIONS": "1000000"}
LEVELS: dict[str, tuple[dict[str, str], set[str], set[str], bool]] = {
    # name: (environment, levels that must appear, levels that must not, request lines written)
    "debug": ({"PROVENANCE_LOG_LEVEL": "debug"}, {"debug", "info"}, set(), True),
    "info by default": ({}, {"info"}, {"debug"}, True),
    "warning, access log off": (
        {"PROVENANCE_LOG_LEVEL": "warning", "PROVENANCE_ACCESS_LOG": "false", **TOO_MANY},
        {"warning"},
        {"debug", "info"},
        False,
    ),
    "error, access log on": ({"PROVENANCE_LOG_LEVEL": "error", **TOO_MANY}, set(), {"debug", "warning"}, True),
}


@pytest.mark.parametrize(("env", "present", "absent", "access"), LEVELS.values(), ids=list(LEVELS))
def test_log_level_and_access_log_settings(
    database: Database, dirs: tuple[Path, Path], env: dict[str, str], present: set[str], absent: set[str], access: bool
) -> None:
    data, keys = dirs  # a fresh database: its migrations log at debug and info
    with serve(database, data, keys, env=env) as server:
        answers = [httpx.get(f"{server.base}/healthz"), httpx.get(f"{server.base}/v1/badges/{UNKNOWN_ASSET}.json")]
        assert all(GENERATED_ID.fullmatch(answer.headers["x-request-id"]) for answer in answers)  # ids either way
        _, lines = stopped_log(server)
    diagnostic = {line["level"] for line in lines if line["logger"] != "provenance.access"}
    assert present <= diagnostic
    assert not absent & diagnostic
    if access:
        assert [the_line_of(lines, answer)["status"] for answer in answers] == [200, 404]
    else:
        assert request_lines(lines) == []


# --------------------------------------------------------------------------------------------------
# Rejection counters per reason
# --------------------------------------------------------------------------------------------------


def samples(text: str, name: str) -> dict[str, float]:
    """``{label value: sample}`` of a one-label counter in a Prometheus exposition."""
    found = re.findall(rf'^{name}{{\w+="([^"]*)"}} (\S+)$', text, flags=re.MULTILINE)
    return {label: float(value) for label, value in found}


def slow_body(server: Server, path: str) -> int:
    """POST ``path`` a multipart body that declares 1000 bytes and stops after its first part's headers:
    the status the server answers."""
    host, port = server.base.removeprefix("http://").split(":")
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode() + b"Content-Length: 1000\r\n\r\n" + part + b"\xff\xd8")
        answer = sock.recv(4096)
    return int(answer.split(b" ")[1])


def chunked_over(limit: int) -> Iterator[bytes]:
    """A well-formed multipart file part, streamed without a length, that grows past ``limit``.

    Well-formed, so that only its size can refuse it: the form parser reads as the chunks arrive and would
    answer a malformed stream with a 400 before the limit is reached, depending on how the chunks land.
    """
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'
    for _ in range(limit // 4096 + 2):
        yield b"x" * 4096


def test_each_rejection_is_counted_once_under_its_reason(database: Database, dirs: tuple[Path, Path]) -> None:
    data, keys = dirs
    env = {
        "PROVENANCE_RATE_LIMIT_PER_MINUTE": "2",
        "PROVENANCE_MAX_UPLOAD_BYTES": "1000",
        "PROVENANCE_REQUEST_BODY_TIMEOUT": "3",  # the streamed 413 must not run into it
    }
    with serve(database, data, keys, env=env) as server:
        base = server.base
        newsroom, auditor = create_token(server, "newsroom"), create_token(server, "auditor")
        limited = server.command("tokens", "create", "--role", "auditor", "--name", "limited").stdout.strip()
        multipart = {"content-type": "multipart/form-data; boundary=b"}
        big = b"x" * (200 * 1024)
        statuses = {
            "missing_token": httpx.post(f"{base}/v1/articles", content=b"{}").status_code,
            "bad_token": httpx.post(f"{base}/v1/articles", headers={"Authorization": "Bearer pv_no"}).status_code,
            "wrong_role": httpx.post(f"{base}/v1/articles", headers={"Authorization": f"Bearer {auditor}"}).status_code,
            "too_large": httpx.post(f"{base}/verify", headers=multipart, content=big).status_code,
            "too_large, streamed": httpx.post(
                f"{base}/verify", headers=multipart, content=chunked_over(70 * 1024)
            ).status_code,
            "body_timeout": slow_body(server, "/verify"),
            "validation_error": httpx.post(
                f"{base}/v1/assets",
                headers={"Authorization": f"Bearer {newsroom}"},
                data={"declaration": json.dumps({"source": "camera"})},  # no file part
            ).status_code,
            "not_found": httpx.get(f"{base}/v1/assets/{UNKNOWN_ASSET}").status_code,
            "not_found, no route": httpx.get(f"{base}/no/such/route").status_code,
        }
        report = f"{base}/v1/assets/{UNKNOWN_ASSET}/report"
        within = [httpx.get(report, headers={"Authorization": f"Bearer {limited}"}).status_code for _ in range(2)]
        statuses["rate_limited"] = httpx.get(report, headers={"Authorization": f"Bearer {limited}"}).status_code
        exposition = httpx.get(f"{base}/metrics").text
    assert statuses == {
        "missing_token": 401, "bad_token": 401, "wrong_role": 403, "too_large": 413, "too_large, streamed": 413,
        "body_timeout": 408, "validation_error": 422, "not_found": 404, "not_found, no route": 404,
        "rate_limited": 429,
    }  # fmt: skip
    assert within == [404, 404]  # two unknown reports (not found), then the rate limit
    counted = samples(exposition, "provenance_rejections_total")
    assert {reason: count for reason, count in counted.items() if count} == {
        "missing_token": 1, "bad_token": 1, "wrong_role": 1, "too_large": 2, "body_timeout": 1,
        "validation_error": 1, "not_found": 4, "rate_limited": 1,
    }  # fmt: skip


# --------------------------------------------------------------------------------------------------
# /metrics: protected by a token, or on a separate address
# --------------------------------------------------------------------------------------------------

METRICS_TOKEN = "metrics-4f1c9e77b2"


def test_metrics_on_the_main_port_need_the_metrics_token(database: Database, dirs: tuple[Path, Path]) -> None:
    data, keys = dirs
    env = {"PROVENANCE_METRICS_TOKEN": METRICS_TOKEN, "PROVENANCE_LOG_LEVEL": "debug"}
    with serve(database, data, keys, env=env) as server:
        url = f"{server.base}/metrics"
        anonymous = httpx.get(url)
        wrong = httpx.get(url, headers={"Authorization": "Bearer metrics-wrong"})
        admin = httpx.get(url, headers={"Authorization": f"Bearer {create_token(server, 'admin')}"})
        allowed = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        text, _ = stopped_log(server)
    for refused in (anonymous, wrong, admin):  # an API token, even an admin's, is not the metrics token
        assert refused.status_code == 401
        assert refused.json()["type"] == "/problems/unauthorized"
        assert refused.headers["www-authenticate"] == "Bearer"
        assert "provenance_" not in refused.text
    assert allowed.status_code == 200
    assert allowed.headers["content-type"].startswith("text/plain")
    counted = samples(allowed.text, "provenance_rejections_total")
    assert (counted["missing_token"], counted["bad_token"]) == (1, 2)
    assert METRICS_TOKEN not in text


def _raw(address: tuple[str, int], request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_on_a_separate_address_only(database: Database, dirs: tuple[Path, Path], workers: int) -> None:
    data, keys = dirs
    address = ("127.0.0.1", free_port())
    env = {"PROVENANCE_METRICS_BIND": f"{address[0]}:{address[1]}", "PROVENANCE_METRICS_TOKEN": METRICS_TOKEN}
    with serve(database, data, keys, "--workers", str(workers), env=env) as server:
        main = httpx.get(f"{server.base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        auth = f"Authorization: Bearer {METRICS_TOKEN}\r\n".encode()
        scraped = _raw(address, b"GET /metrics HTTP/1.1\r\nHost: m\r\n" + auth + b"\r\n")
        anonymous = _raw(address, b"GET /metrics HTTP/1.1\r\nHost: m\r\n\r\n")
        elsewhere = _raw(address, b"GET /v1/assets HTTP/1.1\r\nHost: m\r\n" + auth + b"\r\n")
        posted = _raw(address, b"POST /metrics HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n" + auth + b"\r\n")
        text, lines = stopped_log(server)
    assert main.status_code == 404  # not on the main port
    assert main.json()["type"] == "/problems/not-found"
    assert scraped[0] == 200
    assert b"provenance_http_requests_total" in scraped[1]
    if workers == 1:  # one process: the main port's 404 is in the counters this listener serves
        assert samples(scraped[1].decode(), "provenance_rejections_total")["not_found"] == 1
    assert (anonymous[0], elsewhere[0], posted[0]) == (401, 404, 405)
    assert b"provenance_" not in anonymous[1] + elsewhere[1] + posted[1]
    assert the_line_of(lines, main)["status"] == 404  # every worker logs its requests as JSON lines too
    assert METRICS_TOKEN not in text


def test_invalid_metrics_bind_refuses_to_start(dirs: tuple[Path, Path]) -> None:
    data, keys = dirs
    started = subprocess.run(
        [*CLI, "serve", "--port", str(free_port()), "--data-dir", str(data), "--keys-dir", str(keys)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PROVENANCE_METRICS_BIND": "localhost"},
    )
    assert started.returncode != 0
    assert "metrics_bind" in started.stderr + started.stdout
