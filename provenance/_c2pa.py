"""The only module that imports the C2PA SDK (c2pa-python).

It turns SDK calls into plain data and library errors:

* reading returns :class:`Absent`, :class:`RemoteOnly` or :class:`StoreReport` (the SDK's JSON
  report as a dict), and raises :class:`InputError` / :class:`ManifestError` otherwise;
* signing takes a :class:`provenance.keys.Signer` and returns the signed bytes (or, detached,
  the manifest store bytes).

Invariants kept here: the SDK never touches the network (remote manifest fetching and OCSP are
off, the network host allow-list is empty) and never makes thumbnails or actions of its own; SDK
objects are never shared between threads (Contexts and native Signers are cached per thread,
Readers and Builders are made per call) because sharing them has been reported to crash the
native library.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import c2pa

from provenance.errors import InputError, ManifestError, SigningError, UnsupportedMediaError
from provenance.keys.signers import Algorithm, FileKeySigner, Signer
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
    """The SDK's manifest-store report (``Reader.json()``), parsed."""

    report: dict[str, Any]


ReadOutcome = Absent | RemoteOnly | StoreReport


def _settings(trust: TrustConfig, tsa_host: str | None = None) -> dict[str, Any]:
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
            "verify_trust": True,
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


def _context(trust: TrustConfig, tsa_host: str | None = None) -> c2pa.Context:
    cache: dict[tuple[str, str | None], c2pa.Context] | None = getattr(_local, "contexts", None)
    if cache is None:
        cache = _local.contexts = {}
    key = (trust.fingerprint, tsa_host)
    ctx = cache.get(key)
    if ctx is None:
        try:
            ctx = c2pa.Context.from_dict(_settings(trust, tsa_host))
        except c2pa.C2paError as exc:
            raise InputError(f"the C2PA SDK rejected the trust configuration: {exc}") from exc
        if len(cache) > 8:  # trust changes rarely; keep the cache bounded anyway
            cache.clear()
        cache[key] = ctx
    return ctx


_REMOTE_URL = re.compile(r"from url (\S+)")


def _sdk_message(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def read(data: bytes, media_type: str, trust: TrustConfig, sidecar: bytes | None = None) -> ReadOutcome:
    """Read and validate the manifest store of ``data`` (or of the detached ``sidecar``)."""
    ctx = _context(trust)
    try:
        with c2pa.Reader(media_type, io.BytesIO(data), sidecar, context=ctx) as reader:
            report = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return Absent()
    except c2pa.C2paError.NotSupported as exc:
        raise UnsupportedMediaError(f"the C2PA SDK does not support {media_type}", hint=_sdk_message(exc)) from exc
    except c2pa.C2paError as exc:
        message = _sdk_message(exc)
        if message.startswith(("Remote:", "RemoteManifest:")) or isinstance(exc, c2pa.C2paError.RemoteManifest):
            match = _REMOTE_URL.search(message)
            return RemoteOnly(match.group(1) if match else None)
        raise ManifestError(f"malformed C2PA manifest: {message}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"the C2PA SDK returned an unreadable report: {exc}") from exc
    return StoreReport(report)


def resource(data: bytes, media_type: str, trust: TrustConfig, identifier: str, sidecar: bytes | None) -> bytes | None:
    """A resource (e.g. a thumbnail) of the manifest store, or ``None`` if the SDK cannot produce it."""
    try:
        with c2pa.Reader(media_type, io.BytesIO(data), sidecar, context=_context(trust)) as reader:
            out = io.BytesIO()
            reader.resource_to_stream(identifier, out)
            return out.getvalue()
    except (c2pa.C2paError, ValueError, OSError):
        return None


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
    """An asset with its new manifest embedded, and that manifest store on its own."""

    data: bytes
    manifest: bytes


def sign(
    data: bytes,
    media_type: str,
    manifest: dict[str, Any],
    signer: Signer,
    trust: TrustConfig,
    ingredients: Sequence[Ingredient] = (),
    tsa_url: str | None = None,
) -> Signed:
    """Embed a new signed manifest into ``data`` (timestamped by ``tsa_url`` when given).

    Raises :class:`SigningError` when the SDK or the signer refuses.
    """
    return Signed(*_sign(data, media_type, manifest, signer, trust, ingredients, embed=True, tsa_url=tsa_url))


def sign_detached(
    data: bytes,
    media_type: str,
    manifest: dict[str, Any],
    signer: Signer,
    trust: TrustConfig,
    ingredients: Sequence[Ingredient] = (),
    tsa_url: str | None = None,
) -> bytes:
    """Sign a manifest bound to ``data`` without touching it; return the manifest store bytes.

    The result is a detached (sidecar) manifest, verified with ``read(data, ..., sidecar=...)``.
    Raises :class:`SigningError` when the SDK or the signer refuses.
    """
    _, manifest_bytes = _sign(data, media_type, manifest, signer, trust, ingredients, embed=False, tsa_url=tsa_url)
    return manifest_bytes


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
        outcome = read(ingredient.data, ingredient.media_type, trust, ingredient.sidecar)
        if not isinstance(outcome, StoreReport):
            raise ManifestError("the ingredient's detached manifest holds no manifest")
        resource = f"{ingredient.instance_label}.c2pa"
        builder.add_resource(resource, io.BytesIO(ingredient.sidecar))
        definition["manifest_data"] = {"format": "application/c2pa", "identifier": resource}
        definition["validation_results"] = outcome.report.get("validation_results")
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

    Signing inside the SDK avoids a Python callback per claim; making the signer costs ~0.3 ms,
    so it is cached (per thread, as SDK objects must not be shared between threads).
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


def _sign(
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
    ctx = _context(trust, urlsplit(tsa_url).hostname if tsa_url else None)
    failures: list[BaseException] = []
    if isinstance(signer, FileKeySigner):
        sdk_signer = _native_signer(signer, tsa_url)
        owned = contextlib.nullcontext()  # cached for this thread; not closed here
    else:
        sdk_signer = _callback_signer(signer, failures, tsa_url)
        owned = sdk_signer
    out = io.BytesIO()
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
            manifest_bytes = builder.sign(sdk_signer, media_type, io.BytesIO(data), out)
    except c2pa.C2paError as exc:
        if failures:
            cause = failures[0]
            message = cause.diagnostics() if isinstance(cause, SigningError) else str(cause)
            raise SigningError(f"signing failed: {message}") from cause
        raise SigningError(
            f"the C2PA SDK refused to sign: {_sdk_message(exc)}",
            hint="check that the key matches the certificate and the chain is leaf + intermediate",
        ) from exc
    return out.getvalue(), bytes(manifest_bytes)
