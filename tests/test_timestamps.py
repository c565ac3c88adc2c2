"""RFC 3161 timestamps against a real local TSA (`openssl ts -reply` behind a small HTTP handler).

A signature made with a certificate that expires seconds later stays trusted after the expiry when
it was timestamped (and the TSA is trusted), and becomes invalid when it was not. A TSA that is down
or silent costs at most the configured timeout, and the policy decides: fail, or sign and flag.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance import FileKeySigner, SigningError, Source, StampRequest, State, TrustConfig, inspect, stamp
from provenance.keys import Algorithm, issue_chain
from provenance.timestamps import Timestamping
from service.store.db import Asset

from . import images
from .databases import Database
from .service_support import running, service_settings

TSA_CONFIG = """[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = {dir}/serial
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A timestamp authority on loopback: (URL, its root certificate)."""
    d = tmp_path_factory.mktemp("tsa")
    ec_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
             "-subj", "/CN=Test TSA Root", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)  # fmt: skip
    _openssl("req", *ec_key, "-keyout", "tsa.key", "-out", "tsa.csr", "-subj", "/CN=Test TSA", cwd=d)
    (d / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    _openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "tsa.pem", "-days", "30", "-extfile", "ext.cnf", cwd=d)  # fmt: skip
    (d / "tsa.cnf").write_text(TSA_CONFIG.format(dir=d))
    (d / "serial").write_text("01\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("content-length", "0")))
            with tempfile.TemporaryDirectory() as work:
                (Path(work) / "q.tsq").write_bytes(query)
                done = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile", f"{work}/q.tsq",
                     "-inkey", str(d / "tsa.key"), "-signer", str(d / "tsa.pem"), "-chain", str(d / "ca.pem"),
                     "-out", f"{work}/r.tsr"],
                    capture_output=True, check=False,
                )  # fmt: skip
                body = (Path(work) / "r.tsr").read_bytes() if done.returncode == 0 else b""
            self.send_response(200 if body else 500)
            self.send_header("content-type", "application/timestamp-reply")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", d / "ca.pem"
    finally:
        server.shutdown()
        server.server_close()


def short_lived(seconds: int) -> tuple[FileKeySigner, TrustConfig]:
    now = dt.datetime.now(dt.UTC)
    chain = issue_chain("Deadline News", Algorithm.ES256, not_after=now + dt.timedelta(seconds=seconds))
    return FileKeySigner.from_pem(chain.key_pem, chain.chain_pem), TrustConfig(chain.root_pem.decode())


def test_timestamp_keeps_a_signature_valid_after_the_certificate_expires(tsa: tuple[str, Path]) -> None:
    url, tsa_root = tsa
    signer, trust = short_lived(4)
    with_tsa = trust.with_tsa_anchors([tsa_root])
    stamped = stamp(images.jpeg(seed=61), StampRequest(Source.AI_GENERATED), signer, with_tsa,
                    timestamping=Timestamping(url))  # fmt: skip
    plain = stamp(images.jpeg(seed=62), StampRequest(Source.AI_GENERATED), signer, with_tsa)
    assert stamped.timestamp_note is None
    assert stamped.verdict.signer is not None
    assert stamped.verdict.signer.time is not None  # the signing time now comes from the TSA
    assert plain.verdict.signer is not None
    assert plain.verdict.signer.time is None
    time.sleep(5)  # the signing certificate has expired
    after = inspect(stamped.data, with_tsa)
    assert after.state is State.TRUSTED
    assert after.labels == ("ai_generated",)
    expired = inspect(plain.data, with_tsa)
    assert expired.state is State.INVALID
    assert "signingCredential.expired" in expired.codes.failure_codes()
    assert inspect(stamped.data, trust).state is State.INVALID  # the TSA's root is not trusted here


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def silent_tsa() -> Iterator[str]:
    """Accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["down", "silent"])
def test_unreachable_tsa_costs_at_most_the_timeout_and_the_policy_decides(kind: str, silent_tsa: str) -> None:
    url = silent_tsa if kind == "silent" else _closed_port()
    signer, trust = short_lived(3600)
    start = time.monotonic()
    with pytest.raises(SigningError, match="did not answer"):
        stamp(
            images.jpeg(seed=63), StampRequest(Source.CAMERA), signer, trust, timestamping=Timestamping(url, timeout=1)
        )
    assert time.monotonic() - start < 5
    flagged = stamp(images.jpeg(seed=64), StampRequest(Source.CAMERA), signer, trust,
                    timestamping=Timestamping(url, required=False, timeout=1))  # fmt: skip
    assert flagged.verdict.state is State.TRUSTED
    assert flagged.timestamp_note is not None
    assert "without a timestamp" in flagged.timestamp_note


def test_service_timestamps_uploads_and_flags_a_missing_timestamp(
    database: Database, tsa: tuple[str, Path], tmp_path: Path, keys_dir: Path
) -> None:
    url, tsa_root = tsa
    with running(service_settings(tmp_path / "var", keys_dir, database, tsa_url=url, tsa_anchors=[tsa_root])) as svc:
        asset = svc.upload(images.jpeg(seed=65), {"source": "ai_generated"}).json()
        report = svc.client.get(asset["links"]["report"], headers=svc.bearer("auditor")).json()
        assert report["verification"]["signer"]["time"] is not None
        assert "timestamp_note" not in report["verification"]
    with running(
        service_settings(
            tmp_path / "var2", keys_dir, database, tsa_url=_closed_port(), tsa_required=False, tsa_timeout=1
        )
    ) as svc:
        response = svc.upload(images.jpeg(seed=66), {"source": "camera"})
        assert response.status_code == 201
        with svc.session() as session:
            row = session.get(Asset, response.json()["id"])
            assert row is not None
            assert "without a timestamp" in row.verdict["timestamp_note"]
    with running(service_settings(tmp_path / "var3", keys_dir, database, tsa_url=_closed_port(), tsa_timeout=1)) as svc:
        refused = svc.upload(images.jpeg(seed=67), {"source": "camera"})
        assert refused.status_code == 500
        assert refused.json()["type"] == "/problems/signing-error"


def test_cli_stamp_with_a_tsa(tsa: tuple[str, Path], tmp_path: Path, keys_dir: Path) -> None:
    import json

    from typer.testing import CliRunner

    from provenance.cli import app

    url, tsa_root = tsa
    (tmp_path / "in.jpg").write_bytes(images.jpeg(seed=68))
    result = CliRunner().invoke(
        app,
        ["stamp", str(tmp_path / "in.jpg"), "-o", str(tmp_path / "out.jpg"), "--source", "camera",
         "--keys-dir", str(keys_dir), "--tsa-url", url, "--tsa-anchors", str(tsa_root), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    stamped = json.loads(result.stdout)
    assert stamped["verdict"]["signer"]["time"] is not None
    assert stamped["timestamp_note"] is None
    down = CliRunner().invoke(
        app,
        ["stamp", str(tmp_path / "in.jpg"), "-o", str(tmp_path / "out2.jpg"), "--source", "camera",
         "--keys-dir", str(keys_dir), "--tsa-url", _closed_port()],
    )  # fmt: skip
    assert down.exit_code == 1
    assert "did not answer" in down.stderr
    assert not (tmp_path / "out2.jpg").exists()
