"""renditions: a smaller copy of a stamped image, signed with the original as its ``parentOf`` ingredient.

A CMS asks for its sub-sizes here instead of resizing itself (which drops the manifest), so every size a
page shows keeps valid credentials.

Invariants:

* Provenance is never erased. The original, with its manifest, is the ``parentOf`` ingredient of the
  rendition's manifest, whose actions are ``c2pa.opened`` (of that ingredient), ``c2pa.resized`` and, when
  the format changes, ``c2pa.converted``. The rendition declares nothing of its own about its origin: its
  labels are the original's, read by the policy through the ingredient.
* Never upscaled: a width above the original's is refused (:class:`UpscaleError`).
* Pixels are decoded and encoded by Pillow in an isolated worker (``render`` of
  :data:`provenance._c2pa.WORKER_OPS`), under the same memory and time caps as every SDK call: a
  decompression bomb or a slow decoder costs a worker, never the calling process.
* The result is re-read and must be ``trusted`` under the configured anchors and keep every label of the
  original (:func:`provenance.stamp.require_verified`), or nothing is returned.
* It carries a ``c2pa.soft-binding`` assertion: the fingerprint of its own pixels
  (:mod:`provenance.softbinding`).
"""

from __future__ import annotations

import enum
import io
import warnings
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image, ImageOps

from provenance import __version__, _c2pa, isolation, softbinding
from provenance.errors import InputError, UnsupportedMediaError, VerificationError
from provenance.inspect import inspect_checked, sha256_later
from provenance.keys.signers import Signer
from provenance.media import DEFAULT_LIMITS, JPEG, STAMPABLE, WEBP, Limits, check_input
from provenance.models import State, Verdict
from provenance.selfcheck import SelfCheck
from provenance.stamp import CLAIM_GENERATOR, require_verified, sign_verified, timestamp_url
from provenance.timestamps import Timestamping
from provenance.trust import TrustConfig

PARENT_INGREDIENT_ID: Final = "original"
#: JPEG/WebP quality of renditions when the caller does not choose (Pillow's scale, 1-100).
DEFAULT_QUALITY: Final = 82


class Format(enum.StrEnum):
    """A rendition's encoding, named by its file extension."""

    JPEG = "jpg"
    WEBP = "webp"

    @property
    def media_type(self) -> str:
        return JPEG if self is Format.JPEG else WEBP


_PILLOW_FORMATS: Final = {Format.JPEG: "JPEG", Format.WEBP: "WEBP"}


class UpscaleError(InputError):
    """The rendition asked for is wider than the original (renditions are never upscaled)."""

    kind = "input-error"

    def __init__(self, message: str, original_width: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.original_width = original_width


@dataclass(frozen=True)
class Rendition:
    """A signed rendition: its bytes, its size in pixels, its verdict (trusted by construction, with every
    label of the original) and its manifest store on its own."""

    data: bytes
    format: Format
    width: int
    height: int
    verdict: Verdict
    manifest: bytes

    @property
    def media_type(self) -> str:
        return self.format.media_type


def _encoded(data: bytes, width: int, fmt: Format, quality: int) -> tuple[list[int], list[bytes]]:
    """Resize ``data`` to ``width`` (height in proportion) and encode it: ``([width, height,
    original_width], [bytes])``, or ``([0, 0, original_width], [])`` when ``width`` is above the original's."""
    with warnings.catch_warnings():
        # check_input bounded the pixels already; the worker's memory cap bounds the decoder.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as opened:
                icc = opened.info.get("icc_profile")
                img = ImageOps.exif_transpose(opened)  # EXIF is not carried over: its orientation is applied
                img.load()
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise InputError(f"the original cannot be decoded ({type(exc).__name__})") from exc
    original_width, original_height = img.size
    if width > original_width:
        return [0, 0, original_width], []
    height = max(1, round(original_height * width / original_width))
    if (width, height) != img.size:
        img = img.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if fmt is Format.JPEG:
        if img.mode in ("RGBA", "LA", "PA", "P"):
            img = img.convert("RGBA")
            background = Image.new("RGB", img.size, (255, 255, 255))
            background.paste(img, mask=img.getchannel("A"))
            img = background
        elif img.mode not in ("RGB", "L", "CMYK"):
            img = img.convert("RGB")
        params: dict[str, Any] = {"quality": quality, "optimize": True}
    else:
        if img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.getbands() or img.mode == "P" else "RGB")
        params = {"quality": quality, "method": 4}
    if icc:
        params["icc_profile"] = icc  # colours look the same; no other metadata is copied
    out = io.BytesIO()
    img.save(out, _PILLOW_FORMATS[fmt], **params)
    return [width, height, original_width], [out.getvalue()]


def op_render(call: isolation.Call) -> tuple[Any, list[bytes]]:
    """The isolated worker's ``render`` operation (registered in :data:`provenance._c2pa.WORKER_OPS`)."""
    width, fmt, quality = call.args
    return _encoded(call.blobs[0], int(width), Format(fmt), int(quality))


def _resize(data: bytes, width: int, fmt: Format, quality: int, limits: Limits) -> tuple[bytes, int, int]:
    if limits.unsafe_parse_in_process:
        sizes, out = _encoded(data, width, fmt, quality)
    else:
        result, out = isolation.run(limits, "render", (width, fmt.value, quality), [data], size=len(data))
        sizes = result if isinstance(result, list) and len(result) == 3 else [0, 0, 0]
    made_width, made_height, original_width = (int(v) for v in sizes)
    if not out:
        if original_width <= 0:
            raise InputError("the isolated renderer returned no result")
        raise UpscaleError(
            f"the original is {original_width} pixels wide; a rendition {width} pixels wide would be upscaled",
            original_width,
        )
    return out[0], made_width, made_height


def _manifest(
    fmt: Format, original_type: str, width: int, height: int, binding: softbinding.SoftBinding | None
) -> dict[str, Any]:
    agent = {"name": CLAIM_GENERATOR, "version": __version__}
    actions: list[dict[str, Any]] = [
        {"action": "c2pa.opened", "parameters": {"ingredientIds": [PARENT_INGREDIENT_ID]}, "softwareAgent": agent},
        {
            "action": "c2pa.resized",
            "softwareAgent": agent,
            "parameters": {"description": f"resized to {width}x{height} pixels"},
        },
    ]
    if fmt.media_type != original_type:
        actions.append(
            {
                "action": "c2pa.converted",
                "softwareAgent": agent,
                "parameters": {"description": f"converted from {original_type} to {fmt.media_type}"},
            }
        )
    return {
        "claim_generator_info": [agent],
        "format": fmt.media_type,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": actions}},
            *([softbinding.assertion(binding)] if binding is not None else []),
        ],
    }


def render(
    original: bytes,
    width: int,
    fmt: Format,
    signer: Signer,
    trust: TrustConfig,
    *,
    quality: int = DEFAULT_QUALITY,
    title: str = "original",
    limits: Limits = DEFAULT_LIMITS,
    timestamping: Timestamping | None = None,
    self_check: SelfCheck = SelfCheck.CACHED_CHAIN,
) -> Rendition:
    """A rendition of the stamped image ``original``, ``width`` pixels wide, encoded as ``fmt`` and signed
    with the original (and its manifest) as ``parentOf`` ingredient.

    The original must verify as trusted under ``trust``. Every SDK and Pillow call runs isolated under
    ``limits``; ``self_check`` says how the rendition is re-verified (:mod:`provenance.selfcheck`).
    Raises :class:`UpscaleError` (``width`` above the original's), :class:`InputError` (an original that
    cannot be decoded or is too complex), :class:`UnsupportedMediaError`,
    :class:`~provenance.errors.SigningError` and :class:`VerificationError` (the original does not verify
    as trusted, or the rendition is not trusted or lost one of its labels).
    """
    if width < 1:
        raise InputError("a rendition is at least 1 pixel wide")
    if not 1 <= quality <= 100:
        raise InputError("the quality is between 1 and 100")
    info = check_input(original, limits)
    if info.media_type not in STAMPABLE:
        raise UnsupportedMediaError(f"cannot make renditions of {info.media_type}")
    source = inspect_checked(original, info, trust, sha256_later(original), limits=limits)
    if source.state is not State.TRUSTED:
        raise VerificationError(
            f"the original verifies as {source.state.value}, not trusted: a rendition would not carry its labels",
            hint="renditions are made of originals whose credentials verify under the configured anchors",
        )
    data, made_width, made_height = _resize(original, width, fmt, quality, limits)
    binding = softbinding.optional_image_binding(data, limits=limits)
    manifest = _manifest(fmt, info.media_type, made_width, made_height, binding)
    parent = _c2pa.Ingredient(original, info.media_type, title, PARENT_INGREDIENT_ID)
    tsa_url, _note = timestamp_url(timestamping)
    signed, verdict = sign_verified(
        data, fmt.media_type, manifest, signer, trust, [parent], tsa_url, limits=limits, self_check=self_check
    )
    require_verified(verdict, source.labels, "the rendition")
    return Rendition(signed.data, fmt, made_width, made_height, verdict, signed.manifest)
