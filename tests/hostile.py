"""Hostile inputs, generated from a seed: the attacks of issue 9 on the parser, the CLI and the service.

No binary is committed. Every case is built here from a ``random.Random(seed)``, from small Pillow
images and from files signed on the fly with a development CA (as :mod:`tests.assets` does), so the
corpus is the same for the same seed up to what is made fresh at every run: keys, signatures and
manifest ids (and so a few bytes of certificate length, which can move an offset in a case's name
by a byte or two). A case is ``(attack, name, data, sidecar)``: ``name`` is unique in its attack
class and is also the file name to upload it as (its extension is what the file claims to be, not
what it is); ``sidecar`` is a detached manifest for ``data`` when there is one; ``payload`` marks a
CMS article payload (JSON, for ``POST /v1/articles``; with a sidecar, verified against it) rather
than an upload.

The attack classes (:data:`ATTACKS`):

* ``cbor-length-lie``: CBOR items of the manifest store's assertions, claim and signature whose
  length header claims 2^32-1 or 2^64-1 bytes (or items), or just under the SDK's own 100 MB cap; and
  ``3kb-4gib.jpg``, a 3 KB (~2,990-byte) JPEG whose custom assertion declares a 2^32-1-byte text string (the raw
  SDK allocates and fills 4 GiB for it, for 3-11 s).
* ``jumbf-length-lie``: JUMBF box LBox/XLBox lies (past the end, zero, smaller than the header,
  off by one, 2^64-1), description box lies (toggles, unterminated and huge labels, wrong content
  types), overlapping superboxes, and lies in the containers' framing (APP11 sequence numbers,
  duplicated caBX chunks, a BMFF ``uuid`` box claiming more than the file).
* ``box-flood``: MP4, HEIC and AVIF files of ~1 MiB made of 100k+ empty boxes.
* ``chunk-flood``: PNG of 150,000 tiny chunks, JPEG of 250,000 APP segments or 50,000 APP11
  fragments, WebP/WAV of 130,000 RIFF chunks, GIF of 300,000 blocks, a TIFF chain of 60,000 IFDs,
  an MP3 of 100,000 ID3 frames, a PDF of 100,000 objects.
* ``nesting``: ISO-BMFF boxes, JUMBF superboxes, CBOR arrays/maps/tags and JSON 10^4-10^5 levels deep
  (in an assertion, a sidecar's JSON assertion, an article payload), deep XMP, SVG and PDF, and a
  TIFF IFD that points to itself.
* ``bomb``: absurd dimensions, zlib bombs (1 GiB in a PNG ``zTXt``/compressed XMP ``iTXt``), a
  PNG just under the pixel cap whose pixels inflate to 190 MB, huge declared sizes, an SVG billion
  laughs, article payloads with huge numbers and fields.
* ``polyglot``: JPEG+HTML/JS (one of them validly signed), PNG+ZIP, GIF+JS, SVG with script, PDF/JPEG
  hybrids, an HTML file named ``.jpg``, a manifest store that is also HTML.
* ``truncation``: signed JPEG/PNG/WebP/AVIF files and a sidecar cut at seeded points, inside the
  manifest store with the container re-framed around it (so the SDK sees the cut) and plainly.
* ``mutation``: seeded bit flips, byte runs, CBOR header rewrites, box duplications, deletions and
  swaps in the manifest stores of signed files, re-framed so that the container stays well formed
  (JPEG segment lengths, PNG CRCs, RIFF and BMFF sizes); and flips anywhere in the file. The bulk
  of the corpus (``count``).
* ``manifest-strings``: validly signed files (and article payloads) whose title, claim generator,
  software agent, ingredient title or signer name is markup (``<script>``, ``"><img onerror>``),
  a bidi override (U+202E), zero-width characters, terminal escapes, CRLF or rich markup.

The module is imported by ``tests/test_hostile.py`` and ``bench/bench_hostile.py`` and is also a
script::

    python -m tests.hostile OUTDIR [--count N] [--seed S]

writes every case to ``OUTDIR/<attack>/<name>`` (sidecars as ``<name>.c2pa``), the root that
signed them (``root.pem``) and ``INDEX.tsv`` (attack, name, bytes, sha256, what it is).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import random
import re
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Final

from provenance import Source, StampRequest, _c2pa, stamp
from provenance.articles import parse_payload, stamp_article
from tests import images
from tests.assets import CAPTURE, TRAINED, Keys, action, manifest, sign

MIB: Final = 1024 * 1024

CBOR_LENGTH_LIE: Final = "cbor-length-lie"
JUMBF_LENGTH_LIE: Final = "jumbf-length-lie"
BOX_FLOOD: Final = "box-flood"
CHUNK_FLOOD: Final = "chunk-flood"
NESTING: Final = "nesting"
BOMB: Final = "bomb"
POLYGLOT: Final = "polyglot"
TRUNCATION: Final = "truncation"
MUTATION: Final = "mutation"
MANIFEST_STRINGS: Final = "manifest-strings"

DEFAULT_COUNT: Final = 10_000  # mutation cases: the bulk of the corpus


@dataclass(frozen=True)
class Case:
    """One hostile file (or article payload), named for what it attacks."""

    attack: str
    name: str  # unique within ``attack``; also the file name (the extension is a claim, not a fact)
    data: bytes
    sidecar: bytes | None = None  # a detached manifest for ``data``
    #: A CMS article payload (JSON): for POST /v1/articles, or, with a sidecar, verified against it.
    payload: bool = False
    note: str = ""  # what the case is, for INDEX.tsv and failure messages

    @property
    def id(self) -> str:
        return f"{self.attack}/{self.name}"

    def __repr__(self) -> str:  # pytest ids and assertion messages: never the bytes
        sidecar = f" + {len(self.sidecar)} B sidecar" if self.sidecar is not None else ""
        return f"<Case {self.id} {len(self.data)} B{sidecar}>"


# ---------------------------------------------------------------------------------------------
# Container bytes


def box(kind: bytes, body: bytes = b"") -> bytes:
    """An ISO-BMFF / JUMBF box with a 32-bit size."""
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, body: bytes = b"", version: int = 0, flags: int = 0) -> bytes:
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + b"\x00\x00\x00\x00" + b"".join(compatible))


def nested_boxes(kinds: list[bytes], depth: int, leaf: bytes = b"", header: bytes = b"") -> bytes:
    """``depth`` boxes, each the only child of the one before (``kinds`` cycled), around ``leaf``.

    Built from the sizes directly (level ``i`` is ``8 + len(header)`` bytes shorter than level ``i-1``),
    so a million levels cost one join, not a million copies. ``header`` follows each box's type (e.g.
    a full box's version and flags).
    """
    per = 8 + len(header)
    total = per * depth + len(leaf)
    parts = [struct.pack(">I", total - per * i) + kinds[i % len(kinds)] + header for i in range(depth)]
    return b"".join(parts) + leaf


def png_chunk(kind: bytes, body: bytes = b"") -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(start, end, type)`` of every chunk of a PNG (no checks)."""
    out, pos = [], 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        out.append((pos, pos + 12 + length, data[pos + 4 : pos + 8]))
        pos += 12 + length
    return out


def png_insert(data: bytes, chunks: bytes, *, before: bytes = b"IDAT") -> bytes:
    """``data`` (a PNG) with ``chunks`` inserted before its first ``before`` chunk."""
    start = next(s for s, _, kind in png_chunks(data) if kind == before)
    return data[:start] + chunks + data[start:]


def jpeg_segment(marker: int, body: bytes = b"") -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def jpeg_insert(data: bytes, segments: bytes) -> bytes:
    """``data`` (a JPEG) with ``segments`` right after its start-of-image marker."""
    return data[:2] + segments + data[2:]


def riff_chunk(fourcc: bytes, body: bytes = b"") -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def riff(form: bytes, chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + form + chunks


def riff_chunks(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(start, end, fourcc)`` of every top-level chunk of a RIFF file (no checks)."""
    out, pos = [], 12
    while pos + 8 <= len(data):
        size = struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        end = pos + 8 + size + (size & 1)
        out.append((pos, end, data[pos : pos + 4]))
        pos = end
    return out


def with_riff_size(data: bytes) -> bytes:
    """``data`` with its RIFF size field made to match its length."""
    return data[:4] + struct.pack("<I", len(data) - 8) + data[8:]


def gif_insert(data: bytes, blocks: bytes) -> bytes:
    """``data`` (a GIF) with ``blocks`` right after its logical screen descriptor and colour table."""
    flags = data[10]
    table = 3 * (2 ** ((flags & 7) + 1)) if flags & 0x80 else 0
    at = 13 + table
    return data[:at] + blocks + data[at:]


def zlib_zeros(mib: int) -> bytes:
    """A zlib stream of ``mib`` MiB of zero bytes (~1 KB per MiB), without compressing them all.

    Deflate after a full flush forgets its history, so each further MiB compresses to the same
    bytes; the Adler-32 of ``n`` zeros is ``(n mod 65521) << 16 | 1``.
    """
    zeros = bytes(MIB)
    comp = zlib.compressobj(9)
    first = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    adler = ((mib * MIB) % 65521) << 16 | 1
    return first + block * (mib - 1) + b"\x03\x00" + struct.pack(">I", adler)


# ---------------------------------------------------------------------------------------------
# JUMBF (ISO 19566-5): the manifest store's boxes

#: The ISO suffix of every JUMBF content-type UUID (after its four type bytes).
JUMBF_UUID_SUFFIX: Final = bytes.fromhex("00110010800000aa00389b71")
C2PA_BMFF_UUID: Final = bytes.fromhex("d8fec3d61b0e483c92975828877ec481")


@dataclass(frozen=True)
class BoxRef:
    """A box found in a byte string: ``data[offset:offset + length]``, its header, its JUMBF path."""

    offset: int
    header: int  # 8, or 16 with an XLBox
    length: int
    kind: bytes
    path: tuple[str, ...]  # labels of the enclosing superboxes (and its own, for a superbox)

    @property
    def body(self) -> int:
        return self.offset + self.header

    @property
    def end(self) -> int:
        return self.offset + self.length


def jumbf_boxes(data: bytes, start: int = 0, end: int | None = None, path: tuple[str, ...] = ()) -> list[BoxRef]:
    """Every box of a JUMBF byte string, pre-order; descends into ``jumb`` superboxes. Stops at a lie."""
    end = len(data) if end is None else end
    out: list[BoxRef] = []
    pos = start
    while pos + 8 <= end:
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if length == 1:
            if pos + 16 > end:
                break
            length, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif length == 0:
            length = end - pos
        if length < header or pos + length > end:
            break
        own = path
        if kind == b"jumb" and data[pos + header + 4 : pos + header + 8] == b"jumd":
            label = data[pos + header + 8 + 17 : pos + length].split(b"\x00", 1)[0]
            own = (*path, label.decode("latin-1"))
        ref = BoxRef(pos, header, length, kind, own)
        out.append(ref)
        if kind == b"jumb":
            out.extend(jumbf_boxes(data, ref.body, ref.end, own))
        pos += length
    return out


def splice(store: bytes, start: int, end: int, new: bytes) -> bytes:
    """``store[start:end]`` replaced by ``new``, every enclosing box's length adjusted to match."""
    delta = len(new) - (end - start)
    out = bytearray(store)
    for ref in jumbf_boxes(store):
        if ref.body <= start and end <= ref.end and delta:
            if ref.header == 16:
                struct.pack_into(">Q", out, ref.offset + 8, ref.length + delta)
            elif int.from_bytes(store[ref.offset : ref.offset + 4], "big") != 0:
                struct.pack_into(">I", out, ref.offset, ref.length + delta)
    out[start:end] = new
    return bytes(out)


def jumd(ctype: bytes, label: str | None, *, toggles: int | None = None, extra: bytes = b"") -> bytes:
    """A JUMBF description box: content type (4 bytes + the ISO suffix), toggles, label."""
    if toggles is None:
        toggles = 0x01 | (0x02 if label is not None else 0)  # requestable, label present
    text = label.encode() + b"\x00" if label is not None else b""
    return box(b"jumd", ctype + JUMBF_UUID_SUFFIX + bytes([toggles]) + text + extra)


def superbox(ctype: bytes, label: str | None, *children: bytes) -> bytes:
    return box(b"jumb", jumd(ctype, label) + b"".join(children))


# ---------------------------------------------------------------------------------------------
# Where a manifest store sits in its host file


@dataclass(frozen=True)
class Embedded:
    """A manifest store found in a host file, and how to put another store in its place."""

    media_type: str
    store: bytes
    rebuild: Callable[[bytes], bytes] = field(repr=False)

    def with_store(self, store: bytes) -> bytes:
        """The host file carrying ``store`` instead, its framing (lengths, CRCs, sizes) consistent."""
        return self.rebuild(store)


def app11_segments(store: bytes, instance: int = 1) -> bytes:
    """``store`` as C2PA APP11 segments: ``JP``, box instance, sequence number, then the box bytes.

    Continuation segments repeat the store's LBox/TBox (and XLBox), as ISO 19566-5 requires.
    """
    head = store[:16] if store[:4] == b"\x00\x00\x00\x01" else store[:8]
    room = 0xFFFF - 2 - 8
    out, pos, seq = [], 0, 1
    while pos < len(store) or seq == 1:
        repeat = head if seq > 1 else b""
        chunk = store[pos : pos + room - len(repeat)]
        out.append(jpeg_segment(0xEB, b"JP" + struct.pack(">HI", instance, seq) + repeat + chunk))
        pos += len(chunk)
        seq += 1
    return b"".join(out)


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of a JPEG's segments up to and including SOS (no checks)."""
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append((marker, pos, end))
        if marker == 0xDA:
            break
        pos = end
    return out


def embedded(data: bytes) -> Embedded:
    """The manifest store of a signed JPEG, PNG, WebP or ISO-BMFF file, or of a sidecar (.c2pa)."""
    if data[4:8] == b"jumb":
        return Embedded("application/c2pa", data, lambda store: store)
    if data.startswith(b"\xff\xd8"):
        c2pa = [(s, e) for marker, s, e in _jpeg_segments(data) if marker == 0xEB and data[s + 4 : s + 6] == b"JP"]
        if not c2pa:
            raise ValueError("no C2PA APP11 segment")
        first, last = c2pa[0][0], c2pa[-1][1]
        head = 16 if data[first + 12 : first + 16] == b"\x00\x00\x00\x01" else 8
        store = data[first + 12 : c2pa[0][1]] + b"".join(data[s + 12 + head : e] for s, e in c2pa[1:])
        instance = int.from_bytes(data[first + 6 : first + 8], "big")
        return Embedded("image/jpeg", store, lambda new: data[:first] + app11_segments(new, instance) + data[last:])
    if data.startswith(PNG_SIGNATURE):
        s, e, _ = next(c for c in png_chunks(data) if c[2] == b"caBX")
        return Embedded("image/png", data[s + 8 : e - 4], lambda new: data[:s] + png_chunk(b"caBX", new) + data[e:])
    if data[:4] == b"RIFF":
        s, e, _ = next(c for c in riff_chunks(data) if c[2] == b"C2PA")
        size = struct.unpack("<I", data[s + 4 : s + 8])[0]
        return Embedded(
            "image/webp",
            data[s + 8 : s + 8 + size],
            lambda new: with_riff_size(data[:s] + riff_chunk(b"C2PA", new) + data[e:]),
        )
    if data[4:8] == b"ftyp":
        pos = 0
        while pos + 8 <= len(data):
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if kind == b"uuid" and data[pos + 8 : pos + 24] == C2PA_BMFF_UUID:
                prefix_end = data.index(b"\x00", pos + 28) + 1 + 8  # version/flags, purpose, merkle offset
                prefix = data[pos + 8 : prefix_end]
                before, after = data[:pos], data[pos + size :]

                def bmff(new: bytes, before: bytes = before, prefix: bytes = prefix, after: bytes = after) -> bytes:
                    return before + box(b"uuid", prefix + new) + after

                return Embedded("image/avif", data[prefix_end : pos + size], bmff)
            if size < 8:
                break
            pos += size
        raise ValueError("no C2PA uuid box")
    raise ValueError("not a host format this module can re-frame")


def interesting_spans(store: bytes) -> list[tuple[int, int]]:
    """Where in a store a mutation reaches a parser: box headers, description boxes, CBOR and JSON.

    The signature's padding (kilobytes of zeros no parser looks at) is left out.
    """
    spans: list[tuple[int, int]] = []
    for ref in jumbf_boxes(store):
        spans.append((ref.offset, ref.body))
        if ref.kind in (b"jumd", b"json"):
            spans.append((ref.body, ref.end))
        elif ref.kind == b"cbor":
            for item in cbor_items(store, ref.body, ref.end, tolerant=True):
                if item.major in (2, 3) and item.argument and item.argument > 64:
                    spans.append((item.offset, item.offset + item.header + 64))
                else:
                    content = (item.argument or 0) if item.major in (2, 3) else 0
                    spans.append((item.offset, item.offset + item.header + content))
    return [(s, min(e, len(store))) for s, e in spans if s < len(store) and e > s]


# ---------------------------------------------------------------------------------------------
# CBOR (RFC 8949), as far as finding and rewriting item headers needs


@dataclass(frozen=True)
class CborItem:
    """One data item: its offset, its header's size, major type and argument (None: indefinite)."""

    offset: int
    header: int
    major: int
    argument: int | None
    depth: int


def cbor_items(data: bytes, start: int, end: int, *, tolerant: bool = False) -> list[CborItem]:
    """Every item of the CBOR data item at ``data[start:end]``, in order.

    Raises :class:`ValueError` on malformed CBOR, unless ``tolerant`` (then returns what was read).
    """
    out: list[CborItem] = []

    def item(pos: int, depth: int) -> int:
        if pos >= end or depth > 200:
            raise ValueError("truncated or too deep")
        initial = data[pos]
        major, info = initial >> 5, initial & 31
        argument: int | None
        if info < 24:
            argument, size = info, 1
        elif info <= 27:
            width = 1 << (info - 24)
            argument, size = int.from_bytes(data[pos + 1 : pos + 1 + width], "big"), 1 + width
        elif info == 31 and major in (2, 3, 4, 5):
            argument, size = None, 1
        else:
            raise ValueError(f"reserved additional information at {pos}")
        out.append(CborItem(pos, size, major, argument, depth))
        pos += size
        if major in (2, 3, 4, 5) and argument is None:
            while pos < end and data[pos] != 0xFF:
                pos = item(pos, depth + 1)
            return pos + 1
        if major in (2, 3):
            return pos + (argument or 0)
        if major in (4, 5):
            for _ in range((argument or 0) * (2 if major == 5 else 1)):
                pos = item(pos, depth + 1)
            return pos
        if major == 6:
            return item(pos, depth + 1)
        return pos

    try:
        item(start, 0)
    except (ValueError, IndexError):
        if not tolerant:
            raise
    return out


def cbor_head(major: int, value: int) -> bytes:
    """The shortest header of major type ``major`` with argument ``value``."""
    if value < 24:
        return bytes([major << 5 | value])
    for info, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes([major << 5 | info]) + value.to_bytes(width, "big")
    raise ValueError("CBOR arguments are at most 64 bits")


#: Length claims that lie: each a header for ``cbor_head`` (``rest+1`` is computed per item).
LIES: Final = {
    "2^32-1": 2**32 - 1,
    "2^64-1": 2**64 - 1,
    "2^31": 2**31,
    "100MB-1": 104_857_599,  # just under the SDK's own CBOR allocation cap (104,857,600 bytes)
    "64MiB": 64 * MIB,
}


def cbor_lie(store: bytes, item: CborItem, claim: int) -> bytes:
    """``store`` with ``item``'s header claiming ``claim`` (bytes or items); enclosing boxes re-sized."""
    return splice(store, item.offset, item.offset + item.header, cbor_head(item.major, claim))


def cbor_boxes(store: bytes) -> list[BoxRef]:
    return [ref for ref in jumbf_boxes(store) if ref.kind == b"cbor"]


def strip_padding(store: bytes) -> bytes:
    """``store`` with its COSE signature's ``pad`` emptied (kilobytes of zeros; not signed, but hashed)."""
    for ref in cbor_boxes(store):
        if ref.path[-1:] != ("c2pa.signature",):
            continue
        items = cbor_items(store, ref.body, ref.end, tolerant=True)
        for key, value in itertools.pairwise(items):
            text = store[key.offset + key.header : key.offset + key.header + (key.argument or 0)]
            if key.major == 3 and text == b"pad" and value.major == 2:
                return splice(store, value.offset, value.offset + value.header + (value.argument or 0), b"\x40")
    return store


# ---------------------------------------------------------------------------------------------
# The signed files the attacks start from

#: A non-standard assertion: the SDK decodes it into a generic value for its report (another path
#: than the typed c2pa.* assertions), so every major type sits in it.
CUSTOM_ASSERTION: Final = {
    "label": "org.example.hostile-test",
    "data": {"text": "abcdefghijklmnop", "list": [1, 2, 3, 4], "map": {"k": "v"}, "bytes_as_text": "00ff", "n": 7},
}
TRAINING_ASSERTION: Final = {
    "label": "cawg.training-mining",
    "data": {"entries": {"cawg.ai_training": {"use": "notAllowed"}}},
}
CREATIVE_WORK: Final = {
    "label": "stds.schema-org.CreativeWork",
    "data": {"@context": "https://schema.org", "@type": "CreativeWork", "author": [{"@type": "Person", "name": "X"}]},
}
ARTICLE_PAYLOAD: Final = {
    "external_id": "hostile/1",
    "version": 1,
    "headline": "Storm warning for the coast",
    "byline": "Weather desk",
    "language": "en",
    "url": "https://news.example.com/hostile/1",
    "body_text": "Rain is expected from 22:00.\n\nGusts may reach 80 km/h.",
    "source": "ai_generated",
}


def rich_manifest(title: str = "Hostile test base") -> dict[str, object]:
    """A manifest with every decoder path: typed actions, a custom CBOR assertion, CAWG, JSON-LD."""
    definition = manifest(action("c2pa.created", TRAINED), title=title)
    assertions = definition["assertions"]
    assert isinstance(assertions, list)
    assertions.extend([CUSTOM_ASSERTION, TRAINING_ASSERTION, CREATIVE_WORK])
    return definition


class Bases:
    """Signed files made once per corpus, with one development chain (``keys``)."""

    def __init__(self, keys: Keys | None = None) -> None:
        self.keys = keys if keys is not None else Keys.issue("Hostile Input Test Newsroom")

    def stamp_with(self, data: bytes, source: Source = Source.CAMERA, title: str = "Hostile test base") -> bytes:
        return stamp(data, StampRequest(source, title=title), self.keys.signer, self.keys.trust).data

    @cached_property
    def jpeg(self) -> bytes:
        """A JPEG stamped by the library (its own declaration assertion, actions, hash)."""
        return self.stamp_with(images.jpeg(64, 48, seed=1))

    @cached_property
    def jpeg_rich(self) -> bytes:
        return sign(images.jpeg(64, 48, seed=2), rich_manifest(), self.keys)

    @cached_property
    def png_rich(self) -> bytes:
        return sign(images.png(48, 32, seed=3), rich_manifest(), self.keys, media_type="image/png")

    @cached_property
    def jpeg_parent(self) -> bytes:
        """A signed AI JPEG stamped again: two manifests, an ingredient assertion, a thumbnail-less parent."""
        return self.stamp_with(self.jpeg_rich, Source.AI_GENERATED, "Published")

    @cached_property
    def webp(self) -> bytes:
        return self.stamp_with(images.encode(images.picture(32, 24, seed=4), "WEBP"))

    @cached_property
    def avif(self) -> bytes:
        return self.stamp_with(images.encode(images.picture(32, 24, seed=5), "AVIF"))

    @cached_property
    def article(self) -> tuple[bytes, bytes, bytes]:
        """(payload JSON, canonical text, detached manifest) of a stamped article."""
        payload = json.dumps(ARTICLE_PAYLOAD).encode()
        version = stamp_article(parse_payload(payload), self.keys.signer, self.keys.trust)
        return payload, version.text, version.manifest

    @cached_property
    def tiny_jpeg(self) -> bytes:
        """The smallest host: an 8x8 JPEG (~650 bytes)."""
        return images.encode(images.picture(8, 8), "JPEG", quality=20)

    @cached_property
    def tiny_signed(self) -> bytes:
        """An 8x8 JPEG signed with only the custom assertion, its signature padding removed (~2,990 bytes)."""
        definition = {"claim_generator_info": [{"name": "h", "version": "1"}], "assertions": [CUSTOM_ASSERTION]}
        signed = embedded(sign(self.tiny_jpeg, definition, self.keys))
        return signed.with_store(strip_padding(signed.store))

    def signed(self) -> dict[str, bytes]:
        """Every signed host to corrupt, by name (the extension is the real type)."""
        sidecar = self.article[2]
        return {
            "stamped.jpg": self.jpeg,
            "rich.jpg": self.jpeg_rich,
            "rich.png": self.png_rich,
            "parent.jpg": self.jpeg_parent,
            "stamped.webp": self.webp,
            "stamped.avif": self.avif,
            "article.c2pa": sidecar,
        }

    def host_case(self, attack: str, name: str, host: str, data: bytes, note: str) -> Case:
        """A case whose ``data`` came from ``host``: a sidecar's goes with the article text."""
        if host == "article.c2pa":
            return Case(attack, name.removesuffix(".c2pa") + ".txt", self.article[1], sidecar=data, note=note)
        return Case(attack, name, data, note=note)


def _ext(host: str) -> str:
    return host.rsplit(".", 1)[1]


def slug(text: str) -> str:
    """``text`` as part of a file name: letters, digits, ``.``, ``_`` and ``-`` only, at most 32 characters.

    A manifest's label (``urn:c2pa:<uuid>``, fresh at every signing) becomes ``manifest``, so names stay stable.
    """
    if text.startswith("urn:"):
        text = "manifest"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:32] or "x"


# ---------------------------------------------------------------------------------------------
# Attacks: each yields its cases from the bases and a seeded random generator


def cbor_length_lies(bases: Bases, rng: random.Random) -> Iterator[Case]:
    # The reproduction: under 3 KB, and the raw SDK allocates (and fills) 4 GiB for it.
    tiny = embedded(bases.tiny_signed)
    custom = next(ref for ref in cbor_boxes(tiny.store) if ref.path[-1] == CUSTOM_ASSERTION["label"])
    text = next(i for i in cbor_items(tiny.store, custom.body, custom.end) if i.major == 3 and i.depth == 1)
    yield Case(
        CBOR_LENGTH_LIE,
        "3kb-4gib.jpg",
        tiny.with_store(cbor_lie(tiny.store, text, 2**32 - 1)),
        note="a ~2,990-byte JPEG: a custom assertion's text string declares 2^32-1 bytes",
    )
    for host in ("rich.jpg", "rich.png", "parent.jpg", "article.c2pa"):
        found = embedded(bases.signed()[host])
        for box_number, ref in enumerate(cbor_boxes(found.store)):
            where = f"box{box_number}-{slug(ref.path[-1])}"
            items = [i for i in cbor_items(found.store, ref.body, ref.end, tolerant=True) if 2 <= i.major <= 5]
            chosen = items if len(items) <= 10 else sorted(rng.sample(items, 10), key=lambda i: i.offset)
            for item in chosen:
                number = items.index(item)
                rest = ref.end - item.offset - item.header
                claims = {"2^32-1": 2**32 - 1, **dict([rng.choice(list(LIES.items()))]), "rest+1": rest + 1}
                for claim_name, claim in claims.items():
                    yield bases.host_case(
                        CBOR_LENGTH_LIE,
                        f"{host.split('.')[0]}-{where}-item{number}-m{item.major}-{claim_name}.{_ext(host)}",
                        host,
                        found.with_store(cbor_lie(found.store, item, claim)),
                        f"{where}: a major-type-{item.major} header at {item.offset} claims {claim}",
                    )


def _lbox(store: bytes, ref: BoxRef, value: int) -> bytes:
    return store[: ref.offset] + struct.pack(">I", value) + store[ref.offset + 4 :]


def jumbf_length_lies(bases: Bases, rng: random.Random) -> Iterator[Case]:
    for host in ("rich.jpg", "rich.png", "stamped.webp", "stamped.avif", "article.c2pa"):
        found = embedded(bases.signed()[host])
        store = found.store
        stem, ext = host.split(".")[0], _ext(host)
        for index, ref in enumerate(jumbf_boxes(store)):
            where = f"{slug(ref.path[-1]) if ref.path else 'store'}-{slug(ref.kind.decode('latin-1'))}{index}"
            lies = {
                "lbox-2^32-1": _lbox(store, ref, 0xFFFFFFFF),
                "lbox-0": _lbox(store, ref, 0),
                "lbox-7": _lbox(store, ref, 7),
                "lbox+1": _lbox(store, ref, ref.length + 1),
                "lbox-1": _lbox(store, ref, ref.length - 1),
                "xlbox-2^64-1": splice(
                    store, ref.offset, ref.offset + 8, struct.pack(">I", 1) + ref.kind + struct.pack(">Q", 2**64 - 1)
                ),
                "xlbox-15": splice(
                    store, ref.offset, ref.offset + 8, struct.pack(">I", 1) + ref.kind + struct.pack(">Q", 15)
                ),
            }
            for lie in rng.sample(sorted(lies), 3):
                yield bases.host_case(
                    JUMBF_LENGTH_LIE,
                    f"{stem}-{where}-{lie}.{ext}",
                    host,
                    found.with_store(lies[lie]),
                    f"{where}: {lie}",
                )
            if ref.kind == b"jumd":
                toggles = ref.body + 16
                label_end = (
                    store.index(b"\x00", toggles + 1, ref.end) if b"\x00" in store[toggles + 1 : ref.end] else -1
                )
                lies = {
                    "toggles-ff": store[:toggles] + b"\xff" + store[toggles + 1 :],
                    "toggles-label-absent": store[:toggles] + b"\x01" + store[toggles + 1 :],
                    "ctype-json": store[: ref.body] + b"json" + store[ref.body + 4 :],
                    "ctype-c2ma": store[: ref.body] + b"c2ma" + store[ref.body + 4 :],
                }
                if label_end != -1:
                    lies["label-unterminated"] = store[:label_end] + b"x" + store[label_end + 1 :]
                    lies["label-64k"] = splice(store, label_end, label_end, b"A" * 65_000)
                for lie in rng.sample(sorted(lies), 2):
                    yield bases.host_case(
                        JUMBF_LENGTH_LIE,
                        f"{stem}-{where}-{lie}.{ext}",
                        host,
                        found.with_store(lies[lie]),
                        f"{where}: description box {lie}",
                    )
    # Superboxes that overlap: a child claims to run past its parent, into the next box.
    found = embedded(bases.jpeg_rich)
    for ref in [r for r in jumbf_boxes(found.store) if r.kind == b"jumb"][:6]:
        store = _lbox(found.store, ref, ref.length + 64)
        yield Case(
            JUMBF_LENGTH_LIE, f"overlap-{slug(ref.path[-1])}.jpg", found.with_store(store), note="child past parent"
        )
    # The containers' framing.
    jpeg = bases.jpeg_rich
    store = embedded(jpeg).store
    app11 = [(s, e) for marker, s, e in _jpeg_segments(jpeg) if marker == 0xEB]
    start, end = app11[0][0], app11[-1][1]
    instance = int.from_bytes(jpeg[start + 6 : start + 8], "big")
    split = app11_segments(store[:900], instance) + app11_segments(store[900:], instance + 1)
    yield Case(
        JUMBF_LENGTH_LIE,
        "app11-split-in-two-boxes.jpg",
        jpeg[:start] + split + jpeg[end:],
        note="the store cut in two APP11 boxes, each starting at sequence 1",
    )
    seq = bytearray(jpeg)
    struct.pack_into(">I", seq, start + 8, 0xFFFFFFFF)
    yield Case(JUMBF_LENGTH_LIE, "app11-seq-2^32-1.jpg", bytes(seq), note="APP11 packet sequence 2^32-1")
    dup = jpeg[:end] + jpeg[start:end] + jpeg[end:]
    yield Case(JUMBF_LENGTH_LIE, "app11-duplicated.jpg", dup, note="the same APP11 segments twice")
    cont = jpeg_segment(0xEB, b"JP" + struct.pack(">HI", instance, 2) + store[:8] + b"\x00" * 32)
    yield Case(
        JUMBF_LENGTH_LIE,
        "app11-orphan-continuation.jpg",
        jpeg_insert(jpeg, cont),
        note="sequence 2 with no 1 before it",
    )
    png = bases.png_rich
    cabx = next(png[s:e] for s, e, kind in png_chunks(png) if kind == b"caBX")
    yield Case(JUMBF_LENGTH_LIE, "cabx-twice.png", png_insert(png, cabx), note="two caBX chunks")
    yield Case(
        JUMBF_LENGTH_LIE,
        "cabx-garbage-first.png",
        png_insert(png, png_chunk(b"caBX", struct.pack(">I4s", 0xFFFFFFF0, b"jumb") + b"\x00" * 64)),
        note="a caBX whose store claims 4 GiB, before the real one",
    )
    avif = bases.avif
    at = avif.index(b"uuid" + C2PA_BMFF_UUID) - 4
    lied = bytearray(avif)
    struct.pack_into(">I", lied, at, 0xFFFFFFFF)
    yield Case(JUMBF_LENGTH_LIE, "bmff-uuid-2^32-1.avif", bytes(lied), note="the C2PA uuid box claims 4 GiB")
    purpose = avif.index(b"manifest\x00", at)
    yield Case(
        JUMBF_LENGTH_LIE,
        "bmff-uuid-purpose-unterminated.avif",
        avif[:purpose] + b"manifestX" + avif[purpose + 9 :],
        note="uuid purpose string without its NUL",
    )


def box_floods(bases: Bases, rng: random.Random) -> Iterator[Case]:
    del bases
    empty = box(b"free")
    count = MIB // len(empty)  # 131,072 boxes: 1 MiB
    yield Case(
        BOX_FLOOD,
        "mp4-131k-free.mp4",
        ftyp(b"isom", b"isom", b"mp41") + empty * count,
        note="1 MiB of empty top-level boxes",
    )
    yield Case(
        BOX_FLOOD,
        "mp4-moov-131k-children.mp4",
        ftyp(b"isom", b"isom") + box(b"moov", empty * count),
        note="one moov holding 131k empty boxes",
    )
    c2pa_uuid = box(b"uuid", C2PA_BMFF_UUID + b"\x00\x00\x00\x00manifest\x00" + bytes(8))
    yield Case(
        BOX_FLOOD,
        "mp4-25k-c2pa-uuid.mp4",
        ftyp(b"isom", b"isom") + c2pa_uuid * (MIB // len(c2pa_uuid)),
        note="1 MiB of empty C2PA uuid boxes",
    )
    heic_meta = full_box(b"meta", full_box(b"hdlr", bytes(4) + b"pict" + bytes(13)))
    yield Case(
        BOX_FLOOD,
        "heic-131k-free.heic",
        ftyp(b"heic", b"mif1", b"heic") + heic_meta + empty * count,
        note="HEIC: 131k empty boxes after meta",
    )
    yield Case(
        BOX_FLOOD,
        "avif-131k-free.avif",
        ftyp(b"avif", b"avif", b"mif1", b"miaf") + heic_meta + empty * count,
        note="AVIF: 131k empty boxes after meta",
    )
    infe = full_box(b"infe", struct.pack(">HH4s", 1, 0, b"hvc1") + b"\x00", version=2)
    entries = 50_000
    iinf = full_box(b"iinf", struct.pack(">I", entries) + infe * entries, version=1)
    yield Case(
        BOX_FLOOD,
        "heic-50k-item-infos.heic",
        ftyp(b"heic", b"mif1", b"heic") + full_box(b"meta", full_box(b"hdlr", bytes(4) + b"pict" + bytes(13)) + iinf),
        note="HEIC meta/iinf with 50,000 item entries",
    )
    mixed = b"".join(box(rng.choice([b"free", b"skip", b"udta", b"wide", b"trak"])) for _ in range(count))
    yield Case(BOX_FLOOD, "mp4-131k-mixed.mp4", ftyp(b"mp42", b"isom") + mixed, note="131k empty boxes of mixed types")


def chunk_floods(bases: Bases, rng: random.Random) -> Iterator[Case]:
    del rng
    png = images.png(8, 8)
    private = png_chunk(b"prIv")
    yield Case(
        CHUNK_FLOOD,
        "png-150k-chunks.png",
        png_insert(png, private * 150_000 + png_chunk(b"tEXt", b"Comment\x00hi")),
        note="150,000 empty private chunks, then a text chunk (so the SDK reads it)",
    )
    yield Case(
        CHUNK_FLOOD,
        "png-150k-text.png",
        png_insert(png, png_chunk(b"tEXt", b"k\x00") * 150_000),
        note="150,000 tiny tEXt chunks",
    )
    yield Case(
        CHUNK_FLOOD,
        "png-100k-cabx.png",
        png_insert(png, png_chunk(b"caBX") * 100_000),
        note="100,000 empty caBX (C2PA) chunks",
    )
    jpeg = images.jpeg(16, 16)
    app11 = jpeg_segment(0xEB, b"JP" + struct.pack(">HI", 1, 1) + struct.pack(">I4s", 8, b"jumb"))
    yield Case(
        CHUNK_FLOOD,
        "jpeg-250k-app1.jpg",
        jpeg_insert(jpeg, jpeg_segment(0xE1) * 250_000 + app11),
        note="250,000 empty APP1 segments, then an APP11",
    )
    fragments = b"".join(
        jpeg_segment(0xEB, b"JP" + struct.pack(">HI", 1, seq) + struct.pack(">I4s", 16 * 50_000, b"jumb") + b"\x00" * 4)
        for seq in range(1, 50_001)
    )
    yield Case(
        CHUNK_FLOOD, "jpeg-50k-app11-fragments.jpg", jpeg_insert(jpeg, fragments), note="one store in 50k APP11s"
    )
    yield Case(
        CHUNK_FLOOD,
        "jpeg-250k-com.jpg",
        jpeg_insert(jpeg, jpeg_segment(0xFE) * 250_000 + app11),
        note="250,000 empty comment segments",
    )
    webp = images.encode(images.picture(8, 8), "WEBP")
    junk = riff_chunk(b"JUNK") * 130_000
    yield Case(
        CHUNK_FLOOD,
        "webp-130k-chunks.webp",
        with_riff_size(webp + junk + riff_chunk(b"C2PA")),
        note="130,000 empty RIFF chunks",
    )
    wav = riff(
        b"WAVE",
        riff_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)) + junk + riff_chunk(b"data", b"\x80" * 64),
    )
    yield Case(CHUNK_FLOOD, "wav-130k-chunks.wav", wav, note="WAV with 130,000 empty chunks")
    gif = images.encode(images.picture(8, 8), "GIF")
    yield Case(
        CHUNK_FLOOD,
        "gif-300k-comments.gif",
        gif_insert(gif, b"\x21\xfe\x01A\x00" * 300_000),
        note="300,000 comment extension blocks",
    )
    app_ext = b"\x21\xff\x0bC2PA_GIF1.0\x01\x00\x00"
    yield Case(
        CHUNK_FLOOD,
        "gif-60k-c2pa-extensions.gif",
        gif_insert(gif, app_ext * 60_000),
        note="60,000 empty C2PA application extensions",
    )
    # A chain of 60,000 TIFF IFDs, each with one entry, each pointing to the next.
    count = 60_000
    ifds = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for i in range(count):
        nxt = 8 + (i + 1) * 18 if i + 1 < count else 0
        ifds += struct.pack("<H", 1) + struct.pack("<HHII", 256, 4, 1, 1) + struct.pack("<I", nxt)
    yield Case(CHUNK_FLOOD, "tiff-60k-ifds.tif", bytes(ifds), note="a chain of 60,000 IFDs")
    frames = b"".join(b"TXXX" + struct.pack(">I", 2) + b"\x00\x00" + b"\x00A" for _ in range(100_000))
    size = len(frames)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    yield Case(
        CHUNK_FLOOD,
        "mp3-100k-id3-frames.mp3",
        b"ID3\x03\x00\x00" + syncsafe + frames + b"\xff\xfb\x90\x00" + bytes(413),
        note="an ID3 tag of 100,000 frames",
    )
    objects = b"".join(b"%d 0 obj\n<<>>\nendobj\n" % i for i in range(1, 100_001))
    yield Case(
        CHUNK_FLOOD,
        "pdf-100k-objects.pdf",
        b"%PDF-1.7\n" + objects + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n",
        note="a PDF of 100,000 empty objects",
    )
    del bases


def _xmp_app1(xml: bytes) -> bytes:
    return jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xml)


def nestings(bases: Bases, rng: random.Random) -> Iterator[Case]:
    del rng
    depth = 100_000
    yield Case(
        NESTING,
        "mp4-moov-100k-deep.mp4",
        ftyp(b"isom", b"isom") + nested_boxes([b"moov"], depth),
        note="moov in moov, 100,000 levels",
    )
    yield Case(
        NESTING,
        "mp4-trak-chain-100k-deep.mp4",
        ftyp(b"isom", b"isom") + nested_boxes([b"moov", b"trak", b"mdia", b"minf", b"stbl"], depth),
        note="moov/trak/mdia/minf/stbl cycled 100,000 levels",
    )
    yield Case(
        NESTING,
        "heic-meta-60k-deep.heic",
        ftyp(b"heic", b"mif1", b"heic") + nested_boxes([b"meta"], 60_000, header=bytes(4)),
        note="meta (full box) in meta, 60,000 levels",
    )
    yield Case(
        NESTING,
        "heic-iprp-ipco-100k-deep.heic",
        ftyp(b"heic", b"mif1") + nested_boxes([b"iprp", b"ipco"], depth),
        note="iprp/ipco, 100,000 levels",
    )
    yield Case(
        NESTING,
        "mp4-c2pa-uuid-in-100k-moov.mp4",
        ftyp(b"isom", b"isom") + nested_boxes([b"moov"], depth, embedded_store_box(bases)),
        note="the C2PA uuid box at the bottom of 100,000 moov levels",
    )
    # JUMBF superboxes nested in the manifest store (each jumb has its description box).
    found = embedded(bases.jpeg_rich)
    level = jumd(b"c2as", "n")
    per = 8 + len(level)
    levels = 40_000
    deep = b"".join(struct.pack(">I", per * (levels - i)) + b"jumb" + level for i in range(levels))
    assertions = next(r for r in jumbf_boxes(found.store) if r.kind == b"jumb" and r.path[-1] == "c2pa.assertions")
    yield Case(
        NESTING,
        "jumbf-40k-deep.jpg",
        found.with_store(splice(found.store, assertions.end, assertions.end, deep)),
        note="40,000 nested JUMBF superboxes inside the manifest",
    )
    yield Case(
        NESTING,
        "jumbf-store-40k-deep.c2pa",
        struct.pack(">I", per * levels) + b"jumb" + deep[8:],
        note="a sidecar that is only 40,000 nested superboxes",
    )
    custom = next(ref for ref in cbor_boxes(found.store) if ref.path[-1] == CUSTOM_ASSERTION["label"])
    for name, nested in {
        "array": b"\x81" * depth + b"\x00",
        "map": b"\xa1\x00" * depth + b"\x00",
        "tag": b"\xc6" * depth + b"\x00",
        "indefinite-array": b"\x9f" * depth + b"\xff" * depth,
    }.items():
        yield Case(
            NESTING,
            f"cbor-{name}-100k-deep.jpg",
            found.with_store(splice(found.store, custom.body, custom.end, nested)),
            note=f"a custom assertion of CBOR {name}s 100,000 deep",
        )
    claim = next(ref for ref in cbor_boxes(found.store) if ref.path[-1].startswith("c2pa.claim"))
    yield Case(
        NESTING,
        "cbor-claim-array-100k-deep.jpg",
        found.with_store(splice(found.store, claim.body, claim.end, b"\x81" * depth + b"\x00")),
        note="the claim itself: CBOR arrays 100,000 deep",
    )
    creative = next(r for r in jumbf_boxes(found.store) if r.kind == b"json")
    deep_json = b"[" * depth + b"]" * depth
    yield Case(
        NESTING,
        "json-assertion-100k-deep.jpg",
        found.with_store(splice(found.store, creative.body, creative.end, deep_json)),
        note="a JSON-LD assertion of arrays 100,000 deep",
    )
    payload, text, sidecar = bases.article
    deep_object = b'{"a":' * depth + b"1" + b"}" * depth
    yield Case(
        NESTING,
        "article-100k-deep-object.json",
        payload[:-1] + b', "extra": ' + deep_object + b"}",
        payload=True,
        note="an article payload with an object 100,000 deep",
    )
    yield Case(
        NESTING,
        "article-100k-deep-array.json",
        b'{"external_id": ' + b"[" * depth + b"]" * depth + b"}",
        payload=True,
        note="an article payload whose id is arrays 100,000 deep",
    )
    yield Case(
        NESTING,
        "article-deep-with-sidecar.json",
        b"[" * depth + b"]" * depth,
        sidecar=sidecar,
        note="a 'payload' of arrays 100,000 deep, verified against a real sidecar",
    )
    yield Case(
        NESTING,
        "sidecar-json-assertion-deep.txt",
        text,
        sidecar=_sidecar_with_deep_json(sidecar, deep_json),
        note="article text whose sidecar gets a JSON box 100,000 deep",
    )
    xml = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:dcterms="http://purl.org/dc/terms/" dcterms:provenance="https://example.com/m.c2pa">'
        + b"<a>"
        * 21_000
    )
    yield Case(
        NESTING, "xmp-21k-deep.jpg", jpeg_insert(images.jpeg(16, 16), _xmp_app1(xml)), note="XMP 21,000 elements deep"
    )
    yield Case(
        NESTING,
        "svg-100k-deep.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g>" * depth + b"</g>" * depth + b"</svg>",
        note="SVG groups 100,000 deep",
    )
    yield Case(
        NESTING,
        "pdf-100k-deep-array.pdf",
        b"%PDF-1.7\n1 0 obj\n" + b"[" * depth + b"]" * depth + b"\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
        note="a PDF object of arrays 100,000 deep",
    )
    yield Case(
        NESTING,
        "tiff-ifd-cycle.tif",
        b"II*\x00"
        + struct.pack("<I", 8)
        + struct.pack("<H", 1)
        + struct.pack("<HHII", 256, 4, 1, 1)
        + struct.pack("<I", 8),
        note="an IFD whose next IFD is itself",
    )


def embedded_store_box(bases: Bases) -> bytes:
    """The C2PA uuid box of the signed AVIF (a real manifest store in BMFF framing)."""
    avif = bases.avif
    at = avif.index(b"uuid" + C2PA_BMFF_UUID) - 4
    return avif[at : at + int.from_bytes(avif[at : at + 4], "big")]


def _sidecar_with_deep_json(sidecar: bytes, deep: bytes) -> bytes:
    store = sidecar
    assertions = next(r for r in jumbf_boxes(store) if r.kind == b"jumb" and r.path[-1] == "c2pa.assertions")
    extra = superbox(b"json", "stds.schema-org.CreativeWork", box(b"json", deep))
    return splice(store, assertions.end, assertions.end, extra)


def bombs(bases: Bases, rng: random.Random) -> Iterator[Case]:
    del rng
    ihdr = struct.pack(">IIBBBBB", 2**31 - 1, 2**31 - 1, 8, 2, 0, 0, 0)
    tiny_idat = png_chunk(b"IDAT", zlib.compress(b"\x00"))
    yield Case(
        BOMB,
        "png-2^31-squared.png",
        PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + tiny_idat + png_chunk(b"IEND"),
        note="IHDR declares 2^31-1 x 2^31-1 pixels",
    )
    width = height = 7_900  # 62.4 MP, under the 120 MP cap; 187 MB of raw scanlines
    rows = zlib.compressobj(9)
    line = b"\x00" + bytes(width * 3)
    idat = b"".join(rows.compress(line) for _ in range(height)) + rows.flush()
    yield Case(
        BOMB,
        "png-under-pixel-cap-190mb.png",
        PNG_SIGNATURE
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + png_chunk(b"tEXt", b"Comment\x00decode me")
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND"),
        note=f"{width}x{height} RGB (under the pixel cap) whose IDAT inflates to 187 MB",
    )
    gigabyte = zlib_zeros(1024)
    png = images.png(8, 8)
    yield Case(
        BOMB,
        "png-ztxt-1gib.png",
        png_insert(png, png_chunk(b"zTXt", b"Comment\x00\x00" + gigabyte)),
        note="a zTXt chunk inflating to 1 GiB",
    )
    yield Case(
        BOMB,
        "png-compressed-xmp-1gib.png",
        png_insert(png, png_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00\x00\x00" + gigabyte)),
        note="compressed XMP (iTXt) inflating to 1 GiB",
    )
    jpeg = bytearray(images.jpeg(16, 16))
    sof = jpeg.index(b"\xff\xc0")
    struct.pack_into(">HH", jpeg, sof + 5, 65535, 65535)
    yield Case(BOMB, "jpeg-65535-squared.jpg", bytes(jpeg), note="JPEG frame header 65535x65535")
    gif = bytearray(images.encode(images.picture(8, 8), "GIF"))
    struct.pack_into("<HH", gif, 6, 65535, 65535)
    yield Case(BOMB, "gif-65535-squared.gif", bytes(gif), note="GIF logical screen 65535x65535")
    vp8x = riff_chunk(b"VP8X", b"\x00\x00\x00\x00" + (2**24 - 1).to_bytes(3, "little") * 2)
    webp = images.encode(images.picture(8, 8), "WEBP")
    yield Case(
        BOMB,
        "webp-vp8x-16m-squared.webp",
        with_riff_size(webp[:12] + vp8x + webp[12:]),
        note="VP8X canvas 2^24 squared",
    )
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 256, 4, 1, 0xFFFFFFFF) + struct.pack("<HHII", 257, 4, 1, 0xFFFFFFFF) + bytes(4)
    yield Case(BOMB, "tiff-2^32-squared.tif", tiff, note="TIFF ImageWidth/Length 2^32-1")
    ispe = full_box(b"ispe", struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF))
    heic = ftyp(b"heic", b"mif1", b"heic") + full_box(
        b"meta", full_box(b"hdlr", bytes(4) + b"pict" + bytes(13)) + box(b"iprp", box(b"ipco", ispe))
    )
    yield Case(BOMB, "heic-ispe-2^32-squared.heic", heic, note="HEIC ispe 2^32-1 squared")
    mdat = struct.pack(">I4sQ", 1, b"mdat", 2**64 - 1)
    yield Case(BOMB, "mp4-mdat-2^64-1.mp4", ftyp(b"isom", b"isom") + mdat + bytes(64), note="mdat largesize 2^64-1")
    wav = riff(b"WAVE", riff_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8)))
    wav += b"data" + struct.pack("<I", 0xFFFFFFF0) + b"\x80" * 64
    yield Case(BOMB, "wav-data-4gib.wav", with_riff_size(wav), note="WAV data chunk claims 4 GiB")
    laughs = b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a0 "lol">'
    for i in range(1, 10):
        laughs += b'<!ENTITY a%d "%s">' % (i, b"".join(b"&a%d;" % (i - 1) for _ in range(10)))
    laughs += b']><svg xmlns="http://www.w3.org/2000/svg"><text>&a9;</text></svg>'
    yield Case(BOMB, "svg-billion-laughs.svg", laughs, note="XML entity expansion to 3 GB")
    payload = dict(ARTICLE_PAYLOAD)
    for name, replace in {
        "version-5000-digits": b'"version": ' + b"9" * 5000,
        "version-1e400": b'"version": 1e400',
        "version-2^64": b'"version": 18446744073709551616',
        "version-nan": b'"version": NaN',
    }.items():
        text = json.dumps(payload).encode().replace(b'"version": 1', replace)
        yield Case(BOMB, f"article-{name}.json", text, payload=True, note=f"article payload: {name}")
    digits = json.dumps(payload).encode().replace(b'"version": 1', b'"version": ' + b"9" * 5000)
    yield Case(
        BOMB,
        "article-version-5000-digits-with-sidecar.json",
        digits,
        sidecar=bases.article[2],
        payload=True,
        note="a payload with a 5000-digit version, verified against a real sidecar",
    )
    big = dict(payload, body_text="word " * (1_200_000))
    yield Case(BOMB, "article-6mb-body.json", json.dumps(big).encode(), payload=True, note="a 6 MB body")
    yield Case(
        BOMB,
        "article-300k-keys.json",
        json.dumps(payload).encode()[:-1] + b"," + b",".join(b'"k%d":0' % i for i in range(300_000)) + b"}",
        payload=True,
        note="300,000 extra keys",
    )


def polyglots(bases: Bases, rng: random.Random) -> Iterator[Case]:
    del rng
    html = b"<!doctype html><html><body><script>alert(document.domain)</script></body></html>\n"
    jpeg = images.jpeg(16, 16)
    yield Case(
        POLYGLOT,
        "jpeg-html.jpg",
        jpeg_insert(jpeg, jpeg_segment(0xFE, html)) + html,
        note="JPEG with HTML/JS in a comment and after EOI",
    )
    signed = sign(images.jpeg(32, 24, seed=9) + html, manifest(action("c2pa.created", CAPTURE), title="x"), bases.keys)
    yield Case(POLYGLOT, "signed-jpeg-html.html", signed, note="a validly signed JPEG whose trailer is HTML/JS")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", html)
        zf.writestr("evil.js", b"alert(1)")
    yield Case(POLYGLOT, "png-zip.png", images.png(16, 16) + archive.getvalue(), note="PNG followed by a ZIP")
    yield Case(POLYGLOT, "zip-png.png", archive.getvalue() + images.png(16, 16), note="ZIP followed by a PNG")
    gif = images.encode(images.picture(8, 8), "GIF")
    js = b"*/=1;alert(document.domain);/*"
    gif_js = b"GIF89a/*" + gif[8:] + js
    yield Case(POLYGLOT, "gif-js.gif", gif_js, note="GIF89a/* ... */ JavaScript")
    yield Case(
        POLYGLOT,
        "gif-comment-js.gif",
        gif_insert(gif, b"\x21\xfe" + bytes([len(js)]) + js + b"\x00"),
        note="JS in a GIF comment",
    )
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(document.cookie)</script>'
        b'<foreignObject><iframe src="javascript:alert(1)"/></foreignObject></svg>'
    )
    yield Case(POLYGLOT, "svg-script.svg", svg, note="SVG with script, onload, javascript: URL")
    yield Case(POLYGLOT, "svg-script-named.jpg", svg, note="the same SVG named .jpg")
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >> endobj\n"
    yield Case(POLYGLOT, "pdf-jpeg.pdf", pdf + jpeg + b"\n%%EOF\n", note="PDF header, a JPEG inside")
    yield Case(
        POLYGLOT,
        "jpeg-pdf.jpg",
        jpeg_insert(jpeg, jpeg_segment(0xFE, pdf)) + b"\n" + pdf + b"trailer << /Root 1 0 R >>\n%%EOF\n",
        note="JPEG carrying a PDF in a comment and after EOI",
    )
    yield Case(POLYGLOT, "html-named.jpg", html, note="an HTML page named .jpg")
    yield Case(POLYGLOT, "html-bom-named.png", b"\xef\xbb\xbf" + html, note="an HTML page with a BOM named .png")
    store = embedded(bases.jpeg).store
    store_html = splice(store, len(store), len(store), box(b"free", html))
    yield Case(POLYGLOT, "store-html.c2pa", store_html, note="a manifest store ending in an HTML box")
    yield Case(
        POLYGLOT,
        "jpeg-with-store-html.jpg",
        embedded(bases.jpeg).with_store(store_html),
        note="a signed JPEG whose store carries an HTML box",
    )


def truncations(bases: Bases, rng: random.Random) -> Iterator[Case]:
    for host, data in bases.signed().items():
        found = embedded(data)
        stem, ext = host.split(".")[0], _ext(host)
        spans = interesting_spans(found.store)
        cuts = sorted({rng.randrange(s, e) for s, e in rng.sample(spans, min(24, len(spans)))} | {0, 1, 8, 16})
        for cut in cuts:
            yield bases.host_case(
                TRUNCATION,
                f"{stem}-store-cut-at-{cut}.{ext}",
                host,
                found.with_store(found.store[:cut]),
                f"manifest store cut at {cut} of {len(found.store)}, re-framed",
            )
        if host == "article.c2pa":
            continue
        for cut in sorted({rng.randrange(1, len(data)) for _ in range(12)}):
            yield Case(
                TRUNCATION, f"{stem}-file-cut-at-{cut}.{ext}", data[:cut], note=f"file cut at {cut} of {len(data)}"
            )
    payload = bases.article[0]
    for cut in sorted({rng.randrange(1, len(payload)) for _ in range(8)}):
        yield Case(TRUNCATION, f"article-cut-at-{cut}.json", payload[:cut], payload=True, note="payload cut")


@dataclass(frozen=True)
class _Anatomy:
    """What mutations aim at in one store (worked out once per host, not per mutation)."""

    store: bytes
    spans: list[tuple[int, int]]
    boxes: list[BoxRef]
    cbor: list[CborItem]

    @classmethod
    def of(cls, store: bytes) -> _Anatomy:
        cbor = [i for ref in cbor_boxes(store) for i in cbor_items(store, ref.body, ref.end, tolerant=True)]
        return cls(store, interesting_spans(store), jumbf_boxes(store), cbor)


def _mutate_store(anatomy: _Anatomy, rng: random.Random) -> tuple[bytes, str]:
    store, spans, boxes = anatomy.store, anatomy.spans, anatomy.boxes
    kind = rng.choices(["flip", "run", "cbor", "dup", "drop", "swap"], weights=[40, 20, 20, 8, 6, 6])[0]
    if kind == "flip":
        buf = bytearray(store)
        flips = []
        for _ in range(rng.randint(1, 4)):
            s, e = rng.choice(spans)
            pos = rng.randrange(s, e)
            bit = rng.randrange(8)
            buf[pos] ^= 1 << bit
            flips.append(f"{pos}.{bit}")
        return bytes(buf), "flip " + ",".join(flips)
    if kind == "run":
        s, e = rng.choice(spans)
        pos = rng.randrange(s, e)
        n = rng.randint(1, 48)
        fill = rng.choice([b"\x00", b"\xff", b"\x7f", b"\x9f", None])
        run = rng.randbytes(n) if fill is None else fill * n
        return store[:pos] + run + store[pos + n :], f"run {n}x{'rnd' if fill is None else fill.hex()} at {pos}"
    if kind == "cbor":
        item = rng.choice(anatomy.cbor)
        value = rng.choice([0, 1, 23, 24, 255, 256, 65535, 2**31, 2**32 - 1, 2**63, 2**64 - 1, rng.getrandbits(16)])
        major = rng.choice([item.major, item.major, rng.randrange(8)])
        if major == 7:
            value = min(value, 23)
        return splice(store, item.offset, item.offset + item.header, cbor_head(major, value)), (
            f"cbor header at {item.offset} -> major {major} argument {value}"
        )
    victim = rng.choice(boxes[1:])
    if kind == "dup":
        return splice(
            store, victim.end, victim.end, store[victim.offset : victim.end]
        ), f"duplicate box at {victim.offset}"
    if kind == "drop":
        return splice(store, victim.offset, victim.end, b""), f"drop box at {victim.offset}"
    siblings = [b for b in boxes if b.path[:-1] == victim.path[:-1] and b.offset > victim.end and b.kind == victim.kind]
    if not siblings:
        return splice(
            store, victim.end, victim.end, store[victim.offset : victim.end]
        ), f"duplicate box at {victim.offset}"
    other = rng.choice(siblings)
    swapped = (
        store[: victim.offset]
        + store[other.offset : other.end]
        + store[victim.end : other.offset]
        + store[victim.offset : victim.end]
        + store[other.end :]
    )
    return swapped, f"swap boxes at {victim.offset} and {other.offset}"


def mutations(bases: Bases, rng: random.Random, count: int = DEFAULT_COUNT) -> Iterator[Case]:
    hosts = bases.signed()
    found = {host: embedded(data) for host, data in hosts.items()}
    anatomy = {host: _Anatomy.of(found[host].store) for host in hosts}
    names = sorted(hosts)
    for n in range(count):
        host = rng.choice(names)
        stem, ext = host.split(".")[0], _ext(host)
        if rng.random() < 0.85:
            store, what = _mutate_store(anatomy[host], rng)
            data = found[host].with_store(store)
        else:
            buf = bytearray(hosts[host])
            flips = [rng.randrange(len(buf)) for _ in range(rng.randint(1, 8))]
            for pos in flips:
                buf[pos] ^= 1 << rng.randrange(8)
            data, what = bytes(buf), "file flips at " + ",".join(map(str, flips))
        yield bases.host_case(MUTATION, f"{n:05d}-{stem}.{ext}", host, data, what)


#: Strings a manifest's author controls, meant for whoever displays them.
HOSTILE_STRINGS: Final = {
    "script": "<script>alert(document.domain)</script>",
    "attribute-break": '"><img src=x onerror=alert(1)>',
    "single-quote-break": "'><svg onload=alert(1)>",
    "closing-tags": "</title></td></table><script>alert(1)</script>",
    "javascript-url": "javascript:alert(1)//",
    "bidi-override": "invoice\u202egpj.exe",
    "zero-width": "AI\u200b\u200cgenerated\u200d\ufeff",
    "template": "{{7*7}} ${7*7} <%= 7*7 %>",
    "crlf": "title\r\nSet-Cookie: pwned=1\r\n\r\n<script>alert(1)</script>",
    "terminal-escape": "\x1b[2J\x1b[1;32mstate: trusted\x1b[0m",
    "rich-markup": "[bold red]AI-generated image[/] [link=https://example.com]x[/link]",
}


def manifest_strings(bases: Bases, rng: random.Random) -> Iterator[Case]:
    del rng
    for name, text in HOSTILE_STRINGS.items():
        yield Case(
            MANIFEST_STRINGS,
            f"stamped-title-{name}.jpg",
            bases.stamp_with(images.jpeg(32, 24, seed=len(name)), title=text),
            note=f"stamped by the library with title {text!r}",
        )
        definition = manifest(action("c2pa.created", TRAINED), title=text)
        definition["claim_generator_info"] = [{"name": text, "version": "1"}]
        created = definition["assertions"]
        assert isinstance(created, list)
        created[0]["data"]["actions"][0]["softwareAgent"] = {"name": text}
        yield Case(
            MANIFEST_STRINGS,
            f"signed-everywhere-{name}.png",
            sign(images.png(24, 16, seed=len(name)), definition, bases.keys, media_type="image/png"),
            note=f"title, claim generator and software agent {text!r}",
        )
    evil = Keys.issue("<script>alert(1)</script>\u202e")
    yield Case(
        MANIFEST_STRINGS,
        "signer-name-script.jpg",
        sign(images.jpeg(32, 24), manifest(action("c2pa.created", TRAINED), title="t"), evil),
        note="the signing certificate's organisation and common name are markup with a bidi override",
    )
    parent = sign(images.jpeg(32, 24, seed=3), manifest(action("c2pa.created", TRAINED), title="p"), bases.keys)
    ingredient = _c2pa.Ingredient(parent, "image/jpeg", HOSTILE_STRINGS["attribute-break"], "parent")
    definition = manifest(action("c2pa.opened", None, "parent"), title=HOSTILE_STRINGS["script"])
    yield Case(
        MANIFEST_STRINGS,
        "ingredient-title-markup.jpg",
        sign(parent, definition, bases.keys, parent=ingredient),
        note="an ingredient titled with markup",
    )
    for name in ("script", "bidi-override", "zero-width", "terminal-escape"):
        payload = dict(ARTICLE_PAYLOAD, headline=HOSTILE_STRINGS[name], byline=HOSTILE_STRINGS[name])
        payload["external_id"] = f"hostile/{name}"
        yield Case(
            MANIFEST_STRINGS,
            f"article-{name}.json",
            json.dumps(payload).encode(),
            payload=True,
            note=f"headline {name}",
        )
    lone = json.dumps(ARTICLE_PAYLOAD).replace('"Storm warning', '"\\ud800 Storm warning').encode()
    yield Case(MANIFEST_STRINGS, "article-lone-surrogate.json", lone, payload=True, note="a lone surrogate in JSON")
    nul = json.dumps(dict(ARTICLE_PAYLOAD, headline="a\u0000b")).encode()
    yield Case(MANIFEST_STRINGS, "article-nul.json", nul, payload=True, note="a NUL in the headline")


Attack = Callable[[Bases, random.Random], Iterable[Case]]

#: Every attack class, in the order the corpus yields them.
ATTACKS: Final[dict[str, Attack]] = {
    CBOR_LENGTH_LIE: cbor_length_lies,
    JUMBF_LENGTH_LIE: jumbf_length_lies,
    BOX_FLOOD: box_floods,
    CHUNK_FLOOD: chunk_floods,
    NESTING: nestings,
    BOMB: bombs,
    POLYGLOT: polyglots,
    TRUNCATION: truncations,
    MUTATION: mutations,
    MANIFEST_STRINGS: manifest_strings,
}


def iterate(attack: str, bases: Bases, seed: int = 0, *, count: int = DEFAULT_COUNT) -> Iterator[Case]:
    """The cases of one attack class, made one at a time (``count`` of them for ``mutation``).

    The same seed gives the same cases, up to what the SDK makes fresh at each signing.
    """
    rng = random.Random(f"{seed}/{attack}")  # one stream per class: adding a class changes no other
    if attack == MUTATION:
        return mutations(bases, rng, count)
    return iter(ATTACKS[attack](bases, rng))


def generate(attack: str, bases: Bases, seed: int = 0, *, count: int = DEFAULT_COUNT) -> list[Case]:
    """:func:`iterate`, as a list."""
    return list(iterate(attack, bases, seed, count=count))


def corpus(seed: int = 0, *, count: int = DEFAULT_COUNT, bases: Bases | None = None) -> Iterator[Case]:
    """Every case of every attack class (``count`` mutations), one at a time."""
    bases = bases if bases is not None else Bases()
    for attack in ATTACKS:
        yield from iterate(attack, bases, seed, count=count)


def sample(cases: Iterable[Case], per_attack: int, seed: int = 0) -> list[Case]:
    """Up to ``per_attack`` cases of each class (the first of each, then a seeded choice)."""
    by: dict[str, list[Case]] = {}
    for case in cases:
        by.setdefault(case.attack, []).append(case)
    rng = random.Random(seed)
    out = []
    for group in by.values():
        out.append(group[0])
        out.extend(rng.sample(group[1:], min(per_attack - 1, len(group) - 1)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"mutation cases (default {DEFAULT_COUNT})")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bases = Bases()
    args.outdir.mkdir(parents=True, exist_ok=True)
    (args.outdir / "root.pem").write_bytes(bases.keys.chain.root_pem)
    rows = ["attack\tname\tbytes\tsha256\tnote"]
    total = 0
    for case in corpus(args.seed, count=args.count, bases=bases):
        folder = args.outdir / case.attack
        folder.mkdir(exist_ok=True)
        (folder / case.name).write_bytes(case.data)
        if case.sidecar is not None:
            (folder / f"{case.name}.c2pa").write_bytes(case.sidecar)
        digest = hashlib.sha256(case.data).hexdigest()
        rows.append(f"{case.attack}\t{case.name}\t{len(case.data)}\t{digest}\t{case.note}")
        total += 1
    (args.outdir / "INDEX.tsv").write_text("\n".join(rows) + "\n")
    print(f"{total} cases in {args.outdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
