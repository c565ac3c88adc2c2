"""Regenerate the sample source images in this folder (deterministic; no network, no models).

    .venv/bin/python samples/make_samples.py

The images are drawn with Pillow; what each one stands for is in samples/README.md.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).parent
SIZE = (480, 320)


def _landscape(rng: random.Random) -> Image.Image:
    # Sky gradient, hills and sensor-like noise: stands in for a photograph.
    img = Image.new("RGB", SIZE)
    px = img.load()
    assert px is not None
    for y in range(SIZE[1]):
        for x in range(SIZE[0]):
            sky = y < 170 + 25 * ((x / 60) % 2 - 1) ** 2
            base = (120 + y // 4, 170 + y // 6, 235) if sky else (60 + y // 8, 120 - y // 10, 50)
            noise = rng.randint(-12, 12)
            px[x, y] = tuple(max(0, min(255, c + noise)) for c in base)
    return img.filter(ImageFilter.GaussianBlur(0.6))


def camera() -> None:
    img = _landscape(random.Random(7))
    exif = Image.Exif()
    exif[0x010F] = "Example Camera Co."  # Make (unsigned EXIF: never a label source)
    exif[0x0110] = "EX-1"  # Model
    img.save(HERE / "camera-photo.jpg", "JPEG", quality=85, exif=exif.tobytes())


def ai_generated() -> None:
    img = Image.new("RGB", SIZE, (20, 10, 40))
    draw = ImageDraw.Draw(img)
    rng = random.Random(3)
    for _ in range(40):
        x, y, r = rng.randint(0, SIZE[0]), rng.randint(0, SIZE[1]), rng.randint(10, 90)
        color = (rng.randint(80, 255), rng.randint(0, 120), rng.randint(120, 255))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    img.filter(ImageFilter.GaussianBlur(6)).save(HERE / "ai-render.jpg", "JPEG", quality=85)


def edited() -> None:
    img = _landscape(random.Random(11))
    patch = Image.new("RGB", (140, 100), (250, 200, 40))
    ImageDraw.Draw(patch).ellipse([10, 10, 130, 90], fill=(255, 120, 0))
    img.paste(patch.filter(ImageFilter.GaussianBlur(3)), (300, 40))
    img.save(HERE / "edited-photo.jpg", "JPEG", quality=85)


def typhoon_render() -> None:
    # A generated "satellite view" of a storm: a soft spiral of cloud over a dark sea (stands for model output).
    img = Image.new("RGB", SIZE, (12, 34, 64))
    draw = ImageDraw.Draw(img)
    rng = random.Random(19)
    cx, cy = SIZE[0] * 0.55, SIZE[1] * 0.5
    for step in range(900):
        angle = step * 0.035
        radius = 4 + step * 0.19
        x, y = cx + radius * math.cos(angle), cy + radius * 0.8 * math.sin(angle)
        r = rng.randint(6, 16)
        shade = 255 - step // 8
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(shade, shade, min(255, shade + 10)))
    img.filter(ImageFilter.GaussianBlur(4)).save(HERE / "typhoon-render.jpg", "JPEG", quality=85)


def bridge_photo() -> None:
    # A harbour bridge at dusk: water, a deck and its towers, with sensor-like noise (stands for a photograph).
    rng = random.Random(23)
    img = Image.new("RGB", SIZE)
    px = img.load()
    assert px is not None
    for y in range(SIZE[1]):
        for x in range(SIZE[0]):
            base = (250 - y // 3, 170 - y // 4, 110 + y // 5) if y < 200 else (40 + y // 10, 70 + y // 12, 100)
            noise = rng.randint(-10, 10)
            px[x, y] = tuple(max(0, min(255, c + noise)) for c in base)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 170, SIZE[0], 182], fill=(45, 45, 55))
    for tower in (130, 350):
        draw.rectangle([tower - 8, 60, tower + 8, 200], fill=(50, 50, 60))
        for x in range(0, SIZE[0], 24):
            draw.line([tower, 62, x, 171], fill=(70, 70, 80), width=1)
    img.filter(ImageFilter.GaussianBlur(0.7)).save(HERE / "bridge-photo.jpg", "JPEG", quality=85)


def library_photo() -> None:
    # A library's glass front with warm lit windows (stands for a photograph).
    rng = random.Random(29)
    img = Image.new("RGB", SIZE, (150, 185, 215))
    draw = ImageDraw.Draw(img)
    draw.rectangle([40, 70, 440, 300], fill=(90, 90, 100))
    for row in range(4):
        for col in range(8):
            x, y = 55 + col * 48, 85 + row * 52
            warm = rng.randint(0, 40)
            draw.rectangle([x, y, x + 36, y + 40], fill=(230 - warm, 190 - warm, 110))
    draw.rectangle([0, 300, SIZE[0], SIZE[1]], fill=(120, 120, 115))
    noisy = img.copy()
    npx = noisy.load()
    assert npx is not None
    for y in range(SIZE[1]):
        for x in range(SIZE[0]):
            noise = rng.randint(-9, 9)
            npx[x, y] = tuple(max(0, min(255, c + noise)) for c in npx[x, y])
    noisy.filter(ImageFilter.GaussianBlur(0.6)).save(HERE / "library-photo.jpg", "JPEG", quality=85)


def wind_farm_edited() -> None:
    # A photographed landscape with wind turbines whose sky was replaced by an AI fill (the smooth band on top).
    img = _landscape(random.Random(31))
    draw = ImageDraw.Draw(img)
    for x in (90, 210, 330, 420):
        draw.line([x, 120, x, 230], fill=(235, 235, 235), width=4)
        for dx, dy in ((0, -40), (35, 20), (-35, 20)):
            draw.line([x, 120, x + dx, 120 + dy], fill=(245, 245, 245), width=3)
    sky = Image.new("RGB", (SIZE[0], 70))
    sky_draw = ImageDraw.Draw(sky)
    for y in range(70):
        sky_draw.line([0, y, SIZE[0], y], fill=(255, 150 + y, 90 + y))
    img.paste(sky.filter(ImageFilter.GaussianBlur(2)), (0, 0))
    img.save(HERE / "wind-farm.jpg", "JPEG", quality=85)


if __name__ == "__main__":
    camera()
    ai_generated()
    edited()
    typhoon_render()
    bridge_photo()
    library_photo()
    wind_farm_edited()
