"""Stateless verification of any file (and detached manifest): nothing is stored."""

from __future__ import annotations

from provenance import Verdict, inspect
from provenance.articles import inspect_article, looks_like_payload, parse_payload
from service.context import ServiceContext
from service.ingest.forms import form_body

#: The verification form, documented by hand: the routes read it themselves (after authentication, or the
#: public rate limit).
VERIFY_BODY = form_body(
    files={"file": "The file to verify", "sidecar": "Detached manifest (.c2pa) of an article text or payload"},
    required=("file",),
)


def verify_bytes(ctx: ServiceContext, data: bytes, manifest: bytes | None, *, thumbnails: int = 0) -> Verdict:
    """Stateless verification of an upload: an article payload (with its manifest) or any file.

    With ``thumbnails`` > 0, a file's manifest-store thumbnails come with the verdict (one read).
    """
    limits = ctx.settings.limits
    if manifest is not None and looks_like_payload(data):
        return inspect_article(parse_payload(data), manifest, ctx.trust, limits=limits)
    return inspect(data, ctx.trust, sidecar=manifest, limits=limits, thumbnails=thumbnails)
