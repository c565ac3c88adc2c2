"""The fixed, translated vocabulary of badge labels: the only source of words a badge may show.

Label text never comes from a manifest, a title, a caption or a file name. Adding a label or a
language is a code change reviewed like any other.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from provenance.errors import InputError
from provenance.policy import iptc_term

LANGUAGES: Final = ("en", "zh-Hans")


def preferred_language(accept_language: str | None) -> str:
    """The first of :data:`LANGUAGES` an ``Accept-Language`` value asks for (any ``zh`` tag is zh-Hans,
    any ``en`` tag en; quality values are not weighed: browsers list what they prefer first), else en."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-Hans"
        if tag.startswith("en"):
            return "en"
    return "en"


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

# What each label means, for a badge's popover (one sentence; never from a manifest).
_MEANING: Final = MappingProxyType(
    {
        "ai_generated": MappingProxyType(
            {
                "en": "A trusted signer states that this image was created by a generative AI model.",
                "zh-Hans": "可信签名者声明此图像由生成式 AI 模型创建。",
            }
        ),
        "ai_edited": MappingProxyType(
            {
                "en": "A trusted signer states that this image was edited or composited with generative AI.",
                "zh-Hans": "可信签名者声明此图像经生成式 AI 编辑或合成。",
            }
        ),
        "ai_reported": MappingProxyType(
            {
                "en": "A trusted signer states that this article was written by a generative AI model.",
                "zh-Hans": "可信签名者声明此报道由生成式 AI 模型撰写。",
            }
        ),
        "ai_assisted": MappingProxyType(
            {
                "en": "A trusted signer states that this article was written with the help of generative AI.",
                "zh-Hans": "可信签名者声明此报道在生成式 AI 辅助下撰写。",
            }
        ),
        "content_credentials_invalid": MappingProxyType(
            {
                "en": "This content's credentials do not match it: it was changed after signing, or they are damaged.",
                "zh-Hans": "此内容的凭证与内容不符：签名后内容被修改，或凭证已损坏。",
            }
        ),
    }
)


# A signed editorial review, for a badge's popover: ``{editor}`` is the review's signed ``editor`` (a newsroom
# or desk name), the only word not from this table. A review never replaces or softens a label.
_REVIEWED: Final = MappingProxyType(
    {
        "reviewed_by": MappingProxyType(
            {"en": "Reviewed by the editors of {editor}", "zh-Hans": "经 {editor} 编辑部审核"}
        )
    }
)


# A manifest recovered through a soft binding (a fingerprint match): said of the ORIGINAL, never of the copy in
# hand, which carries no credentials of its own (C2PA UX guidance on recovered manifests).
_RECOVERED: Final = MappingProxyType(
    {
        "matching_original": MappingProxyType(
            {"en": "Credentials found for a matching original", "zh-Hans": "找到匹配原件的内容凭证"}
        ),
        "matching_original_note": MappingProxyType(
            {
                "en": "This copy carries no Content Credentials of its own. It closely matches an original whose "
                "credentials were verified; the copy may have been resized, re-encoded or changed since.",
                "zh-Hans": "此副本本身不带内容凭证。它与一件凭证已通过验证的原件高度相似；"
                "副本此后可能被缩放、重新编码或改动。",
            }
        ),
        "no_matching_original": MappingProxyType(
            {"en": "No credentials found for this content", "zh-Hans": "未找到此内容的凭证"}
        ),
    }
)
RECOVERED_TEXT_IDS: Final = tuple(_RECOVERED)


def recovered_text(text_id: str, lang: str = "en") -> str:
    """The words of a soft-binding match (``matching_original``...) in ``lang``; raises :class:`InputError`."""
    return _text(_RECOVERED, text_id, lang)


def review_text(editor: str, lang: str = "en") -> str:
    """The popover line "Reviewed by the editors of …" in ``lang`` for a verified review's ``editor``.

    Raises :class:`InputError` for an unsupported language.
    """
    return _text(_REVIEWED, "reviewed_by", lang).replace(
        "{editor}", editor
    )  # not str.format: braces stay  # not str.format: braces in a name stay as they are


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


def meaning(text_id: str, lang: str = "en") -> str:
    """What a label (or the invalid mark) means, in ``lang``; raises :class:`InputError` if unknown."""
    return _text(_MEANING, text_id, lang)


def label_text(label_id: str, lang: str = "en") -> str:
    """Return the badge text of ``label_id`` in ``lang``.

    Raises :class:`InputError` for an unknown label id or language (never falls back to
    anything a manifest said).
    """
    return _text(_TEXT, label_id, lang)


# Human names of the IPTC digital source types (NewsCodes "digitalsourcetype"), for reports: a manifest
# names a type by URI; the name shown is ours, never the manifest's.
_SOURCE_TYPES: Final = MappingProxyType(
    {
        "digitalCapture": MappingProxyType({"en": "Original digital capture", "zh-Hans": "原始数字拍摄"}),
        "computationalCapture": MappingProxyType({"en": "Computational capture", "zh-Hans": "计算摄影拍摄"}),
        "negativeFilm": MappingProxyType({"en": "Digitised from a film negative", "zh-Hans": "由胶片底片数字化"}),
        "positiveFilm": MappingProxyType({"en": "Digitised from a film positive", "zh-Hans": "由反转片数字化"}),
        "print": MappingProxyType({"en": "Digitised from a print", "zh-Hans": "由印刷品数字化"}),
        "humanEdits": MappingProxyType({"en": "Human-edited media", "zh-Hans": "经人工编辑的媒体"}),
        "minorHumanEdits": MappingProxyType(
            {"en": "Original media with minor human edits", "zh-Hans": "经轻微人工编辑的原始媒体"}
        ),
        "compositeCapture": MappingProxyType({"en": "Composite of captured elements", "zh-Hans": "拍摄素材合成"}),
        "algorithmicallyEnhanced": MappingProxyType(
            {"en": "Algorithmically enhanced media", "zh-Hans": "算法增强的媒体"}
        ),
        "dataDrivenMedia": MappingProxyType({"en": "Data-driven media", "zh-Hans": "数据驱动的媒体"}),
        "digitalArt": MappingProxyType({"en": "Digital art", "zh-Hans": "数字艺术"}),
        "virtualRecording": MappingProxyType({"en": "Virtual recording", "zh-Hans": "虚拟录制"}),
        "compositeSynthetic": MappingProxyType(
            {"en": "Composite including synthetic elements", "zh-Hans": "含合成元素的合成作品"}
        ),
        "trainedAlgorithmicMedia": MappingProxyType(
            {
                "en": "Created by generative AI (trained algorithmic media)",
                "zh-Hans": "由生成式 AI 创建（训练算法媒体）",
            }
        ),
        "compositeWithTrainedAlgorithmicMedia": MappingProxyType(
            {"en": "Composite with generative AI elements", "zh-Hans": "含生成式 AI 元素的合成作品"}
        ),
        "algorithmicMedia": MappingProxyType({"en": "Pure algorithmic media", "zh-Hans": "纯算法媒体"}),
        "screenCapture": MappingProxyType({"en": "Screen capture", "zh-Hans": "屏幕截图"}),
    }
)


def source_type_name(uri: str, lang: str = "en") -> str | None:
    """The human name of an IPTC digital source type URI in ``lang``, or ``None`` for any other URI
    (show the URI itself then). Raises :class:`InputError` for an unsupported language."""
    if lang not in LANGUAGES:
        raise InputError(f"unsupported language {lang!r}", hint=f"one of {', '.join(LANGUAGES)}")
    term = iptc_term(uri)  # the policy's reading of the URI (http:// and https:// alike)
    return _text(_SOURCE_TYPES, term, lang) if term is not None and term in _SOURCE_TYPES else None
