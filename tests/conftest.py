"""Shared fixtures: a development CA made once per session, trust configs, signers, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from typer.testing import CliRunner

from provenance import FileKeySigner, TrustConfig
from provenance.keys import Algorithm, IssuedChain, init_dev_keys, issue_chain
from tests.browser_support import CHROMIUM, FLAGS
from tests.databases import KINDS, Database, PostgresCluster
from tests.objectstore import ObjectServer
from tests.server_support import free_port

EXTERNAL = Path(__file__).parent / "fixtures" / "external"
TEST_ANCHORS = EXTERNAL / "c2pa-rs" / "certs" / "trust" / "test_cert_root_bundle.pem"


@pytest.fixture(scope="session")
def chain() -> IssuedChain:
    """The newsroom's development chain (ES256)."""
    return issue_chain("Test Newsroom", Algorithm.ES256)


@pytest.fixture(scope="session")
def trust(chain: IssuedChain) -> TrustConfig:
    """Trust configuration with only the newsroom's development root."""
    return TrustConfig(chain.root_pem.decode())


@pytest.fixture(scope="session")
def signer(chain: IssuedChain) -> FileKeySigner:
    return FileKeySigner.from_pem(chain.key_pem, chain.chain_pem)


@pytest.fixture(scope="session")
def no_trust() -> TrustConfig:
    return TrustConfig()


@pytest.fixture(scope="session")
def test_anchors() -> TrustConfig:
    """The c2pa-rs test roots: the external fixtures signed by the C2PA test CA become trusted."""
    return TrustConfig.from_files([TEST_ANCHORS])


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the whole session (started at first use)."""
    cluster = PostgresCluster.start(free_port())
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def object_server() -> Iterator[ObjectServer]:
    """moto's S3 server on loopback for the whole session (started at first use); a bucket per test."""
    server = ObjectServer.start(free_port())
    yield server
    server.stop()


@pytest.fixture(scope="session", params=KINDS)
def database(request: pytest.FixtureRequest) -> Database:
    """Every service test runs once on the embedded SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        return Database("postgresql", request.getfixturevalue("postgres"))
    return Database("sqlite")


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """A fresh keys directory made by the real `keys init` code path."""
    directory = tmp_path / "keys"
    init_dev_keys(directory, "CLI Newsroom")
    return directory


@pytest.fixture
def cli() -> Iterator[CliRunner]:
    return CliRunner()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, one per test module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()
