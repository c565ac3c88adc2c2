"""The ids the service gives, and the forms a path or a badge reference may take.

An asset id is ``img_`` + 24 hex digits of the sha256 of the upload's digest and its declaration (the
same upload with the same declaration is the same asset); an article id is ``art_`` + 24 hex digits of
the sha256 of its external id. Anything else names nothing, so a lookup answers 404 without asking the
database (a path segment has any length and any character, NUL included, which PostgreSQL cannot
even compare).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final

ASSET_ID: Final = re.compile(r"img_[0-9a-f]{24}")
ARTICLE_ID: Final = re.compile(r"art_[0-9a-f]{24}")
#: What a badge may be looked up by: an asset id, an article id, or the sha256 of original or stamped bytes.
REF: Final = re.compile(rf"({ASSET_ID.pattern}|{ARTICLE_ID.pattern}|sha256-[0-9a-f]{{64}})")


def asset_id(upload_sha256: str, declaration: dict[str, Any]) -> str:
    """The id of the asset made from bytes with this digest under this (canonical) declaration."""
    material = upload_sha256 + json.dumps(declaration, sort_keys=True, ensure_ascii=False)
    return "img_" + hashlib.sha256(material.encode()).hexdigest()[:24]


def article_id(external_id: str) -> str:
    """The id of the article the CMS calls ``external_id`` (every version shares it)."""
    return "art_" + hashlib.sha256(external_id.encode()).hexdigest()[:24]
