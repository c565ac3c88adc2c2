"""Offline by default: inspect and stamp never open a network connection.

Each test points the network-capable parts of C2PA at a listener on loopback (a remote manifest
URL; an OCSP responder in the signing certificate) and proves nobody connected to it.
"""

from __future__ import annotations

import socket
import struct
import threading
import zlib
from collections.abc import Iterator

import pytest

from provenance import FileKeySigner, InputError, Source, StampRequest, State, TrustConfig, inspect, stamp
from provenance.articles import ArticleVersion, parse_payload, stamp_article
from provenance.keys import Algorithm, issue_chain

from . import images
from .conftest import EXTERNAL


class Listener:
    """A TCP server on 127.0.0.1 that records every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def _png_with_remote_url(url: str) -> bytes:
    """libpng-test_with_url.png (c2pa-rs) with its remote manifest URL re-pointed at ``url``."""
    data = (EXTERNAL / "c2pa-rs" / "libpng-test_with_url.png").read_bytes()
    old = b"http://localhost:5000/libpng-test.c2pa"
    out, pos = bytearray(data[:8]), 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        body = data[pos + 4 : pos + 8 + length]  # type + payload
        if old in body:
            body = body.replace(old, url.encode())
        out += struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
        pos += 12 + length
    assert url.encode() in out
    return bytes(out)


def test_remote_manifest_is_reported_not_fetched(listener: Listener, trust: TrustConfig) -> None:
    url = f"http://127.0.0.1:{listener.port}/manifest.c2pa"
    verdict = inspect(_png_with_remote_url(url), trust)
    assert verdict.state is State.UNAVAILABLE
    assert verdict.remote_manifest_url == url
    assert verdict.labels == ()
    assert listener.connections == 0


def test_stamp_refuses_remote_only_upload_without_fetching(
    listener: Listener, trust: TrustConfig, signer: FileKeySigner
) -> None:
    data = _png_with_remote_url(f"http://127.0.0.1:{listener.port}/manifest.c2pa")
    with pytest.raises(InputError, match="remote manifest"):
        stamp(data, StampRequest(Source.CAMERA), signer, trust)
    assert listener.connections == 0


def test_ocsp_responder_in_signing_certificate_is_never_contacted(listener: Listener) -> None:
    chain = issue_chain("OCSP Newsroom", Algorithm.ES256, ocsp_url=f"http://127.0.0.1:{listener.port}/ocsp")
    trust = TrustConfig(chain.root_pem.decode())
    signer = FileKeySigner.from_pem(chain.key_pem, chain.chain_pem)
    result = stamp(images.jpeg(), StampRequest(Source.CAMERA), signer, trust)
    assert result.verdict.state is State.TRUSTED
    again = inspect(result.data, trust)
    assert again.state is State.TRUSTED
    assert "signingCredential.ocsp.skipped" in {c.code for c in again.codes.informational}
    assert listener.connections == 0


def test_listener_really_counts_connections(listener: Listener) -> None:
    # The proofs above are only as good as the listener: show that a connection is seen.
    with socket.create_connection(("127.0.0.1", listener.port), timeout=2):
        pass
    for _ in range(50):
        if listener.connections:
            break
        threading.Event().wait(0.02)
    assert listener.connections == 1


def test_article_signing_and_verification_stay_offline(listener: Listener) -> None:
    chain = issue_chain("OCSP Newsroom", Algorithm.ES256, ocsp_url=f"http://127.0.0.1:{listener.port}/ocsp")
    trust = TrustConfig(chain.root_pem.decode())
    signer = FileKeySigner.from_pem(chain.key_pem, chain.chain_pem)
    doc = (
        b'{"external_id": "a", "version": 1, "headline": "H", "byline": "B", "language": "en",'
        b' "url": "https://news.example.com/a", "body_text": "Body.", "source": "ai_generated"}'
    )
    v1 = stamp_article(parse_payload(doc), signer, trust)
    v2 = stamp_article(
        parse_payload(doc.replace(b'"version": 1', b'"version": 2')),
        signer,
        trust,
        previous=ArticleVersion(v1.text, v1.manifest),
    )
    assert inspect(v2.text, trust, sidecar=v2.manifest).labels == ("ai_reported",)
    assert listener.connections == 0
