"""The README's upload hook examples, run as written (curl, Python with httpx, JavaScript fetch on Node.js)
against a real server: the fenced blocks of its "Upload hook examples" section are extracted and executed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from provenance.keys import init_dev_keys
from tests import images
from tests.databases import Database
from tests.server_support import Server, create_token, serve
from tests.service_support import sample

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Upload hook examples"
#: How each block is run, by its fence's language: (file name, command).
RUNNERS = {
    "sh": ("upload.sh", ["bash", "-e", "upload.sh"]),
    "python": ("upload.py", [sys.executable, "upload.py"]),
    "js": ("upload.mjs", ["node", "upload.mjs"]),
}
ASSET_ID = re.compile(r"\bimg_[0-9a-f]{24}\b")
ARTICLE_ID = re.compile(r"\bart_[0-9a-f]{24}\b")


def readme_blocks() -> dict[str, str]:
    """The fenced code blocks of the section, by language (one each)."""
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", section, re.DOTALL | re.MULTILINE)
    by_language = dict(blocks)
    assert len(by_language) == len(blocks), "one block per language"
    return by_language


def test_the_section_has_one_example_per_client() -> None:
    assert set(readme_blocks()) == set(RUNNERS)


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("readme")
    init_dev_keys(root / "keys", "README Newsroom")
    with serve(database, root / "var", root / "keys") as running:
        yield running


def run_example(language: str, workdir: Path, base: str, token: str) -> subprocess.CompletedProcess[str]:
    name, command = RUNNERS[language]
    (workdir / name).write_text(readme_blocks()[language])
    env = {"PATH": os.environ["PATH"], "PROVENANCE_URL": base, "PROVENANCE_TOKEN": token}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.parametrize("language", RUNNERS)
def test_the_example_uploads_an_image_and_an_article(
    language: str, server: Server, tmp_path: Path, database: Database
) -> None:
    seed = 700 + list(RUNNERS).index(language) + 10 * database.kind.startswith("p")
    (tmp_path / "photo.jpg").write_bytes(images.jpeg(seed=seed))
    payload = json.loads(sample("council-human.json"))
    payload["external_id"] = f"readme/{language}"
    (tmp_path / "article.json").write_text(json.dumps(payload))
    token = create_token(server, "newsroom")  # its own token: Idempotency-Keys are per token

    done = run_example(language, tmp_path, server.base, token)
    assert done.returncode == 0, done.stderr
    [asset_id] = set(ASSET_ID.findall(done.stdout))
    [article_id] = set(ARTICLE_ID.findall(done.stdout))
    asset = httpx.get(f"{server.base}/v1/assets/{asset_id}", timeout=10)
    assert asset.status_code == 200
    assert asset.json()["state"] == "trusted"
    assert asset.json()["labels"] == []  # declared camera: no AI label
    version = httpx.get(f"{server.base}/v1/articles/{article_id}/v1.txt", timeout=10)
    assert version.status_code == 200
    assert payload["headline"].encode() in version.content
    badge = httpx.get(f"{server.base}/v1/badges/{asset_id}.svg", timeout=10)
    assert badge.status_code == 200

    # Run again: the same upload (and Idempotency-Key) is the same asset, the same version a repeat.
    again = run_example(language, tmp_path, server.base, token)
    assert again.returncode == 0, again.stderr
    assert set(ASSET_ID.findall(again.stdout)) == {asset_id}
    assert set(ARTICLE_ID.findall(again.stdout)) == {article_id}


@pytest.mark.parametrize("language", RUNNERS)
def test_the_example_stops_on_a_refusal_with_its_problem(language: str, server: Server, tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(images.jpeg(seed=790))
    (tmp_path / "article.json").write_bytes(sample("council-human.json"))
    done = run_example(language, tmp_path, server.base, "pv_not-a-token")
    assert done.returncode != 0
    assert "unauthorized" in done.stdout + done.stderr  # the problem's type, shown by each client
    assert ASSET_ID.search(done.stdout) is None
