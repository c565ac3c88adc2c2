"""A stored asset's rendition: served from storage when it was made before, otherwise made once, stored, then
served.

Invariants:

* Bounded work: only the configured widths (``rendition_widths``) and formats are ever made, each at most
  once per asset (a width above the original's is remembered, per process, as not to be made), so the
  signing a public GET can cause is bounded by the number of assets.
* Made once: concurrent first requests in one process wait for the one that makes it (a lock per
  rendition); across processes, the first to commit wins and the others serve its row and discard their own
  blob (:func:`service.store.errors.commit`).
* Durable in order: the blob is stored and fsynced before the row that points at it commits, under the blob
  store's shared lock (the collector keeps off it), as for every upload.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Final

from provenance.renditions import Format, UpscaleError, render
from service.cache import LRU
from service.context import ServiceContext
from service.problems import Problem
from service.renditions import store
from service.store.db import Asset, Rendition
from service.store.errors import commit

#: Lock stripes for making renditions (a rendition's key picks one; two renditions sharing one only wait).
_STRIPES: Final = 64
_locks = [threading.Lock() for _ in range(_STRIPES)]
#: Renditions refused as upscales: (asset id, width) -> the original's width (nothing is decoded again).
_too_wide: LRU[tuple[str, int], int] = LRU(10_000)


def _lock(asset_id: str, width: int, fmt: Format) -> threading.Lock:
    key = hashlib.sha256(f"{asset_id}/{width}.{fmt.value}".encode()).digest()
    return _locks[key[0] % _STRIPES]


def _not_made(asset_id: str, width: int, original_width: int) -> Problem:
    return Problem(
        404,
        "not-found",
        "No such rendition",
        f"{asset_id} is {original_width} pixels wide; renditions are never upscaled (asked: {width})",
    )


def _check_width(ctx: ServiceContext, asset: Asset, width: int) -> None:
    widths = ctx.settings.rendition_widths
    if width not in widths:
        raise Problem(
            404,
            "not-found",
            "No such rendition",
            f"renditions are made {', '.join(map(str, widths))} pixels wide, not {width}",
            allowed=list(widths),
        )
    original_width = _too_wide.get((asset.id, width))
    if original_width is not None:
        raise _not_made(asset.id, width, original_width)
    if asset.state != "trusted":
        raise Problem(
            409,
            "not-trusted",
            "Credentials not trusted",
            f"{asset.id} verifies as {asset.state}: a rendition would not carry its credentials",
        )


def rendition_of(ctx: ServiceContext, asset: Asset, width: int, fmt: Format) -> Rendition:
    """The stored rendition of the published ``asset``, made now if it is the first request for it.

    Raises a 404 :class:`Problem` for a width that is not configured or above the original's, a 409 for an
    asset whose stored decision is not trusted, and the library's errors when making it fails.
    """
    _check_width(ctx, asset, width)
    with ctx.session() as session:
        found = store.rendition(session, asset.id, width, fmt.value)
    if found is not None:
        return found
    with _lock(asset.id, width, fmt):
        with ctx.session() as session:  # made by the request this one waited for?
            found = store.rendition(session, asset.id, width, fmt.value)
        if found is not None:
            return found
        return _make(ctx, asset, width, fmt)


def _make(ctx: ServiceContext, asset: Asset, width: int, fmt: Format) -> Rendition:
    settings = ctx.settings
    try:
        made = render(
            ctx.blobs.get(asset.stamped_sha256),
            width,
            fmt,
            ctx.signer,
            ctx.trust,
            quality=settings.rendition_quality,
            title=asset.declaration.get("title") or asset.id,
            limits=settings.limits,
            timestamping=ctx.timestamping,
            self_check=settings.stamp_self_check,
        )
    except UpscaleError as exc:
        _too_wide.put((asset.id, width), exc.original_width)
        raise _not_made(asset.id, width, exc.original_width) from exc
    with ctx.blobs.writing() as blobs:  # held until the row has committed: the collector keeps off the blob
        digest = blobs.put(made.data, made.verdict.sha256)
        row = Rendition(
            asset_id=asset.id,
            width=width,
            format=fmt.value,
            height=made.height,
            sha256=digest,
            size=len(made.data),
            manifest=made.manifest,
        )
        with ctx.session() as session:
            session.add(row)
            lost = commit(session)
    if lost is None:
        return row
    # Another process committed this rendition first: serve its row; this blob is unused (unique to one signing).
    ctx.blobs.discard(digest)
    with ctx.session() as session:
        winner = store.rendition(session, asset.id, width, fmt.value)
    if winner is None:
        raise lost
    return winner
