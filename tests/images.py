"""Small source images for tests, drawn with Pillow (never committed)."""

from __future__ import annotations

import io
import random

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
