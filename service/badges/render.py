"""Badge bodies: SVG, HTML and JSON, built only from a decision (state + label ids) and the vocabulary.

Invariant: every word a badge shows comes from :mod:`provenance.vocabulary`; nothing from a manifest,
a title or a request reaches the output, except the JSON's ``signer`` (the signing certificate's
organisation, with hidden characters made visible by :func:`provenance.display.visible`). SVG has no
scripts and no external references; HTML carries one inline style block, allowed by its hash in the
Content-Security-Policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from provenance.display import visible
from provenance.vocabulary import badge_text, label_text, meaning
from service import markup


@dataclass(frozen=True)
class BadgeDecision:
    """What the service decided about one asset or article version."""

    ref: str
    state: str
    labels: tuple[str, ...]
    kind: str  # "image" | "article"
    signer: str | None = None  # organisation of the signing certificate, from the stored verdict
    stamped_at: str | None = None  # ISO 8601


@dataclass(frozen=True)
class BadgeLook:
    text: str
    tone: str  # "ai" | "neutral" | "invalid" | "unverified"


_COLOURS: Final = {
    "ai": ("#5b21b6", "#ffffff"),
    "neutral": ("#1f2937", "#ffffff"),
    "invalid": ("#b91c1c", "#ffffff"),
    "unverified": ("#6b7280", "#ffffff"),
}


def look(decision: BadgeDecision, lang: str) -> BadgeLook:
    """The badge's words and tone for ``decision`` in ``lang``."""
    if decision.state == "trusted" and decision.labels:
        return BadgeLook(" · ".join(label_text(label, lang) for label in decision.labels), "ai")
    if decision.state == "trusted":
        return BadgeLook(badge_text("content_credentials", lang), "neutral")
    if decision.state == "invalid":
        return BadgeLook(badge_text("content_credentials_invalid", lang), "invalid")
    return BadgeLook(badge_text("content_credentials_unverified", lang), "unverified")


def _text_width(text: str) -> int:
    # Rough advance widths at 12 px: wide (CJK, full-width) characters ~12 px, others ~7 px.
    return sum(12 if ord(ch) >= 0x1100 else 7 for ch in text)


def svg(decision: BadgeDecision, lang: str) -> bytes:
    badge = look(decision, lang)
    background, foreground = _COLOURS[badge.tone]
    width = _text_width(badge.text) + 20
    text = markup.text(badge.text)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="22" viewBox="0 0 {width} 22" '
        f'role="img" aria-label="{text}" lang="{markup.text(lang)}">'
        f"<title>{text}</title>"
        f'<rect width="{width}" height="22" rx="11" fill="{background}"/>'
        f'<text x="{width // 2}" y="15" fill="{foreground}" font-family="system-ui,sans-serif" font-size="12" '
        f'text-anchor="middle">{text}</text></svg>'
    ).encode()


_STYLE: Final = (
    "body{margin:0;font:12px system-ui,sans-serif}"
    "span{display:inline-block;padding:3px 10px;border-radius:11px;color:#fff}"
    ".ai{background:#5b21b6}.neutral{background:#1f2937}.invalid{background:#b91c1c}.unverified{background:#6b7280}"
)
#: CSP for the HTML badge: nothing but its own inline style.
HTML_CSP: Final = f"default-src 'none'; style-src {markup.source_hash(_STYLE)}"


def html(decision: BadgeDecision, lang: str) -> bytes:
    badge = look(decision, lang)
    text = markup.text(badge.text)
    return (
        f'<!doctype html><html lang="{markup.text(lang)}"><head><meta charset="utf-8"><title>{text}</title>'
        f"<style>{_STYLE}</style></head>"
        f'<body><span class="{badge.tone}" role="img" aria-label="{text}">{text}</span></body></html>'
    ).encode()


def as_dict(decision: BadgeDecision, lang: str) -> dict[str, object]:
    badge = look(decision, lang)
    described = decision.labels[0] if decision.state == "trusted" and decision.labels else None
    if decision.state == "invalid":
        described = "content_credentials_invalid"
    return {
        "ref": decision.ref,
        "kind": decision.kind,
        "state": decision.state,
        "labels": [{"id": label, "text": label_text(label, lang)} for label in decision.labels],
        "badge": {"text": badge.text, "tone": badge.tone},
        "lang": lang,
        # badge.js shows the signer (a certificate's organisation) as text: hidden characters made visible
        "signer": visible(decision.signer) if decision.state == "trusted" and decision.signer else None,
        "stamped_at": decision.stamped_at,
        "description": meaning(described, lang) if described else None,
        "report_url": "/verify",
    }


def as_json(decision: BadgeDecision, lang: str) -> bytes:
    return json.dumps(as_dict(decision, lang), ensure_ascii=False, separators=(",", ":")).encode()
