"""The image corpus of ``bench_soft_binding.py``: originals, their derived copies, and unrelated images.

Everything is made in memory, deterministically from a seed (``random.Random`` seeded with strings, so
independent of ``PYTHONHASHSEED`` and of the number of worker processes). There is no network, so the
"photographs" are of two sorts:

* **Photo crops**: crops, at different positions, scales and aspect ratios, of the twelve distinct real
  photographs (and photoreal renders) among the external C2PA conformance files in
  ``tests/fixtures/external`` (:data:`PHOTOS`: a river landscape, a terrarium render, succulents on wood,
  a robot/bananas composite, clouds over grass, a night city from the air, coloured ribbons, the Earth
  from space, a rocky coast, the Golden Gate bridge, a building entrance, an old camera). Crops of one
  photo that are originals overlap each other by at most :data:`ORIGINAL_OVERLAP` of the smaller one;
  unrelated crops of the same photo overlap every original crop of it by at most
  :data:`UNRELATED_OVERLAP`: they stand for "another frame of the same shoot", the hardest negatives.
* **Procedural scenes** (:data:`GENERATORS`), whose *layout* (not only colour) depends on the seed, with
  sensor-like grain: ``shapes`` (random rectangles, ellipses, polygons, lines on a rotated gradient),
  ``landscape`` (sky gradient, 1-4 ridge silhouettes at a random horizon, sun, water), ``texture``
  (multi-octave value noise in a random 2-3 colour ramp), ``document`` (a page or screenshot: headline,
  1-3 columns of text, picture blocks, banners), ``city`` (a skyline of buildings with window grids, day
  or night) and ``portrait`` (head and shoulders over a blurred bokeh background; many such images share
  one layout, like real portraits). They are not photographs: their low frequencies (all the 64-bit
  Image-Code sees) are more varied than a news archive's, where many pictures share a sky-above-ground or
  head-and-shoulders layout, so false-match rates here are a lower bound for such archives.

Originals are JPEG (q=90) with EXIF (make, model, date, orientation 1), XMP and an sRGB ICC profile, as a
camera or photo desk delivers them; unrelated images are JPEG (q=85) without metadata.
"""

from __future__ import annotations

import io
import itertools
import math
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "external"

#: The distinct photographs among the conformance fixtures (many fixtures share one picture).
PHOTOS: tuple[str, ...] = (
    "c2pa-js-legacy/gen-fill.jpg",
    "c2pa-js-legacy/firefly-1.jpg",
    "c2pa-js-legacy/genai-actions-v2.jpg",
    "c2pa-node/cloud-only-firefly.jpg",
    "c2pa-node/ingredient-with-data-types.jpg",
    "c2pa-node/testv2.jpg",
    "c2pa-rs/CA.jpg",
    "c2pa-rs/cloud.jpg",
    "c2pa-rs/no_alg.jpg",
    "c2pa-rs/ocsp.jpg",
    "public-testfiles/nikon-20221019-building.jpeg",
    "public-testfiles/truepic-20230212-camera.jpg",
)

#: Largest share of the smaller crop two original crops of one photo may have in common.
ORIGINAL_OVERLAP = 0.4
#: Largest share of the smaller crop an unrelated crop may have in common with any original crop.
UNRELATED_OVERLAP = 0.2
#: Shortest side of a crop, in source pixels.
MIN_CROP_PIXELS = 100

ASPECTS = (3 / 2, 4 / 3, 16 / 9, 1.0, 2 / 3, 3 / 4)

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the photo


@dataclass(frozen=True)
class Spec:
    """What one image is: a generator name (or ``"photo"``), its seed string, and for a photo crop the
    photo's index in :data:`PHOTOS` and the crop box."""

    generator: str
    seed: str
    photo: int = -1
    box: Box = (0.0, 0.0, 1.0, 1.0)


# ------------------------------------------------------------------------------------- photos

_photo_cache: dict[int, Image.Image] = {}


def available_photos() -> list[int]:
    """Indexes into :data:`PHOTOS` of the files present (the fixtures may be absent in a trimmed checkout)."""
    return [i for i, name in enumerate(PHOTOS) if (FIXTURES / name).is_file()]


def photo(index: int) -> Image.Image:
    """The decoded photograph (JPEG decoded at the DCT scale that keeps it at least 1600 pixels a side)."""
    img = _photo_cache.get(index)
    if img is None:
        src = Image.open(FIXTURES / PHOTOS[index])
        src.draft("RGB", (1600, 1600))
        img = ImageOps.exif_transpose(src).convert("RGB")
        _photo_cache[index] = img
    return img


def photo_size(index: int) -> tuple[int, int]:
    with Image.open(FIXTURES / PHOTOS[index]) as img:
        return img.size


def overlap(a: Box, b: Box) -> float:
    """Intersection area over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def random_box(rng: random.Random, size: tuple[int, int], side: tuple[float, float]) -> Box | None:
    """A crop box of a random aspect whose longer side is ``side`` (a range, as a fraction of the photo's
    shorter side); ``None`` when the photo is too small for it."""
    width, height = size
    aspect = rng.choice(ASPECTS)
    long_side = rng.uniform(*side) * min(width, height)
    w, h = (long_side, long_side / aspect) if aspect >= 1 else (long_side * aspect, long_side)
    if min(w, h) < MIN_CROP_PIXELS or w > width or h > height:
        return None
    x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
    return (x / width, y / height, (x + w) / width, (y + h) / height)


def photo_boxes(
    rng: random.Random, index: int, originals: int, unrelated: int, tries: int = 400
) -> tuple[list[Box], list[Box]]:
    """Crop boxes of one photo: up to ``originals`` original crops (pairwise overlap at most
    :data:`ORIGINAL_OVERLAP`) and up to ``unrelated`` unrelated ones (overlap with every original at most
    :data:`UNRELATED_OVERLAP`). Fewer when they do not fit in ``tries`` attempts each."""
    size = photo_size(index)
    chosen: list[Box] = []
    for _ in range(originals):
        for _ in range(tries):
            box = random_box(rng, size, (0.35, 0.8))
            if box is not None and all(overlap(box, other) <= ORIGINAL_OVERLAP for other in chosen):
                chosen.append(box)
                break
    others: list[Box] = []
    for _ in range(unrelated):
        for _ in range(tries):
            box = random_box(rng, size, (0.2, 0.6))
            if box is not None and all(overlap(box, other) <= UNRELATED_OVERLAP for other in chosen):
                others.append(box)
                break
    return chosen, others


def _photo_crop(spec: Spec, rng: random.Random, long_side: int) -> Image.Image:
    src = photo(spec.photo)
    left, top, right, bottom = spec.box
    box = (round(left * src.width), round(top * src.height), round(right * src.width), round(bottom * src.height))
    crop = src.crop(box)
    scale = min(1.0, long_side / max(crop.size))  # never upscaled, except below 320 pixels
    scale = max(scale, 320 / max(crop.size))
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    return crop.resize(size, Image.Resampling.LANCZOS)


# --------------------------------------------------------------------------- procedural scenes


def _size(rng: random.Random, long_side: int) -> tuple[int, int]:
    aspect = rng.choice(ASPECTS)
    if aspect >= 1:
        return long_side, max(64, round(long_side / aspect))
    return max(64, round(long_side * aspect)), long_side


def _colour(rng: random.Random, low: int = 0, high: int = 255) -> tuple[int, int, int]:
    return (rng.randint(low, high), rng.randint(low, high), rng.randint(low, high))


def _gradient(
    rng: random.Random, size: tuple[int, int], a: tuple[int, int, int], b: tuple[int, int, int]
) -> Image.Image:
    """A linear gradient from ``a`` to ``b`` at a random angle, filling the whole frame."""
    w, h = size
    side = 128
    grey = Image.linear_gradient("L").resize((side, side)).rotate(rng.uniform(0, 360), Image.Resampling.BICUBIC)
    # The centre box of the rotated square that has the frame's aspect and no rotated-in corners.
    half = side / 2 / math.sqrt(2)
    k = half / math.hypot(w, h) * 2
    bw, bh = w * k, h * k
    box = (round(side / 2 - bw / 2), round(side / 2 - bh / 2), round(side / 2 + bw / 2), round(side / 2 + bh / 2))
    grey = grey.crop(box).resize(size, Image.Resampling.BICUBIC)
    return ImageOps.colorize(grey, a, b)


def _vertical(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    grey = Image.linear_gradient("L").resize(size, Image.Resampling.BICUBIC)
    return ImageOps.colorize(grey, top, bottom)


def _value_noise(rng: random.Random, size: tuple[int, int], cells: int, octaves: int) -> Image.Image:
    """Multi-octave value noise (grey): random grids upscaled bicubically, finer octaves weaker."""
    w, h = size
    acc: Image.Image | None = None
    for octave in range(octaves):
        gw = max(2, round(cells * 2**octave * w / max(w, h)))
        gh = max(2, round(cells * 2**octave * h / max(w, h)))
        layer = Image.frombytes("L", (gw, gh), rng.randbytes(gw * gh)).resize(size, Image.Resampling.BICUBIC)
        acc = layer if acc is None else Image.blend(acc, layer, 0.35)
    assert acc is not None
    return ImageOps.autocontrast(acc, cutoff=1)


def _grain(rng: random.Random, img: Image.Image, amplitude: int) -> Image.Image:
    """Sensor-like noise of +-amplitude/2 grey levels (the same on all channels)."""
    if amplitude <= 0:
        return img
    noise = Image.frombytes("L", img.size, rng.randbytes(img.width * img.height))
    noise = noise.point(lambda v: v * amplitude // 255)
    rgb = Image.merge("RGB", (noise, noise, noise))
    return ImageChops.add(img, rgb, 1.0, -(amplitude // 2))


def _finish(rng: random.Random, img: Image.Image) -> Image.Image:
    blur = rng.choice((0.0, 0.5, 0.8, 1.2))
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return _grain(rng, img, rng.randint(4, 16))


def shapes(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _gradient(rng, size, _colour(rng), _colour(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(4, 20)):
        cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        rx, ry = rng.uniform(0.03, 0.4) * w, rng.uniform(0.03, 0.4) * h
        box = (cx - rx, cy - ry, cx + rx, cy + ry)
        fill = _colour(rng)
        outline = _colour(rng) if rng.random() < 0.3 else None
        kind = rng.randrange(5)
        if kind == 0:
            draw.rectangle(box, fill=fill, outline=outline, width=3)
        elif kind == 1:
            draw.ellipse(box, fill=fill, outline=outline, width=3)
        elif kind == 2:
            n = rng.randint(3, 7)
            points = [
                (cx + rx * math.cos(2 * math.pi * i / n + rng.uniform(-0.4, 0.4)) * rng.uniform(0.5, 1.2),
                 cy + ry * math.sin(2 * math.pi * i / n + rng.uniform(-0.4, 0.4)) * rng.uniform(0.5, 1.2))
                for i in range(n)
            ]  # fmt: skip
            draw.polygon(points, fill=fill, outline=outline)
        elif kind == 3:
            draw.line([box[:2], box[2:]], fill=fill, width=rng.randint(2, max(3, w // 30)))
        else:
            draw.pieslice(box, rng.uniform(0, 360), rng.uniform(0, 360), fill=fill)
    return _finish(rng, img)


def _ridge(rng: random.Random, w: int, base: float, roughness: float) -> list[float]:
    """A mountain silhouette by midpoint displacement: heights at 65 points across the frame."""
    heights = [base + rng.uniform(-1, 1) * roughness, base + rng.uniform(-1, 1) * roughness]
    amplitude = roughness
    while len(heights) < 65:
        amplitude /= 1.8
        refined: list[float] = []
        for a, b in itertools.pairwise(heights):
            refined += [a, (a + b) / 2 + rng.uniform(-1, 1) * amplitude]
        heights = [*refined, heights[-1]]
    return heights


def landscape(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    sky_top = rng.choice(((40, 90, 180), (20, 30, 70), (120, 140, 170), (200, 120, 60), (90, 150, 220)))
    sky_bottom = tuple(min(255, c + rng.randint(40, 120)) for c in sky_top)
    img = _vertical(size, sky_top, sky_bottom)  # type: ignore[arg-type]
    draw = ImageDraw.Draw(img)
    horizon = rng.uniform(0.25, 0.75) * h
    if rng.random() < 0.5:
        r = rng.uniform(0.03, 0.1) * h
        sx, sy = rng.uniform(0, w), rng.uniform(0.05, 0.9) * horizon
        draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=(255, 240, rng.randint(150, 230)))
    layers = rng.randint(1, 4)
    ground = _colour(rng, 20, 160)
    for layer in range(layers):
        base = horizon - (layers - layer - 1) * rng.uniform(0.03, 0.12) * h
        heights = _ridge(rng, w, base, rng.uniform(0.03, 0.25) * h)
        shade = 0.5 + 0.5 * (layer + 1) / layers
        fill = tuple(int(c * shade + sky_bottom[i] * (1 - shade)) for i, c in enumerate(ground))
        points = [(i * w / 64, y) for i, y in enumerate(heights)] + [(w, h), (0, h)]
        draw.polygon(points, fill=fill)  # type: ignore[arg-type]
    if rng.random() < 0.4:  # water: the sky mirrored below a shoreline
        shore = rng.uniform(max(horizon, 0.5 * h), 0.9 * h)
        water = img.crop((0, 0, w, h - round(shore))).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        img.paste(ImageEnhance.Brightness(water).enhance(0.8), (0, round(shore)))
    texture = _value_noise(rng, size, rng.randint(4, 16), 4)
    img = ImageChops.multiply(img, Image.merge("RGB", [texture.point(lambda v: 160 + v * 95 // 255)] * 3))
    return _finish(rng, img)


def texture(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    field = _value_noise(rng, size, rng.randint(2, 8), rng.randint(3, 6))
    img = ImageOps.colorize(field, _colour(rng, 0, 120), _colour(rng, 120, 255), mid=_colour(rng))
    if rng.random() < 0.5:
        other = ImageOps.colorize(_value_noise(rng, size, rng.randint(2, 8), 4), _colour(rng), _colour(rng))
        mask = _value_noise(rng, size, rng.randint(1, 4), 2).point(lambda v: 255 if v > 128 else 0)
        img = Image.composite(img, other, mask.filter(ImageFilter.GaussianBlur(4)))
    return _finish(rng, img)


_LETTERS = "etaoinshrdlucmfwypvbgkqjxz"


def _words(rng: random.Random, count: int) -> str:
    return " ".join(
        "".join(rng.choice(_LETTERS[: rng.randint(8, 26)]) for _ in range(rng.randint(1, 10))) for _ in range(count)
    )


def document(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    dark = rng.random() < 0.25
    paper = _colour(rng, 10, 50) if dark else _colour(rng, 215, 255)
    ink = _colour(rng, 190, 255) if dark else _colour(rng, 0, 70)
    img = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(img)
    margin = rng.uniform(0.03, 0.1) * w
    y = rng.uniform(0.02, 0.12) * h
    if rng.random() < 0.5:  # a banner
        bh = rng.uniform(0.05, 0.2) * h
        draw.rectangle((0, y, w, y + bh), fill=_colour(rng))
        y += bh + 0.02 * h
    headline = ImageFont.load_default(size=max(10, round(rng.uniform(0.04, 0.09) * h)))
    for _ in range(rng.randint(1, 2)):
        draw.text((margin, y), _words(rng, rng.randint(2, 5)), font=headline, fill=ink)
        y += headline.size * 1.2
    columns = rng.randint(1, 3)
    gap = 0.03 * w
    column_w = (w - 2 * margin - (columns - 1) * gap) / columns
    body = ImageFont.load_default(size=max(8, round(rng.uniform(0.015, 0.035) * h)))
    chars_per_line = max(4, int(column_w / (body.size * 0.55)))
    top = y + 0.02 * h
    for c in range(columns):
        x = margin + c * (column_w + gap)
        y = top
        while y < h - margin:
            if rng.random() < 0.06:  # a picture block in the column
                ph = rng.uniform(0.1, 0.35) * h
                block = texture(rng, (max(8, round(column_w)), max(8, round(ph))))
                img.paste(block, (round(x), round(y)))
                y += ph + body.size
                continue
            if rng.random() < 0.12:  # paragraph break
                y += body.size
                continue
            line = _words(rng, 12)[: rng.randint(chars_per_line // 2, chars_per_line)]
            draw.text((x, y), line, font=body, fill=ink)
            y += body.size * 1.3
    return _finish(rng, img)


def city(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    night = rng.random() < 0.4
    top, bottom = ((5, 10, 30), (40, 40, 80)) if night else ((70, 130, 200), (190, 210, 230))
    img = _vertical(size, top, bottom)
    draw = ImageDraw.Draw(img)
    ground = rng.uniform(0.75, 1.0) * h
    x = rng.uniform(-0.1, 0) * w
    while x < w:
        bw = rng.uniform(0.05, 0.2) * w
        bh = rng.uniform(0.15, 0.8) * h
        grey = rng.randint(20, 70) if night else rng.randint(80, 200)
        tint = _colour(rng, -15, 15)
        body = tuple(max(0, min(255, grey + t)) for t in tint)
        draw.rectangle((x, ground - bh, x + bw, ground), fill=body)  # type: ignore[arg-type]
        step_x, step_y = rng.uniform(6, 20), rng.uniform(8, 24)
        lit = (250, 220, 140) if night else (140, 170, 200)
        unlit = tuple(max(0, c - 30) for c in body)
        wy = ground - bh + step_y / 2
        while wy < ground - step_y:
            wx = x + step_x / 3
            while wx < x + bw - step_x / 2:
                on = rng.random() < (0.4 if night else 0.7)
                draw.rectangle((wx, wy, wx + step_x / 2, wy + step_y / 2), fill=lit if on else unlit)  # type: ignore[arg-type]
                wx += step_x
            wy += step_y
        x += bw + rng.uniform(-0.02, 0.03) * w
    draw.rectangle((0, ground, w, h), fill=_colour(rng, 20, 90))
    return _finish(rng, img)


SKIN = ((255, 224, 196), (234, 192, 160), (198, 140, 100), (141, 85, 54), (90, 56, 37), (224, 172, 130))


def portrait(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = _gradient(rng, size, _colour(rng), _colour(rng))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(5, 25)):  # bokeh
        r = rng.uniform(0.02, 0.12) * max(w, h)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_colour(rng))
    img = img.filter(ImageFilter.GaussianBlur(max(w, h) / 60))
    draw = ImageDraw.Draw(img)
    cx = rng.uniform(0.3, 0.7) * w
    head = rng.uniform(0.12, 0.3) * h
    cy = rng.uniform(0.3, 0.5) * h
    skin = rng.choice(SKIN)
    cloth = _colour(rng)
    sw = head * rng.uniform(1.6, 2.6)
    draw.ellipse((cx - sw, cy + head * 1.1, cx + sw, cy + head * 1.1 + 3 * head), fill=cloth)  # shoulders
    draw.rectangle((cx - head * 0.3, cy + head * 0.6, cx + head * 0.3, cy + head * 1.4), fill=skin)  # neck
    hair = rng.choice(((20, 15, 10), (80, 50, 20), (200, 170, 100), (120, 120, 120), (60, 30, 15)))
    draw.ellipse((cx - head * 0.85, cy - head * 1.15, cx + head * 0.85, cy + head * 0.6), fill=hair)
    draw.ellipse((cx - head * 0.7, cy - head, cx + head * 0.7, cy + head), fill=skin)  # face
    for side in (-1, 1):
        ex, ey = cx + side * head * 0.3, cy - head * 0.15
        draw.ellipse((ex - head * 0.1, ey - head * 0.05, ex + head * 0.1, ey + head * 0.05), fill=(40, 30, 30))
    draw.arc(
        (cx - head * 0.3, cy + head * 0.2, cx + head * 0.3, cy + head * 0.55), 20, 160, fill=(120, 50, 50), width=3
    )
    return _finish(rng, img)


GENERATORS: dict[str, Callable[[random.Random, tuple[int, int]], Image.Image]] = {
    "shapes": shapes,
    "landscape": landscape,
    "texture": texture,
    "document": document,
    "city": city,
    "portrait": portrait,
}


def render(spec: Spec, long_side: tuple[int, int]) -> Image.Image:
    """The picture a spec describes, its longer side drawn from ``long_side`` (a range)."""
    rng = random.Random(spec.seed)
    side = rng.randint(*long_side)
    if spec.generator == "photo":
        return _photo_crop(spec, rng, side)
    return GENERATORS[spec.generator](rng, _size(rng, side))


# ----------------------------------------------------------------------------- files, copies

_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    b"<dc:creator><rdf:Seq><rdf:li>Staff Photographer</rdf:li></rdf:Seq></dc:creator>"
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)
_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def encode(img: Image.Image, fmt: str = "JPEG", **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def original_file(img: Image.Image, index: int) -> bytes:
    """An original as a camera or photo desk delivers it: JPEG q=90 with EXIF, XMP and an ICC profile."""
    exif = Image.Exif()
    exif[0x010F] = "Example Camera Co."  # Make
    exif[0x0110] = "EX-1"  # Model
    exif[0x0112] = 1  # Orientation: as stored
    exif[0x0132] = f"2026:01:{1 + index % 28:02d} 12:00:00"  # DateTime
    return encode(img, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=_ICC, xmp=_XMP)


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG without EXIF/XMP (APP1), ICC (APP2), IPTC (APP13) and comments, its entropy-coded data
    untouched (what ``exiftool -all=`` or ``jpegtran -copy none`` do: the pixels do not change)."""
    assert data[:2] == b"\xff\xd8"
    out = [data[:2]]
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a JPEG segment")
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: the rest is image data
            out.append(data[pos:])
            break
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segment = data[pos : pos + 2 + length]
        if marker not in (0xE1, 0xE2, 0xED, 0xFE):
            out.append(segment)
        pos += 2 + length
    return b"".join(out)


def _jpeg85(img: Image.Image) -> bytes:
    return encode(img, "JPEG", quality=85)


def _resized(img: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(img.width * factor)), max(1, round(img.height * factor)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _crop(img: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = img.size
    return img.crop((round(left * w), round(top * h), round(w - right * w), round(h - bottom * h)))


def _crop_side(img: Image.Image, rng: random.Random) -> Image.Image:
    cut = [0.0, 0.0, 0.0, 0.0]
    cut[rng.randrange(4)] = 0.05
    return _crop(img, *cut)


#: Derived copies of an original: name -> (description, how it is made from the original's file).
DERIVATIONS: dict[str, tuple[str, Callable[[bytes, Image.Image, random.Random], bytes]]] = {
    "resize50": ("resized to 50% (Lanczos), JPEG q=85", lambda _d, im, _r: _jpeg85(_resized(im, 0.5))),
    "resize25": ("resized to 25% (Lanczos), JPEG q=85", lambda _d, im, _r: _jpeg85(_resized(im, 0.25))),
    "jpeg60": ("recompressed, JPEG q=60", lambda _d, im, _r: encode(im, "JPEG", quality=60)),
    "webp80": ("converted to WebP q=80", lambda _d, im, _r: encode(im, "WEBP", quality=80)),
    "png": ("converted to PNG", lambda _d, im, _r: encode(im, "PNG", compress_level=1)),
    "strip": ("metadata stripped losslessly (APP1/APP2/APP13/COM)", lambda d, _im, _r: strip_jpeg(d)),
    "strip-resave": ("re-saved without EXIF/XMP/ICC, JPEG q=85", lambda _d, im, _r: _jpeg85(im)),
    "crop5-centre": ("2.5% cropped off each side, JPEG q=85", lambda _d, im, _r: _jpeg85(_crop(im, *[0.025] * 4))),
    "crop5-side": ("5% cropped off one (random) side, JPEG q=85", lambda _d, im, r: _jpeg85(_crop_side(im, r))),
    "bright+5": ("brightness +5%, JPEG q=85", lambda _d, im, _r: _jpeg85(ImageEnhance.Brightness(im).enhance(1.05))),
    "bright-5": ("brightness -5%, JPEG q=85", lambda _d, im, _r: _jpeg85(ImageEnhance.Brightness(im).enhance(0.95))),
}


def derived_copies(original: bytes, seed: str) -> dict[str, bytes]:
    """Every :data:`DERIVATIONS` copy of an original's file (decoded once, as a CMS would)."""
    img = Image.open(io.BytesIO(original))
    img = ImageOps.exif_transpose(img).convert("RGB")
    rng = random.Random(f"{seed}:derive")
    return {name: make(original, img, rng) for name, (_, make) in DERIVATIONS.items()}
