"""Token lifecycle through the command line: create prints only the token, revoke stops it at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from provenance.keys import init_dev_keys
from service.auth import authenticate
from service.context import build_context
from service.settings import load_settings

CLI = [sys.executable, "-m", "service.cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def test_create_then_revoke(tmp_path: Path) -> None:
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Token Newsroom")
    where = ("--data-dir", str(data), "--keys-dir", str(keys))
    created = run("tokens", "create", "--role", "newsroom", "--name", "cms", *where)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"
    ctx = build_context(load_settings(data_dir=data, keys_dir=keys))
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
