"""API tokens and roles.

A token is ``pv_`` + 43 url-safe random characters, printed once at creation; the database keeps only
its sha256. Lookups go by that hash (which an attacker cannot steer) and the stored hash is compared
again in constant time. Roles: ``newsroom`` (upload), ``auditor`` (reports, verify), ``admin`` (all).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance import InputError
from provenance.display import visible
from service.store.db import MAX_AUDIT_SUBJECT, MAX_TOKEN_NAME, AuditEvent, Token, utcnow

ROLES: Final = ("newsroom", "auditor", "admin")
PREFIX: Final = "pv_"


@dataclass(frozen=True)
class Caller:
    """An authenticated token holder."""

    token_id: int
    name: str
    role: str

    def may(self, role: str) -> bool:
        return self.role == role or self.role == "admin"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_name(name: str) -> str:
    """``name`` as a token is stored under: without surrounding spaces, 1 to :data:`MAX_TOKEN_NAME`
    characters (the column's bound), none hidden (controls, format characters, line breaks: a name is
    shown in reports and audit rows, and PostgreSQL cannot store a NUL).

    Raises :class:`InputError` (the CLI's exit 2) otherwise.
    """
    name = name.strip()
    if not name:
        raise InputError("a token needs a name")
    if len(name) > MAX_TOKEN_NAME:
        raise InputError(f"a token name is at most {MAX_TOKEN_NAME} characters (this one has {len(name)})")
    if visible(name) != name or "\t" in name or "\n" in name:
        raise InputError("a token name must be printable text (no control, format or line-break characters)")
    return name


def create_token(session: Session, name: str, role: str) -> str:
    """Create a token and return its secret (the only time it exists in clear).

    Raises :class:`InputError` for an unknown role or a name :func:`token_name` refuses (nothing is added).
    """
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}")
    name = token_name(name)
    secret = PREFIX + secrets.token_urlsafe(32)
    session.add(Token(name=name, role=role, secret_sha256=_digest(secret)))
    session.add(AuditEvent(kind="token_created", subject=name, detail={"role": role}))
    return secret


def revoke_tokens(session: Session, name: str) -> int:
    """Revoke every live token called ``name`` (without surrounding spaces, as names are stored); return how
    many were revoked.

    Any stored name can be revoked, even one an older version accepted that :func:`token_name` now refuses;
    a name with a NUL names no token (and is not sent to the database: PostgreSQL cannot compare it).
    """
    name = name.strip()
    if not name or "\x00" in name:
        return 0
    tokens = session.scalars(select(Token).where(Token.name == name, Token.revoked_at.is_(None))).all()
    for token in tokens:
        token.revoked_at = utcnow()
        session.add(
            AuditEvent(
                kind="token_revoked", token_id=token.id, subject=audit_subject(name), detail={"role": token.role}
            )
        )
    return len(tokens)


def audit_subject(text: str) -> str:
    """``text`` fit for :attr:`AuditEvent.subject` whatever a client put in it: hidden characters named
    (:func:`provenance.display.visible`; PostgreSQL cannot store a NUL) and cut to :data:`MAX_AUDIT_SUBJECT`
    characters, the last one ``…`` when something was cut."""
    shown = visible(text[: MAX_AUDIT_SUBJECT + 1])
    if len(text) > MAX_AUDIT_SUBJECT or len(shown) > MAX_AUDIT_SUBJECT:
        return shown[: MAX_AUDIT_SUBJECT - 1] + "…"
    return shown


def authenticate(session: Session, authorization: str | None) -> Caller | None:
    """The caller behind an ``Authorization: Bearer …`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    digest = _digest(secret.strip())
    token = session.scalars(select(Token).where(Token.secret_sha256 == digest)).first()
    if token is None or token.revoked_at is not None or not hmac.compare_digest(token.secret_sha256, digest):
        return None
    return Caller(token.id, token.name, token.role)
