"""Small source images for tests, drawn with Pillow (never committed)."""

from __future__ import annotations

import io
import random
import struct

from PIL import Image, ImageDraw

XMP_AI_SOURCE_TYPE = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
    ' Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia">'
    '<dc:title><rdf:Alt><rdf:li xml:lang="x-default">AI generated image</rdf:li></rdf:Alt></dc:title>'
    "</rdf:Description></rdf:RDF></x:xmpmeta>"
)


def picture(width: int = 320, height: int = 240, seed: int = 0) -> Image.Image:
    """A deterministic picture with enough structure that re-encoding would change bytes."""
    img = Image.new("RGB", (width, height), ((seed * 53) % 256, 90, 160))
    draw = ImageDraw.Draw(img)
    for i in range(0, width, 16):
        draw.line([(i, 0), (width - i, height)], fill=((i * 7 + seed) % 256, (i * 3) % 256, 200), width=3)
    draw.ellipse([width // 4, height // 4, 3 * width // 4, 3 * height // 4], outline=(255, 255, 0), width=4)
    return img


def scene(width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    """A picture whose layout, not only its colours, depends on ``seed``: random shapes on a gradient,
    so that two seeds give unrelated images (for fingerprint tests)."""
    rng = random.Random(seed)
    img = Image.linear_gradient("L").resize((width, height)).rotate(rng.randrange(360)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randrange(6, 14)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = x0 + rng.randrange(20, width // 2), y0 + rng.randrange(20, height // 2)
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        shape = rng.choice((draw.rectangle, draw.ellipse))
        shape([x0, y0, x1, y1], fill=colour)
    return img


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    """Deterministic noise: JPEG cannot compress it, so files get large quickly."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg(width: int = 320, height: int = 240, seed: int = 0, **params: object) -> bytes:
    return encode(picture(width, height, seed), "JPEG", quality=90, **params)


def png(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    return encode(picture(width, height, seed), "PNG")


def camera_jpeg(seed: int = 0) -> bytes:
    """A JPEG with camera-like EXIF (Make/Model) — EXIF is unsigned and never a label source."""
    exif = Image.Exif()
    exif[0x010F] = "Example Camera Co."  # Make
    exif[0x0110] = "EX-1"  # Model
    return encode(picture(seed=seed), "JPEG", quality=90, exif=exif.tobytes())


def xmp_ai_jpeg(seed: int = 0) -> bytes:
    """A JPEG whose unsigned XMP says trainedAlgorithmicMedia and whose title says "AI generated"."""
    return encode(picture(seed=seed), "JPEG", quality=90, xmp=XMP_AI_SOURCE_TYPE.encode())


def box(kind: bytes, body: bytes = b"") -> bytes:
    """An ISO-BMFF box."""
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, body: bytes = b"", version: int = 0, flags: int = 0) -> bytes:
    """An ISO-BMFF full box (version and flags before the body)."""
    return box(kind, bytes([version]) + flags.to_bytes(3, "big") + body)


#: Boxes in ``heif()`` without tiles: ftyp meta hdlr pitm iloc iinf infe iprp ipco ispe ipma mdat.
HEIF_BOXES = 12


def heif(
    width: int = 64,
    height: int = 48,
    *,
    brand: bytes = b"heic",
    tiles: int = 0,
    handler: bytes = b"pict",
    without: frozenset[bytes] = frozenset(),
) -> bytes:
    """A HEIF file with the boxes a decoder reads first; its coded data is filler, never decoded.

    ftyp, then meta (hdlr, pitm, iloc, iinf, iprp with ispe and ipma) and mdat. With ``tiles``, the
    primary item (1) is a grid of that many 512x512 tiles, its descriptor in idat, as phones write.
    ``without`` leaves out the boxes of those types.
    """
    coded = b"av01" if brand == b"avif" else b"hvc1"
    tile_ids = list(range(2, tiles + 2))
    items = [(1, b"grid" if tiles else coded), *((i, coded) for i in tile_ids)]
    ftyp = box(b"ftyp", brand + b"\0\0\0\0mif1" + brand)
    mdat = box(b"mdat", b"\x5a" * 16 * max(1, tiles))

    def located(mdat_start: int) -> list[tuple[int, int, int]]:
        """(item, construction method, offset): method 1 is idat, whose descriptor is 8 bytes."""
        coded_items = tile_ids if tiles else [1]
        return [(1, 1, 0)] * bool(tiles) + [(item, 0, mdat_start + 16 * k) for k, item in enumerate(coded_items)]

    def meta(mdat_start: int) -> bytes:
        # iloc version 1: 4-byte offsets and lengths (0x44), no base offset; one extent per item.
        entries = b"".join(
            struct.pack(">HHHHII", item, method, 0, 1, offset, 8 if method else 16)
            for item, method, offset in located(mdat_start)
        )
        infe = b"".join(
            full_box(b"infe", struct.pack(">HH", item, 0) + kind + b"\0", version=2) for item, kind in items
        )
        ispe = full_box(b"ispe", struct.pack(">II", width, height))
        ipma = struct.pack(">HBB", 1, 1, 0x81) + b"".join(struct.pack(">HBB", i, 1, 0x82) for i in tile_ids)
        if tiles:
            ispe += full_box(b"ispe", struct.pack(">II", 512, 512))
        rows, columns = -(-tiles // 8), min(tiles, 8)
        refs = struct.pack(">HH", 1, tiles) + b"".join(struct.pack(">H", i) for i in tile_ids)
        children = {
            b"hdlr": full_box(b"hdlr", b"\0\0\0\0" + handler + b"\0" * 13),
            b"pitm": full_box(b"pitm", struct.pack(">H", 1)),
            b"iloc": full_box(b"iloc", b"\x44\x00" + struct.pack(">H", len(located(0))) + entries, version=1),
            b"iinf": full_box(b"iinf", struct.pack(">H", len(items)) + infe),
            b"iref": full_box(b"iref", box(b"dimg", refs)) if tiles else b"",
            b"idat": box(b"idat", struct.pack(">BBBBHH", 0, 0, rows - 1, columns - 1, width, height)) if tiles else b"",
            b"ispe": ispe,
            b"ipma": full_box(b"ipma", struct.pack(">I", len(items)) + ipma),
        }
        kept = {kind: body for kind, body in children.items() if kind not in without}
        properties = box(b"iprp", box(b"ipco", kept.pop(b"ispe", b"")) + kept.pop(b"ipma", b""))
        return full_box(b"meta", b"".join(kept.values()) + (b"" if b"iprp" in without else properties))

    start = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(start) + mdat


def gif_1x1() -> bytes:
    """The smallest complete GIF: one 1x1 image whose LZW data is one 2-byte sub-block."""
    screen = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    return screen + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00" + b"\x3b"
