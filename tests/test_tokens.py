"""Token lifecycle through the command line: create prints only the token, revoke stops it at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from provenance.keys import init_dev_keys
from service.context import build_context
from service.security.tokens import authenticate
from tests.databases import Database
from tests.service_support import service_settings

CLI = [sys.executable, "-m", "service.cli"]


def test_create_then_revoke(database: Database, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Token Newsroom")
    where = ("--data-dir", str(data), "--keys-dir", str(keys))
    env = {**os.environ, **database.env(data)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False, env=env)

    created = run("tokens", "create", "--role", "newsroom", "--name", "cms", *where)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"
    ctx = build_context(service_settings(data, keys, database))
    request.addfinalizer(ctx.close)
    with ctx.session() as session:
        caller = authenticate(session, f"Bearer {secret}")
        assert caller is not None
        assert (caller.name, caller.role) == ("cms", "newsroom")
    assert run("tokens", "revoke", "--name", "cms", *where).returncode == 0
    with ctx.session() as session:
        assert authenticate(session, f"Bearer {secret}") is None
    again = run("tokens", "revoke", "--name", "cms", *where)
    assert again.returncode == 2
    assert "no live token" in again.stderr
    bad_role = run("tokens", "create", "--role", "root", "--name", "x", *where)
    assert bad_role.returncode == 2
    assert bad_role.stdout == ""
