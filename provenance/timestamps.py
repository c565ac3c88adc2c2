"""RFC 3161 timestamps: the one network host signing may reach, and only when configured.

A timestamp keeps a signature valid after its certificate expires. c2pa-rs asks the TSA itself
during signing, with no timeout of its own (a silent TSA stalls ~30 s), so :func:`probe` first sends a
small timestamp request with a short timeout; what happens when the TSA does not answer is the
caller's policy: fail the stamp, or sign without a timestamp and say so.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from provenance.errors import ConfigurationError

# DER TimeStampReq: version 1, messageImprint = (sha256, 32 zero bytes), certReq TRUE.
_PROBE = bytes.fromhex("30390201013031300d060960864801650304020105000420") + bytes(32) + bytes.fromhex("0101ff")


@dataclass(frozen=True)
class Timestamping:
    """Where to get timestamps, how long to wait, and whether a stamp may go without one."""

    url: str
    required: bool = True  # False: sign without a timestamp when the TSA is unreachable, and flag it
    timeout: float = 5.0  # seconds

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"the timestamp authority URL must be http(s)://host/…, not {self.url!r}")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


def probe(timestamping: Timestamping) -> str | None:
    """``None`` if the TSA answers a timestamp request within the timeout, else why not."""
    request = urllib.request.Request(  # noqa: S310  (scheme checked in Timestamping)
        timestamping.url, data=_PROBE, headers={"Content-Type": "application/timestamp-query"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timestamping.timeout) as response:  # noqa: S310
            body = response.read(65536)
            if response.status != 200 or not body.startswith(b"\x30"):
                return f"the timestamp authority answered status {response.status} without a timestamp"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"the timestamp authority at {timestamping.url} did not answer: {getattr(exc, 'reason', exc)}"
    return None
