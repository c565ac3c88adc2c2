"""The public verify page is rate-limited per client address."""

from __future__ import annotations

from pathlib import Path

from . import images
from .databases import Database
from .service_support import running, service_settings


def test_public_verify_page_is_rate_limited(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database, public_verify_per_minute=2)) as svc:
        files = {"file": ("a.jpg", images.jpeg(), "image/jpeg")}
        statuses = [svc.client.post("/verify", files=files).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        limited = svc.client.post("/verify", files=files)
        assert int(limited.headers["retry-after"]) >= 1
        assert "Too many verifications" in limited.text
