"""Service settings: flags over environment over TOML file; colon-separated anchors; refusal without keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provenance import KeyMaterialError
from provenance.keys import init_dev_keys, issue_chain
from service.context import build_context
from service.settings import Settings, load_settings


def test_environment_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "provenance.toml"
    config.write_text(
        'data_dir = "from-toml"\nmax_upload_bytes = 1234\nrate_limit_per_minute = 7\ndatabase_url = "sqlite:///x.db"\n'
    )
    settings = load_settings(config)
    assert (settings.data_dir, settings.max_upload_bytes, settings.rate_limit_per_minute) == (
        Path("from-toml"),
        1234,
        7,
    )
    assert settings.database == "sqlite:///x.db"

    monkeypatch.setenv("PROVENANCE_DATA_DIR", "from-env")
    monkeypatch.setenv("PROVENANCE_TRUST_ANCHORS", "a.pem:b.pem")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/provenance")
    settings = load_settings(config)
    assert settings.data_dir == Path("from-env")  # the environment beats the file
    assert settings.trust_anchors == [Path("a.pem"), Path("b.pem")]
    assert settings.database == "postgresql+psycopg://db/provenance"
    assert load_settings(config, data_dir=Path("from-flag")).data_dir == Path("from-flag")  # flags beat both


def test_unknown_setting_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "provenance.toml"
    config.write_text("max_upload_byte = 1\n")  # a typo must not be silently ignored
    with pytest.raises(ValueError, match="max_upload_byte"):
        load_settings(config)


def test_service_trusts_its_own_root_and_the_configured_anchors(tmp_path: Path) -> None:
    init_dev_keys(tmp_path / "keys", "Settings Newsroom")
    other = tmp_path / "partner-root.pem"
    other.write_bytes(issue_chain("Partner Agency").root_pem)
    settings = load_settings(data_dir=tmp_path / "var", keys_dir=tmp_path / "keys", trust_anchors=[other])
    subjects = settings.trust().anchor_subjects()
    assert len(subjects) == 2
    assert any("Settings Newsroom" in s for s in subjects)
    assert any("Partner Agency" in s for s in subjects)


def test_service_refuses_to_start_without_keys(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var", keys_dir=tmp_path / "missing")
    with pytest.raises(KeyMaterialError) as info:
        build_context(settings)
    assert "provenance keys init" in info.value.diagnostics()


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("### Settings", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.MULTILINE))
    assert documented == set(Settings.model_fields)
