"""The transparency log's library on its own: fast, pure tests of ``provenance.tlog``, ``provenance.notes`` and
``provenance.transparency`` (the service-level tests, with Go's verifier, are in test_transparency_log.py).

- The tree is checked against an independent reference written here from RFC 6962 section 2.1 (MTH, PATH,
  PROOF/SUBPROOF, recursively, with its own hashing) for every size up to 70 and sizes that cross tile
  boundaries, however the entries were batched, and against the C2SP tlog-tiles definition of each tile.
- Proof verification rejects every single-bit flip, truncation and extension of a genuine proof, and every
  wrong index, size, leaf or root.
- Tile paths, entry bundles, signed notes and checkpoints are checked against the C2SP specifications'
  own examples and against the known-answer vector of Go's golang.org/x/mod/sumdb/note.
- The auditor's checks run on log directories written here, honest and then altered one way at a time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import random
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import tlog
from provenance.notes import (
    MAX_NOTE,
    Checkpoint,
    FileLogKey,
    NoteError,
    Verifier,
    key_id,
    open_checkpoint,
    open_note,
    sign_checkpoint,
    sign_note,
    split_note,
    verifier_key,
)
from provenance.tlog import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_ENTRY,
    MAX_SIZE,
    LogError,
    TileRef,
    Tree,
    decode_bundle,
    encode_bundle,
    leaf_hash,
    merkle_root,
    parse_tile_path,
    root_from_inclusion,
    tile_path,
    tile_width,
    verify_consistency,
    verify_inclusion,
)
from provenance.transparency import (
    CLOCK_SKEW,
    EVENTS,
    MAX_LOG_DELAY,
    DirectoryLog,
    Finding,
    audit_log,
    check_consistency,
    check_inclusion,
    decode_entry,
    encode_entry,
    find_entries,
    log_files,
    parse_time,
    timestamp,
)

SIGNATURE_DASH = "\u2014 "  # the em dash and space that start a signature line


def params(table: dict[str, tuple[Any, ...]]) -> list[Any]:
    """The table's rows as pytest params, with the keys as ids."""
    return [pytest.param(*row, id=key) for key, row in table.items()]


def refuses(check: Callable[..., object], *args: Any) -> bool:
    """Whether ``check(*args)`` raises LogError (anything else propagates and fails the test)."""
    try:
        check(*args)
    except LogError:
        return True
    return False


def verifies(check: Callable[..., object], *args: Any) -> bool:
    return not refuses(check, *args)


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 0x80 >> (bit % 8)
    return bytes(out)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------------------------------
# An independent reference: RFC 6962 section 2.1, as written
# --------------------------------------------------------------------------------------------------


def largest_power_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """MTH, PATH and PROOF of RFC 6962 section 2.1 over ``entries`` (D[lo:hi] as index ranges), with its own
    hashing; only MTH is memoised, so the larger sizes stay fast."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = entries
        self._mth: dict[tuple[int, int], bytes] = {}

    def mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + self.entries[lo]).digest()
        if (lo, hi) not in self._mth:
            k = largest_power_below(n)
            self._mth[lo, hi] = hashlib.sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi)).digest()
        return self._mth[lo, hi]

    def root(self, n: int) -> bytes:
        return self.mth(0, n)

    def path(self, m: int, n: int, lo: int = 0) -> list[bytes]:
        """PATH(m, D[lo:lo+n])."""
        if n == 1:
            return []
        k = largest_power_below(n)
        if m < k:
            return [*self.path(m, k, lo), self.mth(lo + k, lo + n)]
        return [*self.path(m - k, n - k, lo + k), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m <= n."""
        return self._subproof(m, 0, n, True)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self.mth(lo, hi)]
        k = largest_power_below(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self.mth(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]

    def tiles(self, size: int) -> dict[tuple[int, int], bytes]:
        """Every hash tile of a tree of ``size`` by the C2SP tlog-tiles definition: tile n at level l holds
        MTH(D[(n*256 + i) * 256**l : (n*256 + i + 1) * 256**l]) for i < its width, floor(size / 256**l) hashes
        in all at level l, and no empty tile."""
        out: dict[tuple[int, int], bytes] = {}
        level = 0
        while count := size // 256**level:
            for n in range(-(-count // 256)):
                width = min(256, count - 256 * n)
                span = 256**level
                out[level, n] = b"".join(self.mth((n * 256 + i) * span, (n * 256 + i + 1) * span) for i in range(width))
            level += 1
        return out


ENTRIES = [b"entry %d" % i for i in range(4096)]
REFERENCE = Reference(ENTRIES)


def test_reference_matches_rfc6962_by_hand() -> None:
    """The reference itself, on three entries written out by hand."""
    a, b, c = (hashlib.sha256(b"\x00" + e).digest() for e in ENTRIES[:3])
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    assert REFERENCE.root(0) == hashlib.sha256(b"").digest()
    assert REFERENCE.root(1) == a
    assert REFERENCE.root(3) == hashlib.sha256(b"\x01" + ab + c).digest()
    assert REFERENCE.path(0, 3) == [b, c]
    assert REFERENCE.path(2, 3) == [ab]
    assert REFERENCE.proof(1, 3) == [b, c]
    assert REFERENCE.proof(2, 3) == [c]


# --------------------------------------------------------------------------------------------------
# The tree: tiles built by append(), read through Tree
# --------------------------------------------------------------------------------------------------


class MemoryTiles:
    """Hash tiles in memory, (tile level, index) -> the latest version, fed by what ``tlog.append`` returns.

    ``exact`` serves each tile at exactly the width asked for, as a static file of that name would be;
    otherwise the latest (possibly wider) version, which the Tiles protocol allows. Asking for a tile that
    was never written, or for an empty one, fails the test."""

    def __init__(self, *, exact: bool = True) -> None:
        self.hashes: dict[tuple[int, int], bytes] = {}
        self.size = 0
        self.exact = exact

    def tile(self, level: int, index: int, width: int) -> bytes:
        data = self.hashes.get((level, index), b"")
        assert 0 < width * HASH_SIZE <= len(data), f"read {tile_path(level, index, max(width, 1))}: never written"
        return data[: width * HASH_SIZE] if self.exact else data

    def append(self, entries: Sequence[bytes]) -> None:
        size = self.size + len(entries)
        changed = tlog.append(self, self.size, [leaf_hash(e) for e in entries])
        for (level, index), data in changed.items():
            assert len(data) == tile_width(size, level, index) * HASH_SIZE, (level, index)
            # a tile only grows: what a smaller tree read from it (as a cached partial tile) stays true
            assert data.startswith(self.hashes.get((level, index), b"")), (level, index)
        self.hashes.update(changed)
        self.size = size


def build(entries: Sequence[bytes], batches: Sequence[int] | None = None, *, exact: bool = True) -> MemoryTiles:
    store = MemoryTiles(exact=exact)
    for count in batches or [len(entries)]:
        store.append(entries[store.size : store.size + count])
    assert store.size == len(entries)
    return store


def batchings(size: int) -> list[list[int]]:
    """Several ways the entries can reach the log: at once, one at a time, in random rounds."""
    rng = random.Random(size)
    out = [[size], [1] * size]
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, size), min(size - 1, rng.randint(1, 6)))) if size > 1 else []
        bounds = [0, *cuts, size]
        out.append([hi - lo for lo, hi in itertools.pairwise(bounds)])
    return out


SIZES = [*range(1, 71), 255, 256, 257, 256 * 2 + 3]


@pytest.mark.parametrize("size", SIZES)
def test_tree_is_rfc6962_however_the_entries_were_batched(size: int) -> None:
    """Root, tiles, inclusion proofs and consistency proofs equal the reference's, for every batching; and
    the proofs verify."""
    entries = ENTRIES[:size]
    for batches in batchings(size):
        store = MemoryTiles()
        for count in batches:
            store.append(entries[store.size : store.size + count])
            assert Tree(store, store.size).root() == REFERENCE.root(store.size), (batches, store.size)
        assert store.hashes == REFERENCE.tiles(size), batches
    tree = Tree(store, size)  # the last batching's tiles (all are the same)
    root = tree.root()
    for index in range(size):
        assert tree.leaf(index) == hashlib.sha256(b"\x00" + entries[index]).digest()
        proof = tree.inclusion_proof(index)
        assert proof == REFERENCE.path(index, size), index
        verify_inclusion(index, size, leaf_hash(entries[index]), proof, root)
        assert root_from_inclusion(index, size, leaf_hash(entries[index]), proof) == root
    for old in range(1, size + 1):
        proof = tree.consistency_proof(old)
        assert proof == REFERENCE.proof(old, size), old
        verify_consistency(old, size, REFERENCE.root(old), root, proof)
    assert tree.consistency_proof(0) == []
    verify_consistency(0, size, EMPTY_ROOT, root, [])


def test_proofs_for_every_earlier_tree_from_the_latest_tiles() -> None:
    """One tree of 70 answers for every smaller tree: PATH(m, D[n]) and PROOF(m, D[n]) for all m < n <= 70,
    with its tiles served exactly or wider (a later version of a partial tile)."""
    size = 70
    for exact in (True, False):
        store = build(ENTRIES[:size], exact=exact)
        tree = Tree(store, size)
        for n in range(1, size + 1):
            assert Tree(store, n).root() == REFERENCE.root(n), (exact, n)
            for m in range(n):
                proof = tree.inclusion_proof(m, n)
                assert proof == REFERENCE.path(m, n), (exact, m, n)
                verify_inclusion(m, n, leaf_hash(ENTRIES[m]), proof, REFERENCE.root(n))
            for m in range(1, n + 1):
                proof = tree.consistency_proof(m, n)
                assert proof == REFERENCE.proof(m, n), (exact, m, n)
                verify_consistency(m, n, REFERENCE.root(m), REFERENCE.root(n), proof)


def test_a_tree_with_three_tile_levels() -> None:
    """65,536 + 300 entries: full level-0 and level-1 tiles and a partial level-2 tile (sampled proofs)."""
    size = 65536 + 300
    entries = [i.to_bytes(4, "big") for i in range(size)]
    reference = Reference(entries)
    store = build(entries, [65535, 1, 1, 298, 1])
    assert store.hashes == reference.tiles(size)
    assert len(store.hashes[2, 0]) == HASH_SIZE  # tile/2/000.p/1: MTH of the first 65,536 entries
    tree = Tree(store, size)
    assert tree.root() == reference.root(size)
    for index in (0, 1, 255, 256, 511, 65535, 65536, 65791, size - 1):
        assert tree.inclusion_proof(index) == reference.path(index, size), index
        verify_inclusion(index, size, leaf_hash(entries[index]), tree.inclusion_proof(index), tree.root())
    for old in (1, 255, 256, 257, 4096, 65535, 65536, 65537, 65792, size - 1):
        assert tree.consistency_proof(old) == reference.proof(old, size), old
        verify_consistency(old, size, reference.root(old), tree.root(), tree.consistency_proof(old))


@settings(max_examples=40, deadline=None, database=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=7), st.data())
def test_any_batching_gives_the_tiles_of_the_spec(batches: list[int], data: st.DataObject) -> None:
    size = sum(batches)
    store = build(ENTRIES[:size], batches)
    assert store.hashes == REFERENCE.tiles(size)
    tree = Tree(store, size)
    assert tree.root() == REFERENCE.root(size)
    index = data.draw(st.integers(0, size - 1), label="index")
    assert tree.inclusion_proof(index) == REFERENCE.path(index, size)
    old = data.draw(st.integers(1, size), label="old")
    assert tree.consistency_proof(old) == REFERENCE.proof(old, size)


def test_merkle_root_is_mth_for_any_count() -> None:
    """merkle_root's pairwise fold equals RFC 6962's left-heavy recursion, not only for powers of two."""
    for n in range(70):
        assert merkle_root([leaf_hash(e) for e in ENTRIES[:n]]) == REFERENCE.root(n), n


def test_tile_width_follows_the_spec_examples() -> None:
    """C2SP: a tree of 70,000 has 273 full level-0 tiles and one of width 112, one full level-1 tile and one
    of width 17, and a level-2 tile of width 1; a tree of 256 a full level-0 tile and level-1 tile of width 1."""
    assert [tile_width(70000, 0, n) for n in (0, 272, 273, 274)] == [256, 256, 112, 0]
    assert [tile_width(70000, 1, n) for n in (0, 1, 2)] == [256, 17, 0]
    assert [tile_width(70000, 2, n) for n in (0, 1)] == [1, 0]
    assert tile_width(70000, 3, 0) == 0
    assert [tile_width(256, level, 0) for level in (0, 1, 2)] == [256, 1, 0]


def test_log_files_are_the_spec_examples() -> None:
    files = list(log_files(70000))
    assert [f for f in files if f.startswith("tile/0/")][-2:] == ["tile/0/272", "tile/0/273.p/112"]
    assert [f for f in files if f.startswith(("tile/1/", "tile/2/", "tile/3/"))] == [
        "tile/1/000",
        "tile/1/001.p/17",
        "tile/2/000.p/1",
    ]
    assert len([f for f in files if f.startswith("tile/0/")]) == 274
    assert [f for f in files if f.startswith("tile/entries/")][-1] == "tile/entries/273.p/112"
    assert len([f for f in files if f.startswith("tile/entries/")]) == 274
    assert list(log_files(256)) == ["tile/0/000", "tile/1/000.p/1", "tile/entries/000"]
    assert list(log_files(1)) == ["tile/0/000.p/1", "tile/entries/000.p/1"]
    assert list(log_files(0)) == []


# --------------------------------------------------------------------------------------------------
# Rejections: what a proof or a tree call must refuse
# --------------------------------------------------------------------------------------------------


@cache
def store_of_600() -> MemoryTiles:
    return build(ENTRIES[:600])


def corruptions(proof: Sequence[bytes], stranger: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """Every single-bit flip, truncation, deletion, extension and swap of ``proof``."""
    for j, value in enumerate(proof):
        for bit in range(HASH_SIZE * 8):
            yield f"bit {bit} of hash {j} flipped", [*proof[:j], flip(value, bit), *proof[j + 1 :]]
    for k in range(len(proof)):
        yield f"cut to its first {k}", list(proof[:k])
        yield f"hash {k} left out", [*proof[:k], *proof[k + 1 :]]
    for k in range(1, len(proof)):
        yield f"its first {k} left out", list(proof[k:])
    extras = [("zeros", bytes(HASH_SIZE)), ("a stranger", stranger), *(("its last again", p) for p in proof[-1:])]
    for name, extra in extras:
        yield f"{name} appended", [*proof, extra]
        yield f"{name} prepended", [extra, *proof]
    for j in range(len(proof) - 1):
        if proof[j] != proof[j + 1]:
            yield f"hashes {j} and {j + 1} swapped", [*proof[:j], proof[j + 1], proof[j], *proof[j + 2 :]]


#: (index, size): both ends of small trees, perfect and not, and across the first tile boundary
INCLUSION_CASES = [(0, 1), (0, 2), (1, 2), (2, 3), (0, 7), (6, 7), (5, 8), (3, 13), (12, 13), (255, 256)]
INCLUSION_CASES += [(100, 257), (256, 257), (513, 515)]


@pytest.mark.parametrize(("index", "size"), INCLUSION_CASES)
def test_inclusion_proofs_refuse_every_alteration(index: int, size: int) -> None:
    tree = Tree(store_of_600(), size)
    proof, leaf, root = tree.inclusion_proof(index), leaf_hash(ENTRIES[index]), REFERENCE.root(size)
    verify_inclusion(index, size, leaf, proof, root)
    bad_proofs = list(corruptions(proof, leaf_hash(b"a stranger")))
    accepted = [name for name, bad in bad_proofs if verifies(verify_inclusion, index, size, leaf, bad, root)]
    assert not accepted, f"an altered proof of {index} in {size} verified: {accepted}"
    misshapen = [(name, bad) for name, bad in bad_proofs if len(bad) != len(proof)]
    assert misshapen
    led_to_a_root = [name for name, bad in misshapen if verifies(root_from_inclusion, index, size, leaf, bad)]
    assert not led_to_a_root, f"a proof of the wrong length led to a root: {led_to_a_root}"
    wrong: list[str] = []
    for other in range(size):  # every other index, with this proof
        if other != index and not refuses(verify_inclusion, other, size, leaf, proof, root):
            wrong.append(f"index {other}")
    for other in range(index + 1, size + 4):  # every other tree size, with that tree's real root
        if other != size and not refuses(verify_inclusion, index, other, leaf, proof, REFERENCE.root(other)):
            wrong.append(f"size {other}")
    for other in sorted({0, 1, size - 1} - {index}):  # another entry's leaf
        if other < len(ENTRIES) and not refuses(verify_inclusion, index, size, leaf_hash(ENTRIES[other]), proof, root):
            wrong.append(f"leaf of {other}")
    for bit in range(HASH_SIZE * 8):
        if not refuses(verify_inclusion, index, size, flip(leaf, bit), proof, root):
            wrong.append(f"leaf bit {bit}")
        if not refuses(verify_inclusion, index, size, leaf, proof, flip(root, bit)):
            wrong.append(f"root bit {bit}")
    if not refuses(verify_inclusion, index, size, ENTRIES[index], proof, root):
        wrong.append("the entry itself instead of its leaf hash")
    for claimed in (size, size + 1, -1):  # index beyond the tree, or negative
        if not refuses(verify_inclusion, claimed, size, leaf, proof, root):
            wrong.append(f"index {claimed} of size {size}")
    assert not wrong, f"the proof of {index} in {size} verified with {wrong}"


#: (old, new): old a power of two or not, new a power of two or not, and across the first tile boundary
CONSISTENCY_CASES = [(1, 2), (1, 3), (2, 3), (3, 7), (4, 7), (4, 8), (6, 8), (5, 13), (8, 13), (7, 70)]
CONSISTENCY_CASES += [(1, 257), (100, 257), (255, 257), (256, 257), (256, 515), (257, 515)]


@pytest.mark.parametrize(("old", "new"), CONSISTENCY_CASES)
def test_consistency_proofs_refuse_every_alteration(old: int, new: int) -> None:
    proof = Tree(store_of_600(), new).consistency_proof(old)
    old_root, new_root = REFERENCE.root(old), REFERENCE.root(new)
    verify_consistency(old, new, old_root, new_root, proof)
    bad_proofs = corruptions(proof, leaf_hash(b"a stranger"))
    accepted = [name for name, bad in bad_proofs if verifies(verify_consistency, old, new, old_root, new_root, bad)]
    assert not accepted, f"an altered proof of {old} -> {new} verified: {accepted}"
    wrong: list[str] = []
    for other in range(1, new + 4):  # another old size with its real root
        if other != old and not refuses(verify_consistency, other, new, REFERENCE.root(other), new_root, proof):
            wrong.append(f"old size {other}")
    for other in range(old, new + 4):  # another new size with its real root
        if other != new and not refuses(verify_consistency, old, other, old_root, REFERENCE.root(other), proof):
            wrong.append(f"new size {other}")
    for bit in range(HASH_SIZE * 8):
        if not refuses(verify_consistency, old, new, flip(old_root, bit), new_root, proof):
            wrong.append(f"old root bit {bit}")
        if not refuses(verify_consistency, old, new, old_root, flip(new_root, bit), proof):
            wrong.append(f"new root bit {bit}")
    if not refuses(verify_consistency, new, old, new_root, old_root, proof):
        wrong.append("old and new swapped")
    if not refuses(verify_consistency, old, new, old_root, new_root, []):
        wrong.append("an empty proof")
    assert not wrong, f"the proof of {old} -> {new} verified with {wrong}"


def test_consistency_edge_cases() -> None:
    root3, root5 = REFERENCE.root(3), REFERENCE.root(5)
    verify_consistency(5, 5, root5, root5, [])
    verify_consistency(0, 5, EMPTY_ROOT, root5, [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    refused = {
        "same size, other root: a fork": (5, 5, root5, flip(root5, 0), []),
        "same size with a proof": (5, 5, root5, root5, [root3]),
        "from the empty tree with a proof": (0, 5, EMPTY_ROOT, root5, [root3]),
        "old larger than new": (5, 3, root5, root3, Tree(store_of_600(), 5).consistency_proof(3)),
        "negative old": (-1, 3, EMPTY_ROOT, root3, []),
        # fr and sr come out as both roots, but the path ends before a tree of 5 does (RFC 9162: sn must be 0)
        "2 -> 5 with the root and proof of 2 -> 4": (
            2,
            5,
            REFERENCE.root(2),
            REFERENCE.root(4),
            Tree(store_of_600(), 4).consistency_proof(2),
        ),
    }
    for name, args in refused.items():
        assert refuses(verify_consistency, *args), name


def test_tree_refuses_what_it_does_not_have() -> None:
    store = store_of_600()
    tree = Tree(store, 5)
    calls: dict[str, Callable[[], object]] = {
        "negative size": lambda: Tree(store, -1),
        "size beyond 2**63 - 1": lambda: Tree(store, MAX_SIZE + 1),
        "leaf at the size": lambda: tree.leaf(5),
        "negative leaf": lambda: tree.leaf(-1),
        "inclusion of the size-th entry": lambda: tree.inclusion_proof(5),
        "inclusion of a negative index": lambda: tree.inclusion_proof(-1),
        "inclusion in a larger tree": lambda: tree.inclusion_proof(0, 6),
        "inclusion in the empty tree": lambda: tree.inclusion_proof(0, 0),
        "inclusion at an index of the smaller tree's size": lambda: tree.inclusion_proof(3, 3),
        "consistency with a larger tree": lambda: tree.consistency_proof(2, 6),
        "consistency from a larger old": lambda: tree.consistency_proof(4, 3),
        "consistency from a negative old": lambda: tree.consistency_proof(-1),
        "an empty range": lambda: tree.range_hash(3, 3),
        "a subtree beyond the tree": lambda: tree.complete(3, 0),
        "root from an index at the size": lambda: root_from_inclusion(5, 5, bytes(32), []),
        "root from a negative index": lambda: root_from_inclusion(-1, 5, bytes(32), []),
        "root from the empty tree": lambda: root_from_inclusion(0, 0, bytes(32), []),
        "a leaf hash of 31 bytes": lambda: tlog.append(MemoryTiles(), 0, [bytes(31)]),
        "a leaf hash of 33 bytes": lambda: tlog.append(MemoryTiles(), 0, [bytes(33)]),
    }
    accepted = [name for name, call in calls.items() if verifies(call)]
    assert not accepted, accepted
    assert Tree(store, 0).root() == EMPTY_ROOT


def test_short_or_stale_tiles_are_refused() -> None:
    store = build(ENTRIES[:5])

    class Short:
        def tile(self, level: int, index: int, width: int) -> bytes:
            return store.hashes[level, index][: (width - 1) * HASH_SIZE]

    with pytest.raises(LogError, match="short"):
        Tree(Short(), 5).root()
    with pytest.raises(LogError, match="does not match the tree size"):
        tlog.append(Short(), 5, [leaf_hash(b"next")])  # the edge holds 4 hashes where the size says 5


# --------------------------------------------------------------------------------------------------
# Tile paths (C2SP tlog-tiles)
# --------------------------------------------------------------------------------------------------

TILE_PATHS: dict[str, tuple[Any, ...]] = {
    "the spec's example: index 1234067": (0, 1234067, 256, "tile/0/x001/x234/067"),
    "the first tile": (0, 0, 256, "tile/0/000"),
    "a partial tile": (0, 1234067, 17, "tile/0/x001/x234/067.p/17"),
    "the narrowest partial": (0, 0, 1, "tile/0/000.p/1"),
    "the widest partial": (0, 7, 255, "tile/0/007.p/255"),
    "index 999: one element": (1, 999, 256, "tile/1/999"),
    "index 1000: two elements": (1, 1000, 256, "tile/1/x001/000"),
    "index 1000000": (2, 1000000, 256, "tile/2/x001/x000/000"),
    "the highest level": (63, 0, 1, "tile/63/000.p/1"),
    "an entry bundle": (-1, 1234067, 256, "tile/entries/x001/x234/067"),
    "a partial entry bundle": (-1, 0, 5, "tile/entries/000.p/5"),
    "the last tile of the largest tree": (0, MAX_SIZE >> 8, 255, "tile/0/x036/x028/x797/x018/x963/967.p/255"),
}


@pytest.mark.parametrize(("level", "index", "width", "path"), params(TILE_PATHS))
def test_tile_paths(level: int, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path
    assert parse_tile_path(path) == TileRef(level, index, width)


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(-1, 63), st.integers(0, MAX_SIZE >> 8), st.integers(1, 256))
def test_tile_paths_round_trip(level: int, index: int, width: int) -> None:
    assert parse_tile_path(tile_path(level, index, width)) == TileRef(level, index, width)


NOT_TILE_PATHS = [
    "", "tile", "tile/", "tile/0", "tile/0/", "/tile/0/000", "tiles/0/000", "TILE/0/000", "tile/ENTRIES/000",
    "tile/data/000", "tile/00/000", "tile/01/000", "tile/64/000", "tile/-1/000", "tile/+1/000", "tile/ 0/000",
    "tile/x/000", "tile/0/0", "tile/0/00", "tile/0/0000", "tile/0/00a", "tile/0/+01", "tile/0/ 01", "tile/0/-01",
    "tile/0/x000", "tile/0/x000/000", "tile/0/x000/001", "tile/0/001/002", "tile/0/x001/234/567",
    "tile/0/x1/000", "tile/0/x0001/000", "tile/0/X001/000", "tile/0/000/", "tile/0/000/extra", "tile/0/../000",
    "tile/0/000/..", "tile/../0/000", "tile/0/./000", "tile/0//000", "tile/0/000.p", "tile/0/000.p/",
    "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/017", "tile/0/000.p/+1", "tile/0/000.p/1 ",
    "tile/0/000.p/1/2", "tile/0/000.P/1", "tile/0/000.q/1", "tile/0/.p/1", "tile/0/000.p/1.p/1",
    "tile/0/x001.p/1/000", "tile/entries/000.p/1/extra", "tile/entries/000.p/256", "tile/0/\u0661\u0662\u0663",
    "tile/0/x001/x002/x003/x004/x005/x006/x007/008", "tile/0/x001/x002/x003/x004/x005/x006/x007/008.p/1",
]  # fmt: skip


@pytest.mark.parametrize("path", NOT_TILE_PATHS)
def test_non_canonical_tile_paths_are_refused(path: str) -> None:
    with pytest.raises(LogError):
        parse_tile_path(path)


@pytest.mark.parametrize(
    "path", ["tile/\u00b2/000", "tile/0/000.p/\u00b2", "tile/0/\u00b2\u00b2\u00b2", "tile/0/x\u00b9\u00b2\u00b3/000"]
)
def test_tile_paths_with_unicode_digits_are_refused_as_log_errors(path: str) -> None:
    """``str.isdigit`` is true for superscript digits, which ``int`` refuses: a ValueError would reach the
    tile route (which answers a LogError with a 404) as a 500."""
    with pytest.raises(LogError):
        parse_tile_path(path)


# --------------------------------------------------------------------------------------------------
# Entry bundles
# --------------------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.binary(max_size=300), max_size=256))
def test_bundles_round_trip(entries: list[bytes]) -> None:
    data = encode_bundle(entries)
    assert data == b"".join(len(e).to_bytes(2, "big") + e for e in entries)
    assert decode_bundle(data) == entries


def test_bundle_limits() -> None:
    largest = [b"\xff" * MAX_ENTRY, b""]
    assert decode_bundle(encode_bundle(largest)) == largest
    assert decode_bundle(b"") == []
    assert len(decode_bundle(encode_bundle([b"x"] * 256))) == 256
    with pytest.raises(LogError):
        encode_bundle([b"\x00" * (MAX_ENTRY + 1)])
    with pytest.raises(LogError, match="at most 256"):
        decode_bundle(encode_bundle([b"x"] * 257))


BAD_BUNDLES = {
    "one byte": b"\x00",
    "a length prefix with nothing after it": b"\x00\x01",
    "a length of 5 with 4 bytes": b"\x00\x05abcd",
    "the largest length with nothing": b"\xff\xff",
    "the largest length, one byte short": b"\xff\xff" + b"a" * (MAX_ENTRY - 1),
    "a good entry and a stray byte": b"\x00\x01a\x00",
    "a good entry and a length that runs over": b"\x00\x01a\x00\x03ab",
}


@pytest.mark.parametrize("data", [pytest.param(v, id=k) for k, v in BAD_BUNDLES.items()])
def test_truncated_bundles_are_refused(data: bytes) -> None:
    with pytest.raises(LogError, match="truncated"):
        decode_bundle(data)


def test_every_cut_of_a_bundle_is_refused_or_is_a_prefix() -> None:
    """Cut anywhere but between entries, a bundle does not decode; cut between, it is the first entries (which
    is why DirectoryLog.bundle also checks the count)."""
    entries = [b"", b"a", b"bc", b"\x00\x01", b"x" * 300]
    data = encode_bundle(entries)
    boundaries = {sum(2 + len(e) for e in entries[:k]): k for k in range(len(entries) + 1)}
    for cut in range(len(data)):
        if cut in boundaries:
            assert decode_bundle(data[:cut]) == entries[: boundaries[cut]]
        else:
            assert refuses(decode_bundle, data[:cut]), cut


# --------------------------------------------------------------------------------------------------
# Signed notes (C2SP signed-note) and checkpoints (C2SP tlog-checkpoint)
# --------------------------------------------------------------------------------------------------

ORIGIN = "example.org/provenance/log"
KEY = FileLogKey(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
IMPOSTOR = FileLogKey(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33))))  # the same name
STRANGER = FileLogKey("stranger.example/log", Ed25519PrivateKey.from_private_bytes(bytes(range(2, 34))))
VERIFIER = Verifier.parse(verifier_key(KEY.name, KEY.public_key))

# golang.org/x/mod/sumdb/note's own test vector (note_test.go: TestNewVerifier, TestSign).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIGNED = (
    GO_TEXT
    + "\n\u2014 PeterNeumann "
    + "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def signature_line(name: str, key_hash: bytes, signature: bytes) -> str:
    return f"{SIGNATURE_DASH}{name} {b64(key_hash + signature)}\n"


def test_notes_match_go_known_answer() -> None:
    """The vector of Go's x/mod/sumdb/note: the same verifier key, byte-for-byte the same signed note."""
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])  # PRIVATE+KEY+<name>+<id>+<0x01 || seed>
    assert seed[0] == 0x01
    key = FileLogKey("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:]))
    assert verifier_key(key.name, key.public_key) == GO_VKEY
    assert key_id(key.name, key.public_key).hex() == "c74f20a3"
    assert sign_note(GO_TEXT, key) == GO_SIGNED
    verifier = Verifier.parse(GO_VKEY)
    assert (verifier.name, verifier.id.hex(), verifier.vkey) == ("PeterNeumann", "c74f20a3", GO_VKEY)
    assert open_note(GO_SIGNED, verifier) == GO_TEXT


def test_key_id_and_vkey_are_the_spec_formulas() -> None:
    """key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]; vkey = name+hex(key ID)+base64(0x01 || key);
    the signature line is an em dash, a space, the name, a space and base64(key ID || Ed25519 signature)."""
    public = KEY.public_key
    assert len(public) == 32
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n" + b"\x01" + public).digest()[:4]
    assert key_id(ORIGIN, public) == expected_id
    encoded = base64.b64encode(b"\x01" + public).decode()
    vkey = f"{ORIGIN}+{expected_id.hex()}+{encoded}"
    assert verifier_key(ORIGIN, public) == vkey
    parsed = Verifier.parse(vkey)
    assert (parsed.name, parsed.id, parsed.public_key, parsed.vkey) == (ORIGIN, expected_id, public, vkey)
    assert Verifier.parse(vkey + "\n") == parsed  # as read from a file
    text = "one line\nanother line\n"
    note = sign_note(text, KEY)
    head, line = note.split("\n\n")
    assert head + "\n" == text
    assert line.startswith(f"{SIGNATURE_DASH}{ORIGIN} ")
    assert line.endswith("\n")
    assert line.count("\n") == 1
    raw = base64.b64decode(line.removeprefix(f"{SIGNATURE_DASH}{ORIGIN} ").removesuffix("\n"), validate=True)
    assert raw[:4] == expected_id
    assert len(raw) == 4 + 64
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], text.encode())  # raises if it does not verify
    assert open_note(note, parsed) == text
    assert split_note(note)[0] == text


def test_every_mangling_of_a_verifier_key_is_refused() -> None:
    """As Go's TestNewVerifier: every proper substring and every byte bumped by one is refused."""
    mangled: list[str] = []
    for i in range(len(GO_VKEY) + 1):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                mangled.append(GO_VKEY[i:j])
    for i in range(len(GO_VKEY)):
        mangled.append(GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1 :])
    mangled += [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length, hash adjusted
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm, hash adjusted
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]
    accepted = []
    for vkey in mangled:
        try:
            Verifier.parse(vkey)
        except NoteError:
            continue
        accepted.append(vkey)
    assert not accepted, accepted


def test_key_names_are_checked() -> None:
    for name in ("", "a b", "a+b", "a\tb", "a\u00a0b", "a\u2003b", "a\x07b", "a\nb"):
        with pytest.raises(NoteError):
            verifier_key(name, KEY.public_key)
        with pytest.raises(NoteError):
            FileLogKey(name, Ed25519PrivateKey.from_private_bytes(bytes(32)))


TEXT = Checkpoint(ORIGIN, 7, bytes(range(32))).text()
NOTE = sign_note(TEXT, KEY)
GOOD_LINE = NOTE.split("\n\n")[1]
GOOD_SIGNATURE = KEY.sign(TEXT.encode())


def unknown_signatures(count: int) -> str:
    return "".join(signature_line(f"witness{i}.example", bytes(4), bytes(64)) for i in range(count))


BAD_NOTES: dict[str, tuple[Any, ...]] = {
    "text altered after signing": (NOTE.replace("\n7\n", "\n8\n", 1), "was altered"),
    "signature altered": (TEXT + "\n" + signature_line(ORIGIN, VERIFIER.id, flip(GOOD_SIGNATURE, 9)), "was altered"),
    "signature altered in its last bit": (
        TEXT + "\n" + signature_line(ORIGIN, VERIFIER.id, flip(GOOD_SIGNATURE, 511)),
        "was altered",
    ),
    "key id altered": (TEXT + "\n" + signature_line(ORIGIN, flip(VERIFIER.id, 0), GOOD_SIGNATURE), "not signed by"),
    "another key with the same name": (sign_note(TEXT, IMPOSTOR), "not signed by"),
    "another key's signature under this key's name and id": (
        TEXT + "\n" + signature_line(ORIGIN, VERIFIER.id, IMPOSTOR.sign(TEXT.encode())),
        "was altered",
    ),
    "this key's signature under another name": (
        TEXT + "\n" + signature_line("elsewhere.example", VERIFIER.id, GOOD_SIGNATURE),
        "not signed by",
    ),
    "only an unknown key's signature": (sign_note(TEXT, STRANGER), "not signed by"),
    "a bad signature by the key before a good one": (
        TEXT + "\n" + signature_line(ORIGIN, VERIFIER.id, flip(GOOD_SIGNATURE, 0)) + GOOD_LINE,
        "was altered",
    ),
    "no final newline": (NOTE[:-1], "newline"),
    "a blank line after the signatures": (NOTE + "\n", None),
    "no signature": (TEXT + "\n", None),
    "no blank line before the signature": (TEXT + GOOD_LINE, None),
    "a hyphen for the em dash": (NOTE.replace(SIGNATURE_DASH, "- "), "malformed"),
    "an en dash for the em dash": (NOTE.replace(SIGNATURE_DASH, "\u2013 "), "malformed"),
    "no space after the name": (TEXT + "\n" + GOOD_LINE.replace(f"{ORIGIN} ", ORIGIN), "malformed"),
    "signature not base64": (TEXT + f"\n{SIGNATURE_DASH}{ORIGIN} not*base64\n", "malformed"),
    "signature of the key id only": (TEXT + "\n" + signature_line(ORIGIN, VERIFIER.id, b""), "malformed"),
    "CRLF line endings": (NOTE.replace("\n", "\r\n"), None),
    "a control character in the text": (
        TEXT + "bell\x07\n\n" + signature_line(ORIGIN, VERIFIER.id, KEY.sign((TEXT + "bell\x07\n").encode())),
        "control",
    ),
    "empty": ("", None),
    "101 signatures": (TEXT + "\n" + unknown_signatures(100) + GOOD_LINE, "too many"),
    "longer than the limit, though signed": (sign_note(TEXT + "x" * MAX_NOTE + "\n", KEY), "too long"),
}


@pytest.mark.parametrize(("note", "problem"), params(BAD_NOTES))
def test_bad_notes_are_refused(note: str, problem: str | None) -> None:
    with pytest.raises(NoteError, match=problem):
        open_note(note, VERIFIER)
    with pytest.raises(NoteError):
        open_checkpoint(note, VERIFIER)


GOOD_NOTES: dict[str, tuple[Any, ...]] = {
    "signed by the key": (NOTE,),
    "16 unknown signatures before the key's (the spec's minimum)": (TEXT + "\n" + unknown_signatures(16) + GOOD_LINE,),
    "unknown signatures after the key's": (NOTE + unknown_signatures(3),),
    "an impostor with the same name but another id, ignored": (sign_note(TEXT, IMPOSTOR) + GOOD_LINE,),
}


@pytest.mark.parametrize("note", params(GOOD_NOTES))
def test_good_notes_open(note: str) -> None:
    assert open_note(note, VERIFIER) == TEXT
    assert open_checkpoint(note, VERIFIER) == Checkpoint(ORIGIN, 7, bytes(range(32)))


def test_sign_note_refuses_what_is_not_a_note_text() -> None:
    for text in ("", "no newline", "a\n\nblank line\n", "a\r\n", "bell\x07\n"):
        with pytest.raises(NoteError):
            sign_note(text, KEY)


SPEC_CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


def test_checkpoint_is_the_spec_format() -> None:
    """The tlog-checkpoint spec's example; origin, decimal size and base64 root, then extension lines."""
    checkpoint = Checkpoint.parse(SPEC_CHECKPOINT)
    root = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint == Checkpoint("example.com/behind-the-sofa", 20852163, root)
    assert checkpoint.text() == SPEC_CHECKPOINT
    extended = Checkpoint(ORIGIN, 0, EMPTY_ROOT, ("ext one", "ext two"))
    assert extended.text() == f"{ORIGIN}\n0\n{b64(EMPTY_ROOT)}\next one\next two\n"
    assert Checkpoint.parse(extended.text()) == extended
    assert Checkpoint.parse(f"{ORIGIN}\n{MAX_SIZE}\n{b64(EMPTY_ROOT)}\n").size == MAX_SIZE


LINE = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None, database=None)
@given(LINE, st.integers(0, MAX_SIZE), st.binary(min_size=32, max_size=32), st.lists(LINE, max_size=3))
def test_checkpoints_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    text = checkpoint.text()
    assert text.split("\n")[1] == str(size)
    assert Checkpoint.parse(text) == checkpoint


ROOT_LINE = b64(bytes(range(32)))
URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xfb" * 32).decode()  # "-" and "_" where standard base64 has "+", "/"

BAD_CHECKPOINTS: dict[str, tuple[Any, ...]] = {
    "two lines": (f"{ORIGIN}\n5\n",),
    "no final newline": (f"{ORIGIN}\n5\n{ROOT_LINE}",),
    "empty": ("",),
    "empty origin": (f"\n5\n{ROOT_LINE}\n",),
    "size with a leading zero": (f"{ORIGIN}\n05\n{ROOT_LINE}\n",),
    "size 00": (f"{ORIGIN}\n00\n{ROOT_LINE}\n",),
    "negative size": (f"{ORIGIN}\n-5\n{ROOT_LINE}\n",),
    "size with a plus sign": (f"{ORIGIN}\n+5\n{ROOT_LINE}\n",),
    "size with a space": (f"{ORIGIN}\n 5\n{ROOT_LINE}\n",),
    "size in hex": (f"{ORIGIN}\n0x5\n{ROOT_LINE}\n",),
    "size with an underscore": (f"{ORIGIN}\n1_000\n{ROOT_LINE}\n",),
    "size in Arabic-Indic digits": (f"{ORIGIN}\n\u0665\n{ROOT_LINE}\n",),
    "empty size": (f"{ORIGIN}\n\n{ROOT_LINE}\n",),
    "size 2**63": (f"{ORIGIN}\n{2**63}\n{ROOT_LINE}\n",),
    "root not base64": (f"{ORIGIN}\n5\nnot base64!\n",),
    "root of 31 bytes": (f"{ORIGIN}\n5\n{b64(bytes(31))}\n",),
    "root of 33 bytes": (f"{ORIGIN}\n5\n{b64(bytes(33))}\n",),
    "root without its padding": (f"{ORIGIN}\n5\n{ROOT_LINE.rstrip('=')}\n",),
    "root in URL-safe base64": (f"{ORIGIN}\n5\n{URLSAFE_ROOT}\n",),
    "empty root": (f"{ORIGIN}\n5\n\n",),
    "CRLF line endings": (f"{ORIGIN}\r\n5\r\n{ROOT_LINE}\r\n",),
}


@pytest.mark.parametrize("text", params(BAD_CHECKPOINTS))
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_checkpoint_extension_lines_are_non_empty() -> None:
    """C2SP tlog-checkpoint: extension lines MUST be non-empty (open_note's own text check also keeps an empty
    line out of a signed note)."""
    with pytest.raises(NoteError, match="extension"):
        Checkpoint.parse(f"{ORIGIN}\n5\n{ROOT_LINE}\n\n")


def test_checkpoint_with_a_superscript_size_is_refused_as_a_note_error() -> None:
    """'\u00b2'.isdigit() is true but int('\u00b2') raises: a NoteError, not a ValueError."""
    with pytest.raises(NoteError, match="decimal"):
        Checkpoint.parse(f"{ORIGIN}\n\u00b2\n{ROOT_LINE}\n")


def test_checkpoints_open_only_for_their_log() -> None:
    checkpoint = Checkpoint(ORIGIN, 5, REFERENCE.root(5))
    note = sign_checkpoint(checkpoint, KEY)
    assert note == checkpoint.text() + "\n" + note.split("\n\n")[1]
    assert open_checkpoint(note, VERIFIER) == checkpoint
    assert open_checkpoint(note, VERIFIER, ORIGIN) == checkpoint
    with pytest.raises(NoteError, match=re.escape("not 'other.example/log'")):
        open_checkpoint(note, VERIFIER, "other.example/log")
    elsewhere = sign_checkpoint(Checkpoint("elsewhere.example/log", 5, REFERENCE.root(5)), KEY)
    with pytest.raises(NoteError, match=re.escape("of the log 'elsewhere.example/log'")):
        open_checkpoint(elsewhere, VERIFIER)  # by default, the origin is the key's name
    assert open_checkpoint(elsewhere, VERIFIER, "elsewhere.example/log").origin == "elsewhere.example/log"
    with pytest.raises(NoteError, match="not signed by"):
        open_checkpoint(note, Verifier.parse(verifier_key(IMPOSTOR.name, IMPOSTOR.public_key)))
    not_a_checkpoint = sign_note("not\na\ncheckpoint\n", KEY)
    with pytest.raises(NoteError, match="size"):
        open_checkpoint(not_a_checkpoint, VERIFIER)


# --------------------------------------------------------------------------------------------------
# Entries, and the auditor's checks on a copy of the log
# --------------------------------------------------------------------------------------------------

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)


def digest(tag: str, index: int) -> str:
    return hashlib.sha256(f"{tag} {index}".encode()).hexdigest()


def record(index: int, **changes: Any) -> dict[str, Any]:
    """An entry as the sequencer writes it: logged a second apart, each a second after it happened."""
    logged = T0 + dt.timedelta(seconds=index)
    return {
        "v": 1,
        "event": EVENTS[index % len(EVENTS)],
        "index": index,
        "item": f"img_{index:024d}",
        "content_sha256": digest("content", index),
        "manifest_sha256": digest("manifest", index),
        "at": timestamp(logged - dt.timedelta(seconds=1)),
        "logged_at": timestamp(logged),
        **changes,
    }


def honest_entries(size: int) -> list[bytes]:
    return [encode_entry(record(i)) for i in range(size)]


def write_log(dest: Path, log_entries: Sequence[bytes]) -> str:
    """The log's files for ``log_entries`` under ``dest``, signed by KEY: what the log serves, or what an
    operator holding the key could publish after rewriting history. Returns the checkpoint note."""
    size = len(log_entries)
    store = build(log_entries)
    note = sign_checkpoint(Checkpoint(ORIGIN, size, Tree(store, size).root()), KEY)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "checkpoint").write_text(note)
    for path in log_files(size):
        ref = parse_tile_path(path)
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        if ref.level < 0:
            first = ref.index * 256
            (dest / path).write_bytes(encode_bundle(log_entries[first : first + ref.width]))
        else:
            (dest / path).write_bytes(store.hashes[ref.level, ref.index][: ref.width * HASH_SIZE])
    return note


def findings(copy: Path) -> list[tuple[int | None, str]]:
    return [(f.index, f.problem) for f in audit_log(DirectoryLog(copy), VERIFIER).findings]


NOT_TIMES = (
    "2024-03-01T12:00:00.000005",
    "2024-03-01T12:00:00.000005+00:00",
    "2024-03-01T12:00:00Z",
    "2024-03-01 12:00:00.000005Z",
    "yesterday Z",
    1709294400,
    None,
)


def test_time_format() -> None:
    local = dt.datetime(2024, 3, 1, 13, 0, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert timestamp(local) == "2024-03-01T12:00:00.000005Z"
    assert parse_time("2024-03-01T12:00:00.000005Z") == local
    for value in NOT_TIMES:
        with pytest.raises(LogError):
            parse_time(value)


def test_entries_are_canonical_json() -> None:
    entry = record(0, item="caf\u00e9")
    data = encode_entry(entry)
    expected = (
        '{"at":"2024-03-01T11:59:59.000000Z","content_sha256":"' + digest("content", 0) + '","event":"stamp",'
        '"index":0,"item":"caf\u00e9","logged_at":"2024-03-01T12:00:00.000000Z","manifest_sha256":"'
        + digest("manifest", 0)
        + '","v":1}'
    )
    assert data == expected.encode()  # keys sorted, no spaces, UTF-8, not \u escapes
    assert decode_entry(data) == entry
    with pytest.raises(LogError, match="at most"):
        encode_entry({"v": 1, "event": "stamp", "padding": "x" * MAX_ENTRY})


NOT_ENTRIES = {
    "not JSON": b"not json",
    "not UTF-8": b'{"event":"stamp","item":"\xff","v":1}',
    "a list": b"[1]",
    "version 2": b'{"event":"stamp","v":2}',
    "no version": b'{"event":"stamp"}',
    "an unknown event": b'{"event":"delete","v":1}',
    "keys not sorted": b'{"v":1,"event":"stamp"}',
    "spaces": b'{"event": "stamp", "v": 1}',
    "an escaped non-ASCII character": b'{"event":"stamp","item":"caf\\u00e9","v":1}',
    "a duplicate key": b'{"event":"stamp","v":1,"v":1}',
    "a trailing newline": b'{"event":"stamp","v":1}\n',
    "UTF-16": '{"event":"stamp","v":1}'.encode("utf-16"),
}


@pytest.mark.parametrize("data", [pytest.param(v, id=k) for k, v in NOT_ENTRIES.items()])
def test_non_entries_are_refused(data: bytes) -> None:
    with pytest.raises(LogError):
        decode_entry(data)


@pytest.mark.parametrize("size", [0, 1, 5, 256, 300])
def test_an_honest_log_audits_clean(tmp_path: Path, size: int) -> None:
    note = write_log(tmp_path, honest_entries(size))
    audit = audit_log(DirectoryLog(tmp_path), VERIFIER)
    assert audit.ok, audit.findings
    assert audit.entries == size
    assert audit.checkpoint == open_checkpoint(note, VERIFIER)
    expected = {e: sum(1 for i in range(size) if EVENTS[i % len(EVENTS)] == e) for e in EVENTS}
    assert audit.by_event == {e: n for e, n in expected.items() if n}
    assert audit_log(DirectoryLog(tmp_path), VERIFIER, note).ok  # against a checkpoint saved earlier


def test_an_entry_altered_in_place(tmp_path: Path) -> None:
    write_log(tmp_path, honest_entries(300))
    for name, at in (("tile/entries/000", 7), ("tile/entries/001.p/44", 280)):
        bundle = tmp_path / name
        original = bundle.read_bytes()
        item = record(at)["item"].encode()
        bundle.write_bytes(original.replace(item, item.replace(b"img_", b"vid_"), 1))
        assert findings(tmp_path) == [(at, "altered: its hash is not the one the tree holds")]
        bundle.write_bytes(original)
    assert findings(tmp_path) == []


def test_an_entry_rewritten_with_its_partial_tile(tmp_path: Path) -> None:
    """Rewriting the hash in the partial level-0 tile as well does not help: the root is not the same."""
    log_entries = honest_entries(5)
    write_log(tmp_path, log_entries)
    forged = [*log_entries]
    forged[2] = encode_entry(record(2, item="img_" + "f" * 24))
    (tmp_path / "tile/entries/000.p/5").write_bytes(encode_bundle(forged))
    tile = bytearray((tmp_path / "tile/0/000.p/5").read_bytes())
    tile[2 * HASH_SIZE : 3 * HASH_SIZE] = leaf_hash(forged[2])
    (tmp_path / "tile/0/000.p/5").write_bytes(bytes(tile))
    assert findings(tmp_path) == [(None, "the tiles do not hash to the checkpoint's root")]


def test_an_entry_rewritten_with_its_full_tile(tmp_path: Path) -> None:
    """The root of a tree of 300 is read from tile/1/000.p/1, never from the full tile/0/000: an entry of the
    first 256 rewritten together with its hash in tile/0/000 leaves the tiles hashing to the signed root, so
    the audit rebuilds the tree from the entries (the forged entry's inclusion proof does not verify either,
    as `provenance audit verify-log --file` would show)."""
    log_entries = honest_entries(300)
    note = write_log(tmp_path, log_entries)
    forged = [*log_entries]
    forged[5] = encode_entry(record(5, item="img_" + "f" * 24))
    (tmp_path / "tile/entries/000").write_bytes(encode_bundle(forged[:256]))
    tile = bytearray((tmp_path / "tile/0/000").read_bytes())
    tile[5 * HASH_SIZE : 6 * HASH_SIZE] = leaf_hash(forged[5])
    (tmp_path / "tile/0/000").write_bytes(bytes(tile))
    checkpoint = open_checkpoint(note, VERIFIER)
    copy = DirectoryLog(tmp_path)
    # The forged entry is not in the signed tree: its inclusion proof, from the same copy, does not verify.
    assert refuses(verify_inclusion, 5, 300, leaf_hash(forged[5]), Tree(copy, 300).inclusion_proof(5), checkpoint.root)
    assert findings(tmp_path) == [
        (None, "the entries do not hash to the checkpoint's root"),
        (None, "tile tile/1/000.p/1 is not the one the entries make"),
    ]


def test_re_ordered_entries(tmp_path: Path) -> None:
    """Two entries swapped and the tree rebuilt and re-signed: every hash checks, the indexes do not."""
    log_entries = honest_entries(4)
    write_log(tmp_path, [log_entries[0], log_entries[2], log_entries[1], log_entries[3]])
    found = findings(tmp_path)
    reordered = [(1, "names index 2: re-ordered"), (2, "names index 1: re-ordered")]
    assert [(i, p) for i, p in found if "re-ordered" in p] == reordered
    # entry 2 (logged_at of entry 1) now comes after entry 1's later logged_at
    assert [i for i, p in found if "before the entry ahead of it" in p] == [2]


LOGGED = T0 + dt.timedelta(seconds=2)  # when entry 2 was logged; entry 1 was logged a second before
TICK = dt.timedelta(microseconds=1)

TIME_CASES: dict[str, tuple[Any, ...]] = {
    "logged a second after it happened": ({}, None),
    "logged MAX_LOG_DELAY after it happened": ({"at": timestamp(LOGGED - MAX_LOG_DELAY)}, None),
    "logged MAX_LOG_DELAY and a microsecond after": ({"at": timestamp(LOGGED - MAX_LOG_DELAY - TICK)}, "back-dated"),
    "says it happened a year before it was logged": (
        {"at": timestamp(LOGGED - dt.timedelta(days=365))},
        "but was logged at 2024-03-01T12:00:02.000000Z: back-dated",
    ),
    "happened CLOCK_SKEW after it was logged": ({"at": timestamp(LOGGED + CLOCK_SKEW)}, None),
    "happened CLOCK_SKEW and a microsecond after": ({"at": timestamp(LOGGED + CLOCK_SKEW + TICK)}, "after it was"),
    "logged at the same time as the entry ahead": (
        {"logged_at": timestamp(LOGGED - dt.timedelta(seconds=1)), "at": timestamp(LOGGED - dt.timedelta(seconds=2))},
        None,
    ),
    "logged a microsecond before the entry ahead": (
        {
            "logged_at": timestamp(LOGGED - dt.timedelta(seconds=1) - TICK),
            "at": timestamp(LOGGED - dt.timedelta(seconds=2)),
        },
        "before the entry ahead of it: back-dated",
    ),
    "logged and happened a year ago": (
        {"logged_at": timestamp(LOGGED - dt.timedelta(days=365)), "at": timestamp(LOGGED - dt.timedelta(days=365))},
        "before the entry ahead of it: back-dated",
    ),
    "a time without its Z": ({"at": timestamp(LOGGED)[:-1]}, "UTC"),
    "no logged_at": ({"logged_at": None}, "UTC"),
    "a time without microseconds": ({"logged_at": "2024-03-01T12:00:02Z"}, "YYYY"),
}


@pytest.mark.parametrize(("changes", "problem"), params(TIME_CASES))
def test_time_rules(tmp_path: Path, changes: dict[str, Any], problem: str | None) -> None:
    """Entry 2 of 4 with other times: logged_at never goes backwards, and an event is logged within
    MAX_LOG_DELAY (allowing CLOCK_SKEW the other way) of when it says it happened."""
    log_entries = honest_entries(4)
    log_entries[2] = encode_entry(record(2, **changes))
    write_log(tmp_path, log_entries)
    found = findings(tmp_path)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1, found
        assert found[0][0] == 2
        assert problem in found[0][1], found


def test_a_later_entry_is_judged_against_the_latest_logged_at(tmp_path: Path) -> None:
    """The entry after a back-dated one is still compared with the latest logged_at seen, not the back-dated."""
    log_entries = honest_entries(4)
    log_entries[2] = encode_entry(record(2, logged_at=timestamp(T0), at=timestamp(T0)))
    log_entries[3] = encode_entry(record(3, logged_at=timestamp(T0 + dt.timedelta(milliseconds=500))))
    write_log(tmp_path, log_entries)
    assert [i for i, p in findings(tmp_path) if "before the entry ahead" in p] == [2, 3]


def test_broken_files_are_findings(tmp_path: Path) -> None:
    write_log(tmp_path, honest_entries(5))
    bundle = tmp_path / "tile/entries/000.p/5"
    original = bundle.read_bytes()
    bundle.write_bytes(original[:-1])
    assert findings(tmp_path) == [(None, "truncated entry bundle")]
    bundle.write_bytes(encode_bundle(honest_entries(4)))  # cut between entries: it decodes, one short
    assert findings(tmp_path) == [(None, "entry bundle tile/entries/000.p/5 holds 4 entries, not 5")]
    bundle.write_bytes(encode_bundle(honest_entries(6)))
    assert findings(tmp_path) == [(None, "entry bundle tile/entries/000.p/5 holds 6 entries, not 5")]
    bundle.unlink()
    assert [p for _, p in findings(tmp_path)] == [
        f"tile/entries/000.p/5 missing from the copy of the log in {tmp_path}"
    ]
    bundle.write_bytes(original)
    tile = tmp_path / "tile/0/000.p/5"
    hashes = tile.read_bytes()
    tile.write_bytes(hashes[:-1])
    assert [p for _, p in findings(tmp_path)] == ["tile tile/0/000.p/5 is short"]
    tile.write_bytes(flip(hashes, 0))
    assert findings(tmp_path) == [
        (None, "the tiles do not hash to the checkpoint's root"),
        (0, "altered: its hash is not the one the tree holds"),
    ]
    tile.write_bytes(hashes)
    assert findings(tmp_path) == []


def test_a_checkpoint_the_tiles_do_not_match(tmp_path: Path) -> None:
    write_log(tmp_path, honest_entries(5))
    other = sign_checkpoint(Checkpoint(ORIGIN, 5, REFERENCE.root(5)), KEY)
    audit = audit_log(DirectoryLog(tmp_path), VERIFIER, other)
    assert [str(f) for f in audit.findings] == ["the tiles do not hash to the checkpoint's root"]
    assert str(Finding(3, "x")) == "entry 3: x"


def test_a_checkpoint_not_signed_by_the_log_is_an_error(tmp_path: Path) -> None:
    write_log(tmp_path, honest_entries(5))
    impostor = Verifier.parse(verifier_key(IMPOSTOR.name, IMPOSTOR.public_key))
    with pytest.raises(NoteError, match="not signed by"):
        audit_log(DirectoryLog(tmp_path), impostor)
    (tmp_path / "checkpoint").write_text((tmp_path / "checkpoint").read_text().replace("\n5\n", "\n4\n"))
    with pytest.raises(NoteError, match="altered"):
        audit_log(DirectoryLog(tmp_path), VERIFIER)


def test_entries_that_are_not_well_formed(tmp_path: Path) -> None:
    log_entries = honest_entries(4)
    log_entries[1] = b'{"event": "stamp", "index": 1, "v": 1}'
    log_entries[2] = b"not json"
    log_entries[3] = encode_entry({**record(3), "v": 2})
    write_log(tmp_path, log_entries)
    assert findings(tmp_path) == [
        (1, "an entry is not in its canonical form"),
        (2, "an entry is JSON"),
        (3, "not a version 1 log entry"),
    ]


def test_find_entries_by_sha256(tmp_path: Path) -> None:
    log_entries = honest_entries(300)
    log_entries[7] = b"not json"  # skipped, not an error
    log_entries[290] = encode_entry(record(290, content_sha256=digest("content", 3)))  # the same content again
    write_log(tmp_path, log_entries)
    copy = DirectoryLog(tmp_path)
    found = list(find_entries(copy, 300, digest("content", 3)))
    assert [(i, e) for i, e, _ in found] == [(3, log_entries[3]), (290, log_entries[290])]
    assert [r["item"] for _, _, r in found] == [record(3)["item"], record(290)["item"]]
    assert [i for i, _, _ in find_entries(copy, 300, digest("manifest", 299))] == [299]
    assert list(find_entries(copy, 300, digest("content", 7))) == []
    assert list(find_entries(copy, 300, "0" * 64)) == []
    with pytest.raises(LogError, match="missing"):  # a tree of 5 reads tile/entries/000.p/5, absent here
        list(find_entries(copy, 5, digest("content", 3)))


def test_inclusion_evidence() -> None:
    log_entries = honest_entries(10)
    store = build(log_entries)
    checkpoint = Checkpoint(ORIGIN, 10, Tree(store, 10).root())

    def evidence(of: int, **changes: Any) -> dict[str, Any]:
        """What an item's report carries for entry ``of``, with ``changes``."""
        proof = [b64(h) for h in Tree(store, 10).inclusion_proof(of)]
        return {"index": of, "entry": b64(log_entries[of]), "proof": proof, **changes}

    assert check_inclusion(evidence(4), checkpoint) == record(4)
    assert check_inclusion(evidence(4), checkpoint, digest("manifest", 4)) == record(4)
    with pytest.raises(LogError, match="of other content"):
        check_inclusion(evidence(4), checkpoint, digest("content", 5))
    bad = {
        "no index": evidence(4, index=None),
        "a boolean index": evidence(1, index=True),
        "another entry's index": evidence(4, index=5),
        "another entry's proof": evidence(4, proof=evidence(5)["proof"]),
        "a proof cut short": evidence(4, proof=evidence(4)["proof"][:-1]),
        "a proof hash not base64": evidence(4, proof=["*" * 44, *evidence(4)["proof"][1:]]),
        "a proof hash of 31 bytes": evidence(4, proof=[b64(bytes(31)), *evidence(4)["proof"][1:]]),
        "a proof hash not a string": evidence(4, proof=[7, *evidence(4)["proof"][1:]]),
        "a proof that is not a list": evidence(4, proof=evidence(4)["proof"][0]),
        "a proof of 65 hashes": evidence(4, proof=[b64(bytes(32))] * 65),
        "an entry not base64": evidence(4, entry="not base64!"),
        "an entry that is not an entry": evidence(4, entry=b64(b"{}")),
    }
    accepted = [name for name, item in bad.items() if verifies(check_inclusion, item, checkpoint)]
    assert not accepted, accepted
    other = Checkpoint(ORIGIN, 11, REFERENCE.root(11))
    assert refuses(check_inclusion, evidence(4), other)


def test_consistency_between_checkpoints() -> None:
    honest = honest_entries(8)
    grown = build(honest)
    old = Checkpoint(ORIGIN, 5, Tree(grown, 5).root())
    new = Checkpoint(ORIGIN, 8, Tree(grown, 8).root())
    proof = [b64(h) for h in Tree(grown, 8).consistency_proof(5)]
    check_consistency(old, new, proof)
    check_consistency(old, old, [])
    check_consistency(Checkpoint(ORIGIN, 0, EMPTY_ROOT), new, [])

    with pytest.raises(LogError, match="fewer than the 8 it had: the log forked"):
        check_consistency(new, old, proof)  # the log shrank
    with pytest.raises(LogError, match="fewer"):
        check_consistency(new, old, [])

    # A forked history: entry 2 rewritten, the rest the same, each tree's own proof.
    forked_entries = [*honest]
    forked_entries[2] = encode_entry(record(2, item="img_" + "f" * 24))
    forked = build(forked_entries)
    fork_new = Checkpoint(ORIGIN, 8, Tree(forked, 8).root())
    fork_proof = [b64(h) for h in Tree(forked, 8).consistency_proof(5)]
    with pytest.raises(LogError, match="forked"):
        check_consistency(old, fork_new, fork_proof)
    with pytest.raises(LogError, match="forked"):
        check_consistency(old, fork_new, proof)
    with pytest.raises(LogError, match="forked"):
        check_consistency(new, fork_new, [])  # the same size, another root
    with pytest.raises(LogError, match="forked"):
        check_consistency(Checkpoint(ORIGIN, 5, Tree(forked, 5).root()), new, proof)

    bad_proofs = {
        "not a list": b64(bytes(32)),
        "a hash not base64": ["!" * 44, *proof[1:]],
        "a hash of 33 bytes": [b64(bytes(33)), *proof[1:]],
        "65 hashes": [b64(bytes(32))] * 65,
        "empty": [],
        "one hash short": proof[:-1],
    }
    accepted = [name for name, bad in bad_proofs.items() if verifies(check_consistency, old, new, bad)]
    assert not accepted, accepted
    with pytest.raises(LogError, match="two different logs"):
        check_consistency(old, Checkpoint("other.example/log", 8, new.root), proof)
