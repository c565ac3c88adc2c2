"""Auditors in a browser: sign-in sessions, CSRF tokens and signed report links.

Invariants this module keeps:

- The bearer token never leaves the sign-in request. A session cookie holds the token's id, an expiry and a
  random session id, signed (HMAC-SHA256) with the deployment's key; every request checks the signature and
  the expiry, then re-reads the token row, so a revoked token ends its sessions and its links at once.
- Cookies are ``HttpOnly``, ``SameSite=Strict``, ``Path=/``; ``Secure`` (and named ``__Host-…``) when the
  request came over HTTPS (the scheme a trusted proxy forwarded, see ``trusted_proxies``) or
  ``public_base_url`` is https.
- Every state-changing form carries a CSRF token: an HMAC of the session id (signed-in forms) or of a random
  pre-session cookie (the sign-in form itself: no login CSRF). A form without its cookie is refused.
- Sign-out ends the session on the server too (its id is recorded until it would have expired), so a copied
  cookie stops working.
- A signed report link names one report path, the token that minted it and an expiry; it opens that page
  only, and only while the minting token is live.

The key: the ``session_secret`` setting when set (every process and worker of a deployment must share it),
else 32 random bytes created once in ``data_dir/session.key`` (mode 0600), which every process on that data
directory reads. Deleting the file (and restarting) signs every browser out and voids every link.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy.orm import Session

from service.security.tokens import Caller, authenticate
from service.settings import Settings
from service.store import queries
from service.store.db import AuditEvent, ServiceState

COOKIE: Final = "provenance-session"
SECURE_COOKIE: Final = "__Host-provenance-session"  # the prefix makes browsers insist on Secure, Path=/, no Domain
CSRF_COOKIE: Final = "provenance-csrf"
CSRF_COOKIE_SECONDS: Final = 3600  # how long a sign-in form may stay open before it must be reloaded
KEY_FILE: Final = "session.key"

_ID: Final = r"[A-Za-z0-9_-]{22}"  # 16 random bytes, url-safe base64
_MAC: Final = r"[A-Za-z0-9_-]{43}"  # 32 bytes, url-safe base64 without padding
_SESSION: Final = re.compile(rf"s1\.(\d{{1,12}})\.(\d{{1,12}})\.({_ID})\.({_MAC})")
_LINK: Final = re.compile(rf"l1\.(\d{{1,12}})\.(\d{{1,12}})\.({_MAC})")
_ENDED: Final = "signed-out:"  # service_state key prefix of a session ended by sign-out


@functools.cache
def _file_key(path: Path) -> bytes:
    """The key in ``path``, created there once if absent (atomically: a racing process reads the winner's)."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # never replaces: the first process to get here decides the key
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text().strip())


def signing_key(settings: Settings) -> bytes:
    """The HMAC key of this deployment (see the module docstring)."""
    if settings.session_secret is not None:
        return hashlib.sha256(b"provenance-session\n" + settings.session_secret.get_secret_value().encode()).digest()
    return _file_key((settings.data_dir / KEY_FILE).resolve())


def _mac(key: bytes, *parts: str) -> str:
    digest = hmac.new(key, "\n".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _now() -> int:
    return int(time.time())


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


@dataclass(frozen=True)
class Viewer:
    """Who opened an auditor page, and how: ``bearer`` (an API client), ``session`` (signed in) or ``link``."""

    caller: Caller
    via: str
    expires: int | None = None  # epoch seconds: end of the session or of the link
    csrf: str = field(default="", repr=False)  # the sign-out form's token, for session viewers
    link: str = field(default="", repr=False)  # the signed link's value, for link viewers (the JSON download)

    @property
    def expires_at(self) -> str | None:
        return _iso(self.expires) if self.expires is not None else None


def _live_caller(db: Session, token_id: int, role: str) -> Caller | None:
    token = queries.token(db, token_id)
    if token is None or token.revoked_at is not None:
        return None
    caller = Caller(token.id, token.name, token.role)
    return caller if caller.may(role) else None


# --- sessions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    """A session just granted: the cookie value and when it ends."""

    caller: Caller
    value: str = field(repr=False)
    expires: int


def sign_in(settings: Settings, db: Session, token: str, role: str = "auditor") -> NewSession | Caller | None:
    """Exchange an API token for a session: a :class:`NewSession` when the token is live and may ``role``
    (with its audit row added: the caller commits); the :class:`Caller` when the token is live but lacks the
    role; ``None`` when it is not a live token."""
    caller = authenticate(db, f"Bearer {token.strip()}")
    if caller is None or not caller.may(role):
        return caller
    expires = _now() + settings.session_seconds
    db.add(AuditEvent(kind="session_started", token_id=caller.token_id, subject=caller.name,
                      detail={"until": _iso(expires)}))  # fmt: skip
    return NewSession(caller, sign_session(settings, caller.token_id, expires), expires)


def sign_session(settings: Settings, token_id: int, expires: int) -> str:
    """A new session cookie value for token ``token_id``, valid until ``expires`` (epoch seconds). Only
    :func:`sign_in` grants sessions; this is its signing step (tests use it to make an expired one)."""
    body = f"s1.{token_id}.{expires}.{secrets.token_urlsafe(16)}"
    return f"{body}.{_mac(signing_key(settings), 'session', body)}"


def _parse_session(settings: Settings, value: str) -> tuple[int, int, str] | None:
    """(token id, expiry, session id) of a well-formed, correctly signed, unexpired session value."""
    match = _SESSION.fullmatch(value)
    if not match:
        return None
    token_id, expires, sid, mac = match.groups()
    body = f"s1.{token_id}.{expires}.{sid}"
    if not hmac.compare_digest(mac, _mac(signing_key(settings), "session", body)) or int(expires) <= _now():
        return None
    return int(token_id), int(expires), sid


def session_viewer(settings: Settings, db: Session, value: str, role: str = "auditor") -> Viewer | None:
    """The viewer behind a session cookie value, or ``None`` (forged, expired, signed out, token revoked,
    or the token lacks ``role``)."""
    parsed = _parse_session(settings, value)
    if parsed is None:
        return None
    token_id, expires, sid = parsed
    if db.get(ServiceState, _ended_key(expires, sid)) is not None:
        return None
    caller = _live_caller(db, token_id, role)
    if caller is None:
        return None
    return Viewer(caller, "session", expires, csrf=csrf_token(settings, sid))


def sign_out(settings: Settings, db: Session, value: str, csrf: str) -> bool:
    """End the session of cookie ``value`` if ``csrf`` is its form token; return whether it was ended
    (the caller commits). A forged or expired value has nothing to end and returns ``False``."""
    parsed = _parse_session(settings, value)
    if parsed is None or not hmac.compare_digest(csrf, csrf_token(settings, parsed[2])):
        return False
    _token_id, expires, sid = parsed
    key = _ended_key(expires, sid)
    if db.get(ServiceState, key) is None:
        db.add(ServiceState(key=key, value=str(expires)))
    _forget_expired_sign_outs(db)
    return True


def _ended_key(expires: int, sid: str) -> str:
    """The record of a session ended by sign-out: keys sort by the session's own expiry, oldest first."""
    return f"{_ENDED}{expires:012d}:{sid}"


#: Records of ended sessions looked at per sign-out, oldest expiry first: each sign-out removes those whose
#: session has expired anyway (an expired cookie is refused by its own expiry), so the records stay as
#: few as the sessions signed out within ``session_seconds``.
PRUNE_BATCH: Final = 100


def _forget_expired_sign_outs(db: Session) -> None:
    now = _now()
    for row in queries.states_with_prefix(db, _ENDED, PRUNE_BATCH):
        if row.value.isdigit() and int(row.value) >= now:
            break  # sorted by expiry: the rest are still live
        db.delete(row)


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else COOKIE


def session_cookie(cookies: dict[str, str]) -> str | None:
    """The session value a request carries (either cookie name)."""
    return cookies.get(SECURE_COOKIE) or cookies.get(COOKIE)


def is_secure(settings: Settings, scheme: str) -> bool:
    """Whether cookies must be ``Secure``: the request came over HTTPS, or the service is published on https."""
    return scheme == "https" or (settings.public_base_url or "").lower().startswith("https://")


# --- CSRF ---------------------------------------------------------------------------------------------------


def csrf_token(settings: Settings, binding: str) -> str:
    """The form token bound to ``binding`` (a session id, or the pre-session cookie's nonce)."""
    return _mac(signing_key(settings), "csrf", binding)


def new_csrf_nonce() -> str:
    return secrets.token_urlsafe(16)


def csrf_valid(settings: Settings, nonce: str | None, token: str | None) -> bool:
    """Whether a sign-in form's ``token`` matches the ``nonce`` of its cookie (both must be present)."""
    if not nonce or not token or not re.fullmatch(_ID, nonce):
        return False
    return hmac.compare_digest(token, csrf_token(settings, nonce))


# --- signed report links ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedLink:
    """A signed link to one report page: the query value and when it stops working."""

    value: str = field(repr=False)
    expires: int

    @property
    def expires_at(self) -> str:
        return _iso(self.expires)


def sign_link(settings: Settings, path: str, token_id: int, expires: int | None = None) -> SignedLink:
    """A link value opening ``path`` until ``expires`` (epoch seconds; default: now + ``report_link_seconds``)
    on behalf of token ``token_id``."""
    expires = _now() + settings.report_link_seconds if expires is None else expires
    body = f"l1.{token_id}.{expires}"
    return SignedLink(f"{body}.{_mac(signing_key(settings), 'link', path, body)}", expires)


def link_viewer(settings: Settings, db: Session, path: str, value: str, role: str = "auditor") -> Viewer | None:
    """The viewer a signed link admits to ``path``, or ``None`` (malformed, signed for another path, tampered,
    expired, or its token revoked or without ``role``)."""
    match = _LINK.fullmatch(value)
    if not match:
        return None
    token_id, expires, mac = match.groups()
    body = f"l1.{token_id}.{expires}"
    if not hmac.compare_digest(mac, _mac(signing_key(settings), "link", path, body)) or int(expires) <= _now():
        return None
    caller = _live_caller(db, int(token_id), role)
    return Viewer(caller, "link", int(expires), link=value) if caller else None
