"""Regenerate the sample source images in this folder (deterministic; no network, no models).

    .venv/bin/python samples/make_samples.py

The images are drawn with Pillow; what each one stands for is in samples/README.md.
"""

from __future__ import annotations

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


if __name__ == "__main__":
    camera()
    ai_generated()
    edited()
