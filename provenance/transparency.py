"""The newsroom's transparency log: what an entry says, and the offline checks an auditor runs.

Every stamp, article version, withdrawal and reinstatement is one entry: a JSON object (keys sorted, no
spaces, UTF-8) that names its place in the log (``index``), the event, the item, and for a stamp the
stamped content's sha256, the active manifest's label and the sha256 of its manifest store, the
declaration, the decision (state, labels) and the label policy it was made under; a withdrawal names the
item and the sha256 of its reason (the reason itself may name people; the audit trail keeps it). ``at`` is
when the event happened, ``logged_at`` when the log sequenced it.

Back-dating is visible in the entries themselves: ``logged_at`` never goes backwards along the log, and an
event is logged within :data:`MAX_LOG_DELAY` of when it says it happened. An entry made today that claims
last year's ``at`` breaks the second rule; one that also claims last year's ``logged_at`` breaks the first
(or needs a rewritten log, which a saved checkpoint's consistency check exposes).

The checks (:func:`audit_log`, :func:`check_inclusion`, :func:`check_consistency`) read a copy of the log's
static files (checkpoint, tiles, entry bundles) and never the network.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from provenance.notes import Checkpoint, Verifier, open_checkpoint
from provenance.tlog import (
    HASH_SIZE,
    MAX_ENTRY,
    TILE_WIDTH,
    LogError,
    Tree,
    append,
    decode_bundle,
    leaf_hash,
    tile_path,
    tile_width,
    verify_consistency,
    verify_inclusion,
)

ENTRY_VERSION: Final = 1
EVENTS: Final = ("stamp", "article", "rendition", "withdraw", "reinstate")
#: The log's promise: an event is sequenced within this long of its ``at`` (the sequencer runs every
#: second; the margin covers a restart after a crash). A later one is reported as back-dated.
MAX_LOG_DELAY: Final = dt.timedelta(hours=1)
#: Clock difference tolerated between the process that recorded an event and the sequencer's.
CLOCK_SKEW: Final = dt.timedelta(seconds=5)


def timestamp(value: dt.datetime) -> str:
    """An entry's time: UTC, microseconds, ``Z``."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> dt.datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise LogError("an entry's time is UTC, ending in Z")
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    except ValueError as exc:
        raise LogError("an entry's time is YYYY-MM-DDTHH:MM:SS.ffffffZ") from exc


def encode_entry(record: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an entry (raises :class:`LogError` past the 64 KiB an entry bundle allows)."""
    data = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) > MAX_ENTRY:
        raise LogError(f"a log entry is at most {MAX_ENTRY} bytes")
    return data


def decode_entry(data: bytes) -> dict[str, Any]:
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LogError("an entry is JSON") from exc
    if not isinstance(record, dict) or record.get("v") != ENTRY_VERSION or record.get("event") not in EVENTS:
        raise LogError("not a version 1 log entry")
    if encode_entry(record) != data:
        raise LogError("an entry is not in its canonical form")
    return record


# --- a copy of the log's files ---


class DirectoryLog:
    """A copy of a log's static files: ``checkpoint`` and ``tile/...`` under ``root`` (as served under /log/)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _read(self, path: str) -> bytes:
        try:
            return (self.root / path).read_bytes()
        except OSError as exc:
            raise LogError(f"{path} missing from the copy of the log in {self.root}") from exc

    def tile(self, level: int, index: int, width: int) -> bytes:
        return self._read(tile_path(level, index, width))

    def bundle(self, index: int, width: int) -> list[bytes]:
        entries = decode_bundle(self._read(tile_path(-1, index, width)))
        if len(entries) != width:
            raise LogError(f"entry bundle {tile_path(-1, index, width)} holds {len(entries)} entries, not {width}")
        return entries

    def checkpoint(self) -> str:
        return self._read("checkpoint").decode(errors="replace")


def log_files(size: int) -> Iterator[str]:
    """Every file of a log of ``size`` entries: its hash tiles and entry bundles (for making a copy)."""
    level = 0
    while level == 0 or size >> (8 * level):
        index = 0
        while (width := tile_width(size, level, index)) > 0:
            yield tile_path(level, index, width)
            index += 1
        level += 1
    index = 0
    while (width := tile_width(size, 0, index)) > 0:
        yield tile_path(-1, index, width)
        index += 1


# --- checks ---


@dataclass
class Finding:
    """A check that failed: where (an entry index, or None for the log as a whole) and what."""

    index: int | None
    problem: str

    def __str__(self) -> str:
        return self.problem if self.index is None else f"entry {self.index}: {self.problem}"


@dataclass
class Audit:
    checkpoint: Checkpoint
    entries: int = 0
    findings: list[Finding] = field(default_factory=list)
    by_event: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings


def _time_findings(index: int, record: Mapping[str, Any], last_logged: dt.datetime | None) -> list[Finding]:
    try:
        at, logged = parse_time(record.get("at")), parse_time(record.get("logged_at"))
    except LogError as exc:
        return [Finding(index, str(exc))]
    found = []
    if last_logged is not None and logged < last_logged:
        found.append(Finding(index, f"logged at {timestamp(logged)}, before the entry ahead of it: back-dated"))
    if at > logged + CLOCK_SKEW:
        found.append(Finding(index, f"happened at {timestamp(at)}, after it was logged"))
    elif logged - at > MAX_LOG_DELAY:
        found.append(
            Finding(index, f"says it happened at {timestamp(at)} but was logged at {timestamp(logged)}: back-dated")
        )
    return found


class _Made:
    """The hash tiles a tree was rebuilt into (:func:`audit_log`)."""

    def __init__(self, tiles: Mapping[tuple[int, int], bytes]) -> None:
        self.tiles = tiles

    def tile(self, level: int, index: int, width: int) -> bytes:
        return self.tiles.get((level, index), b"")


def _rebuilt(log: DirectoryLog, checkpoint: Checkpoint, leaves: list[bytes]) -> list[Finding]:
    """The tree the entries themselves make: its root is the signed one, and every tile of the copy is its
    (for a copy whose tiles hash to the root and hold every entry's hash: what else can still be wrong is a
    level-0 tile rewritten with its entries, which no longer hashes to the tile above)."""
    made = append(_Made({}), 0, leaves)
    found = []
    if Tree(_Made(made), checkpoint.size).root() != checkpoint.root:
        found.append(Finding(None, "the entries do not hash to the checkpoint's root"))
    for (level, index), hashes in sorted(made.items()):
        path = tile_path(level, index, len(hashes) // HASH_SIZE)
        try:
            if log.tile(level, index, len(hashes) // HASH_SIZE)[: len(hashes)] != hashes:
                found.append(Finding(None, f"tile {path} is not the one the entries make"))
        except LogError as exc:
            found.append(Finding(None, str(exc)))
    return found


def audit_log(log: DirectoryLog, verifier: Verifier, checkpoint_note: str | None = None) -> Audit:
    """Check a whole copy of the log against a signed checkpoint (the copy's own when none is given): the
    signature; that the tiles hash to the root, and the entries to the tiles and to the root (the tree is
    rebuilt from the entries, so no tile can stand in for an entry it does not hash); that every entry is
    well-formed and names its own index; and the time rules (no back-dating)."""
    checkpoint = open_checkpoint(checkpoint_note if checkpoint_note is not None else log.checkpoint(), verifier)
    audit = Audit(checkpoint)
    tree = Tree(log, checkpoint.size)
    broken = False  # the tree of the copy's tiles is already found wrong
    try:
        if tree.root() != checkpoint.root:
            audit.findings.append(Finding(None, "the tiles do not hash to the checkpoint's root"))
            broken = True
    except LogError as exc:
        audit.findings.append(Finding(None, str(exc)))
        return audit
    last_logged: dt.datetime | None = None
    leaves: list[bytes] = []
    bundle = 0
    while (width := tile_width(checkpoint.size, 0, bundle)) > 0:
        try:
            entries = log.bundle(bundle, width)
            hashes = log.tile(0, bundle, width)
        except LogError as exc:
            audit.findings.append(Finding(None, str(exc)))
            return audit
        for offset, entry in enumerate(entries):
            index = bundle * TILE_WIDTH + offset
            audit.entries += 1
            leaves.append(leaf_hash(entry))
            if leaves[-1] != hashes[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]:
                audit.findings.append(Finding(index, "altered: its hash is not the one the tree holds"))
                broken = True
                continue
            try:
                record = decode_entry(entry)
            except LogError as exc:
                audit.findings.append(Finding(index, str(exc)))
                continue
            if record.get("index") != index:
                audit.findings.append(Finding(index, f"names index {record.get('index')}: re-ordered"))
            audit.by_event[record["event"]] = audit.by_event.get(record["event"], 0) + 1
            audit.findings.extend(_time_findings(index, record, last_logged))
            with contextlib.suppress(LogError):
                logged = parse_time(record.get("logged_at"))
                last_logged = logged if last_logged is None else max(last_logged, logged)
        bundle += 1
    if not broken:
        audit.findings.extend(_rebuilt(log, checkpoint, leaves))
    return audit


def find_entries(log: DirectoryLog, size: int, sha256: str) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """The entries (index, bytes, record) whose content or manifest store has this sha256."""
    bundle = 0
    while (width := tile_width(size, 0, bundle)) > 0:
        for offset, entry in enumerate(log.bundle(bundle, width)):
            try:
                record = decode_entry(entry)
            except LogError:
                continue
            if sha256 in (record.get("content_sha256"), record.get("manifest_sha256")):
                yield bundle * TILE_WIDTH + offset, entry, record
        bundle += 1


def _hashes(values: object, what: str) -> list[bytes]:
    if not isinstance(values, list) or len(values) > 64:
        raise LogError(f"{what}: a list of at most 64 base64 hashes")
    out = []
    for value in values:
        try:
            raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
        except binascii.Error as exc:
            raise LogError(f"{what}: a list of base64 hashes") from exc
        if len(raw) != HASH_SIZE:
            raise LogError(f"{what}: each hash is 32 bytes")
        out.append(raw)
    return out


def check_inclusion(evidence: Mapping[str, Any], checkpoint: Checkpoint, sha256: str | None = None) -> dict[str, Any]:
    """Check an item's log evidence (``index``, ``entry`` in base64, ``proof``: the inclusion proof's hashes
    against ``checkpoint``) and, given the sha256 of a file or manifest, that the entry names it. Returns the
    entry's record; raises :class:`LogError` when anything does not check."""
    index = evidence.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise LogError("the evidence names no entry index")
    try:
        entry = base64.b64decode(str(evidence.get("entry", "")), validate=True)
    except binascii.Error as exc:
        raise LogError("the evidence's entry is base64") from exc
    record = decode_entry(entry)
    if record.get("index") != index:
        raise LogError(f"the entry names index {record.get('index')}, not {index}")
    verify_inclusion(index, checkpoint.size, leaf_hash(entry), _hashes(evidence.get("proof"), "proof"), checkpoint.root)
    if sha256 is not None and sha256 not in (record.get("content_sha256"), record.get("manifest_sha256")):
        raise LogError(f"entry {index} is of other content (sha256 {record.get('content_sha256')})")
    return record


def check_consistency(old: Checkpoint, new: Checkpoint, proof: object) -> None:
    """That ``new`` extends ``old`` (raises :class:`LogError` naming the fork otherwise)."""
    if old.origin != new.origin:
        raise LogError("the checkpoints are of two different logs")
    if old.size > new.size:
        raise LogError(f"the log now holds {new.size} entries, fewer than the {old.size} it had: the log forked")
    verify_consistency(old.size, new.size, old.root, new.root, _hashes(proof, "consistency proof"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
