"""Text from manifests, made safe to show: invisible and reordering characters become visible tokens.

Manifest strings (titles, signer names, claim generators, labels, codes) are written by whoever signed
the file. Invisible characters in them can make a display lie: a right-to-left override (U+202E) turns
``gpj.exe`` into what reads as ``exe.jpg``, a zero-width space makes two different names look equal, a
control character can end a line or a field early.

Invariant of :func:`visible`: its result contains no character of Unicode general category Cc (controls,
C0 and C1) other than TAB and LF, Cf (format: bidirectional embeddings, overrides and isolates, the
marks U+200E, U+200F and U+061C, zero-width characters, U+FEFF, soft hyphen, tags…), Cs (lone
surrogates), Zl or Zp (line and paragraph separators), nor the invisible Hangul fillers. Each such
character is replaced by a visible token ``⟨U+XXXX⟩`` naming it; every other character (letters of any
script, CJK included, digits, punctuation, spaces, emoji, TAB, LF) is kept unchanged and in order. So
what is displayed is exactly the text's characters, in logical order, with the hidden ones named.

Pure: no dependencies beyond the standard library's Unicode database. It does not escape for any
markup language; escape its result for the format it is written into (HTML, SVG…).
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["visible"]

_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_KEPT: Final = frozenset("\t\n")
# Letters (category Lo) that render as nothing: used to forge blank-looking or look-alike names.
_FILLERS: Final = frozenset("\u115f\u1160\u3164\uffa0")


def _hidden(ch: str) -> bool:
    if ch in _KEPT:
        return False
    return ch in _FILLERS or unicodedata.category(ch) in _HIDDEN_CATEGORIES


def _token(ch: str) -> str:
    return f"⟨U+{ord(ch):04X}⟩"


def visible(text: str) -> str:
    """``text`` with every invisible or reordering character replaced by a visible ``⟨U+XXXX⟩`` token.

    Guarantees the module's invariant; never raises for any ``str`` (lone surrogates included).
    """
    if text.isprintable() and _FILLERS.isdisjoint(text):
        return text  # the common case: nothing hidden (isprintable is False for every hidden category)
    return "".join(_token(ch) if _hidden(ch) else ch for ch in text)
