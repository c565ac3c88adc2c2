"""Bad input: every case is a clear InputError before the SDK or any write, never a hang or crash."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable

import pytest
from PIL import Image

from provenance import FileKeySigner, InputError, Limits, Source, StampRequest, TrustConfig, inspect, stamp
from provenance.errors import InputTooComplexError, InputTooLargeError
from provenance.media import DEFAULT_LIMITS, check_input, sniff

from . import images
from .conftest import EXTERNAL
from .images import box, full_box
from .test_conformance import ERROR, ROWS, Row, _expected


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 70-byte PNG declaring width x height pixels (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00"))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_with_dimensions(width: int, height: int) -> bytes:
    """A real small JPEG whose frame header is patched to claim width x height."""
    data = bytearray(images.jpeg(64, 48))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def corrupt_png_crc() -> bytes:
    data = bytearray(images.png())
    data[40] ^= 0xFF  # inside IHDR/IDAT payload: checksum no longer matches
    return bytes(data)


def png_without_idat() -> bytes:
    return png_bomb(64, 48).replace(_png_chunk(b"IDAT", zlib.compress(b"\x00")), b"")


def heif_header_and_empty_boxes(brand: bytes, *, meta: bool = False) -> bytes:
    """What a fuzzer sends: a valid file type box, then empty boxes (1 MiB of them costs the SDK minutes)."""
    return box(b"ftyp", brand + b"\0\0\0\0mif1" + brand) + (full_box(b"meta") if meta else b"") + box(b"free") * 100


BAD = {
    "zero bytes": (b"", "empty"),
    "random bytes": (bytes((i * 37 + 11) % 256 for i in range(4096)), "unrecognised"),
    "JPEG cut in its scan data": (images.jpeg()[:-500], "truncated JPEG"),
    "JPEG cut in its headers": (images.jpeg()[:300], "JPEG"),
    "PNG cut before IEND": (images.png()[:-12], "PNG"),
    "PNG cut mid-chunk": (images.png()[:100], "truncated PNG"),
    "PNG with a bad checksum": (corrupt_png_crc(), "checksum"),
    "WebP with a short RIFF": (images.encode(images.picture(), "WEBP")[:-30], "truncated"),
    "PNG declaring 100000x100000 pixels": (png_bomb(), "limit"),
    "JPEG declaring 65000x65000 pixels": (jpeg_with_dimensions(65000, 65000), "limit"),
    "plain text (no sidecar)": (b"AI generated image\n", "text"),
    "PNG with no image data (IHDR and IEND only)": (png_without_idat(), "not a decodable PNG"),
    "GIF with no image (screen and trailer only)": (images.gif_1x1()[:19] + b"\x3b", "not a decodable GIF"),
    "HEIC header plus empty boxes": (heif_header_and_empty_boxes(b"heic"), "not a decodable HEIC"),
    "AVIF header plus an empty meta box": (heif_header_and_empty_boxes(b"avif", meta=True), "not a decodable AVIF"),
}


@pytest.mark.parametrize(("data", "message"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_an_input_error(data: bytes, message: str, trust: TrustConfig, signer: FileKeySigner) -> None:
    with pytest.raises(InputError, match=message):
        inspect(data, trust)
    with pytest.raises(InputError, match=message):
        stamp(data, StampRequest(Source.CAMERA), signer, trust)


def test_size_limit_is_configurable(trust: TrustConfig) -> None:
    data = images.jpeg()
    with pytest.raises(InputError, match="limit"):
        inspect(data, trust, limits=Limits(max_bytes=len(data) - 1))
    with pytest.raises(InputError, match="exceed"):
        inspect(data, trust, limits=Limits(max_pixels=320 * 240 - 1))
    assert inspect(data, trust, limits=Limits(max_bytes=len(data), max_pixels=320 * 240)).labels == ()


SNIFF = {
    "jpeg": (images.jpeg(), "image/jpeg"),
    "png": (images.png(), "image/png"),
    "webp": (images.encode(images.picture(), "WEBP"), "image/webp"),
    "tiff": (images.encode(images.picture(), "TIFF"), "image/tiff"),
    "avif": (images.encode(images.picture(), "AVIF"), "image/avif"),
    "gif": (images.encode(images.picture(), "GIF"), "image/gif"),
    "pdf": (b"%PDF-1.7\n", "application/pdf"),
}


@pytest.mark.parametrize(("data", "media_type"), SNIFF.values(), ids=SNIFF.keys())
def test_media_type_comes_from_bytes(data: bytes, media_type: str) -> None:
    assert sniff(data) == media_type


def test_wrong_extension_does_not_matter(trust: TrustConfig, signer: FileKeySigner) -> None:
    png_named_jpg = images.png()
    assert check_input(png_named_jpg).media_type == "image/png"
    result = stamp(png_named_jpg, StampRequest(Source.CAMERA, upload_name="photo.jpg"), signer, trust)
    assert result.media_type == "image/png"
    assert result.data.startswith(b"\x89PNG")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "AVIF"])
def test_stamp_supports_common_image_formats(fmt: str, trust: TrustConfig, signer: FileKeySigner) -> None:
    result = stamp(images.encode(images.picture(), fmt), StampRequest(Source.AI_GENERATED), signer, trust)
    assert result.verdict.labels == ("ai_generated",)
    assert inspect(result.data, trust).state.value == "trusted"


def test_stamp_refuses_non_image_media(trust: TrustConfig, signer: FileKeySigner) -> None:
    with pytest.raises(InputError, match="cannot stamp"):
        stamp(
            (EXTERNAL / "c2pa-python" / "sample1_signed.wav").read_bytes(), StampRequest(Source.CAMERA), signer, trust
        )


def test_manifest_prefilter_only_skips_bytes_that_cannot_hold_one(trust: TrustConfig, signer: FileKeySigner) -> None:
    plain_jpeg, plain_png = images.jpeg(), images.png()
    assert not check_input(plain_jpeg).may_carry_manifest
    assert not check_input(plain_png).may_carry_manifest
    for data in (plain_jpeg, plain_png):
        stamped = stamp(data, StampRequest(Source.CAMERA), signer, trust).data
        assert check_input(stamped).may_carry_manifest
    # Unsigned XMP is not a manifest; XMP that may reference a remote one, and PNG text chunks, go to the SDK.
    assert not check_input(images.xmp_ai_jpeg()).may_carry_manifest
    remote_ref = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dcterms:provenance>https://example.com/m.c2pa</dcterms:provenance></x:xmpmeta>'
    assert check_input(images.encode(images.picture(), "JPEG", xmp=remote_ref)).may_carry_manifest
    assert check_input((EXTERNAL / "c2pa-rs" / "cloud.jpg").read_bytes()).may_carry_manifest
    assert check_input(images.encode(images.picture(), "PNG", pnginfo=_text_chunk())).may_carry_manifest


def _text_chunk() -> object:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    return info


def test_large_files_are_hashed_correctly(trust: TrustConfig, signer: FileKeySigner) -> None:
    # Files above CONCURRENT_HASH_MIN are hashed on a worker thread while the SDK works.
    data = images.encode(images.noise(900, 700), "JPEG", quality=95)
    assert len(data) > 256 * 1024
    result = stamp(data, StampRequest(Source.CAMERA), signer, trust)
    assert result.upstream.sha256 == hashlib.sha256(data).hexdigest()
    assert result.verdict.sha256 == hashlib.sha256(result.data).hexdigest()
    assert inspect(result.data, trust).sha256 == result.verdict.sha256
    # A caller that has hashed the upload already (the service, for its idempotency) passes the digest:
    # it is taken as given, not computed again.
    given = "0" * 64
    assert stamp(data, StampRequest(Source.CAMERA), signer, trust, upload_sha256=given).upstream.sha256 == given


def test_jpeg_with_data_after_end_of_image_is_accepted(trust: TrustConfig, signer: FileKeySigner) -> None:
    # Motion photos and some cameras append data after EOI; only a missing EOI means truncation.
    data = images.jpeg() + b"\x00" * 10 + b"ftypmp42" + bytes(range(256)) * 64
    assert check_input(data).media_type == "image/jpeg"
    assert stamp(data, StampRequest(Source.CAMERA), signer, trust).verdict.state.value == "trusted"
    eoi = images.jpeg().rfind(b"\xff\xd9")
    with pytest.raises(InputError, match="truncated JPEG"):
        check_input(images.jpeg()[:eoi] + b"\x00" * 5000)


# --- Structure bounds: each builder makes a file with exactly ``n`` of the structures its limit counts.


def _jpeg_segments(data: bytes) -> int:
    """Marker segments after SOI, up to and including the first SOS (Pillow writes no fill bytes)."""
    pos, count = 2, 1
    while data[pos + 1] != 0xDA:
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        count += 1
    return count


def _png_chunks(data: bytes) -> int:
    pos, count = 8, 0
    while pos < len(data):
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
        count += 1
    return count


def _riff(form: bytes, chunks: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + form + chunks


def _riff_chunk(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)


def jpeg_segments(n: int, segment: bytes = b"\xff\xef\x00\x02") -> bytes:
    """A real JPEG with empty APP15 segments (or other markers) added before its frame header."""
    data = images.jpeg()
    return data[:2] + segment * (n - _jpeg_segments(data)) + data[2:]


def png_chunks(n: int, kind: bytes = b"prVt") -> bytes:
    """A real PNG with empty chunks added: private ones before IEND, or IDATs after its first IDAT."""
    data = images.png()
    idat = data.index(b"IDAT") - 4  # the first IDAT chunk; empty IDATs must follow it, others go before IEND
    at = idat + 12 + int.from_bytes(data[idat : idat + 4], "big") if kind == b"IDAT" else len(data) - 12
    return data[:at] + _png_chunk(kind, b"") * (n - _png_chunks(data)) + data[at:]


def webp_chunks(n: int) -> bytes:
    """A real WebP with empty top-level chunks added (a WebP of one lossy frame has one chunk)."""
    data = images.encode(images.picture(), "WEBP")
    assert data[12:16] == b"VP8 "
    assert 20 + int.from_bytes(data[16:20], "little") == len(data)
    return _riff(b"WEBP", data[12:] + _riff_chunk(b"JUNK") * (n - 1))


def wav_chunks(n: int) -> bytes:
    fmt = _riff_chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16))
    return _riff(b"WAVE", fmt + _riff_chunk(b"JUNK") * (n - 2) + _riff_chunk(b"data", b"\0" * 16))


def gif_blocks(n: int) -> bytes:
    """A 1x1 GIF (an image and its one short sub-block: 2) with empty comment extensions added."""
    return images.gif_1x1()[:-1] + b"\x21\xfe\x00" * (n - 2) + b"\x3b"


def gif_sub_blocks(n: int) -> bytes:
    """A 1x1 GIF with a comment made of 1-byte sub-blocks (the comment block is 1, each sub-block 1)."""
    return images.gif_1x1()[:-1] + b"\x21\xfe" + b"\x01!" * (n - 3) + b"\x00\x3b"


def tiff_ifds(n: int, entries: int = 1) -> bytes:
    """A real one-IFD TIFF with ``n - 1`` IFDs chained after it, each of ``entries`` entries."""
    data = bytearray(images.encode(images.picture(), "TIFF"))
    assert data[:2] == b"II"
    first = int.from_bytes(data[4:8], "little")
    link = first + 2 + 12 * int.from_bytes(data[first : first + 2], "little")
    assert data[link : link + 4] == b"\0\0\0\0", "Pillow wrote one IFD"
    data += b"\0" * (len(data) & 1)
    for k in range(n - 1):
        struct.pack_into("<I", data, link, len(data))
        link = len(data) + 2 + 12 * entries
        data += struct.pack("<H", entries) + struct.pack("<HHII", 65000, 3, 1, k) * entries + b"\0\0\0\0"
    return bytes(data)


def tiff_entries(n: int) -> bytes:
    """A real TIFF with one more IFD, so that all IFDs hold ``n`` entries together."""
    data = images.encode(images.picture(), "TIFF")
    first = int.from_bytes(data[4:8], "little")
    return tiff_ifds(2, entries=n - int.from_bytes(data[first : first + 2], "little"))


def heif_boxes(n: int, brand: bytes = b"heic") -> bytes:
    return images.heif(brand=brand) + box(b"free") * (n - images.HEIF_BOXES)


def mp4_boxes(n: int) -> bytes:
    """ftyp and a moov holding ``n - 2`` empty boxes: nested boxes count like top-level ones."""
    return box(b"ftyp", b"isom\0\0\0\0isommp42") + box(b"moov", box(b"free") * (n - 2))


def mp4_depth(n: int) -> bytes:
    """ftyp and moov boxes nested ``n`` deep (c2pa-rs's nested_moov_1000.mp4 is 1000 deep)."""
    nested = b""
    for _ in range(n):
        nested = box(b"moov", nested)
    return box(b"ftyp", b"isom\0\0\0\0isommp42") + nested


FLOODS: dict[str, tuple[Callable[[int], bytes], str]] = {
    "JPEG: empty APP15 segments before the frame header": (jpeg_segments, "max_jpeg_segments"),
    "JPEG: restart markers before the frame header": (lambda n: jpeg_segments(n, b"\xff\xd0"), "max_jpeg_segments"),
    "PNG: empty private chunks": (png_chunks, "max_png_chunks"),
    "PNG: empty IDAT chunks": (lambda n: png_chunks(n, b"IDAT"), "max_png_chunks"),
    "WebP: empty top-level chunks": (webp_chunks, "max_riff_chunks"),
    "WAV: empty top-level chunks": (wav_chunks, "max_riff_chunks"),
    "GIF: empty comment extensions": (gif_blocks, "max_gif_blocks"),
    "GIF: 1-byte data sub-blocks": (gif_sub_blocks, "max_gif_blocks"),
    "TIFF: chained one-entry IFDs": (tiff_ifds, "max_tiff_ifds"),
    "TIFF: entries in one extra IFD": (tiff_entries, "max_tiff_entries"),
    "HEIC: empty top-level boxes": (heif_boxes, "max_bmff_boxes"),
    "AVIF: empty top-level boxes": (lambda n: heif_boxes(n, b"avif"), "max_bmff_boxes"),
    "MP4: empty boxes inside moov": (mp4_boxes, "max_bmff_boxes"),
    "MP4: moov nested in moov": (mp4_depth, "max_bmff_depth"),
}


@pytest.mark.parametrize(("build", "limit"), FLOODS.values(), ids=FLOODS.keys())
def test_structure_floods_pass_at_the_limit_and_are_refused_above_it(build: Callable[[int], bytes], limit: str) -> None:
    bound = getattr(DEFAULT_LIMITS, limit)
    at_the_limit = build(bound)
    assert check_input(at_the_limit).media_type == sniff(at_the_limit)
    with pytest.raises(InputTooComplexError, match=rf"more than {bound} |deeper than {bound} levels"):
        check_input(build(bound + 1))


def test_structure_bounds_are_configurable() -> None:
    assert check_input(mp4_boxes(100), Limits(max_bmff_boxes=100)).media_type == "video/mp4"
    with pytest.raises(InputTooComplexError):
        check_input(mp4_boxes(101), Limits(max_bmff_boxes=100))
    with pytest.raises(InputTooComplexError, match="deeper than 4 levels"):
        check_input(mp4_depth(5), Limits(max_bmff_depth=4))
    # A real DNG: one IFD in its chain and five behind its SubIFD and Exif pointers; 128 entries in all.
    dng = (EXTERNAL / "c2pa-python" / "C.dng").read_bytes()
    assert check_input(dng, Limits(max_tiff_ifds=6, max_tiff_entries=128)).media_type == "image/tiff"
    with pytest.raises(InputTooComplexError, match="more than 5 IFDs"):
        check_input(dng, Limits(max_tiff_ifds=5))
    with pytest.raises(InputTooComplexError, match="more than 127 IFD entries"):
        check_input(dng, Limits(max_tiff_entries=127))


def test_malicious_external_containers_are_refused_before_the_sdk() -> None:
    for name in ("c2pa-rs/nested_moov_1000.mp4", "c2pa-rs/tiff_poc.tiff"):
        with pytest.raises(InputTooComplexError):
            check_input((EXTERNAL / name).read_bytes())


READABLE = [row for row in ROWS if _expected(row.outcomes["default"]) != ERROR]


@pytest.mark.parametrize("row", READABLE, ids=[row.file for row in READABLE])
def test_external_files_the_sdk_reads_pass_the_structural_check(row: Row) -> None:
    data = row.path.read_bytes()
    assert check_input(data).media_type == sniff(data)


def _saved(frames: list[Image.Image], fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], **params)
    return buf.getvalue()


def _large_box_mp4() -> bytes:
    """A 64-bit size (size field 1) and a last box whose size 0 means "to the end of the file"."""
    free = struct.pack(">I", 1) + b"free" + struct.pack(">Q", 16 + 4) + b"pad!"
    return box(b"ftyp", b"isom\0\0\0\0isommp42") + free + struct.pack(">I", 0) + b"mdat" + b"\0" * 100


def _quicktime_with_metadata() -> bytes:
    """QuickTime's udta/meta has no version and flags, and a udta list may end with 4 zero bytes."""
    handler = full_box(b"hdlr", b"\0\0\0\0mdta" + b"\0" * 13)
    meta = box(b"meta", handler + box(b"keys", b"\0" * 8) + box(b"ilst"))
    return box(b"ftyp", b"qt  \0\0\0\0qt  ") + box(b"moov", box(b"udta", meta + b"\0\0\0\0")) + box(b"mdat")


def _camera_exif() -> Image.Exif:
    """Exif as cameras write it: Make and Model, and an Exif IFD (in a JPEG, a pointer to a second IFD)."""
    exif = Image.Exif()
    exif[0x010F] = "Example Camera Co."
    exif[0x0110] = "EX-1"
    exif.get_ifd(0x8769)[0x9003] = "2026:11:28 12:00:00"  # DateTimeOriginal
    return exif


def _webp_chunk_past_the_end() -> bytes:
    """A WebP whose RIFF size is right but whose last chunk declares 255 bytes and has 4."""
    data = images.encode(images.picture(), "WEBP")
    return _riff(b"WEBP", data[12:] + b"JUNK" + struct.pack("<I", 255) + b"\0" * 4)


FRAMES = [images.picture(seed=i) for i in range(3)]

REAL = {
    "progressive JPEG with Exif": images.jpeg(progressive=True, exif=_camera_exif().tobytes()),
    "JPEG with fill bytes before a marker": (lambda d: d[:2] + b"\xff" * 100_000 + d[2:])(images.jpeg()),
    "animated PNG": _saved(FRAMES, "PNG"),
    "animated WebP": _saved(FRAMES, "WEBP"),
    "lossless WebP with alpha": images.encode(images.picture().convert("RGBA"), "WEBP", lossless=True),
    "animated GIF": _saved(FRAMES, "GIF", loop=0, comment=b"made by a test"),
    "multi-page TIFF": _saved(FRAMES, "TIFF"),
    "TIFF with camera tags": images.encode(images.picture(), "TIFF", exif=_camera_exif()),
    "AVIF": images.encode(images.picture(), "AVIF"),
    "animated AVIF (a primary item and a track)": _saved(FRAMES, "AVIF"),
    "HEIC from a phone: a grid of 48 tiles": images.heif(4032, 3024, tiles=48),
    "HEIF (mif1)": images.heif(brand=b"mif1"),
    "MP4 with a 64-bit box and a to-the-end box": _large_box_mp4(),
    "QuickTime with metadata": _quicktime_with_metadata(),
}


@pytest.mark.parametrize("data", REAL.values(), ids=REAL.keys())
def test_files_real_encoders_write_pass(data: bytes) -> None:
    assert check_input(data).media_type == sniff(data)


def _with_empty_mdat(data: bytes) -> bytes:
    assert data[-16 - 8 + 4 : -16] == b"mdat"
    return data[: -16 - 8] + box(b"mdat")


NOT_DECODABLE = {
    "HEIC: free boxes only": (box(b"ftyp", b"heic\0\0\0\0mif1heic") + box(b"free") * 3, "no meta box"),
    "HEIC: a video handler": (images.heif(handler=b"vide"), "no picture handler"),
    "HEIC: no hdlr": (images.heif(without=frozenset({b"hdlr"})), "no picture handler"),
    "HEIC: no pitm": (images.heif(without=frozenset({b"pitm"})), "no primary item"),
    "HEIC: no iinf": (images.heif(without=frozenset({b"iinf"})), "no item info"),
    "HEIC: no iloc": (images.heif(without=frozenset({b"iloc"})), "no item locations"),
    "HEIC: no ispe": (images.heif(without=frozenset({b"ispe"})), "no spatial extents"),
    "HEIC: no ipma": (images.heif(without=frozenset({b"ipma"})), "no spatial extents"),
    "HEIC: no iprp": (images.heif(without=frozenset({b"iprp"})), "no spatial extents"),
    "AVIF: no iloc": (images.heif(brand=b"avif", without=frozenset({b"iloc"})), "not a decodable AVIF"),
    "HEIC: primary item's data past the end": (_with_empty_mdat(images.heif()), "truncated HEIC"),
    "AVIF cut in its mdat": (images.encode(images.picture(), "AVIF")[:-100], "corrupt AVIF"),
    "MP4: a box larger than its parent": (
        box(b"ftyp", b"isom\0\0\0\0isommp42") + box(b"moov", struct.pack(">I", 64) + b"trak"),
        "corrupt MP4",
    ),
    "WebP: a chunk past the end of the RIFF form": (_webp_chunk_past_the_end(), "truncated WebP"),
    "GIF cut in its image data": (images.encode(images.picture(), "GIF")[:-40], "truncated GIF"),
    "GIF with an unknown block": (images.gif_1x1()[:-1] + b"\x99\x3b", "corrupt GIF"),
    "PNG chunk of a non-text type past the end": (
        images.png()[:-12] + struct.pack(">I", 999) + b"\x00\xff\x01\x02" + b"\0" * 16,
        "chunk of unknown type runs past",
    ),
}


@pytest.mark.parametrize(("data", "message"), NOT_DECODABLE.values(), ids=NOT_DECODABLE.keys())
def test_structures_a_decoder_cannot_read_are_input_errors(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        check_input(data)
    assert type(info.value) is InputError  # not "too complex" or "too large": a plain defect
    assert "\\x" not in info.value.diagnostics()  # never raw bytes


def test_heif_dimensions_come_from_the_primary_items_spatial_extents() -> None:
    with pytest.raises(InputTooLargeError, match="100000x100000"):
        check_input(images.heif(100_000, 100_000))
    with pytest.raises(InputTooLargeError, match="exceed"):
        check_input(images.heif(4032, 3024, tiles=48), Limits(max_pixels=4032 * 3024 - 1))
    assert check_input(images.heif(4032, 3024, tiles=48), Limits(max_pixels=4032 * 3024)).media_type == "image/heic"
