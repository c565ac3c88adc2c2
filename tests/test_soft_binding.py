"""Soft bindings (``io.iscc.v0``): the fingerprint equals iscc-core's reference implementation, every stamp
signs it as a ``c2pa.soft-binding`` assertion that c2pa-python reads back and ``inspect`` reports, copies
that lost their manifest still match, unrelated images do not, and the wire forms parse strictly.

The recall and false-match rates on a corpus are measured by ``bench/bench_soft_binding.py``, not here."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import random
from pathlib import Path

import c2pa
import iscc_core
import pytest
from PIL import Image, ImageEnhance

from provenance import FileKeySigner, Source, StampRequest, TrustConfig, inspect, softbinding, stamp
from provenance.articles import parse_payload, stamp_article
from provenance.errors import InputError, InputTooLargeError
from provenance.media import DEFAULT_LIMITS, check_input
from provenance.models import State
from provenance.softbinding import ALG, LABEL, SoftBinding

from . import images

IMAGE_SUBTYPE = iscc_core.ST_CC.IMAGE


def test_image_hash_is_iscc_cores_on_any_pixels() -> None:
    rng = random.Random(7)
    for _ in range(20):
        pixels = [rng.randrange(256) for _ in range(1024)]
        assert softbinding.image_hash(pixels) == iscc_core.soft_hash_image_v0(pixels, 64)
    smooth = [(x * 8 + y * 3) % 256 for y in range(32) for x in range(32)]
    assert softbinding.image_hash(smooth) == iscc_core.soft_hash_image_v0(smooth, 64)
    with pytest.raises(ValueError, match="32x32"):
        softbinding.image_hash([0] * 1000)


@pytest.mark.parametrize("seed", range(4))
def test_image_code_is_the_iscc_image_code_of_the_normalised_pixels(seed: int) -> None:
    data = images.jpeg(640, 480, seed=seed)
    pixels = softbinding.normalized_pixels(data, DEFAULT_LIMITS.max_pixels)
    assert softbinding.image_code(data, DEFAULT_LIMITS.max_pixels) == iscc_core.gen_image_code_v0(pixels, 64)["iscc"]
    binding = softbinding.image_binding(data)  # through the isolated worker: the same code
    assert (binding.alg, binding.kind, binding.value) == (ALG, "image", softbinding.image_code(data, 10**8))
    unit = iscc_core.Code(binding.value)
    assert (unit.maintype, unit.subtype, unit.length) == (iscc_core.MT.CONTENT, IMAGE_SUBTYPE, 64)


def assertion_of(manifest_store: dict[str, object]) -> dict[str, object]:
    active = manifest_store["manifests"][manifest_store["active_manifest"]]  # type: ignore[index]
    found = [a for a in active["assertions"] if a["label"] == LABEL]
    assert len(found) == 1, [a["label"] for a in active["assertions"]]
    return found[0]["data"]  # type: ignore[no-any-return]


def test_a_stamp_signs_the_fingerprint_of_its_pixels(signer: FileKeySigner, trust: TrustConfig) -> None:
    upload = images.jpeg(800, 600, seed=3)
    stamped = stamp(upload, StampRequest(Source.AI_GENERATED), signer, trust)
    assert stamped.soft_binding == softbinding.image_binding(upload) == softbinding.image_binding(stamped.data)
    # As another C2PA reader sees it: alg, one block of the whole content, the value the code's base64.
    with c2pa.Reader("image/jpeg", io.BytesIO(stamped.data)) as reader:
        data = assertion_of(json.loads(reader.json()))
    assert data["alg"] == ALG
    assert data["blocks"] == [{"scope": {}, "value": stamped.soft_binding.base64}]
    raw = base64.b64decode(stamped.soft_binding.base64)
    assert "ISCC:" + iscc_core.encode_base32(raw) == stamped.soft_binding.value
    # inspect reports it, signed and verified like the rest of the manifest.
    verdict = inspect(stamped.data, trust)
    assert verdict.state is State.TRUSTED
    assert verdict.to_dict()["soft_bindings"] == [{"alg": ALG, "code": stamped.soft_binding.value}]


def test_the_fingerprint_is_the_same_wherever_it_is_computed(signer: FileKeySigner, trust: TrustConfig) -> None:
    # An upload with no place for a manifest gets its code inside the signing call; one that carries a
    # manifest gets it in a second worker while it is read. Both sign the code of the same pixels.
    upload = images.jpeg(640, 480, seed=12)
    assert not check_input(upload, DEFAULT_LIMITS).may_carry_manifest
    first = stamp(upload, StampRequest(Source.AI_GENERATED), signer, trust)
    assert check_input(first.data, DEFAULT_LIMITS).may_carry_manifest
    again = stamp(first.data, StampRequest(Source.AI_GENERATED), signer, trust)
    expected = softbinding.image_binding(upload)
    assert first.soft_binding == again.soft_binding == expected
    for stamped in (first, again):
        verdict = inspect(stamped.data, trust)
        assert verdict.to_dict()["soft_bindings"] == [{"alg": ALG, "code": expected.value}]


BODY = (
    "The harbour bridge reopened on Monday after six weeks of repairs to its deck. Engineers replaced "
    "forty expansion joints and resurfaced both carriageways, the city's transport office said. Traffic "
    "was light in the morning but queues formed at the northern approach by the evening rush hour.\n\n"
    "The repairs cost 12 million euros, two million more than planned, after corrosion was found under "
    "the footpath on the eastern side. Cyclists will share the road until the path reopens in spring. "
    "Ferry operators, who had added crossings during the closure, said they would return to the winter "
    "timetable next week."
)


def test_an_article_stamp_signs_the_text_code_of_its_canonical_text(signer: FileKeySigner, trust: TrustConfig) -> None:
    doc = {
        "external_id": "cms-9001",
        "version": 1,
        "headline": "Harbour bridge reopens after repairs",
        "byline": "Desk",
        "language": "en",
        "url": "https://news.example/bridge",
        "body_text": BODY,
        "source": "ai_assisted",
    }
    stamped = stamp_article(parse_payload(json.dumps(doc).encode()), signer, trust)
    expected = iscc_core.gen_text_code_v0(stamped.text.decode(), bits=64)["iscc"]
    assert stamped.soft_binding is not None
    assert (stamped.soft_binding.kind, stamped.soft_binding.value) == ("text", expected)
    verdict = inspect(stamped.text, trust, sidecar=stamped.manifest)
    assert verdict.state is State.TRUSTED
    assert verdict.to_dict()["soft_bindings"] == [{"alg": ALG, "code": expected}]
    # A light edit keeps the text code close; another text does not.
    edited = softbinding.text_binding(stamped.text.decode().replace("Monday", "Tuesday"))
    other = softbinding.text_binding("Markets closed higher on Friday as energy shares rallied for a third day.")
    assert edited.matches(stamped.soft_binding)
    assert not other.matches(stamped.soft_binding)


def derived(data: bytes, how: str) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    if how == "half":
        return images.encode(img.resize((w // 2, h // 2), Image.Resampling.LANCZOS), "JPEG", quality=85)
    if how == "quarter":
        return images.encode(img.resize((w // 4, h // 4), Image.Resampling.LANCZOS), "JPEG", quality=85)
    if how == "q60":
        return images.encode(img, "JPEG", quality=60)
    if how == "webp":
        return images.encode(img, "WEBP", quality=80)
    if how == "png":
        return images.encode(img, "PNG")
    if how == "brighter":
        return images.encode(ImageEnhance.Brightness(img).enhance(1.05), "JPEG", quality=90)
    raise AssertionError(how)


#: A real photograph (of the conformance files; its own manifest is dropped by the re-encode below), with a
#: dark edge: a border trim decided by a grey tolerance cut it differently in each copy (see softbinding).
PHOTO = Path(__file__).parent / "fixtures/external/public-testfiles/truepic-20230212-camera.jpg"


def photo_upload() -> bytes:
    img = Image.open(PHOTO).convert("RGB")
    img.thumbnail((1024, 1024))
    return images.encode(img, "JPEG", quality=92)


@pytest.mark.parametrize("how", ["half", "quarter", "q60", "webp", "png", "brighter"])
def test_a_copy_that_lost_its_manifest_still_matches(how: str, signer: FileKeySigner, trust: TrustConfig) -> None:
    stamped = stamp(photo_upload(), StampRequest(Source.AI_GENERATED), signer, trust)
    copy = derived(stamped.data, how)
    assert inspect(copy, trust).state is State.ABSENT  # the manifest is gone (re-encoded by Pillow)
    assert stamped.soft_binding is not None
    assert softbinding.image_binding(copy).matches(stamped.soft_binding)


def test_unrelated_images_do_not_match() -> None:
    scenes = [images.encode(images.scene(480, 360, seed), "JPEG", quality=90) for seed in range(100, 120)]
    codes = [softbinding.image_binding(data) for data in scenes]
    for i, one in enumerate(codes):
        for other in codes[i + 1 :]:
            assert not one.matches(other), (one.value, other.value, one.distance(other))


def test_an_image_without_features_is_stamped_without_a_fingerprint(signer: FileKeySigner, trust: TrustConfig) -> None:
    flat = images.encode(Image.new("RGB", (400, 300), (40, 90, 160)), "JPEG", quality=90)
    with pytest.raises(InputError, match="featureless"):
        softbinding.image_binding(flat)
    stamped = stamp(flat, StampRequest(Source.HUMAN), signer, trust)
    assert stamped.soft_binding is None
    assert inspect(stamped.data, trust).to_dict()["soft_bindings"] == []


def test_pixels_beyond_the_limit_are_refused_before_decoding() -> None:
    small = dataclasses.replace(DEFAULT_LIMITS, max_pixels=10_000)
    with pytest.raises(InputTooLargeError, match="safety limit"):
        softbinding.image_binding(images.jpeg(320, 240), limits=small)
    with pytest.raises(InputError):
        softbinding.image_binding(b"\xff\xd8\xff\xe0 not really a jpeg")


def test_wire_forms() -> None:
    binding = softbinding.image_binding(images.jpeg(seed=5))
    bare = binding.value.removeprefix("ISCC:")
    for value in (binding.value, bare, binding.base64, binding.value.lower()):
        assert softbinding.parse_value(ALG, value) == binding
    assert softbinding.from_assertion(softbinding.assertion(binding)["data"]) == binding
    assert softbinding.from_assertion({"alg": "com.example.watermark", "blocks": [{"value": bare}]}) is None
    refused = [
        ("com.digimarc.validate.1", binding.value),  # another algorithm
        (ALG, ""),
        (ALG, "!!!"),
        (ALG, "A" * 200),
        (ALG, iscc_core.gen_meta_code_v0("a title")["iscc"]),  # an ISCC, but not a Content-Code
        (ALG, base64.b64encode(b"\x00" * 3).decode()),
    ]
    for alg, value in refused:
        with pytest.raises(InputError):
            softbinding.parse_value(alg, value)
    assert isinstance(binding, SoftBinding)
