"""The real `provenance serve` process on a free loopback port, driven over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provenance import TrustConfig, inspect
from provenance.keys import init_dev_keys

from . import images
from .databases import Database
from .server_support import CLI, Server, create_token, free_port, serve


@pytest.fixture
def server(database: Database, tmp_path: Path) -> Iterator[Server]:
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Process Newsroom")
    with serve(database, data, keys) as running:
        yield running


def test_upload_badge_report_verify_over_http(server: Server) -> None:
    base = server.base
    newsroom = {"Authorization": f"Bearer {create_token(server, 'newsroom')}"}
    auditor = {"Authorization": f"Bearer {create_token(server, 'auditor')}"}

    upload = httpx.post(
        f"{base}/v1/assets",
        headers=newsroom,
        files={"file": ("render.jpg", images.jpeg(seed=21), "image/jpeg")},
        data={"declaration": json.dumps({"source": "ai_generated", "title": "Render"})},
        timeout=30,
    )
    assert upload.status_code == 201, upload.text
    asset = upload.json()
    assert asset["labels"] == ["ai_generated"]
    links = {name: base + path for name, path in asset["links"].items()}  # absolute paths: no public base URL

    badge = httpx.get(links["badge_svg"] + "?lang=zh-Hans", timeout=10)
    assert badge.status_code == 200
    assert badge.headers["content-type"] == "image/svg+xml"
    assert "AI 生成的图像" in badge.text
    again = httpx.get(links["badge_svg"] + "?lang=zh-Hans", headers={"If-None-Match": badge.headers["etag"]})
    assert again.status_code == 304
    english = httpx.get(links["badge_svg"], headers={"If-None-Match": badge.headers["etag"]})
    assert english.status_code == 200  # another language is another representation
    assert "AI-generated image" in english.text

    assert httpx.get(links["report"], timeout=10).status_code == 401
    report = httpx.get(links["report"], headers=auditor, timeout=30)
    assert report.status_code == 200
    assert report.json()["verification"]["state"] == "trusted"
    assert report.json()["stamped_by"]["role"] == "newsroom"

    content = httpx.get(links["content"], timeout=10).content
    trust = TrustConfig.from_files([server.keys / "root.pem"])
    assert inspect(content, trust).labels == ("ai_generated",)
    verified = httpx.post(
        f"{base}/v1/verify", headers=auditor, files={"file": ("x.jpg", content, "image/jpeg")}, timeout=30
    )
    assert verified.status_code == 200
    assert verified.json()["labels"] == ["ai_generated"]


def test_serve_refuses_to_start_without_keys(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            *CLI,
            "serve",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "var"),
            "--keys-dir",
            str(tmp_path / "none"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "keys init" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_client_that_leaves_mid_upload_costs_no_traceback(database: Database, tmp_path: Path) -> None:
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Process Newsroom")
    with serve(database, data, keys) as running:
        port = int(running.base.rsplit(":", 1)[1])
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                boundary = "b0undary"
                head = (
                    f"POST /verify HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n"
                    f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
                    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
                )
                sock.sendall(head.encode() + b"\xff\xd8" * 1000)
            time.sleep(0.2)
        assert httpx.get(f"{running.base}/healthz", timeout=5).status_code == 200
        log = running.log.read_text()
    assert "Traceback" not in log
    assert "Exception in ASGI application" not in log


def test_an_invalid_setting_is_named_in_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_dev_keys(keys, "Process Newsroom")
    proc = subprocess.run(
        [*CLI, "reverify", "--data-dir", str(tmp_path / "var"), "--keys-dir", str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PROVENANCE_TRUSTED_PROXIES": "10.0.0.1/8"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "trusted_proxies" in lines[0]
    assert "network" in lines[0]
