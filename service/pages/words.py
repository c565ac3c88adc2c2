"""The words of the service's own pages, in every language the badges speak (one table; label words are
in :mod:`provenance.vocabulary`). Every language has the same keys (a test checks it)."""

from __future__ import annotations

from typing import Final

WORDS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "site": "AI news",
        "switch_language": "中文",
        "verify": "Verify a file",
        "image": "Image",
        "empty": "No stamped samples yet: run `make run`.",
        "lead": "Lead story",
        "related": "Related articles",
        "verify_title": "Verify a file",
        "drop_hint": "Drop a file here, or choose one",
        "file_label": "Image, or article .txt",
        "sidecar_label": "Detached manifest (.c2pa), for articles",
        "verify_button": "Verify",
        "too_many": "Too many verifications: try again in a minute.",
    },
    "zh-Hans": {
        "site": "AI 新闻",
        "switch_language": "English",
        "verify": "验证文件",
        "image": "图片",
        "empty": "尚无已签名的示例：请运行 `make run`。",
        "lead": "头条",
        "related": "相关文章",
        "verify_title": "验证文件",
        "drop_hint": "拖放文件到此处，或选择文件",
        "file_label": "图片，或文章 .txt",
        "sidecar_label": "分离的清单（.c2pa），用于文章",
        "verify_button": "验证",
        "too_many": "验证次数过多：请一分钟后再试。",
    },
}
