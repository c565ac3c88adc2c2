"""The canonical plain-text form of a news article: ``news-text-canonical/1``.

An article's detached manifest binds (hashes) these bytes, not the CMS's HTML, so the binding
survives re-templating while any change a reader could notice changes the bytes. The form is
specified in docs/canonical-text.md; in short:

1. The body is split into blocks: HTML by its block-level elements (script, style, embeds and
   other non-text content dropped, entities decoded); Markdown is rendered with a CommonMark
   parser and read as HTML; plain text is split at blank lines.
2. Each block, and the headline and standfirst: delete soft hyphen, zero-width space, word joiner,
   BOM and variation selectors (ZWJ, ZWNJ and bidi marks are kept); Unicode NFC; every run of
   Unicode whitespace becomes one space; trim.
3. Empty blocks are dropped. Output: headline, standfirst (if any), blocks, joined by "\\n\\n",
   with a final "\\n", in UTF-8.

No NFKC, no case or quote folding: a digit and its fullwidth form, straight and curly quotes stay
different.
This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import unicodedata
from html.parser import HTMLParser
from typing import Final

from markdown_it import MarkdownIt

PROFILE: Final = "news-text-canonical/1"

# Invisible characters that CMSs, editors and sanitizers add or strip at will.
_DELETED: Final = {
    0x00AD: None,  # soft hyphen
    0x200B: None,  # zero-width space
    0x2060: None,  # word joiner
    0xFEFF: None,  # byte order mark / zero-width no-break space
    **{cp: None for cp in range(0xFE00, 0xFE10)},  # variation selectors 1-16
    **{cp: None for cp in range(0xE0100, 0xE01F0)},  # variation selectors 17-256
}

# Elements that end one block and start another.
BLOCK_ELEMENTS: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "caption", "dd", "details", "dialog", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hgroup", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td",
        "tfoot", "th", "thead", "tr", "ul", "body", "html",
    }
)  # fmt: skip
# Elements whose content is not article text.
DROPPED_ELEMENTS: Final = frozenset(
    {
        "script", "style", "noscript", "template", "iframe", "object", "embed", "video", "audio", "canvas",
        "svg", "math", "head", "title", "select", "textarea", "button",
    }
)  # fmt: skip
# Void elements never have an end tag, so they cannot open a dropped region.
_VOID: Final = frozenset({"embed", "img", "br", "hr", "input", "source", "track", "wbr", "area", "col", "meta", "link"})


class BodyFormat(enum.StrEnum):
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"


def normalize(text: str) -> str:
    """One block's normal form: invisible characters deleted, NFC, whitespace runs -> one space, trimmed."""
    return " ".join(unicodedata.normalize("NFC", text.translate(_DELETED)).split())


class _BlockReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._dropped_depth = 0

    def _flush(self) -> None:
        if self._current:
            self.blocks.append("".join(self._current))
            self._current = []

    def _boundary(self, tag: str) -> None:
        # Inside dropped content nothing counts, block boundaries included.
        if self._dropped_depth:
            return
        if tag in BLOCK_ELEMENTS:
            self._flush()
        elif tag == "br":
            self._current.append(" ")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_ELEMENTS and tag not in _VOID:
            self._dropped_depth += 1
        else:
            self._boundary(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._boundary(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_ELEMENTS and tag not in _VOID:
            self._dropped_depth = max(0, self._dropped_depth - 1)
        elif tag != "br":  # browsers read a stray </br> as <br>; here it is simply ignored
            self._boundary(tag)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        # "<![" not followed by a keyword Python knows makes the standard parser raise
        # AssertionError; HTML treats it as a bogus comment, and so do we.
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            return self.parse_bogus_comment(i)

    def handle_data(self, data: str) -> None:
        if not self._dropped_depth:
            self._current.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_blocks(html: str) -> list[str]:
    """The text blocks of an HTML fragment (not yet normalised). Raises ``ValueError`` if unparseable."""
    reader = _BlockReader()
    try:
        reader.feed(html)
        reader.close()
    except AssertionError as exc:  # the standard parser's way of failing on malformed markup
        raise ValueError(f"the HTML body cannot be parsed: {exc}") from exc
    return reader.blocks


_MARKDOWN: Final = MarkdownIt("commonmark")


def markdown_blocks(markdown: str) -> list[str]:
    """The text blocks of a CommonMark document (rendered, then read as HTML)."""
    return html_blocks(_MARKDOWN.render(markdown))


def text_blocks(text: str) -> list[str]:
    """The blocks of plain text: paragraphs separated by blank (or invisible-only) lines."""
    blocks: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        if normalize(line):
            current.append(line)
        elif current:
            blocks.append(" ".join(current))
            current = []
    if current:
        blocks.append(" ".join(current))
    return blocks


_READERS: Final = {BodyFormat.HTML: html_blocks, BodyFormat.MARKDOWN: markdown_blocks, BodyFormat.TEXT: text_blocks}


def body_blocks(body: str, body_format: BodyFormat) -> list[str]:
    """The normalised, non-empty blocks of a body."""
    return [block for block in map(normalize, _READERS[body_format](body)) if block]


def canonical_text(headline: str, standfirst: str | None, body: str, body_format: BodyFormat) -> bytes:
    """The canonical bytes of an article. Raises ``ValueError`` if the headline or body is empty."""
    head = normalize(headline)
    if not head:
        raise ValueError("the headline is empty")
    blocks = body_blocks(body, body_format)
    if not blocks:
        raise ValueError("the body has no text")
    parts = [head, *([normalize(standfirst)] if standfirst and normalize(standfirst) else []), *blocks]
    return ("\n\n".join(parts) + "\n").encode("utf-8")
