"""Bad input: every case is a clear InputError before the SDK or any write, never a hang or crash."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from provenance import FileKeySigner, InputError, Limits, Source, StampRequest, TrustConfig, inspect, stamp
from provenance.media import check_input, sniff

from . import images
from .conftest import EXTERNAL


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


def test_jpeg_with_data_after_end_of_image_is_accepted(trust: TrustConfig, signer: FileKeySigner) -> None:
    # Motion photos and some cameras append data after EOI; only a missing EOI means truncation.
    data = images.jpeg() + b"\x00" * 10 + b"ftypmp42" + bytes(range(256)) * 64
    assert check_input(data).media_type == "image/jpeg"
    assert stamp(data, StampRequest(Source.CAMERA), signer, trust).verdict.state.value == "trusted"
    eoi = images.jpeg().rfind(b"\xff\xd9")
    with pytest.raises(InputError, match="truncated JPEG"):
        check_input(images.jpeg()[:eoi] + b"\x00" * 5000)
