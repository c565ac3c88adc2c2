"""``news-text-canonical/1``: tables of same / different / exact cases plus hypothesis properties.

The canonical bytes are what an article's detached manifest hashes, so two things must hold:
re-templating (markup, whitespace, entities, invisible characters, HTML vs Markdown vs plain
text) keeps the bytes, and any edit a reader could notice changes them. docs/canonical-text.md
is the specification.
"""

from __future__ import annotations

import html
import unicodedata
from html.entities import codepoint2name
from typing import NamedTuple

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from provenance.canonical import (
    PROFILE,
    BodyFormat,
    body_blocks,
    canonical_text,
    html_blocks,
    markdown_blocks,
    normalize,
    text_blocks,
)

HTML = BodyFormat.HTML
MARKDOWN = BodyFormat.MARKDOWN
TEXT = BodyFormat.TEXT

HEADLINE = "Storm warning"
STANDFIRST = "Gusts of 80 km/h"


class Article(NamedTuple):
    headline: str
    standfirst: str | None
    body: str
    body_format: BodyFormat


def as_html(body: str, headline: str = HEADLINE, standfirst: str | None = STANDFIRST) -> Article:
    return Article(headline, standfirst, body, HTML)


def as_markdown(body: str, headline: str = HEADLINE, standfirst: str | None = STANDFIRST) -> Article:
    return Article(headline, standfirst, body, MARKDOWN)


def as_text(body: str, headline: str = HEADLINE, standfirst: str | None = STANDFIRST) -> Article:
    return Article(headline, standfirst, body, TEXT)


def canon(article: Article) -> bytes:
    return canonical_text(*article)


def params(table: dict[str, tuple[object, ...]]) -> list[object]:
    """The table's rows as pytest params, with the keys as ids."""
    return [pytest.param(*row, id=key) for key, row in table.items()]


def test_profile_name() -> None:
    assert PROFILE == "news-text-canonical/1"


# --------------------------------------------------------------------------------------------------
# normalize(): one block's rules, character by character
# --------------------------------------------------------------------------------------------------

NORMALIZE_TABLE: dict[str, tuple[object, ...]] = {
    "soft hyphen U+00AD deleted": ("gov\u00adern\u00adment", "government"),
    "zero-width space U+200B deleted": ("news\u200broom", "newsroom"),
    "word joiner U+2060 deleted": ("news\u2060room", "newsroom"),
    "BOM U+FEFF deleted, also mid-text": ("\ufeffnews\ufeffroom", "newsroom"),
    "variation selector 16 U+FE0F deleted": ("I \u2764\ufe0f news", "I \u2764 news"),
    "variation selector 1 U+FE00 deleted": ("\u2229\ufe00", "\u2229"),
    "text presentation selector U+FE0E deleted": ("\u260e\ufe0e", "\u260e"),
    "ideographic variation selector U+E0100 deleted": ("\u845b\U000e0100\u57ce", "\u845b\u57ce"),
    "last ideographic variation selector U+E01EF deleted": ("\u845b\U000e01ef", "\u845b"),
    "ZWJ U+200D kept": ("\U0001f469\u200d\U0001f4bb", "\U0001f469\u200d\U0001f4bb"),
    "ZWNJ U+200C kept": (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    ),
    "LRM U+200E kept": ("a\u200eb", "a\u200eb"),
    "RLM U+200F kept": ("a\u200fb", "a\u200fb"),
    "Arabic letter mark U+061C kept": ("a\u061cb", "a\u061cb"),
    "NFD accent composed (NFC)": ("Cafe\u0301", "Caf\u00e9"),
    "Hangul jamo composed (NFC)": ("\u1100\u1161", "\uac00"),
    "angstrom sign -> A with ring (canonical singleton)": ("\u212b", "\u00c5"),
    "CJK compatibility ideograph -> unified (canonical singleton)": ("\uf900", "\u8c48"),
    "deleted character between letter and accent: deleted first, then composed": ("e\u00ad\u0301", "\u00e9"),
    "no NFKC: fi ligature kept": ("\ufb01le", "\ufb01le"),
    "no NFKC: full-width digits kept": ("\uff18\uff10", "\uff18\uff10"),
    "no NFKC: superscript and circled digits kept": ("m\u00b2 \u2460", "m\u00b2 \u2460"),
    "no case folding": ("Apple APPLE apple", "Apple APPLE apple"),
    "no quote folding": ("\u2018a\u2019 \u201cb\u201d 'c' \"d\"", "\u2018a\u2019 \u201cb\u201d 'c' \"d\""),
    "space run -> one space, trimmed": ("  a   b  ", "a b"),
    "tab, CR, LF, VT, FF -> one space": ("a\t\r\n\x0b\x0cb", "a b"),
    "NBSP U+00A0 is whitespace": ("80\u00a0km", "80 km"),
    "ideographic space U+3000 is whitespace": (
        "\u3000\u3000\u9999\u6e2f\u3000\u5929\u6587\u53f0",
        "\u9999\u6e2f \u5929\u6587\u53f0",
    ),
    "en quad .. hair space U+2000-U+200A are whitespace": ("a" + "".join(map(chr, range(0x2000, 0x200B))) + "b", "a b"),
    "narrow NBSP U+202F and medium math space U+205F": ("80\u202fkm\u205fh", "80 km h"),
    "ogham space mark U+1680": ("a\u1680b", "a b"),
    "NEL U+0085, line and paragraph separators U+2028/U+2029": ("a\x85b\u2028c\u2029d", "a b c d"),
    "whitespace around a deleted character collapses to one space": ("a \u00ad b", "a b"),
    "empty": ("", ""),
    "only invisible and whitespace characters": (" \u00ad\u200b\u2060\ufeff\ufe0f\u3000\n", ""),
}


@pytest.mark.parametrize(("text", "expected"), params(NORMALIZE_TABLE))
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


# --------------------------------------------------------------------------------------------------
# Blocks of each body format
# --------------------------------------------------------------------------------------------------

BLOCKS_TABLE: dict[str, tuple[object, ...]] = {
    "html: paragraphs": ("<p>a</p><p>b</p>", HTML, ["a", "b"]),
    "html: text without any block element is one block": ("Rain <b>fell</b>.", HTML, ["Rain fell."]),
    "html: headings, list items, table cells, blockquote are blocks": (
        "<h1>t</h1><ul><li>a</li><li>b</li></ul><table><tr><td>c</td><th>d</th></tr></table>"
        "<blockquote>e</blockquote><figure><figcaption>f</figcaption></figure>",
        HTML,
        ["t", "a", "b", "c", "d", "e", "f"],
    ),
    "html: adjacent table cells are separate blocks": (
        "<table><tr><td>Turnout</td><td>80%</td></tr></table>",
        HTML,
        ["Turnout", "80%"],
    ),
    "html: text either side of a nested block": ("<div>a<p>b</p>c</div>", HTML, ["a", "b", "c"]),
    "html: <hr> separates": ("a<hr>b<hr/>c", HTML, ["a", "b", "c"]),
    "html: <br> is a space, not a block boundary": ("<p>a<br>b</p>", HTML, ["a b"]),
    "html: inline elements do not separate": ("<p>a<span>b</span><em>c</em></p>", HTML, ["abc"]),
    "html: unclosed <p> ends at the next <p>": ("<p>a<p>b", HTML, ["a", "b"]),
    "html: <pre> whitespace collapses too": ("<pre>  a\n\n   b  </pre>", HTML, ["a b"]),
    "html: empty and whitespace-only blocks dropped": ("<p></p><p> &nbsp; </p><p>a</p><div>\u00ad</div>", HTML, ["a"]),
    "markdown: heading, paragraph, list items": ("# T\n\npara *x*\n\n- a\n- b\n", MARKDOWN, ["T", "para x", "a", "b"]),
    "markdown: ordered list items are blocks": ("1. a\n2. b\n", MARKDOWN, ["a", "b"]),
    "markdown: blockquote lines join": ("> a\n> b\n", MARKDOWN, ["a b"]),
    "markdown: soft and hard breaks are spaces": ("a\nb  \nc\\\nd", MARKDOWN, ["a b c d"]),
    "text: lines of a paragraph join with a space": ("a\nb\r\nc", TEXT, ["a b c"]),
    "text: blank lines separate paragraphs": ("a\n\nb\n\n\n\nc", TEXT, ["a", "b", "c"]),
    "text: a line of only whitespace or invisibles is blank": (
        "a\n \t\u3000\nb\n\u200b\u00ad\nc",
        TEXT,
        ["a", "b", "c"],
    ),
    "text: Unicode line separators split lines": ("a\u2028b\u2029\u2029c", TEXT, ["a b", "c"]),
    "text: markup is text": ("<p>a</p> *b* # c &amp;", TEXT, ["<p>a</p> *b* # c &amp;"]),
}


@pytest.mark.parametrize(("body", "body_format", "expected"), params(BLOCKS_TABLE))
def test_body_blocks(body: str, body_format: BodyFormat, expected: list[str]) -> None:
    assert body_blocks(body, body_format) == expected


def test_readers_return_raw_blocks() -> None:
    """The per-format readers split but do not normalise; body_blocks normalises and drops empties."""
    assert html_blocks("<p> a&nbsp; b </p><p> </p>") == [" a\u00a0 b ", " "]
    assert markdown_blocks("a\u00adb") == ["a\u00adb", "\n"]  # the newline after </p> is a block too
    assert text_blocks("  a  \n\n\u3000b") == ["  a  ", "\u3000b"]


# --------------------------------------------------------------------------------------------------
# SAME: every variant in a row gives byte-identical canonical text
# --------------------------------------------------------------------------------------------------

PARAS_HTML = "<p>Rain fell.</p><p>Roads closed.</p>"
DOCS_EXAMPLE_BODY = (
    '<div class="x">\r\n  <p>Rain from <b>22:00</b>.</p>\n<script>t()</script><p>Wind&nbsp;80&#8239;km/h.</p></div>'
)

STORY_HTML = (
    "<h2>Storm warning</h2>"
    '<p>Rain <em>fell</em> in <a href="https://news.example.com/hk?a=1&amp;b=2">Hong Kong</a>.</p>'
    "<p>Roads <strong>closed</strong> at 10:30.</p>"
)
STORY_TEXT = "Storm warning\n\nRain fell in Hong Kong.\n\nRoads closed at 10:30.\n"

ZH_PARAS = ("香港天文台发出黑色暴雨警告。", "部分道路已经封闭，学校停课。")
JA_PARAS = ("東京で大雨が降りました。", "電車は十時半に運転を再開しました。")
MIXED_PARAS = ("The Hong Kong Observatory (香港天文台) issued a black rainstorm signal.", "市民 should stay indoors.")

SAME_TABLE: dict[str, tuple[object, ...]] = {
    "attributes, classes, ids on <p>": (
        as_html(PARAS_HTML),
        as_html(
            '<p class="lead" id="p1" data-track=\'x\'>Rain fell.</p><p style="margin: 0" lang=en>Roads closed.</p>'
        ),
    ),
    "CRLF line endings and indentation": (
        as_html(PARAS_HTML),
        as_html("\r\n  <p>\r\n    Rain\r\n    fell.\r\n  </p>\r\n\t<p>Roads closed.</p>\r\n"),
        as_html("\n    <p>Rain\n        fell.</p>\n    <p>Roads\n closed.</p>\n"),
    ),
    "newlines inside a start tag": (
        as_html(PARAS_HTML),
        as_html('<p\r\n  class="a"\r\n  id="b"\r\n>Rain fell.</p><p>Roads closed.</p>'),
    ),
    "extra spaces and tabs between and around words": (
        as_html(PARAS_HTML),
        as_html("<p>  Rain \t  fell.  </p><p>Roads\t\tclosed. </p>"),
    ),
    "<div>, <article>, <section> wrappers": (
        as_html(PARAS_HTML),
        as_html(
            '<article><div class="body"><section><p>Rain fell.</p></section>'
            "<div><p>Roads closed.</p></div></div></article>"
        ),
        as_html("<div>Rain fell.</div><div>Roads closed.</div>"),
    ),
    "uppercase tag and attribute names": (
        as_html(PARAS_HTML),
        as_html('<P CLASS="x">Rain fell.</P><P>Roads closed.</P>'),
    ),
    "unclosed <p> tags": (as_html(PARAS_HTML), as_html("<p>Rain fell.<p>Roads closed.")),
    "<br> inside a paragraph vs a space": (
        as_html("<p>Rain fell in Hong Kong.</p>"),
        as_html("<p>Rain fell<br>in Hong Kong.</p>"),
        as_html("<p>Rain fell<br/>in<br />Hong Kong.</p>"),
        as_html("<p>Rain fell <br> in Hong Kong.</p>"),
    ),
    "inline markup (span, em, strong, a, time) adds no text": (
        as_html("<p>Rain fell at 10:30 in Hong Kong.</p>"),
        as_html(
            '<p><span class="x">Rain</span> <em>fell</em> at <time datetime="2026-11-28T10:30">10:30</time>'
            ' in <a href="/hk" title="Hong Kong">Hong <b>Kong</b></a>.</p>'
        ),
    ),
    "HTML comments dropped": (
        as_html(PARAS_HTML),
        as_html("<!-- byline --><p>Rain <!-- x -->fell.</p><!-- ad slot --><p>Roads closed.<!----></p>"),
    ),
    "script and style content dropped (even with markup-like strings)": (
        as_html(PARAS_HTML),
        as_html(
            '<p>Rain fell.</p><script>track("</p><p>not text</p>");</script>'
            "<style>p::after { content: 'not text' }</style><p>Roads closed.</p>"
        ),
        as_html('<p>Rain <script type="module">x()</script>fell.</p><p>Roads closed.</p>'),
    ),
    "iframe, video, audio, object, embed, canvas, svg, math, template, noscript dropped": (
        as_html(PARAS_HTML),
        as_html(
            '<p>Rain fell.</p><iframe src="https://x.example/embed">iframe text</iframe>'
            '<video controls><source src="v.mp4">Your browser cannot play this video.</video>'
            '<audio src="a.mp3">audio text</audio><object data="x.swf">object text</object>'
            '<embed src="x.swf"><canvas>canvas text</canvas><svg><text>svg text</text></svg>'
            "<math><mi>x</mi></math><template>template text</template>"
            '<noscript><img src="px.gif">noscript text</noscript><p>Roads closed.</p>'
        ),
    ),
    "form controls (select, textarea, button) and head/title dropped": (
        as_html(PARAS_HTML),
        as_html(
            "<head><title>Page title</title></head><p>Rain fell.</p>"
            "<form><select><option>opt</option></select><textarea>ta</textarea><button>Share</button></form>"
            "<p>Roads closed.</p>"
        ),
    ),
    "images, including alt text, add nothing": (
        as_html(PARAS_HTML),
        as_html(
            '<p>Rain fell.<img src="a.jpg" alt="A photo"></p>'
            '<figure><img src="b.jpg" alt="b"></figure><p>Roads closed.</p>'
        ),
    ),
    "NFD vs NFC accents (body, headline, standfirst)": (
        as_html("<p>Café déjà vu</p>", headline="Crème brûlée", standfirst="Señor Müller"),
        as_html(
            "<p>Cafe\u0301 de\u0301ja\u0300 vu</p>",
            headline="Cre\u0300me bru\u0302le\u0301e",
            standfirst="Sen\u0303or Mu\u0308ller",
        ),
        as_html("<p>Caf&eacute; d&#233;j&#xE0; vu</p>", headline="Crème brûlée", standfirst="Señor Müller"),
    ),
    "&nbsp;, &#160;, a literal NBSP vs a space": (
        as_html("<p>Gusts of 80 km/h.</p>"),
        as_html("<p>Gusts&nbsp;of 80&nbsp;km/h.</p>"),
        as_html("<p>Gusts&#160;of 80\u00a0km/h.</p>"),
        as_html("<p>Gusts &nbsp; of 80 &nbsp;km/h.</p>"),
    ),
    "named and numeric entities vs the characters": (
        as_text("Tom & Jerry\u2019s \u201cshow\u201d \u2014 <b> 中文 \u00a9"),
        as_html("<p>Tom &amp; Jerry&#8217;s &ldquo;show&rdquo; &mdash; &lt;b&gt; &#x4E2D;&#25991; &copy;</p>"),
        as_html("<p>Tom &amp; Jerry&rsquo;s &#x201C;show&#8221; &#8212; &LT;b&GT; 中文 &#169;</p>"),
    ),
    "soft hyphens (raw, &shy;, &#173;)": (
        as_html("<p>The government announced a referendum.</p>", headline="Government"),
        as_html(
            "<p>The gov\u00adern\u00adment an\u00adnounced a ref\u00ader\u00aden\u00addum.</p>",
            headline="Gov\u00adern\u00adment",
        ),
        as_html("<p>The gov&shy;ern&shy;ment an&#173;nounced a ref&#xAD;er&shy;en&shy;dum.</p>", headline="Government"),
    ),
    "zero-width space deleted": (
        as_html("<p>newsroom 香港天文台</p>"),
        as_html("<p>news\u200broom 香港\u200b天文台</p>"),
        as_html("<p>news&#8203;room 香港&ZeroWidthSpace;天文台</p>"),
    ),
    "word joiner deleted": (as_text("10 km"), as_text("10\u2060 km"), as_html("<p>10&NoBreak; km</p>")),
    "BOM deleted (start of a pasted file, and mid-text)": (
        as_text("Rain fell.\n\nRoads closed."),
        as_text("\ufeffRain fell.\n\nRoads\ufeff closed."),
        as_html("\ufeff<p>Rain fell.</p><p>Roads closed.</p>"),
    ),
    "variation selectors deleted (U+FE0F after a character)": (
        as_text("I \u2764 news \u260e", headline="\u2764 Hong Kong"),
        as_text("I \u2764\ufe0f news \u260e\ufe0e", headline="\u2764\ufe0f Hong Kong"),
        as_html("<p>I &#x2764;&#xFE0F; news &#9742;&#65038;</p>", headline="\u2764\ufe0f Hong Kong"),
    ),
    "ideographic variation selector deleted": (as_text("\u845b\u57ce"), as_text("\u845b\U000e0100\u57ce")),
    "a soft hyphen between a letter and its accent (deleted before NFC)": (
        as_text("Café"),
        as_text("Cafe\u00ad\u0301"),
        as_html("<p>Cafe&shy;&#x301;</p>"),
    ),
    "the same body as HTML, Markdown and plain text": (
        as_html(STORY_HTML),
        as_markdown(
            '## Storm warning\n\nRain *fell* in [Hong Kong](https://news.example.com/hk?a=1&b=2 "HK").\n\n'
            "Roads **closed** at `10:30`.\n"
        ),
        as_markdown(
            "Storm warning\n=============\n\nRain _fell_ in <span>Hong Kong</span>.\n\nRoads __closed__ at 10:30.\n"
        ),
        as_text(STORY_TEXT),
    ),
    "plain text with CRLF, trailing spaces, indentation and wrapped lines": (
        as_text(STORY_TEXT),
        as_text("Storm warning  \r\n\r\nRain fell in\r\nHong Kong.   \r\n \r\n  Roads closed\r\n  at 10:30.\r\n"),
        as_text("\n\n  Storm warning\n\n\n\nRain fell\tin Hong\n    Kong.\n\t\nRoads closed at 10:30.  \n\n\n"),
    ),
    "Markdown with CRLF, hard and soft line breaks": (
        as_text(STORY_TEXT),
        as_markdown("# Storm warning\r\n\r\nRain fell in  \r\nHong Kong.\r\n\r\nRoads closed\\\r\nat 10:30.\r\n"),
    ),
    "Markdown entities and backslash escapes vs the characters": (
        as_text("Tom & Jerry *not emphasis* # 1. \u00a9"),
        as_markdown("Tom &amp; Jerry \\*not emphasis\\* \\# 1. &copy;"),
    ),
    "Markdown raw HTML: script dropped, inline tags add nothing": (
        as_text("Rain fell.\n\nRoads closed."),
        as_markdown("Rain <em>fell</em>.\n\n<script>\ntrack()\n</script>\n\n<!-- note -->\n\nRoads closed."),
    ),
    "ideographic space U+3000 and other Unicode spaces collapse to one space": (
        as_text("Rain fell in Hong Kong."),
        as_text("Rain\u3000fell\u2003in\u2009Hong\u202fKong."),
        as_text("\u3000\u3000Rain \u00a0 fell\u1680in\u205fHong\u2002\u2002Kong.\u3000"),
        as_html("<p>Rain&#x3000;fell&emsp;in&thinsp;Hong&#8239;Kong.</p>"),
    ),
    "whitespace noise in headline and standfirst": (
        as_text("Rain fell."),
        as_text("Rain fell.", headline="  Storm\r\n\twarning\u3000", standfirst="\nGusts  of\u00a080 km/h  "),
    ),
    "empty or whitespace-only standfirst is no standfirst": (
        as_text("Rain fell.", standfirst=None),
        as_text("Rain fell.", standfirst=""),
        as_text("Rain fell.", standfirst=" \u3000\n\u00ad"),
    ),
    "empty paragraphs and whitespace-only blocks dropped": (
        as_html(PARAS_HTML),
        as_html(
            "<p></p><p>Rain fell.</p><p>&nbsp;</p><div> <br> </div><p>\u00ad\u200b</p><p>Roads closed.</p><p>\r\n</p>"
        ),
    ),
    "Chinese paragraphs (HTML, Markdown, plain text with full-width indentation)": (
        as_html("".join(f"<p>{p}</p>" for p in ZH_PARAS), headline="香港暴雨", standfirst="天文台发出黑色暴雨警告"),
        as_markdown("\n\n".join(ZH_PARAS), headline="香港暴雨", standfirst="天文台发出黑色暴雨警告"),
        as_text(
            "\u3000\u3000" + "\r\n\r\n\u3000\u3000".join(ZH_PARAS) + "\u3000",
            headline="\u3000香港暴雨\u3000",
            standfirst="天文台发出黑色暴雨警告",
        ),
    ),
    "Japanese paragraphs, NFD kana (dakuten) recomposed": (
        as_html("".join(f"<p>{p}</p>" for p in JA_PARAS), headline="東京で大雨"),
        as_text(unicodedata.normalize("NFD", "\n\n".join(JA_PARAS)), headline="東京で大雨"),
        as_markdown("\n\n".join(JA_PARAS), headline=unicodedata.normalize("NFD", "東京で大雨")),
    ),
    "mixed English/Chinese paragraphs": (
        as_html("".join(f"<p>{p}</p>" for p in MIXED_PARAS), headline="Black rainstorm 黑色暴雨"),
        as_markdown("\n\n".join(MIXED_PARAS), headline="Black rainstorm 黑色暴雨"),
        as_text(
            "The Hong Kong Observatory\u00a0(香港天文台) issued\na black rainstorm signal."
            "\r\n\r\n市民\u3000should stay indoors.",
            headline="Black rainstorm\u3000黑色暴雨",
        ),
    ),
    "Korean: NFD jamo vs precomposed syllables": (
        as_text("한국어 뉴스", headline="뉴스"),
        as_text(unicodedata.normalize("NFD", "한국어 뉴스"), headline=unicodedata.normalize("NFD", "뉴스")),
    ),
    "the example in docs/canonical-text.md": (
        Article(
            "Storm  warning",
            "Gusts&nbsp;of 80 km/h",
            DOCS_EXAMPLE_BODY,
            HTML,
        ),
        Article("Storm warning", "Gusts&nbsp;of 80 km/h", "Rain from 22:00.\n\nWind 80 km/h.", TEXT),
    ),
    # Dropped content has no effect at all: block tags inside it do not split the paragraph around it.
    "noscript fallback containing a <div>, inside a paragraph": (
        as_html("<p>Rain fell in Hong Kong.</p>"),
        as_html("<p>Rain fell <noscript><div>Enable JavaScript to see the map.</div></noscript>in Hong Kong.</p>"),
    ),
    "template containing a <p>, inside a paragraph": (
        as_html("<p>Rain fell in Hong Kong.</p>"),
        as_html("<p>Rain fell <template><p>card</p></template>in Hong Kong.</p>"),
        as_html("<p>Rain fell <video><source src=v.mp4><div>No video</div><br></video>in Hong Kong.</p>"),
    ),
}


@pytest.mark.parametrize("variants", [pytest.param(row, id=key) for key, row in SAME_TABLE.items()])
def test_same_canonical_bytes(variants: tuple[Article, ...]) -> None:
    assert len(set(variants)) == len(variants) >= 2, "a SAME row needs at least two distinct inputs"
    first = canon(variants[0])
    for variant in variants[1:]:
        assert canon(variant) == first, variant


# --------------------------------------------------------------------------------------------------
# DIFFERENT: each edit a reader could notice changes the bytes
# --------------------------------------------------------------------------------------------------

DIFFERENT_TABLE: dict[str, tuple[object, ...]] = {
    "one word changed": (as_html("<p>Police arrested two men.</p>"), as_html("<p>Police arrested two women.</p>")),
    "one word deleted": (as_html("<p>Police arrested two men.</p>"), as_html("<p>Police arrested men.</p>")),
    "a number changed (80 -> 90)": (as_html("<p>Gusts of 80 km/h.</p>"), as_html("<p>Gusts of 90 km/h.</p>")),
    "a time changed (10:30 -> 10:35)": (
        as_html("<p>Trains resume at 10:30.</p>"),
        as_html("<p>Trains resume at 10:35.</p>"),
    ),
    "'not' inserted": (
        as_html("<p>The minister said she would resign.</p>"),
        as_html("<p>The minister said she would not resign.</p>"),
    ),
    "'.' -> '?'": (as_html("<p>The election is over.</p>"), as_html("<p>The election is over?</p>")),
    "a headline word changed": (
        as_html(PARAS_HTML, headline="Storm hits Hong Kong"),
        as_html(PARAS_HTML, headline="Storm misses Hong Kong"),
    ),
    "a standfirst word changed": (
        as_html(PARAS_HTML, standfirst="Gusts of 80 km/h expected"),
        as_html(PARAS_HTML, standfirst="Gusts of 80 km/h unlikely"),
    ),
    "standfirst removed": (as_html(PARAS_HTML), as_html(PARAS_HTML, standfirst=None)),
    "a word moved from the headline to the standfirst": (
        as_html(PARAS_HTML, headline="Storm warning today", standfirst="Gusts"),
        as_html(PARAS_HTML, headline="Storm warning", standfirst="today Gusts"),
    ),
    "two paragraphs merged into one": (as_html(PARAS_HTML), as_html("<p>Rain fell. Roads closed.</p>")),
    "a paragraph split in two": (
        as_html("<p>Rain fell in Hong Kong.</p>"),
        as_html("<p>Rain fell</p><p>in Hong Kong.</p>"),
    ),
    "two paragraphs swapped": (as_html(PARAS_HTML), as_html("<p>Roads closed.</p><p>Rain fell.</p>")),
    "plain text: one line break vs a blank line": (
        as_text("Rain fell.\nRoads closed."),
        as_text("Rain fell.\n\nRoads closed."),
    ),
    "<br> vs a new paragraph": (as_html("<p>Rain fell.<br>Roads closed.</p>"), as_html(PARAS_HTML)),
    "a table cell changed": (
        as_html("<table><tr><td>Turnout</td><td>80%</td></tr></table>"),
        as_html("<table><tr><td>Turnout</td><td>90%</td></tr></table>"),
    ),
    "two table cells merged": (
        as_html("<table><tr><td>Turnout</td><td>80%</td></tr></table>"),
        as_html("<table><tr><td>Turnout 80%</td></tr></table>"),
    ),
    "code text is kept": (as_html("<p>Run <code>update</code> now.</p>"), as_html("<p>Run now.</p>")),
    "a Chinese character changed": (as_text("部分道路已经封闭。"), as_text("全部道路已经封闭。")),
    "a Chinese negation inserted": (as_text("他会辞职。"), as_text("他不会辞职。")),
    "a Chinese number changed": (as_text("风速每小时八十公里。"), as_text("风速每小时九十公里。")),
    "simplified vs traditional character": (as_text("香港天文台发出警告"), as_text("香港天文台發出警告")),
    "a Japanese kana changed": (as_text("大雨が降りました。"), as_text("大雨が降りません。")),
    "a space between Chinese characters": (as_text("香港天文台"), as_text("香港 天文台")),
    "full-width vs ASCII digits (no NFKC)": (as_text("Gusts of 80 km/h."), as_text("Gusts of \uff18\uff10 km/h.")),
    "full-width vs ASCII parentheses (no NFKC)": (as_text("市民(香港)"), as_text("市民\uff08香港\uff09")),
    "ideographic vs ASCII full stop": (as_text("封闭。"), as_text("封闭.")),
    "fi ligature vs f i (no NFKC)": (as_text("The \ufb01le"), as_text("The file")),
    "superscript vs digit (no NFKC)": (as_text("10 m\u00b2"), as_text("10 m2")),
    "curly vs straight apostrophe (no quote folding)": (as_text("Jerry\u2019s"), as_text("Jerry's")),
    "curly vs straight double quotes (no quote folding)": (as_text("\u201cno\u201d"), as_text('"no"')),
    "upper vs lower case (no case folding)": (as_text("Apple shares fell."), as_text("apple shares fell.")),
    "headline case changed": (as_text("Rain fell.", headline="US talks"), as_text("Rain fell.", headline="us talks")),
    "ZWJ kept in an emoji sequence": (as_text("\U0001f469\u200d\U0001f4bb"), as_text("\U0001f469\U0001f4bb")),
    "ZWJ kept in Devanagari": (as_text("\u0915\u094d\u200d\u0937"), as_text("\u0915\u094d\u0937")),
    "ZWNJ kept in Persian": (
        as_text("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"),
        as_text("\u0645\u06cc\u062e\u0648\u0627\u0647\u0645"),
    ),
    "RLM bidi mark kept": (as_text("\u05e9\u05dc\u05d5\u05dd 80\u200f%"), as_text("\u05e9\u05dc\u05d5\u05dd 80%")),
    "LRM bidi mark kept": (as_text("\u05e9\u05dc\u05d5\u05dd\u200e 80"), as_text("\u05e9\u05dc\u05d5\u05dd 80")),
    "a non-breaking space between words vs none": (as_html("<p>80&nbsp;km</p>"), as_html("<p>80km</p>")),
    "a Markdown list item vs the same text as a paragraph of dashes": (
        as_markdown("- a\n- b"),
        as_text("- a\n- b"),
    ),
}


@pytest.mark.parametrize(("before", "after"), params(DIFFERENT_TABLE))
def test_different_canonical_bytes(before: Article, after: Article) -> None:
    assert before != after
    assert canon(before) != canon(after)


# --------------------------------------------------------------------------------------------------
# Exact bytes
# --------------------------------------------------------------------------------------------------

EXACT_TABLE: dict[str, tuple[object, ...]] = {
    "headline, standfirst and two HTML paragraphs": (
        as_html(
            '<div class="story">\r\n  <p>Rain fell.</p>\r\n  <p>Roads closed at 10:30.</p>\r\n</div>',
            standfirst="Gusts of 80 km/h",
        ),
        b"Storm warning\n\nGusts of 80 km/h\n\nRain fell.\n\nRoads closed at 10:30.\n",
    ),
    "no standfirst, plain text": (as_text("Rain fell.", standfirst=None), b"Storm warning\n\nRain fell.\n"),
    "Markdown heading and list items are blocks": (
        as_markdown("# Title\n\nSome *text*.\n\n- one\n- two\n", standfirst=None),
        b"Storm warning\n\nTitle\n\nSome text.\n\none\n\ntwo\n",
    ),
    "Chinese headline, standfirst and body in UTF-8": (
        as_html("<p>道路封闭。</p>", headline="香港暴雨", standfirst="天文台\u3000警告"),
        # 香港暴雨 \n\n 天文台 警告 \n\n 道路封闭。 \n
        b"\xe9\xa6\x99\xe6\xb8\xaf\xe6\x9a\xb4\xe9\x9b\xa8\n\n"
        b"\xe5\xa4\xa9\xe6\x96\x87\xe5\x8f\xb0 \xe8\xad\xa6\xe5\x91\x8a\n\n"
        b"\xe9\x81\x93\xe8\xb7\xaf\xe5\xb0\x81\xe9\x97\xad\xe3\x80\x82\n",
    ),
    "kept invisibles are encoded, deleted ones are gone": (
        as_text("a\u200db\u200cc\u200fd\u00ade\u200bf", headline="H", standfirst=None),
        b"H\n\na\xe2\x80\x8db\xe2\x80\x8cc\xe2\x80\x8fdef\n",
    ),
    "NFD input gives NFC bytes": (
        as_text("Cafe\u0301", headline="H", standfirst=None),
        b"H\n\nCaf\xc3\xa9\n",
    ),
    "the example in docs/canonical-text.md": (
        Article(
            "Storm  warning",
            "Gusts&nbsp;of 80 km/h",
            DOCS_EXAMPLE_BODY,
            HTML,
        ),
        b"Storm warning\n\nGusts&nbsp;of 80 km/h\n\nRain from 22:00.\n\nWind 80 km/h.\n",
    ),
}


@pytest.mark.parametrize(("article", "expected"), params(EXACT_TABLE))
def test_exact_bytes(article: Article, expected: bytes) -> None:
    assert canon(article) == expected


EMPTY_TABLE: dict[str, tuple[object, ...]] = {
    "empty headline": (as_html(PARAS_HTML, headline=""), "headline"),
    "whitespace-only headline": (as_html(PARAS_HTML, headline=" \u3000\r\n\t"), "headline"),
    "invisible-only headline": (as_html(PARAS_HTML, headline="\u00ad\u200b\ufeff"), "headline"),
    "empty HTML body": (as_html(""), "body"),
    "empty Markdown body": (as_markdown(""), "body"),
    "empty text body": (as_text(""), "body"),
    "only-script body": (as_html("<script>alert('x')</script>"), "body"),
    "only script, style, iframe and a comment": (
        as_html("<style>p{}</style><script>x()</script><iframe src='x'>y</iframe><!-- c -->"),
        "body",
    ),
    "whitespace-only HTML body": (as_html(" \r\n\t\u3000&nbsp;&#8203;&shy; "), "body"),
    "only empty HTML paragraphs": (as_html("<p></p><p>&nbsp;</p><div><br></div><p><img src=x alt=y></p>"), "body"),
    "whitespace-only text body": (as_text(" \n\n \u3000 \r\n\t\u200b\n"), "body"),
    "Markdown body of only a comment and a script": (as_markdown("<!-- c -->\n\n<script>\nx()\n</script>\n"), "body"),
    "empty headline is reported before an empty body": (as_text("", headline=""), "headline"),
}


@pytest.mark.parametrize(("article", "which"), params(EMPTY_TABLE))
def test_empty_headline_or_body_is_an_error(article: Article, which: str) -> None:
    with pytest.raises(ValueError, match=which):
        canon(article)


# "<![" not followed by a marked-section keyword Python knows (CDATA, if, endif, ...) made
# Python 3.11's HTMLParser raise AssertionError; HTML reads it as a bogus comment up to the next ">".
MALFORMED_TABLE: dict[str, tuple[object, ...]] = {
    "unknown marked-section keyword": ("<p>Rain <![if-mso[x]]>fell.</p>", b"H\n\nRain fell.\n"),
    "'<![' then a space": ("<p>Rain <![ x ]>fell.</p>", b"H\n\nRain fell.\n"),
    "'<![' then a digit": ("<p>Rain <![1]>fell.</p>", b"H\n\nRain fell.\n"),
    "the bogus comment runs to the next '>'": (
        "<p>Rain <![ fell.</p><p>Roads closed.</p>",
        b"H\n\nRain\n\nRoads closed.\n",
    ),
    "Word's conditional comments": (
        "<p>Rain <![if !supportLists]>1.<![endif]> fell.</p>",
        b"H\n\nRain 1. fell.\n",
    ),
    "CDATA section": ("<p>Rain <![CDATA[x]]>fell.</p>", b"H\n\nRain fell.\n"),
}


@pytest.mark.parametrize(("body", "expected"), params(MALFORMED_TABLE))
def test_malformed_marked_sections(body: str, expected: bytes) -> None:
    assert canonical_text("H", None, body, HTML) == expected


# --------------------------------------------------------------------------------------------------
# Hypothesis properties
# --------------------------------------------------------------------------------------------------

# Words for the noise-invariance property. Every character is NFC-stable, visible and not markup in
# any of the three formats, so that one list of words has one obvious canonical form:
#  - no whitespace and none of the deleted characters (soft hyphen, ZWSP, WJ, BOM, VS), which the
#    renderers below add on purpose as noise;
#  - no `<` or `&` (HTML markup; entities are added as noise instead);
#  - no `* _ ` [ ] \\ # ~ = + | { } !` (CommonMark emphasis, code, links, escapes, headings, fences,
#    setext underlines, lists);
#  - a word starts with a letter, so a Markdown line never starts with a list marker (`1.`, `1)`,
#    `-`), a heading `#` or a block quote `>`.
LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ACCENTED = "éèêëàâäçñöüßøåÉÇÑĀăąĉőž"  # precomposed; rendered in NFD as noise
GREEK_CYRILLIC = "αβγδλωΩΣжщЯё"
CJK = "中文新闻香港天文台暴雨警告部分道路已经封闭政府经济北京上海臺灣記者報導"
KANA = "ひらがなのはをですカタカナニュースが"
HANGUL = "한국어뉴스기자"
LETTERS = LATIN + ACCENTED + GREEK_CYRILLIC + CJK + KANA + HANGUL
DIGITS = "0123456789０１２３"
PUNCT = ",.;:?'\"()/%-’‘“”，。、「」！？：；（）—…"

words = st.builds(str.__add__, st.sampled_from(LETTERS), st.text(LETTERS + DIGITS + PUNCT, max_size=7))
paragraphs = st.lists(st.lists(words, min_size=1, max_size=7), min_size=1, max_size=4)

# Characters the spec deletes; only ever inserted strictly inside a word.
DELETED = ("\u00ad", "\u200b", "\u2060", "\ufeff", "\ufe0f", "\ufe0e", "\U000e0100")


def sprinkle(draw: st.DrawFn, word: str) -> str:
    """The word, maybe with one deleted character inserted strictly inside it."""
    if len(word) < 2 or not draw(st.booleans()):
        return word
    i = draw(st.integers(1, len(word) - 1))
    return word[:i] + draw(st.sampled_from(DELETED)) + word[i:]


def maybe_nfd(draw: st.DrawFn, text: str) -> str:
    return unicodedata.normalize("NFD", text) if draw(st.booleans()) else text


def maybe_crlf(draw: st.DrawFn, text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n") if draw(st.booleans()) else text


def html_char(draw: st.DrawFn, char: str) -> str:
    how = draw(st.sampled_from(("raw", "raw", "decimal", "hex", "named")))
    if how == "decimal":
        return f"&#{ord(char)};"
    if how == "hex":
        return f"&#x{ord(char):X};"
    if how == "named" and ord(char) in codepoint2name:
        return f"&{codepoint2name[ord(char)]};"
    return html.escape(char, quote=False)


HTML_SEPARATORS = (
    " ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    " \r\n    ",
    "&nbsp;",
    " &#160; ",
    "\u3000",
    "<br>",
    "<br/>",
    " <br /> ",
    " <!-- c --> ",
)
HTML_INLINE = (
    ("", ""),
    ("", ""),
    ('<span class="x">', "</span>"),
    ("<em>", "</em>"),
    ("<STRONG>", "</STRONG>"),
    ('<a href="https://news.example.com/a?b=1&amp;c=2" title="t">', "</a>"),
    ('<time datetime="2026-11-28">', "</time>"),
)
HTML_ATTRIBUTES = ('class="lead"', "id=p3", "data-x='y z'", 'lang="zh-Hant"', 'style="margin: 0"', "hidden-not")
HTML_ATTRIBUTE_SPACE = (" ", "\n  ", "\r\n\t", "  ")
HTML_WHITESPACE = ("", " ", "\n", "\r\n    ", "\t")
HTML_BETWEEN = (
    "",
    "\n",
    "\r\n  ",
    "<!-- ad slot -->",
    "<script>var s = '<p>no</p>';</script>",
    "<style>p { margin: 0 }</style>",
    "<p></p>",
    "<p>&nbsp;</p>",
    "<div>\u00ad</div>",
    '<iframe src="https://x.example/embed"></iframe>',
    '<figure><img src="a.jpg" alt="photo"></figure>',
    '<video controls><source src="v.mp4">Your browser cannot play this video.</video>',
    '<noscript><img src="px.gif"></noscript>',
    "<hr>",
)


def html_paragraph(draw: st.DrawFn, paragraph: list[str], heading: bool) -> str:
    parts = []
    for i, word in enumerate(paragraph):
        if i:
            parts.append(draw(st.sampled_from(HTML_SEPARATORS)))
        opening, closing = draw(st.sampled_from(HTML_INLINE))
        word = sprinkle(draw, word)
        text = "".join(html_char(draw, c) for c in word) if draw(st.booleans()) else word
        parts.append(opening + text + closing)
    tag = "h2" if heading else draw(st.sampled_from(("p", "p", "P", "div")))
    attributes = "".join(
        draw(st.sampled_from(HTML_ATTRIBUTE_SPACE)) + attribute
        for attribute in draw(st.lists(st.sampled_from(HTML_ATTRIBUTES), max_size=3))
    )
    inner = draw(st.sampled_from(HTML_WHITESPACE)) + "".join(parts) + draw(st.sampled_from(HTML_WHITESPACE))
    # An omitted </p> is fine: whatever follows is a block boundary or has no text.
    end = "" if tag.lower() == "p" and draw(st.booleans()) else f"</{tag}>"
    element = f"<{tag}{attributes}>{inner}{end}"
    if draw(st.booleans()):
        element = f'<div class="wrap">{draw(st.sampled_from(HTML_WHITESPACE))}{element}\n</div>'
    return draw(st.sampled_from(HTML_WHITESPACE)) + element + draw(st.sampled_from(HTML_BETWEEN))


def html_body(draw: st.DrawFn, paras: list[list[str]], headings: list[bool]) -> str:
    body = "".join(html_paragraph(draw, p, h) for p, h in zip(paras, headings, strict=True))
    if draw(st.booleans()):
        body = f'<article class="story">\n{body}\n</article>'
    return maybe_crlf(draw, maybe_nfd(draw, body))


# Markdown: `*w*`, `_w_`, `**w**`, links and inline HTML around whole words only; a word is always
# followed by whitespace, a line end or a backslash hard break, so the delimiters always flank.
MARKDOWN_INLINE = (
    ("", ""),
    ("", ""),
    ("*", "*"),
    ("_", "_"),
    ("**", "**"),
    ("[", "](https://news.example.com/x?a=1&b=2 'title')"),
    ('<span lang="zh">', "</span>"),
)
# Soft breaks, hard breaks (two spaces or a backslash before the newline) and lazy continuation
# lines are all one space in the output.
MARKDOWN_SEPARATORS = (" ", "  ", " \t ", "\n", "  \n", "\\\n", "\n    ")
MARKDOWN_BETWEEN = (
    "\n\n",
    "\n \n",
    "\n\n\n",
    "\n\t\n",
    "\n\n<!-- note -->\n\n",
    "\n\n<script>\ntrack()\n</script>\n\n",
)


def markdown_word(draw: st.DrawFn, word: str) -> str:
    text = sprinkle(draw, word)
    if draw(st.integers(0, 3)) == 0:  # some characters as numeric character references
        text = "".join(f"&#{ord(c)};" if draw(st.booleans()) else c for c in text)
    opening, closing = draw(st.sampled_from(MARKDOWN_INLINE))
    return opening + text + closing


def markdown_paragraph(draw: st.DrawFn, paragraph: list[str], heading: bool) -> str:
    indent = draw(st.sampled_from(("", " ", "   ")))  # four spaces would start a code block
    rendered = [markdown_word(draw, word) for word in paragraph]
    if heading:  # an ATX heading is one line
        line = " ".join(rendered)
        return f"{indent}{'#' * draw(st.integers(1, 3))} {line}{draw(st.sampled_from(('', ' ##', '  ')))}"
    text = rendered[0]
    for word in rendered[1:]:
        text += draw(st.sampled_from(MARKDOWN_SEPARATORS)) + word
    return indent + text


def markdown_body(draw: st.DrawFn, paras: list[list[str]], headings: list[bool]) -> str:
    body = ""
    for i, (p, h) in enumerate(zip(paras, headings, strict=True)):
        body += (draw(st.sampled_from(MARKDOWN_BETWEEN)) if i else "") + markdown_paragraph(draw, p, h)
    body += draw(st.sampled_from(("", "\n", "\n\n", "  \n")))
    return maybe_crlf(draw, maybe_nfd(draw, body))


TEXT_SEPARATORS = (" ", "  ", "\t", "\n", "\r\n", " \n  ", "\u3000", "\u00a0", "\u2002", "\u202f")
TEXT_BETWEEN = ("\n\n", "\r\n\r\n", "\n \t\n", "\n\n\n", "\n\u3000\n", "\n\u200b\n")
TEXT_INDENT = ("", "  ", "\u3000\u3000", "\t")


def text_body(draw: st.DrawFn, paras: list[list[str]]) -> str:
    rendered = []
    for paragraph in paras:
        text = draw(st.sampled_from(TEXT_INDENT)) + sprinkle(draw, paragraph[0])
        for word in paragraph[1:]:
            text += draw(st.sampled_from(TEXT_SEPARATORS)) + sprinkle(draw, word)
        rendered.append(text + draw(st.sampled_from(("", " ", "\u3000"))))
    body = rendered[0]
    for text in rendered[1:]:
        body += draw(st.sampled_from(TEXT_BETWEEN)) + text
    body = draw(st.sampled_from(("", "\ufeff", "\n\n"))) + body + draw(st.sampled_from(("", "\n", "  \n\n")))
    return maybe_crlf(draw, maybe_nfd(draw, body))


def plain_field(draw: st.DrawFn, field: list[str]) -> str:
    """A headline or standfirst with whitespace, NFD and invisible-character noise."""
    separators = st.sampled_from((" ", "  ", "\u00a0", "\u3000", "\t", "\r\n"))
    text = sprinkle(draw, field[0])
    for word in field[1:]:
        text += draw(separators) + sprinkle(draw, word)
    return maybe_nfd(draw, draw(st.sampled_from(("", " ", "\u3000"))) + text + draw(st.sampled_from(("", " ", "\n"))))


class Rendered(NamedTuple):
    expected: bytes
    variants: list[Article]


@st.composite
def renderings(draw: st.DrawFn) -> Rendered:
    headline = draw(st.lists(words, min_size=1, max_size=5))
    standfirst = draw(st.lists(words, max_size=5))
    paras = draw(paragraphs)
    headings = draw(st.lists(st.booleans(), min_size=len(paras), max_size=len(paras)))
    lines = [" ".join(headline), *([" ".join(standfirst)] if standfirst else []), *(" ".join(p) for p in paras)]
    expected = ("\n\n".join(lines) + "\n").encode()

    def fields() -> tuple[str, str | None]:
        return plain_field(draw, headline), plain_field(draw, standfirst) if standfirst else draw(
            st.sampled_from((None, "", " "))
        )

    variants = [
        Article(*fields(), html_body(draw, paras, headings), HTML),
        Article(*fields(), markdown_body(draw, paras, headings), MARKDOWN),
        Article(*fields(), text_body(draw, paras), TEXT),
    ]
    return Rendered(expected, variants)


@settings(max_examples=200, deadline=None)
@given(renderings())
def test_markup_and_whitespace_noise_invariant(rendered: Rendered) -> None:
    """HTML, Markdown and plain text renderings of the same words, with noise, give the same bytes."""
    for article in rendered.variants:
        assert canon(article) == rendered.expected, article


# Arbitrary text for idempotence: any Unicode scalar value, biased towards what the rules act on.
SPECIAL = (
    *DELETED,
    *(chr(c) for c in (0x200C, 0x200D, 0x200E, 0x200F, 0x061C, 0x2066, 0x2069)),
    *(
        chr(c)
        for c in (0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0x1C, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2003, 0x2028, 0x2029, 0x3000)
    ),
    "\u0301",
    "\u0308",
    "\u3099",
    "\u1100",
    "\u1161",
    "\u11a8",
    "e",
    "\u212b",
    "\uf900",
    "中",
    "\r\n",
    "\n\n",
    "<p>",
    "</p>",
    "<br>",
    "<div class=x>",
    "&nbsp;",
    "&amp;",
    "&shy;",
    "<script>x</script>",
    "<!-- c -->",
    "*",
    "# ",
    "- ",
    "1. ",
    "> ",
    "    ",
    "<![",
    "<!",
    "]]>",
    "</",
    "`",
    "[a](b)",
)
noisy_text = st.lists(st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=30).map("".join)


def is_canonical_line(line: str) -> bool:
    return (
        line != ""
        and line == line.strip()
        and "  " not in line
        and all(c == " " or not c.isspace() for c in line)
        and not any(c in line for c in DELETED)
        and unicodedata.is_normalized("NFC", line)
    )


@settings(max_examples=200, deadline=None)
@given(noisy_text, st.none() | noisy_text, noisy_text, st.sampled_from(list(BodyFormat)))
def test_idempotent_and_well_formed(headline: str, standfirst: str | None, body: str, body_format: BodyFormat) -> None:
    """Canonical output is well formed, and canonicalising it again (as plain text) gives it back."""
    try:
        out = canonical_text(headline, standfirst, body, body_format)
    except ValueError:
        reject()
    assert out.endswith(b"\n")
    lines = out.decode("utf-8").removesuffix("\n").split("\n\n")
    assert all(is_canonical_line(line) for line in lines), lines
    has_standfirst = standfirst is not None and normalize(standfirst) != ""
    head, rest = lines[0], lines[1:]
    again_standfirst = rest.pop(0) if has_standfirst else None
    assert canonical_text(head, again_standfirst, "\n\n".join(rest), TEXT) == out
    assert body_blocks("\n\n".join(rest), TEXT) == rest


@settings(max_examples=200, deadline=None)
@given(noisy_text)
def test_normalize_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert once == "" or is_canonical_line(once)


# Words for the edit property: any visible character (letters, marks, numbers, punctuation, symbols
# of any script). Excluded: whitespace and separators (they would split the word), control and
# format characters (invisible; the deleted ones would vanish) and the variation selectors (deleted;
# they are category Mn, so excluded by name).
visible_words = st.text(
    st.characters(
        exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"),
        exclude_characters="".join(DELETED) + "".join(map(chr, range(0xFE00, 0xFE10))),
    ),
    min_size=1,
    max_size=6,
)
MARKDOWN_SPECIAL = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # ASCII punctuation: escapable


def render_words(paras: list[list[str]], body_format: BodyFormat) -> str:
    """One line per paragraph, words separated by single spaces, markup escaped for the format."""
    if body_format is HTML:
        return "".join("<p>" + html.escape(" ".join(p), quote=False) + "</p>" for p in paras)
    if body_format is MARKDOWN:
        return "\n\n".join(
            " ".join("".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in w) for w in p) for p in paras
        )
    return "\n\n".join(" ".join(p) for p in paras)


@st.composite
def word_edits(draw: st.DrawFn) -> tuple[Article, Article]:
    """An article and the same article with one word inserted into, or deleted from, one field."""
    fields = draw(st.lists(st.lists(visible_words, min_size=1, max_size=5), min_size=3, max_size=6))
    body_format = draw(st.sampled_from(list(BodyFormat)))
    edited = [list(field) for field in fields]
    target = draw(st.integers(0, len(fields) - 1))  # 0: headline, 1: standfirst, then paragraphs
    field = edited[target]
    # The headline, and the body as a whole, must keep a word (or the article is an error).
    must_insert = len(field) == 1 and (target == 0 or (target >= 2 and len(fields) == 3))
    if must_insert or draw(st.booleans()):
        # a fresh word, or a repeated one ("the the": duplicates must count too)
        field.insert(draw(st.integers(0, len(field))), draw(visible_words | st.sampled_from(field)))
    else:
        del field[draw(st.integers(0, len(field) - 1))]

    def article(f: list[list[str]]) -> Article:
        return Article(" ".join(f[0]), " ".join(f[1]), render_words(f[2:], body_format), body_format)

    return article(fields), article(edited)


@settings(max_examples=200, deadline=None)
@given(word_edits())
def test_any_inserted_or_deleted_word_changes_the_bytes(edit: tuple[Article, Article]) -> None:
    before, after = edit
    assert canon(before) != canon(after)
