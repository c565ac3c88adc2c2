"""The change feed (:class:`~service.store.db.Change`): what changed, written in the transaction that changes it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.store.db import Change


def trust_changed(session: Session) -> None:
    """Record that the trust configuration changed (every process reloads its trust and forgets its badges)."""
    session.add(Change(kind="trust", ref=None, reason="trust"))
