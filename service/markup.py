"""The one way text enters HTML, and the security headers of every kind of HTML (or sniffable) response.

Invariant: every value written into HTML by this service goes through :func:`text`, which makes hidden
characters visible (:func:`provenance.display.visible`: a manifest's U+202E shows as ``⟨U+202E⟩``, it is
never rendered) and then escapes it for element content and quoted attributes alike. Every HTML response
carries one of the Content-Security-Policies below and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Final

from provenance.display import visible

#: Service pages (/demo, /verify, reports, sign-in): scripts and styles from this origin only, nothing inline.
PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: Stored bytes served back (stamped files, manifests, canonical texts): even if a browser renders one as
#: a document (an SVG opened directly), it runs nothing and is a unique opaque origin.
DOWNLOAD_CSP: Final = "default-src 'none'; sandbox"


def text(value: object) -> str:
    """``value`` as HTML text: hidden characters made visible, then escaped (``<>&"'``)."""
    return html.escape(visible(str(value)), quote=True)


def source_hash(source: str) -> str:
    """The CSP source expression (``'sha256-…'``) allowing exactly one inline script or style."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def security_headers(csp: str) -> dict[str, str]:
    """The headers every HTML response carries, with the policy of its kind."""
    return {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff"}
