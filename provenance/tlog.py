"""A transparency log's tree: RFC 6962 / RFC 9162 Merkle hashing laid out as C2SP tlog-tiles.

The tree's leaves are the log's entries in order; its hashes are stored in *tiles* of height 8: the tile
at tile level ``L`` and index ``N`` holds up to 256 consecutive hashes of tree level ``8·L``, starting at
``256·N``. A full tile never changes; a *partial* tile (the right edge of the tree) is named by its width
(``tile/0/x001/234.p/17``) and never changes either, so every tile and entry bundle is a static, cacheable
file (https://c2sp.org/tlog-tiles). Entry bundles hold the entries themselves, 256 to a bundle, each
prefixed by its length in two bytes, big-endian.

Everything here is pure: the hashes come from a :class:`Tiles` reader the caller provides (a database, a
directory of files, a web server), the appends return the tiles they change. Proof verification follows
RFC 9162 §2.1.3.2 and §2.1.4.2, so a proof made elsewhere checks here and ours check elsewhere (the tests
check them with Go's ``golang.org/x/mod/sumdb/tlog``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from provenance.errors import InputError

HASH_SIZE: Final = 32
#: Tree levels per tile level: a tile holds 2**TILE_HEIGHT hashes.
TILE_HEIGHT: Final = 8
TILE_WIDTH: Final = 1 << TILE_HEIGHT
#: The largest entry an entry bundle can hold (a two-byte length prefix).
MAX_ENTRY: Final = 0xFFFF
#: Tree sizes this module reasons about (tile paths and proofs are bounded by 2**63 entries).
MAX_SIZE: Final = (1 << 63) - 1

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


class LogError(InputError):
    """A proof, tile, bundle or path that does not check, or asks for what the tree does not have."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(hashes: Sequence[bytes]) -> bytes:
    """The RFC 6962 tree hash over ``hashes`` taken as the leaves' hashes (``EMPTY_ROOT`` when none)."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Fold pairwise; an odd last hash is carried up unchanged, which for RFC 6962's left-heavy split is the
    # same tree as its recursive definition.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# --- paths (C2SP tlog-tiles) ---


def _encode_index(n: int) -> str:
    """A tile index as path elements: groups of three digits, all but the last prefixed with ``x``."""
    digits = str(n)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` for the hash tile (``level`` ≥ 0) or ``tile/entries/<N>[.p/<W>]`` (level -1)."""
    head = "entries" if level < 0 else str(level)
    partial = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{head}/{_encode_index(index)}{partial}"


@dataclass(frozen=True)
class TileRef:
    """A tile named by a path: ``level`` -1 is an entry bundle."""

    level: int
    index: int
    width: int


def _decimal(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes '²' and other digits ``int`` refuses or reads)."""
    return text.isascii() and text.isdigit()


def parse_tile_path(path: str) -> TileRef:
    """The tile a ``tile/...`` path names; raises :class:`LogError` for any other form (a strict parser: one
    spelling per tile, so a cache never holds one tile twice)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise LogError("not a tile path")
    head, rest = parts[1], parts[2:]
    if head == "entries":
        level = -1
    elif _decimal(head) and head == str(int(head)) and int(head) <= 63:
        level = int(head)
    else:
        raise LogError("not a tile level")
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        w = rest[-1]
        if not (_decimal(w) and w == str(int(w)) and 1 <= int(w) < TILE_WIDTH):
            raise LogError("not a partial tile width")
        width = int(w)
        rest = [*rest[:-2], rest[-2][:-2]]
    if not rest or len(rest) > 7:
        raise LogError("not a tile index")
    digits = ""
    for i, group in enumerate(rest):
        last = i == len(rest) - 1
        if not last:
            if not group.startswith("x"):
                raise LogError("not a tile index")
            group = group[1:]
        if len(group) != 3 or not _decimal(group):
            raise LogError("not a tile index")
        digits += group
    index = int(digits)
    if index > MAX_SIZE:
        raise LogError("tile index out of range")
    if _encode_index(index) != "/".join(rest):
        raise LogError("not the canonical tile index")
    return TileRef(level, index, width)


# --- entry bundles ---


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise LogError(f"an entry is at most {MAX_ENTRY} bytes")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise LogError("truncated entry bundle")
        size = int.from_bytes(data[at : at + 2], "big")
        if at + 2 + size > len(data):
            raise LogError("truncated entry bundle")
        entries.append(data[at + 2 : at + 2 + size])
        at += 2 + size
    if len(entries) > TILE_WIDTH:
        raise LogError("an entry bundle holds at most 256 entries")
    return entries


# --- reading the tree from its tiles ---


class Tiles(Protocol):
    """What the tree is read from: the hash tile at (tile level, index) of a tree of a given size, at least
    as wide as that tree needs (wider is fine: extra hashes belong to a later, larger tree)."""

    def tile(self, level: int, index: int, width: int) -> bytes: ...


def tile_width(size: int, level: int, index: int) -> int:
    """How many hashes the tile (level, index) holds in a tree of ``size`` entries (0 if none)."""
    at_level = size >> (TILE_HEIGHT * level)  # complete hashes at tree level 8·level
    return max(0, min(TILE_WIDTH, at_level - index * TILE_WIDTH))


class Tree:
    """A tree of ``size`` entries read through ``tiles``: its root, its subtrees' hashes and its proofs."""

    def __init__(self, tiles: Tiles, size: int) -> None:
        if not 0 <= size <= MAX_SIZE:
            raise LogError("tree size out of range")
        self.tiles = tiles
        self.size = size

    def _tile(self, level: int, index: int) -> bytes:
        width = tile_width(self.size, level, index)
        data = self.tiles.tile(level, index, width)
        if len(data) < width * HASH_SIZE:
            raise LogError(f"tile {tile_path(level, index, width)} is short")
        return data

    def complete(self, height: int, index: int) -> bytes:
        """The hash of the complete subtree of 2**height leaves starting at leaf index·2**height."""
        level, below = divmod(height, TILE_HEIGHT)
        first = index << below  # its leftmost hash at tree level 8·level
        count = 1 << below
        if (first + count) << (TILE_HEIGHT * level) > self.size:
            raise LogError("subtree beyond the tree")
        data = self._tile(level, first >> TILE_HEIGHT)
        start = first & (TILE_WIDTH - 1)
        hashes = [data[(start + i) * HASH_SIZE : (start + i + 1) * HASH_SIZE] for i in range(count)]
        return merkle_root(hashes)

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that RFC 6962's recursion visits (aligned on its largest power)."""
        n = end - start
        if n <= 0:
            raise LogError("empty range")
        if n & (n - 1) == 0 and start % n == 0:
            return self.complete(n.bit_length() - 1, start // n)
        k = _largest_power_below(n)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))

    def root(self) -> bytes:
        return EMPTY_ROOT if self.size == 0 else self.range_hash(0, self.size)

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise LogError("index beyond the tree")
        return self.complete(0, index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]) (``size`` ≤ this tree's size), leaf's sibling first."""
        n = self.size if size is None else size
        if not 0 <= index < n <= self.size:
            raise LogError("index beyond the tree")
        proof: list[bytes] = []
        start, end, m = 0, n, index
        while end - start > 1:
            k = _largest_power_below(end - start)
            if m < k:
                proof.append(self.range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self.range_hash(start, start + k))
                start, m = start + k, m - k
        proof.reverse()
        return proof

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """RFC 6962 PROOF(old, D[0:new]) (``new`` ≤ this tree's size)."""
        n = self.size if new is None else new
        if not 0 <= old <= n <= self.size:
            raise LogError("sizes out of order or beyond the tree")
        if old == 0 or old == n:
            return []
        proof: list[bytes] = []
        start, end, m, whole = 0, n, old, True
        while m != end - start:
            k = _largest_power_below(end - start)
            if m <= k:
                proof.append(self.range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self.range_hash(start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:
            proof.append(self.range_hash(start, end))
        proof.reverse()
        return proof


# --- verifying proofs (RFC 9162) ---


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof of ``leaf`` at ``index`` in a tree of ``size`` leads to
    (RFC 9162 §2.1.3.2); raises :class:`LogError` when the proof has the wrong shape."""
    if not 0 <= index < size:
        raise LogError("index beyond the tree")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise LogError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise LogError("inclusion proof too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise LogError(f"entry {index} is not in the tree of size {size} with this root")


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """That the tree of ``new`` entries extends the tree of ``old`` (RFC 9162 §2.1.4.2)."""
    if not 0 <= old <= new:
        raise LogError("sizes out of order")
    if old == new:
        if proof or old_root != new_root:
            raise LogError(f"two different trees of size {old}: the log forked")
        return
    if old == 0:
        if proof:
            raise LogError("a consistency proof from the empty tree is empty")
        if old_root != EMPTY_ROOT:
            raise LogError("that is not the root of the empty tree")
        return
    if not proof:
        raise LogError("consistency proof empty")
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node of the path
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise LogError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while (fn & 1) == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise LogError(f"the tree of size {new} does not extend the tree of size {old}: the log forked")


# --- appending ---


def append(edge: Tiles, size: int, leaves: Sequence[bytes]) -> dict[tuple[int, int], bytes]:
    """Append the leaf hashes ``leaves`` to a tree of ``size`` entries; returns every hash tile that changed,
    (tile level, index) → its hashes in the new tree (a full tile when it reaches 256, else the new partial).

    A tile that fills up contributes its root to the tile level above, so level ``L`` tiles hold the roots of
    full level ``L-1`` tiles, which are the hashes of tree level 8·L.
    """
    changed: dict[tuple[int, int], bytearray] = {}

    def current(level: int, index: int, have: int) -> bytearray:
        key = (level, index)
        if key not in changed:
            changed[key] = bytearray(edge.tile(level, index, have)[: have * HASH_SIZE]) if have else bytearray()
        return changed[key]

    count = size
    for leaf in leaves:
        if len(leaf) != HASH_SIZE:
            raise LogError("a leaf hash is 32 bytes")
        level, value, at = 0, leaf, count
        while True:
            index, have = divmod(at, TILE_WIDTH)
            data = current(level, index, have)
            if len(data) != have * HASH_SIZE:
                raise LogError(f"tile {tile_path(level, index, max(have, 1))} does not match the tree size")
            data += value
            if have + 1 < TILE_WIDTH:
                break
            value = merkle_root([bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)])
            level, at = level + 1, index
        count += 1
    return {key: bytes(data) for key, data in changed.items()}
