"""Media sniffing and input limits.

The media type always comes from the bytes, never from a file name or extension. Every input is
checked structurally before it reaches the SDK, without decoding pixels (microseconds for most
files; under a millisecond per MiB for PNG, whose checksums are verified, and GIF, whose data
sub-blocks must be walked):

* the number of JPEG segments, PNG chunks, RIFF chunks, GIF blocks, TIFF IFDs and entries, and
  ISO-BMFF boxes, and the nesting of boxes, are bounded by :class:`Limits` (the SDK's parse time
  grows with them, for boxes with the square of their number), else :class:`InputTooComplexError`;
* an image must have what a decoder needs (PNG: image data; GIF: an image; HEIF/AVIF: a picture
  handler, a primary item with info, a location inside the file and spatial extents), so a header
  plus empty boxes is never stamped; dimensions are checked against ``max_pixels``;
* truncation is an :class:`InputError`. Messages name the format and the defect, never raw bytes.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Literal, NamedTuple

from PIL import Image

from provenance.errors import InputError, InputTooComplexError, InputTooLargeError, UnsupportedMediaError

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
TIFF = "image/tiff"
AVIF = "image/avif"
HEIC = "image/heic"
HEIF = "image/heif"
GIF = "image/gif"
MP4 = "video/mp4"
MOV = "video/quicktime"
WAV = "audio/wav"
AVI = "video/x-msvideo"
MP3 = "audio/mpeg"
PDF = "application/pdf"
SVG = "image/svg+xml"
C2PA_MANIFEST = "application/c2pa"
TEXT = "text/plain"  # UTF-8 text: the canonical form of an article, verified with a detached manifest

IMAGE_TYPES = frozenset({JPEG, PNG, WEBP, TIFF, AVIF, HEIC, HEIF, GIF, SVG})

#: Image types shown as a manifest's thumbnails (never SVG or anything else that can carry script).
THUMBNAIL_TYPES = frozenset({JPEG, PNG, WEBP, GIF})

#: Types ``stamp`` writes a manifest into (the SDK embeds in all of them; pixels untouched).
STAMPABLE = frozenset({JPEG, PNG, WEBP, TIFF, AVIF, HEIC, HEIF})


MIB = 1024 * 1024


class UnsafeParsingWarning(UserWarning):
    """Parsing of untrusted bytes was configured to run without isolation."""


@dataclass(frozen=True)
class Limits:
    """Safety limits: what any input may cost before, and while, it is parsed.

    The structural limits are checked by :func:`check_input` in microseconds, before the SDK sees a
    file. The ``parse_*`` limits bound the SDK itself: every SDK read or sign of untrusted bytes runs
    in an isolated worker process (:mod:`provenance.isolation`) whose address space is capped at
    ``parse_max_memory`` and which is killed when it runs past :meth:`parse_deadline`.
    """

    max_bytes: int = 256 * MIB  # bytes
    max_pixels: int = 120_000_000  # width * height; 12000 x 10000

    # Structure bounds, checked by check_input (InputTooComplexError beyond them). The SDK's parse
    # time grows with these counts, for ISO-BMFF with the square of the boxes under one parent (1 MiB
    # of empty boxes takes it minutes). Each bound is far above what cameras and editors write, and
    # low enough that the SDK (c2pa-python 0.38.1) parses a flood of empty segments, chunks or boxes
    # at the bound in 0.4 s or less, about 0.2 s on an idle core (measured: README, "Hostile input").
    max_jpeg_segments: int = 10_000  # marker segments before the first scan; a 256 MiB manifest is 4,096 APP11s
    max_png_chunks: int = 16_384  # chunks; libpng writes 8 KiB IDAT chunks, so this is a 128 MiB PNG
    max_riff_chunks: int = 10_000  # top-level chunks (the SDK reads no deeper); an animated WebP has one per frame
    max_gif_blocks: int = 30_000  # extensions, images and short (< 255 bytes) data sub-blocks; ~4 per frame
    max_tiff_ifds: int = 1_000  # IFDs, with SubIFDs, Exif and GPS IFDs; the SDK itself refuses 2,000 pages
    max_tiff_entries: int = 10_000  # entries of all IFDs together; a camera DNG has a few hundred
    max_bmff_boxes: int = 5_000  # boxes at every level walked (and iloc/ipma items); a 48-tile phone HEIC: < 300
    max_bmff_depth: int = 16  # box nesting; real files nest up to ~8 (moov/trak/mdia/minf/stbl/stsd/...)

    parse_max_memory: int = 512 * MIB  # bytes of address space per parsing worker
    parse_timeout: float = 1.0  # seconds per SDK call, plus:
    parse_timeout_per_mb: float = 2.0  # seconds per MiB of input
    parse_workers: int = 2  # isolated parses that may run at once (per process)
    parse_queue_timeout: float = 30.0  # seconds a call may wait for a free worker before ParserBusyError
    #: Run SDK calls in the calling process, without memory or time caps. Only for measuring what the
    #: isolation costs (bench/): a hostile file can then exhaust the process. Warns when set.
    unsafe_parse_in_process: bool = False

    def __post_init__(self) -> None:
        if self.unsafe_parse_in_process:
            warnings.warn(
                "Limits(unsafe_parse_in_process=True): the C2PA SDK parses without memory or time caps",
                UnsafeParsingWarning,
                stacklevel=3,
            )

    def parse_deadline(self, size: int) -> float:
        """Seconds one SDK call on ``size`` bytes of input may take."""
        return self.parse_timeout + self.parse_timeout_per_mb * size / MIB


DEFAULT_LIMITS = Limits()

_FTYP_BRANDS = {
    b"avif": AVIF,
    b"avis": AVIF,
    b"heic": HEIC,
    b"heix": HEIC,
    b"hevc": HEIC,
    b"heim": HEIC,
    b"heis": HEIC,
    b"mif1": HEIF,
    b"msf1": HEIF,
    b"qt  ": MOV,
}


def sniff(data: bytes) -> str:
    """Return the media type of ``data`` from its leading bytes.

    Raises :class:`InputError` for empty input or an unrecognised format.
    """
    if not data:
        raise InputError("empty input (0 bytes)")
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and len(head) >= 12:
        kind = head[8:12]
        if kind == b"WEBP":
            return WEBP
        if kind == b"WAVE":
            return WAV
        if kind == b"AVI ":
            return AVI
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return TIFF
    if head[4:8] == b"ftyp":
        major = head[8:12]
        if major in _FTYP_BRANDS:
            return _FTYP_BRANDS[major]
        size = int.from_bytes(head[0:4], "big")
        compatible = data[16 : max(16, min(size, 256))]
        for i in range(0, len(compatible) - 3, 4):
            brand = compatible[i : i + 4]
            if brand in (b"avif", b"heic", b"mif1"):
                return _FTYP_BRANDS[brand]
        return MP4
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    if head[4:8] == b"jumb":
        return C2PA_MANIFEST
    text = data[:1024].lstrip().lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return SVG
    if _is_utf8_text(data):
        return TEXT
    raise UnsupportedMediaError(
        "unsupported or unrecognised file type", hint="not an image, video, audio, PDF or UTF-8 text file"
    )


def _is_utf8_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class MediaInfo:
    """What the structural check learnt about an input."""

    media_type: str
    #: False only when the bytes cannot hold an embedded C2PA manifest or a remote reference to one
    #: (checked for JPEG and PNG; every other type is left to the SDK).
    may_carry_manifest: bool = True


def _too_many(name: str, limit: int, what: str) -> InputTooComplexError:
    return InputTooComplexError(f"{name} has more than {limit} {what} (a safety limit)")


def _type_name(kind: bytes) -> str:
    """A chunk or box type for a message: its four letters if it is a well-formed name, never raw bytes."""
    return kind.decode("ascii") if len(kind) == 4 and kind.isascii() and kind.isalnum() else "of unknown type"


# A marker is one or more 0xFF bytes (the extra ones are fill) and a code; matched in C, so a flood of
# fill bytes costs nothing.
_JPEG_MARKER = re.compile(rb"\xff+")


def _check_jpeg(data: bytes, limits: Limits) -> MediaInfo:
    """Walk the marker segments up to the first scan: the frame header (the dimensions) and the APP11
    segments of a C2PA manifest are there. Later segments (a progressive JPEG's other scans) are not
    walked: finding them means scanning the entropy-coded data, about 0.6 ms per MiB, while the SDK
    parses a segment in about 0.2 µs (100,000 in 20 ms) and its memory is capped by the isolation.
    """
    pos = 2
    n = len(data)
    size: tuple[int, int] | None = None
    may_carry = False
    segments = 0
    while True:
        marker_start = _JPEG_MARKER.match(data, pos)
        if marker_start is None or marker_start.end() + 3 > n:
            raise InputError("truncated or corrupt JPEG (bad segment structure)")
        pos = marker_start.end() - 1
        segments += 1
        if segments > limits.max_jpeg_segments:
            raise _too_many("JPEG", limits.max_jpeg_segments, "marker segments before its image data")
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > n:
            raise InputError("truncated or corrupt JPEG (segment runs past end of file)")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and size is None:
            if length < 7:
                raise InputError("corrupt JPEG (short frame header)")
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            size = (width, height)
        elif marker == 0xEB or (marker == 0xE1 and data.find(b"provenance", pos, end) != -1):
            # APP11 holds C2PA's JUMBF manifest store; an APP1 XMP packet may reference a remote one.
            may_carry = True
        pos = end
    if size is None:
        raise InputError("corrupt JPEG (no frame header)")
    _check_pixels(*size, limits)
    # The entropy-coded data must be complete. In it, 0xFF is always stuffed (FF 00) or a restart
    # marker, so an FF D9 after the scan starts is the end-of-image marker; what follows it (padding,
    # a motion photo's video, vendor trailers) is allowed.
    if data.rfind(b"\xff\xd9", pos) == -1:
        raise InputError("truncated JPEG (no end-of-image marker)")
    return MediaInfo(JPEG, may_carry)


# Chunks that can hold C2PA data or XMP (which may carry a remote manifest reference).
_PNG_PROVENANCE_CHUNKS = frozenset({b"caBX", b"iTXt", b"tEXt", b"zTXt"})


def _check_png(data: bytes, limits: Limits) -> MediaInfo:
    """Walk every chunk, checking its checksum; an image needs IHDR first, image data and IEND."""
    view = memoryview(data)
    pos = 8
    n = len(data)
    may_carry = False
    has_image_data = False
    chunks = 0
    while pos + 12 <= n:
        chunks += 1
        if chunks > limits.max_png_chunks:
            raise _too_many("PNG", limits.max_png_chunks, "chunks")
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            raise InputError(f"truncated PNG (chunk {_type_name(ctype)} runs past end of file)")
        if pos == 8:
            if ctype != b"IHDR" or length < 8:
                raise InputError("corrupt PNG (first chunk is not IHDR)")
            width, height = struct.unpack(">II", data[pos + 8 : pos + 16])
            _check_pixels(width, height, limits)
        crc = int.from_bytes(data[end - 4 : end], "big")
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise InputError(f"corrupt PNG (bad checksum in chunk {_type_name(ctype)})")
        may_carry = may_carry or ctype in _PNG_PROVENANCE_CHUNKS
        has_image_data = has_image_data or ctype == b"IDAT"
        if ctype == b"IEND":
            if not has_image_data:
                raise InputError("not a decodable PNG image (no IDAT chunk)")
            return MediaInfo(PNG, may_carry)
        pos = end
    raise InputError("truncated PNG (no IEND chunk)")


_RIFF_NAMES = {WEBP: "WebP", WAV: "WAV", AVI: "AVI"}


def _check_riff(data: bytes, media_type: str, limits: Limits) -> None:
    """Count the top-level chunks of a RIFF form (the SDK reads no deeper: it skips an AVI's movi list).

    Only a WebP must be complete; WAV and AVI are inspected, never stamped, and their other defects
    are left to the SDK.
    """
    name = _RIFF_NAMES[media_type]
    webp = media_type == WEBP
    end = 8 + int.from_bytes(data[4:8], "little")
    if end > len(data):
        if webp:
            raise InputError("truncated RIFF/WebP file (declared size exceeds file)")
        end = len(data)
    pos = 12
    chunks = 0
    while pos + 8 <= end:
        chunks += 1
        if chunks > limits.max_riff_chunks:
            raise _too_many(name, limits.max_riff_chunks, "top-level RIFF chunks")
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if pos + 8 + length > end:
            if webp:
                raise InputError("truncated WebP (a chunk runs past the end of the file)")
            return
        pos += 8 + length + (length & 1)  # chunks of odd length are padded to an even one


def _gif_color_table(flags: int) -> int:
    """Bytes of the colour table that a GIF screen or image descriptor with ``flags`` announces."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_gif_sub_blocks(data: bytes, pos: int, blocks: int, limits: Limits) -> tuple[int, int]:
    """Skip a chain of data sub-blocks; return the position after its terminator and the block count.

    Encoders fill sub-blocks (255 bytes), so only a flood has many short ones: each short one counts
    as a block, and a chain of full ones costs at least 256 bytes of input per step.
    """
    n = len(data)
    while pos < n:
        length = data[pos]
        if length == 0:
            return pos + 1, blocks
        if length < 255:
            blocks += 1
            if blocks > limits.max_gif_blocks:
                raise _too_many("GIF", limits.max_gif_blocks, "blocks")
        pos += length + 1
    raise InputError("truncated GIF (data runs past the end of the file)")


def _check_gif(data: bytes, limits: Limits) -> None:
    """Walk a GIF's blocks up to its trailer (data after it is allowed): it must hold an image."""
    n = len(data)
    if n < 13:
        raise InputError("truncated GIF (no logical screen descriptor)")
    pos = 13 + _gif_color_table(data[10])
    blocks = 0
    images = 0
    while True:
        if pos >= n:
            raise InputError("truncated GIF (no trailer)")
        introducer = data[pos]
        if introducer == 0x3B:  # trailer
            break
        blocks += 1
        if blocks > limits.max_gif_blocks:
            raise _too_many("GIF", limits.max_gif_blocks, "blocks")
        if introducer == 0x21:  # extension: a label, then data sub-blocks
            pos += 2
        elif introducer == 0x2C:  # image: descriptor, local colour table, LZW code size, data sub-blocks
            if pos + 10 > n:
                raise InputError("truncated GIF (image descriptor runs past the end of the file)")
            pos += 11 + _gif_color_table(data[pos + 9])
            images += 1
        else:
            raise InputError("corrupt GIF (unknown block type)")
        pos, blocks = _skip_gif_sub_blocks(data, pos, blocks, limits)
    if images == 0:
        raise InputError("not a decodable GIF image (no image data)")


# Tags whose value points at more IFDs: SubIFDs, Exif, GPS, Interoperability.
_TIFF_IFD_POINTERS = frozenset({330, 34665, 34853, 40965})
_TIFF_OFFSET_TYPES = frozenset({4, 13})  # LONG, IFD


def _check_tiff(data: bytes, limits: Limits) -> None:
    """Count a TIFF's IFDs and their entries: the main chain and the IFDs its tags point at.

    The SDK reads every entry (about 13 µs each). A pointer that loops or leaves the file is not
    followed; Pillow and the SDK judge those.
    """
    order: Literal["little", "big"] = "little" if data[:2] == b"II" else "big"
    n = len(data)
    pending = [int.from_bytes(data[4:8], order)]
    seen: set[int] = set()
    entries = 0
    while pending:
        offset = pending.pop()
        if offset == 0 or offset in seen or offset + 2 > n:
            continue
        seen.add(offset)
        if len(seen) > limits.max_tiff_ifds:
            raise _too_many("TIFF", limits.max_tiff_ifds, "IFDs")
        count = int.from_bytes(data[offset : offset + 2], order)
        entries += count
        if entries > limits.max_tiff_entries:
            raise _too_many("TIFF", limits.max_tiff_entries, "IFD entries")
        table_end = offset + 2 + 12 * count
        if table_end + 4 > n:
            continue
        for entry in range(offset + 2, table_end, 12):
            if int.from_bytes(data[entry : entry + 2], order) not in _TIFF_IFD_POINTERS:
                continue
            kind = int.from_bytes(data[entry + 2 : entry + 4], order)
            values = int.from_bytes(data[entry + 4 : entry + 8], order)
            if kind not in _TIFF_OFFSET_TYPES:
                continue
            if values > limits.max_tiff_ifds:
                raise _too_many("TIFF", limits.max_tiff_ifds, "IFDs")
            # One offset fits in the entry; more are stored where the entry points.
            at = entry + 8 if values == 1 else int.from_bytes(data[entry + 8 : entry + 12], order)
            pending.extend(int.from_bytes(data[p : p + 4], order) for p in range(at, min(at + 4 * values, n - 3), 4))
        pending.append(int.from_bytes(data[table_end : table_end + 4], order))


class _Box(NamedTuple):
    kind: bytes
    body: int  # offset of the payload: after the header (and a 'uuid' box's user type)
    end: int
    parent: int  # index of the enclosing box in the walk; -1 at the top level


# Boxes made of boxes (all the SDK walks, and HEIF's item boxes), with the bytes before the first
# child: a full box's version and flags, and entry counts. 'meta' and 'iinf' vary; see _first_child.
_BMFF_CONTAINERS = {
    **dict.fromkeys(
        (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"udta", b"mvex", b"moof", b"traf"),
        0,
    ),
    **dict.fromkeys((b"mfra", b"tref", b"trgr", b"sinf", b"schi", b"meco", b"iprp", b"ipco", b"grpl"), 0),
    b"iref": 4,
    b"dref": 8,
}


def _first_child(data: bytes, kind: bytes, body: int) -> int | None:
    """Offset of the first child of a box of type ``kind``, or None if it holds no boxes."""
    if kind == b"meta":  # a full box in ISO-BMFF; QuickTime's has no version and flags
        return body if data[body + 4 : body + 8] == b"hdlr" else body + 4
    if kind == b"iinf":  # version 0 counts its entries in 16 bits, later versions in 32
        return body + (6 if data[body : body + 1] == b"\x00" else 8)
    skip = _BMFF_CONTAINERS.get(kind)
    return None if skip is None else body + skip


class _BmffWalk:
    """The boxes of an ISO-BMFF file in file order, each with the index of its parent.

    Raises :class:`InputError` for a box that runs past its parent or the file, and
    :class:`InputTooComplexError` beyond ``max_bmff_boxes`` or ``max_bmff_depth``.
    """

    def __init__(self, data: bytes, name: str, limits: Limits) -> None:
        self.boxes: list[_Box] = []
        self._children: dict[int, list[int]] = {}
        self._data = data
        self._name = name
        self._limits = limits
        self._walk(0, len(data), -1, 1)

    def children(self, parent: int) -> list[int]:
        return self._children.get(parent, [])

    def child(self, parent: int, kind: bytes) -> int | None:
        """The index of the first child of type ``kind`` (``parent`` -1: of the file)."""
        return next((i for i in self.children(parent) if self.boxes[i].kind == kind), None)

    def _walk(self, pos: int, end: int, parent: int, depth: int) -> None:
        data, limits = self._data, self._limits
        while end - pos >= 8:  # fewer bytes are padding (QuickTime ends some lists with 4 zero bytes)
            size = int.from_bytes(data[pos : pos + 4], "big")
            body = pos + 8
            if size == 1:  # a 64-bit size follows the type
                size = int.from_bytes(data[pos + 8 : pos + 16], "big")
                body = pos + 16
            elif size == 0:  # the box runs to the end of its parent (of the file, at the top level)
                size = end - pos
            kind = data[pos + 4 : pos + 8]
            if kind == b"uuid":
                body += 16
            box_end = pos + size
            if body > box_end or box_end > end:
                raise InputError(f"corrupt {self._name} (a box runs past its parent or the end of the file)")
            if depth > limits.max_bmff_depth:
                raise InputTooComplexError(
                    f"{self._name} boxes nest deeper than {limits.max_bmff_depth} levels (a safety limit)"
                )
            index = len(self.boxes)
            if index == limits.max_bmff_boxes:
                raise _too_many(self._name, limits.max_bmff_boxes, "boxes")
            self.boxes.append(_Box(kind, body, box_end, parent))
            self._children.setdefault(parent, []).append(index)
            first = _first_child(data, kind, body)
            if first is not None:
                self._walk(first, box_end, index, depth + 1)
            pos = box_end


class _Fields:
    """The big-endian fields of one box's payload, read in order; reading past the box is corruption."""

    def __init__(self, data: bytes, box: _Box, name: str) -> None:
        self._data = data
        self._pos = box.body
        self._end = box.end
        self._corrupt = f"corrupt {name} (a {_type_name(box.kind)} box is too short)"

    def skip(self, size: int) -> None:
        self._pos += size
        if self._pos > self._end:
            raise InputError(self._corrupt)

    def raw(self, size: int) -> bytes:
        start = self._pos
        self.skip(size)
        return self._data[start : self._pos]

    def uint(self, size: int) -> int:
        return int.from_bytes(self.raw(size), "big")

    def version(self) -> tuple[int, int]:
        """A full box's version and flags."""
        return self.uint(1), self.uint(3)


def _not_decodable(name: str, what: str) -> InputError:
    return InputError(f"not a decodable {name} image ({what})")


def _heif_item_type(data: bytes, walk: _BmffWalk, meta: int, item: int, name: str) -> bytes | None:
    """The type of ``item`` from its 'infe' box (empty for the old versions without one); None if it has none."""
    iinf = walk.child(meta, b"iinf")
    for index in walk.children(iinf) if iinf is not None else []:
        box = walk.boxes[index]
        if box.kind != b"infe":
            continue
        fields = _Fields(data, box, name)
        version, _ = fields.version()
        if fields.uint(4 if version >= 3 else 2) == item:
            if version < 2:
                return b""
            fields.skip(2)  # item_protection_index
            return fields.raw(4)
    return None


def _heif_item_located(data: bytes, iloc: _Box, item: int, name: str, limits: Limits) -> bool:
    """Whether the 'iloc' box locates ``item``; raises if its data in this file runs past the end."""
    fields = _Fields(data, iloc, name)
    version, _ = fields.version()
    if version > 2:
        raise _not_decodable(name, "unknown item location version")
    sizes = fields.uint(2)
    offset_size, length_size, base_size = sizes >> 12, (sizes >> 8) & 15, (sizes >> 4) & 15
    index_size = sizes & 15 if version > 0 else 0
    if not {offset_size, length_size, base_size, index_size} <= {0, 4, 8}:
        raise InputError(f"corrupt {name} (bad field sizes in the item locations)")
    id_size = 2 if version < 2 else 4
    count = fields.uint(id_size)
    if count > limits.max_bmff_boxes:  # every item also needs an 'infe' box
        raise _too_many(name, limits.max_bmff_boxes, "items")
    for _ in range(count):
        item_id = fields.uint(id_size)
        method = fields.uint(2) & 15 if version > 0 else 0
        reference = fields.uint(2)  # 0: this file
        base = fields.uint(base_size)
        extents = fields.uint(2)
        if item_id != item:
            fields.skip(extents * (index_size + offset_size + length_size))
            continue
        if extents > limits.max_bmff_boxes:
            raise _too_many(name, limits.max_bmff_boxes, "extents in one item")
        for _ in range(extents):
            fields.skip(index_size)
            start = base + fields.uint(offset_size)
            length = fields.uint(length_size)  # 0: up to the end of the file
            if method == 0 and reference == 0 and start + length > len(data):
                raise InputError(f"truncated {name} (the primary image's data runs past the end of the file)")
        return True
    return False


def _heif_property_indices(data: bytes, ipma: _Box, item: int, name: str, limits: Limits) -> list[int]:
    """The (1-based) 'ipco' indices of the properties an 'ipma' box associates with ``item``."""
    fields = _Fields(data, ipma, name)
    version, flags = fields.version()
    width = 2 if flags & 1 else 1
    count = fields.uint(4)
    if count > limits.max_bmff_boxes:  # every item also needs an 'infe' box
        raise _too_many(name, limits.max_bmff_boxes, "items")
    for _ in range(count):
        item_id = fields.uint(2 if version < 1 else 4)
        associations = fields.uint(1)
        if item_id == item:
            mask = 0x7FFF if width == 2 else 0x7F  # the top bit marks an essential property
            return [fields.uint(width) & mask for _ in range(associations)]
        fields.skip(associations * width)
    return []


def _heif_dimensions(data: bytes, walk: _BmffWalk, meta: int, item: int, name: str, limits: Limits) -> bool:
    """Check every 'ispe' against ``max_pixels``; return whether ``item`` has one."""
    iprp = walk.child(meta, b"iprp")
    ipco = walk.child(iprp, b"ipco") if iprp is not None else None
    if iprp is None or ipco is None:
        return False
    properties = walk.children(ipco)
    for index in properties:
        if walk.boxes[index].kind == b"ispe":
            fields = _Fields(data, walk.boxes[index], name)
            fields.version()
            _check_pixels(fields.uint(4), fields.uint(4), limits)
    for ipma in walk.children(iprp):
        if walk.boxes[ipma].kind != b"ipma":
            continue
        for number in _heif_property_indices(data, walk.boxes[ipma], item, name, limits):
            if 0 < number <= len(properties) and walk.boxes[properties[number - 1]].kind == b"ispe":
                return True
    return False


# Derived images without data of their own: an identity transform of another item.
_HEIF_DATALESS_ITEMS = frozenset({b"iden"})


def _check_heif_image(data: bytes, walk: _BmffWalk, name: str, limits: Limits) -> None:
    """A HEIF or AVIF image needs what a decoder reads first: a 'pict' handler, a primary item with
    item info, a location inside the file (unless it is derived with no data of its own) and spatial
    extents. Every 'ispe' is checked against ``max_pixels``.
    """
    meta = walk.child(-1, b"meta")
    if meta is None:
        raise _not_decodable(name, "no meta box")
    hdlr = walk.child(meta, b"hdlr")
    if hdlr is None or data[walk.boxes[hdlr].body + 8 : walk.boxes[hdlr].body + 12] != b"pict":
        raise _not_decodable(name, "no picture handler")
    pitm = walk.child(meta, b"pitm")
    if pitm is None:
        raise _not_decodable(name, "no primary item")
    fields = _Fields(data, walk.boxes[pitm], name)
    version, _ = fields.version()
    primary = fields.uint(2 if version == 0 else 4)
    item_type = _heif_item_type(data, walk, meta, primary, name)
    if item_type is None:
        raise _not_decodable(name, "no item info for the primary item")
    iloc = walk.child(meta, b"iloc")
    if iloc is None:
        raise _not_decodable(name, "no item locations")
    located = _heif_item_located(data, walk.boxes[iloc], primary, name, limits)
    if not located and item_type not in _HEIF_DATALESS_ITEMS:
        raise _not_decodable(name, "the primary item has no location")
    if not _heif_dimensions(data, walk, meta, primary, name, limits):
        raise _not_decodable(name, "the primary item has no spatial extents")


_BMFF_NAMES = {HEIC: "HEIC", HEIF: "HEIF", AVIF: "AVIF", MP4: "MP4", MOV: "QuickTime"}
_HEIF_IMAGES = frozenset({HEIC, HEIF, AVIF})


def _check_bmff(data: bytes, media_type: str, limits: Limits) -> None:
    """Walk the boxes of a HEIF/AVIF image or MP4/QuickTime video; images must also be decodable."""
    name = _BMFF_NAMES[media_type]
    walk = _BmffWalk(data, name, limits)
    if media_type in _HEIF_IMAGES:
        _check_heif_image(data, walk, name, limits)


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width <= 0 or height <= 0:
        raise InputError("image has no pixels")
    if width * height > limits.max_pixels:
        raise InputTooLargeError(
            f"image dimensions {width}x{height} exceed the safety limit of {limits.max_pixels} pixels"
        )


def _check_dimensions_with_pillow(data: bytes, limits: Limits) -> None:
    with warnings.catch_warnings():
        # Our own limit below decides; Pillow's warning threshold is lower than it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
        except Image.DecompressionBombError as exc:
            raise InputTooLargeError(f"image dimensions exceed the safety limit: {exc}") from exc
        except Exception as exc:  # Pillow raises many types for garbage; all mean "unreadable"
            raise InputError(f"unreadable or corrupt image ({type(exc).__name__})") from exc
    _check_pixels(width, height, limits)


_PILLOW_DIMENSIONS = frozenset({WEBP, TIFF, GIF})


def check_input(data: bytes, limits: Limits = DEFAULT_LIMITS) -> MediaInfo:
    """Sniff ``data`` and check its structure against ``limits``, without decoding pixels.

    Raises :class:`InputTooLargeError` for input over ``max_bytes`` and images whose declared
    dimensions exceed ``max_pixels``; :class:`InputTooComplexError` for more segments, chunks,
    blocks, IFDs or boxes (or deeper boxes) than ``limits`` allow; :class:`InputError` for empty,
    unrecognised or truncated input and for images that a decoder could not read.
    """
    if len(data) > limits.max_bytes:
        raise InputTooLargeError(f"file is {len(data)} bytes; the limit is {limits.max_bytes}")
    media_type = sniff(data)
    if media_type == JPEG:
        return _check_jpeg(data, limits)
    if media_type == PNG:
        return _check_png(data, limits)
    if media_type in _RIFF_NAMES:
        _check_riff(data, media_type, limits)
    elif media_type == GIF:
        _check_gif(data, limits)
    elif media_type == TIFF:
        _check_tiff(data, limits)
    elif media_type in _BMFF_NAMES:
        _check_bmff(data, media_type, limits)
    if media_type in _PILLOW_DIMENSIONS:
        _check_dimensions_with_pillow(data, limits)
    return MediaInfo(media_type)
