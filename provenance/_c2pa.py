"""The only module that imports the C2PA SDK (c2pa-python).

It turns SDK calls into plain data and library errors:

* reading returns :class:`Absent`, :class:`RemoteOnly` or :class:`StoreReport` (the SDK's JSON
  report as a dict), and raises :class:`InputError` / :class:`ManifestError` otherwise;
* signing takes a :class:`provenance.keys.Signer` and returns the signed bytes (or, detached,
  the manifest store bytes).

Invariants kept here: every SDK call on input bytes runs isolated in a worker process with memory
and time caps (:mod:`provenance.isolation`; the handlers are :data:`WORKER_OPS`), unless the caller's
``Limits`` explicitly ask for unsafe in-process parsing; the SDK never touches the network (remote
manifest fetching and OCSP are off, the network host allow-list is empty) and never makes
thumbnails or actions of its own; SDK objects are never shared between threads (Contexts and native
Signers are cached per thread, Readers and Builders are made per call) because sharing them has
been reported to crash the native library.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import c2pa

from provenance import isolation
from provenance.errors import (
    ConfigurationError,
    InputError,
    InputTooComplexError,
    ManifestError,
    ProvenanceError,
    SigningError,
    UnsupportedMediaError,
)
from provenance.keys.signers import Algorithm, FileKeySigner, Signer
from provenance.media import THUMBNAIL_TYPES, Limits
from provenance.trust import TrustConfig

SDK_VERSION = f"c2pa-python {c2pa.__version__} / c2pa-rs {c2pa.sdk_version()}"

_ALGS = {
    Algorithm.ES256: c2pa.C2paSigningAlg.ES256,
    Algorithm.ES384: c2pa.C2paSigningAlg.ES384,
    Algorithm.PS256: c2pa.C2paSigningAlg.PS256,
    Algorithm.ED25519: c2pa.C2paSigningAlg.ED25519,
}


@dataclass(frozen=True)
class Absent:
    """The asset carries no manifest."""


@dataclass(frozen=True)
class RemoteOnly:
    """The asset only references a remote manifest, which we never fetch."""

    url: str | None


@dataclass(frozen=True)
class StoreReport:
    """The SDK's manifest-store report (``Reader.json()``), parsed, and the thumbnails asked for."""

    report: dict[str, Any]
    #: Thumbnail bytes by resource identifier (image formats only, each at most MAX_THUMBNAIL bytes).
    thumbnails: dict[str, bytes] = field(default_factory=dict)


ReadOutcome = Absent | RemoteOnly | StoreReport


def _settings(trust: TrustConfig, tsa_host: str | None = None, *, verify_trust: bool = True) -> dict[str, Any]:
    return {
        "version": 1,
        "trust": {
            "trust_anchors": trust.sdk_anchors_pem or None,
            "trust_config": trust.trust_config,
            "allowed_list": trust.allowed_list_pem,
        },
        # Nothing may be fetched, except the configured timestamp authority while signing.
        "core": {"allowed_network_hosts": [tsa_host] if tsa_host else []},
        "verify": {
            "remote_manifest_fetch": False,
            "ocsp_fetch": False,
            "verify_trust": verify_trust,
            # ``stamp`` re-inspects its output itself (it must be *trusted*, not just valid),
            # so the SDK's own post-sign verification would only double the cost.
            "verify_after_sign": False,
        },
        "builder": {
            "thumbnail": {"enabled": False},
            "actions": {
                # We write every action ourselves; the SDK must not invent any.
                "auto_created_action": {"enabled": False},
                "auto_opened_action": {"enabled": False},
                "auto_placed_action": {"enabled": False},
            },
        },
    }


_local = threading.local()


def _context(trust: TrustConfig, tsa_host: str | None = None, *, verify_trust: bool = True) -> c2pa.Context:
    cache: dict[tuple[str, str | None, bool], c2pa.Context] | None = getattr(_local, "contexts", None)
    if cache is None:
        cache = _local.contexts = {}
    key = (trust.fingerprint, tsa_host, verify_trust)
    ctx = cache.get(key)
    if ctx is None:
        try:
            ctx = c2pa.Context.from_dict(_settings(trust, tsa_host, verify_trust=verify_trust))
        except c2pa.C2paError as exc:
            raise ConfigurationError(f"the C2PA SDK rejected the trust configuration: {exc}") from exc
        if len(cache) > 8:  # trust changes rarely; keep the cache bounded anyway
            cache.clear()
        cache[key] = ctx
    return ctx


_REMOTE_URL = re.compile(r"from url (\S+)")


def _sdk_message(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


#: Largest SDK report accepted (bytes of JSON). Real reports are tens of KB; a store crafted to
#: expand into a huge report is refused rather than parsed in the calling process.
MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_THUMBNAIL = 512 * 1024  # bytes


def read(
    data: bytes,
    media_type: str,
    trust: TrustConfig,
    sidecar: bytes | None = None,
    *,
    limits: Limits,
    thumbnails: int = 0,
) -> ReadOutcome:
    """Read and validate the manifest store of ``data`` (or of the detached ``sidecar``).

    With ``thumbnails`` > 0, up to that many thumbnails of the store (active manifest and ingredients)
    are taken from the same read. Raises :class:`ManifestError`, :class:`UnsupportedMediaError` and
    :class:`InputTooComplexError` (the isolated parse hit its memory or time cap).
    """
    blobs = [data] if sidecar is None else [data, sidecar]
    if limits.unsafe_parse_in_process:
        kind, value, out = _read_here(blobs, media_type, trust, thumbnails)
    else:
        size = len(data) + (len(sidecar) if sidecar is not None else 0)
        (kind, value), out = isolation.run(
            limits, "read", (media_type, thumbnails), blobs, size=size, context=(trust.fingerprint, trust)
        )
    return _outcome(kind, value, out)


def _outcome(kind: str, value: Any, out: list[bytes]) -> ReadOutcome:
    """A read's result as the library's types (the report parsed here, in the calling process)."""
    if kind == "absent":
        return Absent()
    if kind == "remote":
        return RemoteOnly(value if isinstance(value, str) else None)
    if kind == "error":
        raise ManifestError(f"the signed result cannot be read back: {value}")
    try:
        report = json.loads(out[0])
    except (ValueError, UnicodeDecodeError, IndexError) as exc:
        raise ManifestError(f"the C2PA SDK returned an unreadable report: {exc}") from exc
    except RecursionError as exc:
        raise InputTooComplexError("the manifest store is nested too deeply") from exc
    if not isinstance(report, dict):
        raise ManifestError("the C2PA SDK returned a report that is not an object")
    ids = value if isinstance(value, list) else []
    return StoreReport(report, dict(zip(ids, out[1:], strict=True)))


def _thumbnail_ids(report: Any, limit: int) -> list[str]:
    """Identifiers of image thumbnails in a report, active manifest first, at most ``limit``."""
    found: list[str] = []
    manifests = report.get("manifests") if isinstance(report, dict) else None
    for manifest in manifests.values() if isinstance(manifests, dict) else ():
        if not isinstance(manifest, dict):
            continue
        for holder in (manifest, *(i for i in manifest.get("ingredients") or () if isinstance(i, dict))):
            ref = holder.get("thumbnail")
            if isinstance(ref, dict) and ref.get("format") in THUMBNAIL_TYPES:
                identifier = ref.get("identifier")
                if isinstance(identifier, str) and identifier not in found:
                    found.append(identifier)
                    if len(found) >= limit:
                        return found
    return found


def _read_here(
    blobs: list[bytes], media_type: str, trust: TrustConfig, thumbnails: int, *, verify_trust: bool = True
) -> tuple[str, Any, list[bytes]]:
    """The SDK read itself (in a worker, or in process when unsafe): ("absent"|"remote"|"report", value, blobs)."""
    data, sidecar = blobs[0], (blobs[1] if len(blobs) > 1 else None)
    ctx = _context(trust, verify_trust=verify_trust)
    try:
        with c2pa.Reader(media_type, io.BytesIO(data), sidecar, context=ctx) as reader:
            report = reader.json()
            if len(report) > MAX_REPORT_BYTES:
                raise InputTooComplexError(
                    f"the manifest store expands to a report of {len(report)} bytes (the limit is {MAX_REPORT_BYTES})"
                )
            ids: list[str] = []
            images: list[bytes] = []
            if thumbnails > 0:
                for identifier in _thumbnail_ids(json.loads(report), thumbnails):
                    out = io.BytesIO()
                    with contextlib.suppress(c2pa.C2paError, ValueError, OSError):
                        reader.resource_to_stream(identifier, out)
                    if 0 < len(out.getvalue()) <= MAX_THUMBNAIL:
                        ids.append(identifier)
                        images.append(out.getvalue())
    except c2pa.C2paError.ManifestNotFound:
        return "absent", None, []
    except c2pa.C2paError.NotSupported as exc:
        raise UnsupportedMediaError(f"the C2PA SDK does not support {media_type}", hint=_sdk_message(exc)) from exc
    except c2pa.C2paError as exc:
        message = _sdk_message(exc)
        if message.startswith(("Remote:", "RemoteManifest:")) or isinstance(exc, c2pa.C2paError.RemoteManifest):
            match = _REMOTE_URL.search(message)
            return "remote", match.group(1) if match else None, []
        raise ManifestError(f"malformed C2PA manifest: {message}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"the C2PA SDK returned an unreadable report: {exc}") from exc
    return "report", ids, [report.encode(), *images]


def _op_read(call: isolation.Call) -> tuple[Any, list[bytes]]:
    media_type, thumbnails = call.args
    kind, value, out = _read_here(call.blobs, media_type, call.context, thumbnails)
    return (kind, value), out


@dataclass(frozen=True)
class Ingredient:
    """An asset added to a new manifest as an ingredient (e.g. the upload, as ``parentOf``)."""

    data: bytes
    media_type: str
    title: str
    instance_label: str  # referenced from actions' ``parameters.ingredientIds``
    relationship: str = "parentOf"  # or componentOf / inputTo
    #: A detached manifest for ``data``, for media the SDK cannot parse itself (article text).
    sidecar: bytes | None = None


@dataclass(frozen=True)
class Signed:
    """A signed asset (embedded: the asset with its new manifest; detached: the asset unchanged), the
    manifest store on its own, and the full SDK read of the result (its re-verification)."""

    data: bytes
    manifest: bytes
    _reread: tuple[str, Any, list[bytes]] = field(repr=False)
    #: The soft binding computed in the signing call and signed into the manifest (``sign(soft_binding=)``):
    #: its ISCC code, or ``None`` when the image gets none or none was asked for.
    binding: str | None = None

    def verification(self) -> ReadOutcome:
        """The full read of the signed result under the signing call's trust configuration.

        Raises :class:`ManifestError` when the SDK could not read its own output.
        """
        return _outcome(*self._reread)


def sign(
    data: bytes,
    media_type: str,
    manifest: dict[str, Any],
    signer: Signer,
    trust: TrustConfig,
    ingredients: Sequence[Ingredient] = (),
    tsa_url: str | None = None,
    *,
    limits: Limits,
    embed: bool = True,
    verify_trust: bool = True,
    soft_binding: int | None = None,
) -> Signed:
    """Sign a new manifest into ``data`` (or, with ``embed=False``, a detached manifest for it), and
    read the result back in full under ``trust`` (the SDK's own post-sign check does not check trust
    and never reads its output back). Timestamped by ``tsa_url`` when given. With ``verify_trust`` off
    the read back checks the signature and every hash but not whether the signer is trusted
    (:mod:`provenance.selfcheck` decides that). With ``soft_binding`` (a ``max_pixels``), the image's ISCC
    Image-Code is computed first in the same call and signed into ``manifest`` as a soft-binding assertion
    (:func:`provenance.softbinding.with_image_binding`; one copy of ``data`` and one round trip fewer).

    Raises :class:`SigningError` when the signer or its certificates are refused, :class:`InputError`
    / :class:`ManifestError` when the SDK cannot write into ``data`` or read an ingredient, and
    :class:`InputTooComplexError` when the isolated call hits its memory or time cap.
    """
    if limits.unsafe_parse_in_process:
        code = None
        if soft_binding is not None:
            code, manifest = _with_binding(data, soft_binding, manifest)
        signed, manifest_bytes = _sign_here(
            data, media_type, manifest, signer, trust, ingredients, embed=embed, tsa_url=tsa_url
        )
        reread = _reread_here(data, signed, manifest_bytes, embed, media_type, trust, verify_trust)
        return Signed(signed, manifest_bytes, reread, code)
    # Byte strings go once each (the upload is usually also the parent ingredient's data).
    blobs: list[bytes] = [data]
    index: dict[int, int] = {id(data): 0}

    def ref(blob: bytes | None) -> int | None:
        if blob is None:
            return None
        if id(blob) not in index:
            index[id(blob)] = len(blobs)
            blobs.append(blob)
        return index[id(blob)]

    specs = [
        (i.media_type, i.title, i.instance_label, i.relationship, ref(i.data), ref(i.sidecar)) for i in ingredients
    ]
    args = (
        media_type,
        json.dumps(manifest),
        specs,
        signer.alg,
        signer.certificate_chain_pem,
        tsa_url,
        embed,
        verify_trust,
        soft_binding,
    )
    (kind, value, code), out = isolation.run(
        limits,
        "sign",
        args,
        blobs,
        size=sum(len(b) for b in blobs),
        context=(trust.fingerprint, trust),
        signer=signer.sign,
    )
    if len(out) < 2:
        raise ManifestError("the isolated signer returned no result")
    if code is not None and not isinstance(code, str):
        raise ManifestError("the isolated signer returned a soft binding that is not a code")
    return Signed(out[0] if embed else data, out[1], (kind, value, out[2:]), code)


def _with_binding(data: bytes, max_pixels: int, manifest: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    from provenance.softbinding import with_image_binding  # imported where it runs, like the fingerprint op

    return with_image_binding(data, max_pixels, manifest)


def _reread_here(
    data: bytes, signed: bytes, manifest: bytes, embed: bool, media_type: str, trust: TrustConfig, verify_trust: bool
) -> tuple[str, Any, list[bytes]]:
    """Read a signed result back; a failure is kept as the outcome "error" (raised when it is used)."""
    try:
        return _read_here([signed] if embed else [data, manifest], media_type, trust, 0, verify_trust=verify_trust)
    except ProvenanceError as exc:
        return "error", exc.diagnostics(), []


@dataclass(frozen=True)
class _RemoteSigner:
    """In a worker: the caller's signer, reached over the worker's socket (the key stays with the caller)."""

    alg: Algorithm
    certificate_chain_pem: bytes
    remote: Any  # Callable[[bytes], bytes]

    def sign(self, data: bytes) -> bytes:
        signature: bytes = self.remote(data)
        return signature


def _op_sign(call: isolation.Call) -> tuple[Any, list[bytes]]:
    media_type, manifest_json, specs, alg, chain_pem, tsa_url, embed, verify_trust, soft_binding = call.args
    blobs = call.blobs
    ingredients = [
        Ingredient(
            blobs[data], kind, title, label, relationship, sidecar=blobs[sidecar] if sidecar is not None else None
        )
        for kind, title, label, relationship, data, sidecar in specs
    ]
    signer = _RemoteSigner(alg, chain_pem, call.sign)
    manifest = json.loads(manifest_json)
    code = None
    if soft_binding is not None:
        code, manifest = _with_binding(blobs[0], int(soft_binding), manifest)
    signed, manifest_bytes = _sign_here(
        blobs[0], media_type, manifest, signer, call.context, ingredients, embed=embed, tsa_url=tsa_url
    )
    # The re-read happens here, on bytes already in this worker (no second trip for the signed file).
    kind, value, out = _reread_here(
        blobs[0], signed, manifest_bytes, embed, media_type, call.context, bool(verify_trust)
    )
    return (kind, value, code), [signed if embed else b"", manifest_bytes, *out]


#: The operations an isolated worker runs (see :mod:`provenance.isolation`).
def _op_render(call: isolation.Call) -> tuple[Any, list[bytes]]:
    from provenance.renditions import op_render  # imported in the worker only: renditions imports this module

    return op_render(call)


def _op_fingerprint(call: isolation.Call) -> tuple[Any, list[bytes]]:
    from provenance.softbinding import op_fingerprint  # imported in the worker only, like renditions

    return op_fingerprint(call)


WORKER_OPS: dict[str, Callable[[isolation.Call], tuple[Any, list[bytes]]]] = {
    "read": _op_read,
    "sign": _op_sign,
    "render": _op_render,  # Pillow resize + encode of a rendition (provenance.renditions)
    "fingerprint": _op_fingerprint,  # Pillow decode + ISCC Image-Code of an image (provenance.softbinding)
}


def _ingredient_definition(builder: c2pa.Builder, ingredient: Ingredient, trust: TrustConfig) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "title": ingredient.title,
        "relationship": ingredient.relationship,
        "label": ingredient.instance_label,
    }
    if ingredient.sidecar is not None:
        # The SDK cannot find a manifest in media it cannot parse: give it the manifest store as a
        # resource, and the validation results of a full verification of data + manifest (the SDK
        # requires them for an ingredient that has a manifest).
        kind, _, out = _read_here([ingredient.data, ingredient.sidecar], ingredient.media_type, trust, 0)
        if kind != "report":
            raise ManifestError("the ingredient's detached manifest holds no manifest")
        resource = f"{ingredient.instance_label}.c2pa"
        builder.add_resource(resource, io.BytesIO(ingredient.sidecar))
        definition["manifest_data"] = {"format": "application/c2pa", "identifier": resource}
        definition["validation_results"] = json.loads(out[0]).get("validation_results")
    return definition


def _callback_signer(signer: Signer, failures: list[BaseException], tsa_url: str | None = None) -> c2pa.Signer:
    def callback(payload: bytes) -> bytes:
        try:
            return signer.sign(payload)
        except BaseException as exc:  # reported by _sign; the SDK would only say "COSE signature invalid"
            failures.append(exc)
            raise

    try:
        return c2pa.Signer.from_callback(
            callback, _ALGS[signer.alg], signer.certificate_chain_pem.decode("ascii"), tsa_url
        )
    except (c2pa.C2paError, UnicodeDecodeError, KeyError) as exc:
        raise SigningError(f"the C2PA SDK rejected the signer: {_sdk_message(exc)}") from exc


def _native_signer(signer: FileKeySigner, tsa_url: str | None = None) -> c2pa.Signer:
    """The SDK's own signer for a key we hold in memory, made once per thread and key.

    Only for unsafe in-process parsing: an isolated worker never holds a key. Signing inside the
    SDK avoids a Python callback per claim; making the signer costs ~0.3 ms, so it is cached (per
    thread, as SDK objects must not be shared between threads).
    """
    cache: dict[tuple[int, str | None], tuple[weakref.ref[FileKeySigner], c2pa.Signer]] | None = getattr(
        _local, "signers", None
    )
    if cache is None:
        cache = _local.signers = {}
    entry = cache.get((id(signer), tsa_url))
    if entry is not None and entry[0]() is signer:
        return entry[1]
    try:
        info = c2pa.C2paSignerInfo(
            signer.alg.value.encode(), signer.certificate_chain_pem, signer.unsafe_private_key_pem(), tsa_url
        )
        sdk_signer = c2pa.Signer.from_info(info)
    except (c2pa.C2paError, ValueError) as exc:
        raise SigningError(f"the C2PA SDK rejected the signing key: {_sdk_message(exc)}") from exc
    if len(cache) > 8:
        cache.clear()
    cache[(id(signer), tsa_url)] = (weakref.ref(signer), sdk_signer)
    return sdk_signer


# SDK errors that mean our signer or its certificates were refused (the operator's fault); any other
# failure while signing is the input's (the SDK could not parse or write into it).
_SIGNER_FAULTS = ("certificate", "cose", "signature", "signing", "key", "timestamp", "tsa")


def _sign_here(
    data: bytes,
    media_type: str,
    manifest: dict[str, Any],
    signer: Signer,
    trust: TrustConfig,
    ingredients: Sequence[Ingredient],
    *,
    embed: bool,
    tsa_url: str | None = None,
) -> tuple[bytes, bytes]:
    """The SDK sign itself (in a worker, or in process when unsafe)."""
    ctx = _context(trust, urlsplit(tsa_url).hostname if tsa_url else None)
    failures: list[BaseException] = []
    if isinstance(signer, FileKeySigner):
        sdk_signer = _native_signer(signer, tsa_url)
        owned: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()  # cached; not closed here
    else:
        sdk_signer = _callback_signer(signer, failures, tsa_url)
        owned = sdk_signer
    out = io.BytesIO()
    stage = "ingredient"
    try:
        with owned, c2pa.Builder(manifest, context=ctx) as builder:
            if not embed:
                builder.set_no_embed()
            for ingredient in ingredients:
                builder.add_ingredient(
                    _ingredient_definition(builder, ingredient, trust),
                    ingredient.media_type,
                    io.BytesIO(ingredient.data),
                )
            stage = "sign"
            manifest_bytes = builder.sign(sdk_signer, media_type, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        if failures:
            cause = failures[0]
            message = cause.diagnostics() if isinstance(cause, SigningError) else str(cause)
            raise SigningError(f"signing failed: {message}") from cause
        message = _sdk_message(exc)
        if stage == "ingredient":
            raise ManifestError(f"the upload's manifest cannot be kept as an ingredient: {message}") from exc
        if isinstance(exc, c2pa.C2paError.NotSupported):
            raise UnsupportedMediaError(f"the C2PA SDK cannot write a manifest into this {media_type}") from exc
        if isinstance(exc, c2pa.C2paError.Signature) or any(word in message.lower() for word in _SIGNER_FAULTS):
            raise SigningError(
                f"the C2PA SDK refused to sign: {message}",
                hint="check that the key matches the certificate and the chain is leaf + intermediate",
            ) from exc
        raise InputError(f"the file could not be signed: {message}") from exc
    return out.getvalue(), bytes(manifest_bytes)
