"""Badge bodies: SVG, HTML and JSON, built only from a decision (state + label ids) and the vocabulary.

Invariant: every word a badge shows comes from :mod:`provenance.vocabulary`; nothing from a manifest,
a title or a request reaches the output, except the JSON's ``signer`` (the signing certificate's
organisation) and a trusted article's signed ``review`` (its editor and scope), with hidden characters
made visible by :func:`provenance.display.visible`. SVG has no scripts and no external references; HTML
carries one inline style block, allowed by its hash in the Content-Security-Policy. The SVG and HTML
bodies come from Jinja2 templates (``service/pages/templates/badges/``, autoescaped), rendered once per
cache fill by :mod:`service.badges.app`.

The JSON's ``marking`` is the machine-readable form of the same decision, for badge.js to set on the
marked element: the W3C AI Content Disclosure ``ai-disclosure`` value and the schema.org / IPTC
``digitalSourceType``. It is present only when the badge shows a trusted AI label: nothing is claimed for
content without one (no label is not evidence of no AI), nor for untrusted, invalid or unknown content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from provenance import policy
from provenance.display import visible
from provenance.models import Review
from provenance.vocabulary import badge_text, label_text, meaning, review_text
from service import markup
from service.pages.templating import environment


@dataclass(frozen=True, slots=True)
class BadgeDecision:
    """What the service decided about one asset or article version."""

    ref: str
    state: str
    labels: tuple[str, ...]
    kind: str  # "image" | "article"
    signer: str | None = None  # organisation of the signing certificate, from the stored verdict
    stamped_at: str | None = None  # ISO 8601
    review: Review | None = None  # a trusted article version's signed editorial review
    withdrawn_at: str | None = None  # ISO 8601, with state "withdrawn": the badge shows nothing


@dataclass(frozen=True)
class BadgeLook:
    text: str
    tone: str  # "ai" | "neutral" | "invalid" | "unverified" | "withdrawn" (shows nothing)


_COLOURS: Final = {
    "ai": ("#5b21b6", "#ffffff"),
    "neutral": ("#1f2937", "#ffffff"),
    "invalid": ("#b91c1c", "#ffffff"),
    "unverified": ("#6b7280", "#ffffff"),
}


def look(state: str, labels: Sequence[str], lang: str) -> BadgeLook:
    """The badge's words and tone for a decision (its state and labels) in ``lang``."""
    if state == WITHDRAWN:
        return BadgeLook("", WITHDRAWN)
    if state == "trusted" and labels:
        return BadgeLook(" · ".join(label_text(label, lang) for label in labels), "ai")
    if state == "trusted":
        return BadgeLook(badge_text("content_credentials", lang), "neutral")
    if state == "invalid":
        return BadgeLook(badge_text("content_credentials_invalid", lang), "invalid")
    return BadgeLook(badge_text("content_credentials_unverified", lang), "unverified")


def _text_width(text: str) -> int:
    # Rough advance widths at 12 px: wide (CJK, full-width) characters ~12 px, others ~7 px.
    return sum(12 if ord(ch) >= 0x1100 else 7 for ch in text)


#: The state of a withdrawn item's badge: an empty, zero-size image (200, so a page shows no broken image).
WITHDRAWN: Final = "withdrawn"


def svg(decision: BadgeDecision, lang: str) -> bytes:
    if decision.state == WITHDRAWN:
        return environment.get_template("badges/empty.svg").render().encode()
    badge = look(decision.state, decision.labels, lang)
    background, foreground = _COLOURS[badge.tone]
    return (
        environment.get_template("badges/badge.svg")
        .render(
            text=badge.text,
            lang=lang,
            width=_text_width(badge.text) + 20,
            background=background,
            foreground=foreground,
        )
        .encode()
    )


#: The HTML badge's one inline style block, exactly as badge.html includes it (a template: no value in it).
_STYLE: Final = environment.get_template("badges/badge.css").render()
#: CSP for the HTML badge: nothing but its own inline style.
HTML_CSP: Final = f"default-src 'none'; style-src {markup.source_hash(_STYLE)}"


def html(decision: BadgeDecision, lang: str) -> bytes:
    if decision.state == WITHDRAWN:  # an empty document: nothing shows in the frame
        return environment.get_template("badges/empty.html").render(lang=lang).encode()
    badge = look(decision.state, decision.labels, lang)
    return environment.get_template("badges/badge.html").render(text=badge.text, lang=lang, tone=badge.tone).encode()


#: Machine-readable marking per label: (W3C AI Content Disclosure ``ai-disclosure`` value, IPTC term).
#: ``ai-generated`` is "AI-generated with human prompting and/or review"; nothing here claims
#: ``autonomous`` (no human oversight), which a signed claim does not establish.
_MARKING: Final = {
    "ai_generated": ("ai-generated", policy.TRAINED),
    "ai_reported": ("ai-generated", policy.TRAINED),
    "ai_edited": ("ai-assisted", policy.COMPOSITE_TRAINED),
    "ai_assisted": ("ai-assisted", policy.COMPOSITE_TRAINED),
}


def marking(decision: BadgeDecision) -> dict[str, str] | None:
    """The machine-readable marking of a trusted AI decision (its first, strongest label), else ``None``."""
    if decision.state != "trusted" or not decision.labels or decision.labels[0] not in _MARKING:
        return None
    disclosure, term = _MARKING[decision.labels[0]]
    return {
        "ai_disclosure": disclosure,
        "digital_source_type": policy.IPTC + term,
        # schema.org's IPTCDigitalSourceEnumeration member for the same term
        "schema_org_digital_source_type": f"https://schema.org/{term[0].upper()}{term[1:]}DigitalSource",
    }


def _review(decision: BadgeDecision, lang: str) -> dict[str, str | None] | None:
    review = decision.review
    if decision.state != "trusted" or review is None:
        return None
    editor = visible(review.editor)
    return {
        "editor": editor,
        "reviewed_at": review.reviewed_at,
        "scope": visible(review.scope) if review.scope else None,
        "text": review_text(editor, lang),
    }


def as_dict(decision: BadgeDecision, lang: str) -> dict[str, object]:
    badge = look(decision.state, decision.labels, lang)
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
        # the item's own public verification view (service/pages/routes.py), in the badge's language
        "report_url": f"/verify/{decision.ref}?lang={lang}",
        "review": _review(decision, lang),
        "marking": marking(decision),
        "withdrawn_at": decision.withdrawn_at,
    }


def as_json(decision: BadgeDecision, lang: str) -> bytes:
    return json.dumps(as_dict(decision, lang), ensure_ascii=False, separators=(",", ":")).encode()
