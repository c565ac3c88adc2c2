"""The real `provenance serve` process on a free loopback port, driven over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provenance import TrustConfig, inspect
from provenance.keys import init_dev_keys

from . import images

CLI = [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Process Newsroom")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data),
                "--keys-dir",
                str(keys),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()}")
            time.sleep(0.05)
        else:
            raise AssertionError("server did not become ready")
        yield base, data, keys
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def token(data: Path, keys: Path, role: str) -> str:
    proc = subprocess.run(
        [
            *CLI,
            "tokens",
            "create",
            "--role",
            role,
            "--name",
            f"{role} test",
            "--data-dir",
            str(data),
            "--keys-dir",
            str(keys),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pv_")
    return lines[0]


def test_upload_badge_report_verify_over_http(server: tuple[str, Path, Path]) -> None:
    base, data, keys = server
    newsroom = {"Authorization": f"Bearer {token(data, keys, 'newsroom')}"}
    auditor = {"Authorization": f"Bearer {token(data, keys, 'auditor')}"}

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

    badge = httpx.get(asset["links"]["badge_svg"] + "?lang=zh-Hans", timeout=10)
    assert badge.status_code == 200
    assert badge.headers["content-type"] == "image/svg+xml"
    assert "AI 生成的图像" in badge.text
    again = httpx.get(asset["links"]["badge_svg"] + "?lang=zh-Hans", headers={"If-None-Match": badge.headers["etag"]})
    assert again.status_code == 304
    english = httpx.get(asset["links"]["badge_svg"], headers={"If-None-Match": badge.headers["etag"]})
    assert english.status_code == 200  # another language is another representation
    assert "AI-generated image" in english.text

    assert httpx.get(asset["links"]["report"], timeout=10).status_code == 401
    report = httpx.get(asset["links"]["report"], headers=auditor, timeout=30)
    assert report.status_code == 200
    assert report.json()["verification"]["state"] == "trusted"
    assert report.json()["stamped_by"]["role"] == "newsroom"

    content = httpx.get(asset["links"]["content"], timeout=10).content
    trust = TrustConfig.from_files([keys / "root.pem"])
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
