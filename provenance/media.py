"""Media sniffing and input limits.

The media type always comes from the bytes, never from a file name or extension. Images are
checked structurally before they reach the SDK (truncation, absurd dimensions) without decoding
pixels, which keeps the check in the microseconds.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

from PIL import Image

from provenance.errors import InputError, InputTooLargeError, UnsupportedMediaError

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


def _check_jpeg(data: bytes, limits: Limits) -> MediaInfo:
    pos = 2
    n = len(data)
    size: tuple[int, int] | None = None
    may_carry = False
    while True:
        # skip fill bytes between segments
        while pos < n and data[pos] == 0xFF and pos + 1 < n and data[pos + 1] == 0xFF:
            pos += 1
        if pos + 4 > n or data[pos] != 0xFF:
            raise InputError("truncated or corrupt JPEG (bad segment structure)")
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
    view = memoryview(data)
    pos = 8
    n = len(data)
    may_carry = False
    while pos + 12 <= n:
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > n:
            raise InputError(f"truncated PNG (chunk {ctype!r} runs past end of file)")
        if pos == 8:
            if ctype != b"IHDR" or length < 8:
                raise InputError("corrupt PNG (first chunk is not IHDR)")
            width, height = struct.unpack(">II", data[pos + 8 : pos + 16])
            _check_pixels(width, height, limits)
        crc = int.from_bytes(data[end - 4 : end], "big")
        if zlib.crc32(view[pos + 4 : end - 4]) != crc:
            raise InputError(f"corrupt PNG (bad checksum in chunk {ctype!r})")
        may_carry = may_carry or ctype in _PNG_PROVENANCE_CHUNKS
        if ctype == b"IEND":
            return MediaInfo(PNG, may_carry)
        pos = end
    raise InputError("truncated PNG (no IEND chunk)")


def _check_riff(data: bytes) -> None:
    size = struct.unpack("<I", data[4:8])[0]
    if size + 8 > len(data):
        raise InputError("truncated RIFF/WebP file (declared size exceeds file)")


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
    """Sniff ``data`` and check it against ``limits``, reading headers only (no pixel decoding).

    Raises :class:`InputError` for empty, oversized, truncated or unrecognised input and for
    images whose declared dimensions exceed ``limits.max_pixels``.
    """
    if len(data) > limits.max_bytes:
        raise InputTooLargeError(f"file is {len(data)} bytes; the limit is {limits.max_bytes}")
    media_type = sniff(data)
    if media_type == JPEG:
        return _check_jpeg(data, limits)
    if media_type == PNG:
        return _check_png(data, limits)
    if media_type == WEBP:
        _check_riff(data)
    if media_type in _PILLOW_DIMENSIONS:
        _check_dimensions_with_pillow(data, limits)
    return MediaInfo(media_type)
