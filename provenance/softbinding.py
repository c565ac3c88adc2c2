"""Soft bindings: a content fingerprint signed into every manifest, so that a copy whose manifest was
stripped (a CMS resize, a re-encode, a screenshot) can be matched back to its original.

The algorithm is ``io.iscc.v0`` from the C2PA soft-binding algorithm list (ISO 24138, the International
Standard Content Code): the 64-bit ISCC Content-Code Image for images, the Content-Code Text of the
canonical text for articles. Two codes of the same kind match when their Hamming distance is at most
:data:`MAX_DISTANCE` bits (chosen from ``bench/bench_soft_binding.py``: README, "Soft bindings").

Invariants:

* Pixels of untrusted images are decoded by Pillow only in an isolated worker (``fingerprint`` of
  :data:`provenance._c2pa.WORKER_OPS`) under the caller's memory and time caps, and never beyond the
  caller's ``Limits.max_pixels`` (Pillow's decompression-bomb guard is bounded by it too).
* The image is normalised as iscc-sdk normalises it for the Image-Code (EXIF orientation applied,
  transparency over white, grayscale, 32x32 bicubic) with one measured difference: no border trim.
  iscc-sdk trims a border of the top-left pixel's colour; measured (bench_soft_binding.py, and a real
  photograph of the conformance files), how much such a trim cuts depends on grain, lossy noise and
  decode scale, and on photographs with a dark or flat edge it cut content differently in each copy:
  most missed copies came from it. A JPEG is decoded at 1/2 to 1/8 scale (its DCT scaling, never below
  256 pixels a side), which keeps a stamp cheap. The hash is the ISCC Image-Code's (the
  median-thresholded 8x8 lowest frequencies of the 32x32 DCT), computed from those frequencies only;
  it equals ``iscc_core.gen_image_code_v0`` of the same pixels (tested).
* A featureless image (a flat colour) gets no fingerprint: every such image would match every other.
* A fingerprint is never a label source: it only finds a candidate original, whose own manifest says
  what it is.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import operator
import statistics
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, Literal

import iscc_core
from PIL import Image, ImageOps

from provenance import isolation
from provenance.errors import InputError, InputTooComplexError, InputTooLargeError
from provenance.media import DEFAULT_LIMITS, Limits

ALG: Final = "io.iscc.v0"
LABEL: Final = "c2pa.soft-binding"
BITS: Final = 64
#: Codes of the same kind at most this many bits apart (of 64) match. Measured (bench_soft_binding.py: 200
#: originals, 11 derivations each, 9,996 unrelated images): 99.5-100% of resized, recompressed, converted
#: and stripped copies resolve to their original and no unrelated image matches; the first false match
#: comes at 8 bits, and 5% crops need 12 (README, "Soft bindings").
MAX_DISTANCE: Final = 4

#: Longest text fingerprinted, in characters: the ISCC Text-Code costs ~3 s per million characters
#: (pure Python), so a longer text gets no soft binding rather than a multi-second stamp.
MAX_TEXT_CHARACTERS: Final = 300_000

#: A JPEG is decoded at the largest DCT scale (1/2, 1/4, 1/8) that keeps both sides at least this long.
DRAFT_SIDE: Final = 256
#: Below this standard deviation (grey levels) of the 32x32 normalised pixels an image is featureless.
MIN_CONTRAST: Final = 2.0

Kind = Literal["image", "text"]

_NAMES: Final = {"image": "ISCC Content-Code Image", "text": "ISCC Content-Code Text"}


@dataclass(frozen=True)
class SoftBinding:
    """One fingerprint: its algorithm, the value the assertion carries (the ISCC code, ``ISCC:...``), what
    kind of content it fingerprints, and its 64-bit similarity hash as an unsigned integer."""

    alg: str
    value: str
    kind: Kind
    code: int

    def distance(self, other: SoftBinding) -> int:
        """Hamming distance in bits (only meaningful between bindings of the same kind)."""
        return (self.code ^ other.code).bit_count()

    def matches(self, other: SoftBinding) -> bool:
        """Same algorithm and kind, at most :data:`MAX_DISTANCE` bits apart."""
        return (self.alg, self.kind) == (other.alg, other.kind) and self.distance(other) <= MAX_DISTANCE

    @property
    def base64(self) -> str:
        """The standard base64 of the code's binary form (ISCC header + digest): the assertion's
        ``blocks[].value`` and the Soft Binding Resolution API's ``value``."""
        raw = iscc_core.decode_base32(self.value.removeprefix("ISCC:"))
        return base64.b64encode(raw).decode("ascii")


def _from_iscc(code: str) -> SoftBinding:
    try:
        unit = iscc_core.Code(code)
    except (ValueError, binascii.Error, KeyError, IndexError, TypeError) as exc:
        raise InputError(f"not an ISCC code: {exc}") from exc
    if unit.maintype != iscc_core.MT.CONTENT or unit.length != BITS:
        raise InputError(f"not a {BITS}-bit ISCC Content-Code")
    kind: Kind
    if unit.subtype == iscc_core.ST_CC.IMAGE:
        kind = "image"
    elif unit.subtype == iscc_core.ST_CC.TEXT:
        kind = "text"
    else:
        raise InputError("only ISCC Content-Codes of images and text are resolved")
    return SoftBinding(ALG, f"ISCC:{unit.code}", kind, int.from_bytes(unit.hash_bytes, "big"))


# ----------------------------------------------------------------------------------------- images

# Rows of the DCT-II basis for the 8 lowest frequencies of 32 samples (unnormalised, as iscc-core's DCT).
_BASIS: Final = tuple(tuple(math.cos(math.pi / 32 * (n + 0.5) * k) for n in range(32)) for k in range(8))


def _dot(a: tuple[float, ...] | list[float] | list[int], b: tuple[float, ...]) -> float:
    return float(sum(map(operator.mul, a, b)))


def image_hash(pixels: list[int]) -> bytes:
    """The 64-bit ISCC Image-Code digest of 32x32 normalised grey pixels (row by row).

    Equal to ``iscc_core.soft_hash_image_v0(pixels, 64)``, computed from the 8x8 lowest frequencies
    only (~15x faster: the stamp pays for it).
    """
    if len(pixels) != 1024:
        raise ValueError("an image hash takes 32x32 pixels")
    rows = [pixels[i : i + 32] for i in range(0, 1024, 32)]
    low = [[_dot(row, basis) for basis in _BASIS] for row in rows]  # 32 rows x 8 horizontal frequencies
    columns = list(zip(*low, strict=True))  # 8 horizontal frequencies x 32 rows
    coefficients = [_dot(columns[u], _BASIS[v]) for v in range(8) for u in range(8)]
    median = statistics.median(coefficients)
    value = 0
    for coefficient in coefficients:
        value = (value << 1) | (coefficient > median)
    return value.to_bytes(8, "big")


def _decoded(data: bytes, max_pixels: int) -> Image.Image:
    """The image's first frame, EXIF-oriented, transparency over white, grey (a JPEG at reduced scale)."""
    with warnings.catch_warnings():
        # Our own cap decides (below); Pillow's warning threshold is lower than it.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img: Image.Image = Image.open(io.BytesIO(data))
            width, height = img.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise InputTooLargeError(
                    f"image dimensions {width}x{height} exceed the safety limit of {max_pixels} pixels"
                )
            if img.format == "JPEG":
                img.draft("L" if img.mode in ("RGB", "L") else None, (DRAFT_SIDE, DRAFT_SIDE))
            img = ImageOps.exif_transpose(img)
            img.load()
        except Image.DecompressionBombError as exc:
            raise InputTooLargeError(f"image dimensions exceed the safety limit: {exc}") from exc
        except InputError:
            raise
        except Exception as exc:  # Pillow raises many types for garbage and formats it cannot decode
            raise InputError(f"the image cannot be decoded for a fingerprint ({type(exc).__name__})") from exc
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", img.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    return img.convert("L")


def normalized_pixels(data: bytes, max_pixels: int) -> list[int]:
    """The 32x32 grey pixels the Image-Code is computed from. Decodes ``data``: run it isolated."""
    img = _decoded(data, max_pixels)
    small = img.resize((32, 32), Image.Resampling.BICUBIC, reducing_gap=4.0)
    return list(small.tobytes())  # mode "L": one byte per pixel, row by row


def image_code(data: bytes, max_pixels: int) -> str:
    """The ISCC Content-Code Image (``ISCC:...``) of an image. Decodes ``data``: run it isolated."""
    pixels = normalized_pixels(data, max_pixels)
    if statistics.pstdev(pixels) < MIN_CONTRAST:
        raise InputError("the image is featureless (one flat colour): it gets no fingerprint")
    digest = image_hash(pixels)
    unit = iscc_core.encode_component(iscc_core.MT.CONTENT, iscc_core.ST_CC.IMAGE, iscc_core.VS.V0, BITS, digest)
    return f"ISCC:{unit}"


def op_fingerprint(call: isolation.Call) -> tuple[Any, list[bytes]]:
    """The isolated worker's ``fingerprint`` operation (registered in :data:`provenance._c2pa.WORKER_OPS`)."""
    (max_pixels,) = call.args
    return image_code(call.blobs[0], int(max_pixels)), []


def with_image_binding(data: bytes, max_pixels: int, manifest: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """``manifest`` with the soft-binding assertion of the image's code appended, and the code; or no code and
    ``manifest`` unchanged for an image that gets none (as :func:`optional_image_binding`). Decodes ``data``:
    run it isolated (the signing call of :func:`provenance._c2pa.sign` runs it before it signs)."""
    try:
        code = image_code(data, max_pixels)
    except (InputTooLargeError, InputTooComplexError):
        raise
    except InputError:
        return None, manifest
    assertions = [*manifest.get("assertions", ()), assertion(_from_iscc(code))]
    return code, {**manifest, "assertions": assertions}


def signed_binding(code: str) -> SoftBinding:
    """The binding of a code a signing call computed (:func:`with_image_binding`); raises :class:`InputError`
    when it is not an image code."""
    binding = _from_iscc(code)
    if binding.kind != "image":
        raise InputError("the signing call returned a code that is not an image code")
    return binding


def image_binding(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SoftBinding:
    """The ISCC Content-Code Image of an image's pixels, decoded in an isolated worker under ``limits``.

    Raises :class:`InputError` when they cannot be decoded (garbage, a format Pillow does not read such as
    HEIC) or the image is featureless, :class:`~provenance.errors.InputTooLargeError` above
    ``limits.max_pixels`` and :class:`~provenance.errors.InputTooComplexError` when the decoder hits the
    worker's memory or time cap.
    """
    if limits.unsafe_parse_in_process:
        code = image_code(data, limits.max_pixels)
    else:
        code, _ = isolation.run(limits, "fingerprint", (limits.max_pixels,), [data], size=len(data))
    if not isinstance(code, str):
        raise InputError("the isolated fingerprint returned no code")
    binding = _from_iscc(code)
    if binding.kind != "image":
        raise InputError("the isolated fingerprint returned a code that is not an image code")
    return binding


def optional_image_binding(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SoftBinding | None:
    """:func:`image_binding`, or ``None`` for an image that gets none (featureless, or pixels Pillow does not
    decode, such as HEIC): a stamp without a soft binding is still a stamp. The caps still raise
    (:class:`InputTooLargeError`, :class:`InputTooComplexError`): hostile input is refused, not stamped."""
    try:
        return image_binding(data, limits=limits)
    except (InputTooLargeError, InputTooComplexError):
        raise
    except InputError:
        return None


#: Fingerprints run here while the caller reads the upload (each in its own isolated worker).
_fingerprinter = ThreadPoolExecutor(max_workers=4, thread_name_prefix="provenance-fingerprint")


def image_binding_later(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Callable[[], SoftBinding | None]:
    """Start :func:`optional_image_binding`; the returned function gives its result (or raises its error)."""
    return _fingerprinter.submit(optional_image_binding, data, limits=limits).result


# ------------------------------------------------------------------------------------------- text


def text_binding(text: str) -> SoftBinding:
    """The ISCC Content-Code Text of a text (the Text-Code normalises the text itself).

    Raises :class:`~provenance.errors.InputTooLargeError` above :data:`MAX_TEXT_CHARACTERS` and
    :class:`InputError` for a text with nothing to fingerprint.
    """
    if len(text) > MAX_TEXT_CHARACTERS:
        raise InputTooLargeError(
            f"the text has {len(text)} characters; texts of more than {MAX_TEXT_CHARACTERS} get no fingerprint"
        )
    if not any(ch.isalnum() for ch in text):
        raise InputError("the text has no letters or digits to fingerprint")
    return _from_iscc(iscc_core.gen_text_code_v0(text, bits=BITS)["iscc"])


def optional_text_binding(text: str) -> SoftBinding | None:
    """:func:`text_binding`, or ``None`` for a text that gets none (too long, nothing to fingerprint)."""
    try:
        return text_binding(text)
    except InputError:
        return None


# ------------------------------------------------------------------------------------ wire forms


def parse_value(alg: str, value: str) -> SoftBinding:
    """A binding a client sent: ``alg`` must be :data:`ALG`; ``value`` is the ISCC code (with or without
    ``ISCC:``) or the base64 of its binary form. Raises :class:`InputError`."""
    if alg != ALG:
        raise InputError(f"unsupported soft-binding algorithm {alg!r} (supported: {ALG})")
    if not isinstance(value, str) or len(value) > 128:
        raise InputError("a soft-binding value is an ISCC code or its base64, at most 128 characters")
    value = value.strip()
    if value.upper().startswith("ISCC:"):
        return _from_iscc("ISCC:" + value[5:].upper())
    if value.isalnum() and value.upper() == value:
        # Base32 (the ISCC code without its prefix); a base64 string of capitals and digits only is
        # also tried as base64 below when it is not a valid code.
        try:
            return _from_iscc(f"ISCC:{value}")
        except InputError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InputError("the value is neither an ISCC code nor base64") from exc
    if not raw:
        raise InputError("the value is empty")
    return _from_iscc("ISCC:" + iscc_core.encode_base32(raw))


def assertion(binding: SoftBinding) -> dict[str, Any]:
    """The ``c2pa.soft-binding`` assertion of a manifest definition (C2PA 2.x: ``alg``, ``blocks`` of
    ``scope`` and ``value``, ``pad``, ``name``). The value is the base64 of the ISCC code's binary form;
    the scope is empty: the fingerprint covers the whole content."""
    return {
        "label": LABEL,
        "data": {
            "alg": binding.alg,
            "blocks": [{"scope": {}, "value": binding.base64}],
            "name": _NAMES[binding.kind],
            "pad": [],
        },
    }


def from_assertion(data: Any) -> SoftBinding | None:
    """The binding of a ``c2pa.soft-binding`` assertion's data as the SDK reports it, or ``None`` when it
    uses another algorithm or its value is not an ISCC Content-Code of an image or text."""
    if not isinstance(data, dict) or data.get("alg") != ALG:
        return None
    blocks = data.get("blocks")
    for block in blocks if isinstance(blocks, list) else ():
        value = block.get("value") if isinstance(block, dict) else None
        if isinstance(value, str):
            try:
                return parse_value(ALG, value)
            except InputError:
                continue
    return None
