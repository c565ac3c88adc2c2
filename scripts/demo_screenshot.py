"""Write docs/demo.png, the README's screenshot of /demo: the samples on a throwaway server, in Chromium.

    .venv/bin/python scripts/demo_screenshot.py [--lang zh-Hans|en] [--out docs/demo.png]

Runs `provenance serve --samples samples` on fresh dev keys and an empty data dir in a temporary folder
(nothing of var/ or keys/ is touched), opens /demo in Debian's chromium (Playwright, headless, no network
beyond loopback), waits for badge.js to render the marks and saves the whole page.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 900}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(600):
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()}")
        time.sleep(0.05)
    raise SystemExit("the server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", default="zh-Hans", choices=["zh-Hans", "en"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "demo.png")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "service.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")}  # the embedded default
    with tempfile.TemporaryDirectory() as tmp:
        keys, data, log = Path(tmp) / "keys", Path(tmp) / "var", Path(tmp) / "serve.log"
        subprocess.run([*cli, "keys", "init", "--keys-dir", str(keys), "--org", "Example Newsroom"], check=True,
                       capture_output=True, env=env)  # fmt: skip
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [*cli, "serve", "--samples", str(ROOT / "samples"), "--data-dir", str(data), "--keys-dir", str(keys),
                 "--host", "127.0.0.1", "--port", str(port)],
                stdout=sink, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        try:
            _wait_ready(base, server, log)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(f"{base}/demo?lang={args.lang}")
                page.wait_for_selector("#lead-caption .provenance-badge")
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
