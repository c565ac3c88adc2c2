"""The transparency log through the real service, on both databases: every stamp, article version, rendition,
withdrawal and reinstatement is an entry; the log's files, checkpoint and proofs check with our offline
``provenance audit verify-log`` and with Go's ``golang.org/x/mod/sumdb/tlog`` and ``.../note``
(``tests/tlogverify``, built offline from Debian's packages); a log that drops, alters, re-orders or
back-dates an entry, or forks, is caught by both; sequencing survives kill -9 and two server processes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from provenance import KeyMaterialError, tlog
from provenance.keys import init_dev_keys
from provenance.keys.logkey import LOG_KEY_FILE, LOG_VKEY_FILE, load_log_key, read_verifier
from provenance.notes import Checkpoint, LogKey, open_checkpoint, sign_checkpoint
from provenance.policy import POLICY_VERSION
from provenance.transparency import (
    DirectoryLog,
    audit_log,
    check_inclusion,
    decode_entry,
    encode_entry,
    log_files,
    timestamp,
)
from service.app import create_app
from service.cli import app as cli_app
from service.log import tree
from service.log.sequencer import LOCK, sequence_once
from service.store import locks
from service.store.db import ArticleVersion, LogCheckpoint, LogEntry, make_engine, make_sessionmaker

from . import images
from .databases import Database
from .server_support import Server, create_token, serve
from .service_support import (
    LOGGED_WITHIN,
    Get,
    Service,
    assert_problem,
    checkpoint_size,
    running,
    service_settings,
    wait_logged,
)

ORG = "Log Test Newsroom"
GO_SOURCE = Path(__file__).resolve().parent / "tlogverify"


@pytest.fixture(scope="session")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/tlogverify built with Debian's Go and golang.org/x/mod, offline (no module download)."""
    go = shutil.which("go")
    assert go is not None, "Go is installed by scripts/install-system-deps (golang-go, golang-golang-x-mod-dev)"
    out = tmp_path_factory.mktemp("tlogverify")
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(out / "cache"),
        "GOFLAGS": "",
        "GOPROXY": "off",
    }
    binary = out / "tlogverify"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_SOURCE, env=env, check=True, capture_output=True)
    return binary


def go(binary: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=60)


def verify_log(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["audit", "verify-log", *map(str, args)])
    return result.exit_code, result.output


def mirror(get: Get, dest: Path) -> Checkpoint:
    """A copy of the served log's files, as a CDN or an auditor would fetch them."""
    note = get("/log/checkpoint").text
    size = int(note.split("\n")[1])
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "checkpoint").write_text(note)
    for path in log_files(size):
        answer = get(f"/log/{path}")
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        (dest / path).write_bytes(answer.content)
    return Checkpoint.parse(note.split("\n\n")[0] + "\n")


def write_log(dest: Path, entries: list[bytes], key: LogKey) -> str:
    """A log of ``entries`` written from scratch and signed with the log's key: what an operator holding the
    key could publish after rewriting history. Returns the checkpoint note."""
    tiles: dict[tuple[int, int], bytes] = {}

    class Tiles:
        def tile(self, level: int, index: int, width: int) -> bytes:
            return tiles.get((level, index), b"")

    tiles.update(tlog.append(Tiles(), 0, [tlog.leaf_hash(e) for e in entries]))
    size = len(entries)
    note = sign_checkpoint(Checkpoint(key.name, size, tlog.Tree(Tiles(), size).root()), key)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    (dest / "checkpoint").write_text(note)
    for path in log_files(size):
        ref = tlog.parse_tile_path(path)
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        if ref.level < 0:
            first = ref.index * tlog.TILE_WIDTH
            data = tlog.encode_bundle(entries[first : first + ref.width])
        else:
            data = tiles[(ref.level, ref.index)][: ref.width * tlog.HASH_SIZE]
        (dest / path).write_bytes(data)
    return note


def entries_of(copy: Path, size: int) -> list[bytes]:
    log = DirectoryLog(copy)
    out: list[bytes] = []
    for n in range((size + 255) // 256):
        out += log.bundle(n, tlog.tile_width(size, 0, n))
    return out


@pytest.fixture
def svc(tmp_path: Path, database: Database) -> Iterator[Service]:
    keys = tmp_path / "keys"
    init_dev_keys(keys, ORG)
    with running(service_settings(tmp_path / "data", keys, database)) as service:
        yield service


def test_every_event_is_logged_and_checks_with_go_and_offline(svc: Service, go_verifier: Path, tmp_path: Path) -> None:
    get = svc.client.get
    declaration = {"source": "ai_generated", "title": "A generated harbour"}
    asset = svc.upload(images.jpeg(640, 480, seed=3), declaration).json()
    article = svc.post_article("ai-weather.json").json()
    old_note = wait_logged(get, 2)
    assert get(f"/v1/assets/{asset['id']}/renditions/300.jpg").status_code == 200
    reason = {"reason": "Published by mistake; the photo desk asked for it to be taken down"}
    assert svc.client.post(f"/v1/assets/{asset['id']}/withdraw", json=reason, headers=svc.bearer("newsroom")).is_success
    again = {"reason": "Cleared by legal"}
    assert svc.client.post(f"/v1/assets/{asset['id']}/reinstate", json=again, headers=svc.bearer("admin")).is_success
    note = wait_logged(get, 5)

    vkey = tmp_path / "log.vkey"
    vkey.write_text(get("/log/key").text)
    assert vkey.read_text() == (svc.ctx.settings.keys_dir / LOG_VKEY_FILE).read_text()
    copy = tmp_path / "copy"
    checkpoint = mirror(get, copy)
    assert checkpoint.size == 5
    verifier = read_verifier(svc.ctx.settings.keys_dir)
    audit = audit_log(DirectoryLog(copy), verifier)
    assert audit.ok, audit.findings
    assert audit.by_event == {"stamp": 1, "article": 1, "rendition": 1, "withdraw": 1, "reinstate": 1}

    # What the entries say: the declaration and decision, never the withdrawal's reason itself.
    records = [decode_entry(e) for e in entries_of(copy, 5)]
    stamp = next(r for r in records if r["event"] == "stamp")
    content = get(f"/v1/assets/{asset['id']}/content").content
    assert stamp["content_sha256"] == hashlib.sha256(content).hexdigest()
    assert stamp["declaration"] == declaration
    assert (stamp["labels"], stamp["state"], stamp["policy"]) == (["ai_generated"], "trusted", POLICY_VERSION)
    withdrawal = next(r for r in records if r["event"] == "withdraw")
    assert withdrawal["reason_sha256"] == hashlib.sha256(reason["reason"].encode()).hexdigest()
    assert reason["reason"] not in json.dumps(records)
    assert next(r for r in records if r["event"] == "article")["item"] == article["id"]

    # Go's sumdb packages: the whole copy, one inclusion proof, and consistency with the earlier checkpoint.
    audited = go(go_verifier, "audit", vkey, copy)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert audited.stdout.startswith("OK"), audited.stdout + audited.stderr
    (tmp_path / "cp").write_text(note)
    (tmp_path / "old").write_text(old_note)
    for index in range(5):
        (tmp_path / f"inclusion-{index}.json").write_text(get(f"/log/proof/inclusion?index={index}&size=5").text)
        included = go(go_verifier, "inclusion", vkey, tmp_path / "cp", tmp_path / f"inclusion-{index}.json")
        assert included.returncode == 0, included.stdout
    (tmp_path / "consistency.json").write_text(get("/log/proof/consistency?from=2&to=5").text)
    consistent = go(go_verifier, "consistency", vkey, tmp_path / "old", tmp_path / "cp", tmp_path / "consistency.json")
    assert consistent.returncode == 0, consistent.stdout

    # Our offline command, with the same files.
    code, output = verify_log("--key", vkey, "--log", copy, "--previous", tmp_path / "old")
    assert code == 0, output
    assert "OK every entry of the copy checks (5:" in output, output
    code, output = verify_log(
        "--key", vkey, "--checkpoint", tmp_path / "cp", "--previous", tmp_path / "old", "--proof",
        tmp_path / "consistency.json",
    )  # fmt: skip
    assert code == 0, output
    assert "extends the saved log of 2" in output, output
    stamped = tmp_path / "stamped.jpg"
    stamped.write_bytes(content)
    code, output = verify_log("--key", vkey, "--log", copy, "--file", stamped)
    assert code == 0, output
    assert "(stamp of " in output, output

    # The item's report carries its entries, each proven against the checkpoint it names.
    report = get(f"/v1/assets/{asset['id']}/report", headers={**svc.bearer("auditor"), "Accept": "application/json"})
    evidence = report.json()["transparency_log"]
    assert evidence["pending"] == 0
    assert evidence["size"] == 5
    assert [e["event"] for e in evidence["entries"]] == ["stamp", "rendition", "withdraw", "reinstate"]
    proven = open_checkpoint(evidence["checkpoint"], verifier)
    for entry in evidence["entries"]:
        check_inclusion(entry, proven)
    (tmp_path / "report.json").write_text(report.text)
    page = get(f"/v1/assets/{asset['id']}/report", headers={**svc.bearer("auditor"), "Accept": "text/html"})
    assert "<h3>Transparency log</h3>" in page.text
    assert "<td>#4</td><td>reinstated</td>" in page.text
    code, output = verify_log("--key", vkey, "--evidence", tmp_path / "report.json", "--file", stamped)
    assert code == 0, output
    assert output.count("is included") == 4, output
    other = tmp_path / "other.jpg"
    other.write_bytes(images.jpeg(seed=99))
    code, output = verify_log("--key", vkey, "--evidence", tmp_path / "report.json", "--file", other)
    assert code == 1, output
    assert "nothing in the log names sha256" in output, output


def test_a_log_that_misbehaves_is_caught_offline_and_by_go(svc: Service, go_verifier: Path, tmp_path: Path) -> None:
    get = svc.client.get
    for seed in range(4):
        assert svc.upload(images.jpeg(seed=seed), {"source": "ai_generated"}).status_code == 201
    saved = tmp_path / "saved-checkpoint"
    saved.write_text(wait_logged(get, 4))
    honest = tmp_path / "honest"
    mirror(get, honest)
    vkey = tmp_path / "log.vkey"
    vkey.write_text(get("/log/key").text)
    key = load_log_key(svc.ctx.settings.keys_dir)  # the operator holds the key: what it signs still checks
    entries = entries_of(honest, 4)

    def caught(copy: Path, offline: str, by_go: str, *extra: str | Path) -> None:
        code, output = verify_log("--key", vkey, "--log", copy, *extra)
        assert code == 1, output
        assert offline in output, output
        audited = go(go_verifier, "audit", vkey, copy)
        assert audited.returncode == 1, audited.stdout + audited.stderr
        assert by_go in audited.stdout, audited.stdout + audited.stderr

    # An entry altered in place (its bundle changed, the tree left alone).
    altered = tmp_path / "altered"
    shutil.copytree(honest, altered)
    bundle = altered / "tile/entries/000.p/4"
    bundle.write_bytes(bundle.read_bytes().replace(b"ai_generated", b"human_made__", 1))
    caught(altered, "altered", "altered")

    # Two entries swapped, the tree rebuilt and re-signed.
    swapped = tmp_path / "swapped"
    write_log(swapped, [entries[0], entries[2], entries[1], entries[3]], key)
    caught(swapped, "re-ordered", "re-ordered")

    # An entry removed and the rest renumbered: every rule holds, but the saved checkpoint is not a prefix.
    renumbered = [encode_entry({**decode_entry(e), "index": i}) for i, e in enumerate([entries[0], *entries[2:]])]
    removed = tmp_path / "removed"
    write_log(removed, renumbered, key)
    assert audit_log(DirectoryLog(removed), read_verifier(svc.ctx.settings.keys_dir)).ok
    code, output = verify_log("--key", vkey, "--log", removed, "--previous", saved)
    assert code == 1, output
    assert "forked" in output, output
    grown = [*renumbered, encode_entry({**decode_entry(entries[3]), "index": 3, "item": "img_" + "0" * 24})]
    write_log(removed, grown, key)  # the same size as the saved checkpoint again, with another history
    (tmp_path / "fork-proof.json").write_text(json.dumps({"proof": []}))
    code, output = verify_log("--key", vkey, "--log", removed, "--previous", saved)
    assert code == 1, output
    assert "forked" in output, output
    forked = go(go_verifier, "consistency", vkey, saved, removed / "checkpoint", tmp_path / "fork-proof.json")
    assert forked.returncode == 1, forked.stdout
    assert "forked" in forked.stdout, forked.stdout

    # A stamp appended today that claims to be a year old; one logged "before" the entry ahead of it.
    year_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    last = decode_entry(entries[3])
    backdated = tmp_path / "backdated"
    late = encode_entry({**last, "index": 4, "item": "img_" + "1" * 24, "at": timestamp(year_ago)})
    write_log(backdated, [*entries, late], key)
    caught(backdated, "back-dated", "back-dated")
    early = encode_entry({**last, "index": 4, "at": timestamp(year_ago), "logged_at": timestamp(year_ago)})
    write_log(backdated, [*entries, early], key)
    caught(backdated, "back-dated", "back-dated")

    # A checkpoint whose text was changed after signing.
    tampered = tmp_path / "tampered"
    shutil.copytree(honest, tampered)
    text = (tampered / "checkpoint").read_text()
    (tampered / "checkpoint").write_text(text.replace("\n4\n", "\n3\n", 1))
    caught(tampered, "FAIL checkpoint", "signature")

    # The honest copy still checks with both.
    code, output = verify_log("--key", vkey, "--log", honest, "--previous", saved)
    assert code == 0, output
    assert go(go_verifier, "audit", vkey, honest).returncode == 0


def test_log_routes_answer_only_what_the_tree_has(svc: Service) -> None:
    get = svc.client.get
    assert svc.upload(images.jpeg(seed=7)).status_code == 201
    wait_logged(get, 1)
    checkpoint = get("/log/checkpoint")
    assert checkpoint.headers["content-type"].startswith("text/plain")
    assert checkpoint.headers["cache-control"] == "no-cache"
    assert get("/log/tile/0/000.p/1").content == svc.client.get("/log/tile/0/000.p/1").content
    for path in ("0/000", "0/000.p/2", "0/001.p/1", "1/000.p/1", "entries/000.p/2", "0/0000.p/1", "00/000.p/1",
                 "0/000.p/0", "0/000.p/256", "x/000", "0/x000/000.p/1", "entries/000.p/1/extra",
                 "%C2%B2/000", "0/000.p/%C2%B9", "0/%D9%A1%D9%A2%D9%A3.p/1"):  # fmt: skip
        assert_problem(get(f"/log/tile/{path}"), 404, "not-found")
    assert get("/log/tile/entries/000.p/1").status_code == 200
    assert_problem(get("/log/proof/inclusion?index=1"), 422, "invalid-request")
    assert_problem(get("/log/proof/inclusion?index=0&size=2"), 422, "invalid-request")
    assert_problem(get("/log/proof/inclusion?index=-1"), 422, "invalid-request")
    assert_problem(get("/log/proof/consistency?from=2&to=1"), 422, "invalid-request")
    assert get("/log/proof/consistency?from=0").json() == {"from": 0, "to": 1, "proof": []}
    proof = get("/log/proof/inclusion?index=0").json()
    assert (proof["index"], proof["size"], proof["proof"]) == (0, 1, [])
    leaf = tlog.leaf_hash(base64.b64decode(proof["entry"]))
    assert base64.b64encode(leaf).decode() == checkpoint.text.split("\n")[2]  # a tree of one: the root is the leaf


def test_one_sequencer_at_a_time_and_nothing_half_done(tmp_path: Path, database: Database, keys_dir: Path) -> None:
    """A round skips while another process holds the lock; pending entries wait, and the checkpoint chain is
    one history (each stored checkpoint's tree is a prefix of the next)."""
    settings = service_settings(tmp_path / "data", keys_dir, database, log_sequence_seconds=60)
    with running(settings) as service:
        ctx = service.ctx
        with locks.exclusive(ctx.engine, LOCK) as held:
            assert held
            assert service.upload(images.jpeg(seed=1)).status_code == 201
            assert not sequence_once(ctx.engine, ctx.sessions, ctx.log_key, 10).held
            with ctx.session() as session:
                assert tree.pending_count(session) == 1
        for seed in range(2, 7):
            assert service.upload(images.jpeg(seed=seed)).status_code == 201
        deadline = time.monotonic() + LOGGED_WITHIN
        while True:  # small rounds here, and the service's own sequencer may take some
            sequence_once(ctx.engine, ctx.sessions, ctx.log_key, 2)
            with ctx.session() as session:
                if tree.pending_count(session) == 0:
                    break
            assert time.monotonic() < deadline
        with ctx.session() as session:
            stored = session.scalars(select(LogCheckpoint).order_by(LogCheckpoint.size)).all()
            final, _ = tree.tree(session)
            assert [c.size for c in stored][-1] == 6
            assert final.size == 6
            for earlier in stored:
                tlog.verify_consistency(
                    earlier.size, final.size, earlier.root, final.root(), final.consistency_proof(earlier.size)
                )


def test_sequencing_survives_kill_9_and_two_processes(
    tmp_path: Path, database: Database, keys_dir: Path, go_verifier: Path
) -> None:
    """Two server processes on one database stamp concurrently; one is killed with SIGKILL mid-load and
    started again: every acknowledged upload is in the log exactly once, and no checkpoint ever forked."""
    data = tmp_path / "data"
    acknowledged: list[str] = []
    seen: list[str] = []
    with serve(database, data, keys_dir) as first:
        token = create_token(first, "newsroom")
        with serve(database, data, keys_dir) as second:

            def upload(server: Server, seed: int) -> None:
                try:
                    answer = httpx.post(
                        f"{server.base}/v1/assets",
                        files={"file": ("a.jpg", images.jpeg(seed=seed), "image/jpeg")},
                        data={"declaration": json.dumps({"source": "ai_generated"})},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=60,
                    )
                    if answer.status_code == 201:
                        acknowledged.append(answer.json()["id"])
                    seen.append(httpx.get(f"{server.base}/log/checkpoint", timeout=10).text)
                except httpx.TransportError:  # the killed process: nothing was acknowledged
                    pass

            threads = [threading.Thread(target=upload, args=(first if i % 2 else second, 100 + i)) for i in range(12)]
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            second.process.kill()  # SIGKILL: no shutdown, whatever it was doing
            for thread in threads:
                thread.join()
        with serve(database, data, keys_dir) as again:  # the killed process's place taken by a new one
            for seed in range(3):
                upload(again, 200 + seed)

            def get(path: str) -> httpx.Response:
                return httpx.get(f"{first.base}{path}", timeout=10)

            assert len(acknowledged) >= 9  # the first server's six, the new server's three, any of the second's
            with_pending = {*acknowledged}
            engine = make_engine(database.url(data) or f"sqlite:///{data / 'provenance.sqlite3'}")
            sessions = make_sessionmaker(engine)
            deadline = time.monotonic() + LOGGED_WITHIN
            while True:
                with sessions() as session:
                    logged = dict(
                        session.execute(
                            select(LogEntry.item_id, func.count())
                            .where(LogEntry.event == "stamp", LogEntry.idx.is_not(None))
                            .group_by(LogEntry.item_id)
                        ).all()
                    )
                if with_pending <= set(logged) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            engine.dispose()
            assert with_pending <= set(logged), "an acknowledged upload is missing from the log"
            assert set(logged.values()) == {1}, "an upload was logged twice"
            copy = tmp_path / "copy"
            final = mirror(get, copy)
            vkey = keys_dir / LOG_VKEY_FILE
            assert go(go_verifier, "audit", vkey, copy).returncode == 0
            for number, note in enumerate(n for n in seen if "\n\n" in n):  # every checkpoint a client saw
                (tmp_path / f"seen-{number}").write_text(note)
                code, output = verify_log("--key", vkey, "--log", copy, "--previous", tmp_path / f"seen-{number}")
                assert code == 0, output
            assert final.size >= len(with_pending)


def test_log_keys_are_made_with_the_identity_kept_through_rotation_and_required(
    tmp_path: Path, database: Database
) -> None:
    keys = tmp_path / "keys"
    init_dev_keys(keys, ORG)
    assert (keys / LOG_KEY_FILE).stat().st_mode & 0o777 == 0o600
    before = (keys / LOG_VKEY_FILE).read_text()
    assert before.startswith("log-test-newsroom.example/provenance/log+")
    init_dev_keys(keys, ORG, force=True)  # a new signing identity; the log keeps its key
    assert (keys / LOG_VKEY_FILE).read_text() == before
    result = CliRunner().invoke(cli_app, ["keys", "init-log", "--keys-dir", str(keys), "--origin", "x.example/log"])
    assert result.exit_code == 2
    assert "a log keeps its key" in result.output
    (keys / LOG_KEY_FILE).unlink()
    (keys / LOG_VKEY_FILE).unlink()
    with pytest.raises(KeyMaterialError, match="no transparency log key") as refused:
        create_app(service_settings(tmp_path / "data", keys, database))
    assert "provenance keys init-log" in refused.value.diagnostics()
    result = CliRunner().invoke(
        cli_app, ["keys", "init-log", "--keys-dir", str(keys), "--origin", "news.example.com/provenance/log"]
    )
    assert result.exit_code == 0, result.output
    assert read_verifier(keys).vkey in result.output.replace("\n", "")
    with running(service_settings(tmp_path / "data", keys, database)) as service:
        assert service.upload(images.jpeg(seed=5)).status_code == 201
        note = wait_logged(service.client.get, 1)
        assert open_checkpoint(note, read_verifier(keys)).origin == "news.example.com/provenance/log"


def test_article_versions_and_their_withdrawal_are_in_the_report(svc: Service) -> None:
    first = svc.post_article("ai-weather.json").json()
    svc.post_article("ai-weather.v2.json")
    reason = {"reason": "Superseded"}
    withdrawn = svc.client.post(f"/v1/articles/{first['id']}/withdraw", json=reason, headers=svc.bearer("newsroom"))
    assert withdrawn.is_success
    wait_logged(svc.client.get, 3)
    auditor = {**svc.bearer("auditor"), "Accept": "application/json"}
    evidence = svc.client.get(f"/v1/articles/{first['id']}/v2/report", headers=auditor).json()["transparency_log"]
    assert [e["event"] for e in evidence["entries"]] == ["article", "withdraw"]
    records = [json.loads(base64.b64decode(e["entry"])) for e in evidence["entries"]]
    assert (records[0]["version"], records[1]["item"]) == (2, first["id"])
    with svc.session() as session:
        stored = session.get(ArticleVersion, (first["id"], 2))
        assert stored is not None
        assert (records[0]["content_sha256"], records[0]["manifest_sha256"]) == (
            stored.text_sha256,
            stored.manifest_sha256,
        )
    checkpoint = open_checkpoint(evidence["checkpoint"], svc.ctx.log_verifier)
    for entry in evidence["entries"]:
        check_inclusion(entry, checkpoint)


def test_the_commits_of_a_moment_share_one_round(tmp_path: Path, database: Database, keys_dir: Path) -> None:
    """A commit wakes the sequencer, which waits ``log_gather_seconds`` first: uploads made meanwhile are
    sequenced with it, under one checkpoint, not one round and one checkpoint each."""
    settings = service_settings(tmp_path / "data", keys_dir, database, log_sequence_seconds=60, log_gather_seconds=3)
    with running(settings) as service:
        wait_logged(service.client.get, 0)  # the round at start: an empty tree
        for seed in range(3):  # well within the 3 s the first upload's wake waits
            assert service.upload(images.jpeg(seed=60 + seed)).status_code == 201
        wait_logged(service.client.get, 3)
        assert checkpoint_size(service.client.get) == 3
        with service.session() as session:
            sizes = session.scalars(select(LogCheckpoint.size).where(LogCheckpoint.size > 0)).all()
        assert sizes == [3]
