"""The fixed, translated vocabulary of badge labels: the only source of words a badge may show.

Label text never comes from a manifest, a title, a caption or a file name. Adding a label or a
language is a code change reviewed like any other.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from provenance.errors import InputError

LANGUAGES: Final = ("en", "zh-Hans")

_TEXT: Final = MappingProxyType(
    {
        "ai_generated": MappingProxyType({"en": "AI-generated image", "zh-Hans": "AI 生成的图像"}),
        "ai_edited": MappingProxyType({"en": "AI-edited image", "zh-Hans": "经 AI 编辑的图像"}),
        "ai_reported": MappingProxyType({"en": "Reported by AI", "zh-Hans": "由 AI 报道"}),
        "ai_assisted": MappingProxyType({"en": "Written with AI assistance", "zh-Hans": "AI 辅助撰写"}),
    }
)

LABEL_IDS: Final = tuple(_TEXT)

# Words of the badge itself when it shows no AI label (keyed by what the badge says, not by a label).
_BADGE: Final = MappingProxyType(
    {
        "content_credentials": MappingProxyType({"en": "Content Credentials", "zh-Hans": "内容凭证"}),
        "content_credentials_invalid": MappingProxyType(
            {"en": "Content Credentials invalid", "zh-Hans": "内容凭证无效"}
        ),
        "content_credentials_unverified": MappingProxyType(
            {"en": "Content Credentials not verified", "zh-Hans": "内容凭证未经验证"}
        ),
    }
)
BADGE_TEXT_IDS: Final = tuple(_BADGE)


def _text(table: MappingProxyType[str, MappingProxyType[str, str]], key: str, lang: str) -> str:
    try:
        texts = table[key]
    except KeyError:
        raise InputError(f"unknown text id {key!r}") from None
    try:
        return texts[lang]
    except KeyError:
        raise InputError(f"unsupported language {lang!r}", hint=f"one of {', '.join(LANGUAGES)}") from None


def badge_text(text_id: str, lang: str = "en") -> str:
    """The badge's own words (``content_credentials``…) in ``lang``; raises :class:`InputError` if unknown."""
    return _text(_BADGE, text_id, lang)


def label_text(label_id: str, lang: str = "en") -> str:
    """Return the badge text of ``label_id`` in ``lang``.

    Raises :class:`InputError` for an unknown label id or language (never falls back to
    anything a manifest said).
    """
    return _text(_TEXT, label_id, lang)
