"""Labels of the custom assertions this product signs into its manifests (reverse-DNS namespaced).

Their data is never a source of badge labels; they record declarations for auditors and bind a
manifest to the CMS article it was made for.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "org.newsroom-provenance"
#: The newsroom's declaration about an image (``{"source": ..., "policy_version": ...}``).
DECLARATION: Final = f"{NAMESPACE}.declaration"
#: Why a declaration contradicts an upstream AI claim (``{"reason", "declared_source", ...}``).
UPSTREAM_OVERRIDE: Final = f"{NAMESPACE}.upstream-override"
#: Which CMS article a text manifest is for (``{"external_id", "version", "url", ...}``).
ARTICLE: Final = f"{NAMESPACE}.article"
