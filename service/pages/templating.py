"""The one way HTML is made: Jinja2 templates with autoescaping, and one translation table for page words.

Invariant: every value a template writes goes through :func:`provenance.display.visible` (hidden characters
of manifest strings shown as ``⟨U+202E⟩``, never rendered) and is then HTML-escaped by Jinja2's
autoescape; nothing is marked safe except what a template builds itself. Label words come only from
:mod:`provenance.vocabulary`, page words only from :data:`service.pages.words.WORDS`. Every page carries
a Content-Security-Policy (:mod:`service.markup`): scripts and styles from this origin, nothing inline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from provenance.display import visible
from provenance.vocabulary import LANGUAGES, badge_text, label_text, meaning, preferred_language
from service import markup
from service.pages.words import WORDS

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"


def _shown(value: Any) -> Any:
    """Every ``{{ value }}``: hidden characters made visible before autoescape (markup a template made stays)."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    return visible(value)


environment: Final = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt name fails the test that renders it, never renders as ""
    finalize=_shown,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals.update(label_text=label_text, badge_text=badge_text, meaning=meaning, languages=LANGUAGES)


def page_language(query_lang: str | None, accept_language: str | None) -> str:
    """``?lang=`` when supported (an unsupported one is ignored: a page always renders), else the first
    supported Accept-Language, else en."""
    if query_lang in WORDS:
        return str(query_lang)
    return preferred_language(accept_language)


def render(name: str, lang: str, **context: Any) -> str:
    """Template ``name`` in ``lang``: ``w`` holds that language's page words, ``lang`` the language."""
    return environment.get_template(name).render(lang=lang, w=WORDS[lang], **context)


def page(
    name: str,
    lang: str,
    *,
    status: int = 200,
    csp: str = markup.PAGE_CSP,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """An HTML response from a template, with the security headers of its kind."""
    return HTMLResponse(
        render(name, lang, **context),
        status_code=status,
        headers={**markup.security_headers(csp), **(headers or {})},
    )
