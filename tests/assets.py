"""Generated test assets: one signed (or deliberately broken) image per labelling case.

No binary is committed: every asset is drawn with Pillow (``tests.images``) and signed on the fly
with the real C2PA SDK, with keys issued in memory by the development CA. The module is imported
by ``tests/test_generated_cases.py`` and is also a script::

    python -m tests.assets OUTDIR

writes every asset to ``OUTDIR`` together with the trust anchor(s) needed to check it, the verdict
``inspect`` gives it (``*.verdict.json``) and an ``INDEX.txt`` describing each file, so that a
human can open them in any C2PA viewer.

Builders take the newsroom's :class:`Keys` and return the asset's bytes. Manifests that ``stamp``
cannot make (composites, a hand-edited child, a third-party AI vendor) are signed through
``provenance._c2pa.sign`` or, when several ingredients are needed, the SDK directly. The SDK
settings used here, like the library's, disable the SDK's automatic actions, so every action in
a manifest is one written below. c2pa-rs requires ``c2pa.created`` to carry a
``digitalSourceType`` and ``c2pa.opened`` / ``c2pa.placed`` to name their ingredient in
``parameters.ingredientIds``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509

from provenance import FileKeySigner, Source, StampRequest, TrustConfig, _c2pa, inspect, stamp
from provenance.keys import Algorithm, IssuedChain, issue_chain
from provenance.media import DEFAULT_LIMITS
from provenance.policy import IPTC
from tests import images

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"

TRAINED: Final = IPTC + "trainedAlgorithmicMedia"
COMPOSITE_TRAINED: Final = IPTC + "compositeWithTrainedAlgorithmicMedia"
COMPOSITE_SYNTHETIC: Final = IPTC + "compositeSynthetic"
ALGORITHMIC: Final = IPTC + "algorithmicMedia"
CAPTURE: Final = IPTC + "digitalCapture"
HUMAN_EDITS: Final = IPTC + "humanEdits"

TEST_GENERATOR: Final = {"name": "test-asset-generator", "version": "1"}
VENDOR_ORG: Final = "Unknown AI Vendor"
OVERRIDE_REASON: Final = "Photo desk checked the original camera file; the upstream AI claim is wrong."
EXPIRING_LIFETIME: Final = dt.timedelta(seconds=2)

_SOS: Final = 0xDA
_APP11: Final = 0xEB


# --------------------------------------------------------------------------------------------
# Keys


@dataclass(frozen=True)
class Keys:
    """One development chain, its signer, and a trust configuration holding only its root."""

    chain: IssuedChain
    signer: FileKeySigner
    trust: TrustConfig

    @classmethod
    def from_chain(cls, chain: IssuedChain) -> Keys:
        return cls(chain, FileKeySigner.from_pem(chain.key_pem, chain.chain_pem), TrustConfig(chain.root_pem.decode()))

    @classmethod
    def issue(cls, org: str, alg: Algorithm = Algorithm.ES256, **validity: Any) -> Keys:
        return cls.from_chain(issue_chain(org, alg, **validity))

    @property
    def leaf_not_after(self) -> dt.datetime:
        return x509.load_pem_x509_certificates(self.chain.chain_pem)[0].not_valid_after_utc


def expiring_keys(lifetime: dt.timedelta = EXPIRING_LIFETIME) -> Keys:
    """A chain whose signing leaf expires ``lifetime`` from now (c2pa-rs refuses expired signers)."""
    now = dt.datetime.now(dt.UTC)
    return Keys.issue("Expiring Newsroom", not_before=now - dt.timedelta(hours=1), not_after=now + lifetime)


def wait_until_expired(keys: Keys, margin: float = 1.0) -> None:
    """Sleep until the leaf of ``keys`` has been expired for ``margin`` seconds."""
    remaining = (keys.leaf_not_after - dt.datetime.now(dt.UTC)).total_seconds() + margin
    if remaining > 0:
        time.sleep(remaining)


# --------------------------------------------------------------------------------------------
# Manifests and signing


def action(name: str, source_type: str | None = None, *ingredient_ids: str) -> dict[str, Any]:
    """One ``c2pa.actions.v2`` entry."""
    entry: dict[str, Any] = {"action": name}
    if source_type:
        entry["digitalSourceType"] = source_type
    if ingredient_ids:
        entry["parameters"] = {"ingredientIds": list(ingredient_ids)}
    return entry


def manifest(*actions: dict[str, Any], title: str | None = None) -> dict[str, Any]:
    """A manifest definition with one ``c2pa.actions.v2`` assertion holding ``actions``."""
    definition: dict[str, Any] = {
        "claim_generator_info": [TEST_GENERATOR],
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": list(actions)}}],
    }
    if title:
        definition["title"] = title
    return definition


def sign(
    data: bytes,
    definition: dict[str, Any],
    keys: Keys,
    *,
    media_type: str = JPEG,
    parent: _c2pa.Ingredient | None = None,
) -> bytes:
    """Sign ``definition`` into ``data`` through the library's SDK adapter."""
    return _c2pa.sign(
        data, media_type, definition, keys.signer, keys.trust, [parent] if parent else [], limits=DEFAULT_LIMITS
    ).data


def sign_with_ingredients(
    data: bytes,
    definition: dict[str, Any],
    keys: Keys,
    ingredients: list[_c2pa.Ingredient],
    *,
    media_type: str = JPEG,
) -> bytes:
    """Sign ``definition`` into ``data`` with several ingredients (parentOf / componentOf / inputTo)."""
    return _c2pa.sign(data, media_type, definition, keys.signer, keys.trust, ingredients, limits=DEFAULT_LIMITS).data


# --------------------------------------------------------------------------------------------
# JPEG surgery


@dataclass(frozen=True)
class Segment:
    """A JPEG marker segment: ``data[start:end]`` includes the 0xFF marker and the length field."""

    marker: int
    start: int
    end: int


def jpeg_segments(data: bytes) -> list[Segment]:
    """The marker segments of a JPEG, from the first after SOI up to and including SOS."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out: list[Segment] = []
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"no marker at offset {pos}")
        marker = data[pos + 1]
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        out.append(Segment(marker, pos, end))
        if marker == _SOS:
            return out
        pos = end
    raise ValueError("no start-of-scan marker")


def scan_start(data: bytes) -> int:
    """Offset of the first byte of entropy-coded image data (just after the SOS header)."""
    return jpeg_segments(data)[-1].end


def scan_data(data: bytes) -> bytes:
    """The entropy-coded image data of a JPEG (after the SOS header, up to and including EOI)."""
    return data[scan_start(data) :]


def app11_segments(data: bytes) -> bytes:
    """All APP11 (0xFFEB) segments of a JPEG, concatenated: where C2PA embeds its JUMBF store."""
    return b"".join(data[s.start : s.end] for s in jpeg_segments(data) if s.marker == _APP11)


def without_app11(data: bytes) -> bytes:
    """``data`` with every APP11 segment removed."""
    kept = [data[:2]]
    for s in jpeg_segments(data):
        if s.marker != _APP11:
            kept.append(data[s.start : s.end])
    kept.append(scan_data(data))
    return b"".join(kept)


def tampered_pixels(jpeg: bytes, count: int = 16) -> bytes:
    """``jpeg`` with ``count`` bytes of its entropy-coded image data changed.

    Only bytes after the SOS header are touched (never the APP11/JUMBF segments before it), and
    never 0xFF, 0x00 or a byte following 0xFF, so the marker structure stays intact and the file
    still parses: only the C2PA data hash can notice.
    """
    buf = bytearray(jpeg)
    start = scan_start(jpeg)
    end = len(buf) - 2  # keep EOI
    pos = start + (end - start) // 2
    changed = 0
    while changed < count:
        if pos >= end:
            raise ValueError("not enough entropy-coded data to tamper with")
        old = buf[pos]
        new = old ^ 0x55
        if old not in (0x00, 0xFF) and buf[pos - 1] != 0xFF and new != 0xFF:
            buf[pos] = new
            changed += 1
        pos += 7
    return bytes(buf)


def transplant_manifest(signed_jpeg: bytes, other_jpeg: bytes) -> bytes:
    """``other_jpeg`` carrying the C2PA APP11 segments of ``signed_jpeg``.

    The segments are inserted where c2pa-rs puts them (after APP0/JFIF when there is one); any
    APP11 the other JPEG had is dropped first.
    """
    store = app11_segments(signed_jpeg)
    if not store:
        raise ValueError("the signed JPEG has no APP11 segments")
    target = without_app11(other_jpeg)
    first = jpeg_segments(target)[0]
    insert_at = first.end if first.marker == 0xE0 else 2
    return target[:insert_at] + store + target[insert_at:]


def png_idat(data: bytes) -> bytes:
    """The concatenated IDAT chunk payloads of a PNG (its compressed pixel data)."""
    pos, out = 8, []
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            out.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# Builders: one per case. Each takes the newsroom's keys.


def ai_generated_jpeg(newsroom: Keys, seed: int = 1) -> bytes:
    """AI-generated image stamped by the newsroom: c2pa.created + trainedAlgorithmicMedia."""
    request = StampRequest(source=Source.AI_GENERATED, title="AI generated illustration")
    return stamp(images.jpeg(seed=seed), request, newsroom.signer, newsroom.trust).data


def ai_generated_png(newsroom: Keys) -> bytes:
    """The AI-generated case as a PNG (the manifest goes in a caBX chunk)."""
    request = StampRequest(source=Source.AI_GENERATED, title="AI generated illustration (PNG)")
    return stamp(images.png(seed=2), request, newsroom.signer, newsroom.trust).data


def camera_capture_jpeg(newsroom: Keys) -> bytes:
    """Camera capture stamped by the newsroom: c2pa.created + digitalCapture (plus unsigned camera EXIF)."""
    request = StampRequest(source=Source.CAMERA, title="Press conference")
    return stamp(images.camera_jpeg(seed=3), request, newsroom.signer, newsroom.trust).data


def composite_edited_jpeg(newsroom: Keys) -> bytes:
    """Capture composited with AI content.

    c2pa.created + digitalCapture, then c2pa.edited + compositeWithTrainedAlgorithmicMedia.
    """
    definition = manifest(
        action("c2pa.created", CAPTURE), action("c2pa.edited", COMPOSITE_TRAINED), title="AI composite (edited)"
    )
    return sign(images.jpeg(seed=4), definition, newsroom)


def _placed(newsroom: Keys, source_type: str, title: str) -> bytes:
    base = images.jpeg(seed=5)
    definition = manifest(
        action("c2pa.opened", None, "base"),
        action("c2pa.placed", source_type, "overlay"),
        title=title,
    )
    return sign_with_ingredients(
        base,
        definition,
        newsroom,
        [
            _c2pa.Ingredient(base, JPEG, "background photo", "base", "parentOf"),
            _c2pa.Ingredient(images.png(80, 60, seed=6), PNG, "generated overlay", "overlay", "componentOf"),
        ],
    )


def composite_placed_jpeg(newsroom: Keys) -> bytes:
    """Photo with a placed AI component.

    c2pa.opened (parentOf photo) + c2pa.placed (componentOf overlay) + compositeWithTrainedAlgorithmicMedia.
    """
    return _placed(newsroom, COMPOSITE_TRAINED, "AI composite (placed)")


def placed_trained_jpeg(newsroom: Keys) -> bytes:
    """Photo with a placed AI element: c2pa.placed (not an origin action) + trainedAlgorithmicMedia."""
    return _placed(newsroom, TRAINED, "AI element placed")


def ai_element_in_photo_jpeg(newsroom: Keys) -> bytes:
    """A camera photo with a placed element whose own (trusted) manifest says AI-generated.

    created/digitalCapture + c2pa.placed of a componentOf ingredient that was created with
    trainedAlgorithmicMedia: the photo *contains* AI content, it is not AI-generated.
    """
    definition = manifest(
        action("c2pa.created", CAPTURE), action("c2pa.placed", None, "element"), title="Photo with an AI element"
    )
    element = _c2pa.Ingredient(ai_generated_png(newsroom), PNG, "generated element", "element", "componentOf")
    return sign_with_ingredients(images.jpeg(seed=8), definition, newsroom, [element])


def composite_synthetic_jpeg(newsroom: Keys) -> bytes:
    """Capture composited with synthetic content: created/digitalCapture, then c2pa.edited + compositeSynthetic."""
    definition = manifest(
        action("c2pa.created", CAPTURE), action("c2pa.edited", COMPOSITE_SYNTHETIC), title="Synthetic composite"
    )
    return sign(images.jpeg(seed=7), definition, newsroom)


def edited_with_trained_model_jpeg(newsroom: Keys) -> bytes:
    """Capture edited by a model: created/digitalCapture, then c2pa.edited + trainedAlgorithmicMedia."""
    definition = manifest(
        action("c2pa.created", CAPTURE), action("c2pa.edited", TRAINED), title="Capture edited by a model"
    )
    return sign(images.jpeg(seed=8), definition, newsroom)


def algorithmic_media_jpeg(newsroom: Keys) -> bytes:
    """Procedurally generated (non-trained) image: c2pa.created + algorithmicMedia (no label)."""
    definition = manifest(action("c2pa.created", ALGORITHMIC), title="Procedural pattern")
    return sign(images.jpeg(seed=9), definition, newsroom)


def sdk_capture_jpeg(newsroom: Keys) -> bytes:
    """Capture signed by a third-party tool (SDK-built): c2pa.created + digitalCapture (no label)."""
    definition = manifest(action("c2pa.created", CAPTURE), title="Camera original")
    return sign(images.jpeg(seed=10), definition, newsroom)


def human_edits_jpeg(newsroom: Keys) -> bytes:
    """Capture retouched by a person: created/digitalCapture, then c2pa.edited + humanEdits (no label)."""
    definition = manifest(
        action("c2pa.created", CAPTURE), action("c2pa.edited", HUMAN_EDITS), title="Retouched capture"
    )
    return sign(images.jpeg(seed=11), definition, newsroom)


def ai_parent_published_jpeg(newsroom: Keys) -> bytes:
    """A trusted AI-generated image stamped again by the newsroom as ai_generated.

    The first manifest becomes the parentOf ingredient of the second.
    """
    request = StampRequest(source=Source.AI_GENERATED, title="Published AI illustration")
    return stamp(ai_generated_jpeg(newsroom, seed=12), request, newsroom.signer, newsroom.trust).data


def ai_parent_cropped_jpeg(newsroom: Keys) -> bytes:
    """A trusted AI-generated parent, opened (no digitalSourceType) and cropped by a human in another tool."""
    parent = ai_generated_jpeg(newsroom, seed=13)
    definition = manifest(action("c2pa.opened", None, "parent"), action("c2pa.cropped"), title="Cropped")
    return sign(parent, definition, newsroom, parent=_c2pa.Ingredient(parent, JPEG, "AI original", "parent"))


def ai_parent_override_camera_jpeg(newsroom: Keys) -> bytes:
    """A trusted AI-generated upload declared ``camera`` with an override reason (signed in the manifest)."""
    request = StampRequest(source=Source.CAMERA, title="Disputed image", override_upstream=OVERRIDE_REASON)
    return stamp(ai_generated_jpeg(newsroom, seed=14), request, newsroom.signer, newsroom.trust).data


def ai_titled_capture_jpeg(newsroom: Keys) -> bytes:
    """Camera capture whose free-text title says "AI generated image" (titles never make labels)."""
    request = StampRequest(source=Source.CAMERA, title="AI generated image")
    return stamp(images.camera_jpeg(seed=15), request, newsroom.signer, newsroom.trust).data


def xmp_only_jpeg(newsroom: Keys) -> bytes:
    """Unsigned JPEG whose XMP says DigitalSourceType trainedAlgorithmicMedia: no C2PA manifest at all."""
    del newsroom  # unsigned
    return images.xmp_ai_jpeg(seed=16)


def xmp_stamped_camera_jpeg(newsroom: Keys) -> bytes:
    """The unsigned-XMP JPEG stamped by the newsroom as a camera capture (the XMP claim is not provenance)."""
    request = StampRequest(source=Source.CAMERA, title="Wire photo")
    return stamp(images.xmp_ai_jpeg(seed=16), request, newsroom.signer, newsroom.trust).data


def tampered_ai_jpeg(newsroom: Keys) -> bytes:
    """The AI-generated JPEG with 16 bytes of its entropy-coded pixel data changed after signing."""
    return tampered_pixels(ai_generated_jpeg(newsroom, seed=17))


def transplanted_ai_jpeg(newsroom: Keys) -> bytes:
    """The C2PA APP11 segments of a signed AI JPEG moved into a different, unsigned JPEG."""
    return transplant_manifest(ai_generated_jpeg(newsroom, seed=18), images.jpeg(seed=19))


def untrusted_vendor_ai_jpeg(newsroom: Keys) -> bytes:
    """AI-generated image (c2pa.created + trainedAlgorithmicMedia) signed by an AI vendor whose root nobody trusts."""
    del newsroom  # signed by a fresh chain of its own
    vendor = Keys.issue(VENDOR_ORG)
    definition = manifest(action("c2pa.created", TRAINED), title="Vendor render")
    return sign(images.jpeg(seed=20), definition, vendor)


def untrusted_upstream_published_jpeg(newsroom: Keys) -> bytes:
    """The untrusted vendor's AI image stamped by the newsroom as ai_generated (vendor manifest is its parentOf)."""
    request = StampRequest(source=Source.AI_GENERATED, title="Vendor render, published")
    return stamp(untrusted_vendor_ai_jpeg(newsroom), request, newsroom.signer, newsroom.trust).data


Builder = Callable[[Keys], bytes]

#: Every asset built with the newsroom's keys, by file stem.
BUILDERS: Final[dict[str, Builder]] = {
    "01-ai-generated": ai_generated_jpeg,
    "01-ai-generated-png": ai_generated_png,
    "02-camera-capture": camera_capture_jpeg,
    "03-composite-edited": composite_edited_jpeg,
    "03-composite-placed": composite_placed_jpeg,
    "03-ai-element-in-photo": ai_element_in_photo_jpeg,
    "03-composite-synthetic": composite_synthetic_jpeg,
    "03-edited-with-trained-model": edited_with_trained_model_jpeg,
    "03-placed-trained": placed_trained_jpeg,
    "03-algorithmic-media": algorithmic_media_jpeg,
    "03-sdk-capture": sdk_capture_jpeg,
    "03-human-edits": human_edits_jpeg,
    "04-ai-parent-published": ai_parent_published_jpeg,
    "04-ai-parent-cropped": ai_parent_cropped_jpeg,
    "04-ai-parent-override-camera": ai_parent_override_camera_jpeg,
    "05-ai-titled-capture": ai_titled_capture_jpeg,
    "06-xmp-only": xmp_only_jpeg,
    "06-xmp-stamped-camera": xmp_stamped_camera_jpeg,
    "07-tampered-pixels": tampered_ai_jpeg,
    "08-transplanted-manifest": transplanted_ai_jpeg,
    "09-untrusted-signer": untrusted_vendor_ai_jpeg,
    "12-untrusted-upstream-published": untrusted_upstream_published_jpeg,
}


def ai_signed_with(keys: Keys, seed: int = 21) -> bytes:
    """AI-generated image (c2pa.created + trainedAlgorithmicMedia) signed with ``keys``.

    Used for each signing algorithm and for the expiring signer.
    """
    definition = manifest(action("c2pa.created", TRAINED), title=f"Signed with {keys.signer.alg.value}")
    return sign(images.jpeg(seed=seed), definition, keys)


# --------------------------------------------------------------------------------------------
# Script


def _summary(builder: Callable[..., Any]) -> str:
    """The docstring of ``builder`` without its blank line, on one line."""
    lines = (builder.__doc__ or builder.__name__).strip().splitlines()
    return " ".join(line.strip() for line in lines if line.strip())


def _write(out: Path, stem: str, data: bytes, trust: TrustConfig, *, anchor: str, description: str) -> str:
    """Write one asset and its verdict under ``trust``; return its INDEX.txt entry."""
    suffix = ".png" if data.startswith(b"\x89PNG") else ".jpg"
    (out / f"{stem}{suffix}").write_bytes(data)
    verdict = inspect(data, trust)
    (out / f"{stem}.verdict.json").write_text(json.dumps(verdict.to_dict(), indent=2) + "\n")
    labels = ", ".join(verdict.labels) or "no label"
    return f"{stem}{suffix}\n    {description}\n    trust: {anchor} -> {verdict.state.value}, {labels}\n"


def main(argv: list[str] | None = None) -> int:
    """Write every asset, its verdict and the trust anchors to OUTDIR, with an INDEX.txt."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tests.assets OUTDIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    entries: list[str] = []

    newsroom = Keys.issue("Asset Newsroom")
    (out / "newsroom-root.pem").write_bytes(newsroom.chain.root_pem)
    for stem, builder in BUILDERS.items():
        data = builder(newsroom)
        entries.append(
            _write(out, stem, data, newsroom.trust, anchor="newsroom-root.pem", description=_summary(builder))
        )
    entries.append(
        _write(
            out,
            "09-no-trust-anchors",
            ai_generated_jpeg(newsroom, seed=22),
            TrustConfig(),
            anchor="(none)",
            description="The newsroom's AI-generated image, inspected with no trust anchor at all.",
        )
    )

    for alg in Algorithm:
        keys = Keys.issue(f"{alg.name} Newsroom", alg)
        anchor = f"11-{alg.value}-root.pem"
        (out / anchor).write_bytes(keys.chain.root_pem)
        description = f"AI-generated image (c2pa.created + trainedAlgorithmicMedia) signed with {alg.name}."
        entries.append(
            _write(
                out, f"11-signed-{alg.value}", ai_signed_with(keys), keys.trust, anchor=anchor, description=description
            )
        )

    expiring = expiring_keys()
    expired = ai_signed_with(expiring)
    (out / "10-expiring-root.pem").write_bytes(expiring.chain.root_pem)
    wait_until_expired(expiring)
    description = (
        f"AI image signed, without a timestamp, by a leaf that expired at {expiring.leaf_not_after.isoformat()}."
    )
    entries.append(
        _write(
            out, "10-expired-signer", expired, expiring.trust, anchor="10-expiring-root.pem", description=description
        )
    )

    header = (
        "Generated C2PA test assets (python -m tests.assets). Each verdict is what `inspect` says with the\n"
        "trust anchor named on the entry; the untrusted AI vendor's root is deliberately not written.\n\n"
    )
    (out / "INDEX.txt").write_text(header + "\n".join(sorted(entries)))
    print(f"wrote {len(entries)} assets, their verdicts and INDEX.txt to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
