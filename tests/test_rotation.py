"""Key rotation: a new active signing identity; what the old one signed keeps its state until its root
is removed (then re-verification drops it)."""

from __future__ import annotations

import shutil
from pathlib import Path

from cryptography import x509

from provenance.keys import rotate_keys

from . import images
from .databases import Database
from .service_support import running, service_settings


def leaf(chain: Path) -> str:
    return x509.load_pem_x509_certificates(chain.read_bytes())[0].subject.rfc4514_string()


def test_rotation_keeps_stored_assets_and_retiring_an_anchor_drops_them(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    data_dir = tmp_path / "var"
    with running(service_settings(data_dir, keys_dir, database)) as svc:
        old = svc.upload(images.jpeg(seed=71), {"source": "ai_generated"}).json()
        old_signer = leaf(keys_dir / "chain.pem")

    retired = rotate_keys(keys_dir, "Rotated Newsroom")
    assert (retired / "root.pem").exists()
    assert leaf(keys_dir / "chain.pem") != old_signer

    with running(service_settings(data_dir, keys_dir, database)) as svc:
        badge = svc.client.get(f"/v1/badges/{old['id']}.json").json()
        assert (badge["state"], [label["id"] for label in badge["labels"]]) == ("trusted", ["ai_generated"])
        new = svc.upload(images.jpeg(seed=72), {"source": "ai_generated"}).json()
        assert new["state"] == "trusted"
        report = svc.client.get(new["links"]["report"], headers=svc.bearer("auditor")).json()
        assert "Rotated Newsroom" in report["signer_chain"][0]["subject"]

    shutil.rmtree(retired)  # the old identity is compromised: stop trusting it
    with running(service_settings(data_dir, keys_dir, database)) as svc:
        assert svc.client.get(f"/v1/badges/{old['id']}.json").json()["state"] == "untrusted"
        assert svc.client.get(f"/v1/badges/{new['id']}.json").json()["state"] == "trusted"


def test_cli_rotate_and_status(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from provenance.cli import app
    from provenance.keys import init_dev_keys

    keys = tmp_path / "k"
    init_dev_keys(keys, "Before")
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "rotate", "--keys-dir", str(keys), "--org", "After"]).exit_code == 0
    status = json.loads(runner.invoke(app, ["keys", "status", "--keys-dir", str(keys), "--json"]).stdout)
    files = [row["file"] for row in status["certificates"]]
    assert files[:3] == ["signing chain", "signing chain", "trust anchor"]
    assert len(files) == 4
    assert files[3].startswith("retired anchor ")
    assert "After" in status["certificates"][0]["subject"]
    assert "Before" in status["certificates"][3]["subject"]
