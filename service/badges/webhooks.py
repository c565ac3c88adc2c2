"""The purge webhook: every committed change of what a badge or a public read shows, POSTed to one URL.

The change feed (:class:`~service.store.db.Change`) is the outbox; :func:`deliver_pending` empties it
into ``webhook_url`` so a CDN or the CMS can purge the item. Guarantees:

- **At least once, in ``seq`` order.** A row is marked delivered only after the receiver answered 2xx
  to a body holding it; any failure (another status, a redirect, a timeout, a refused connection) raises
  :class:`WebhookError` and marks nothing, so the job engine's retry sends the same rows again. A crash
  between the answer and the mark sends them again too: receivers de-duplicate by ``seq`` (or by the
  ``X-Provenance-Delivery`` id of a retried batch).
- **One deliverer at a time** across every process on the database (a lock beside the data, never a
  database lock held while the receiver is called): no row is in two deliveries under way.
- **Signed:** ``X-Provenance-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``.
- **Bounded:** one call takes at most ``webhook_timeout`` in all (a watchdog cuts a slow receiver), no
  redirect is followed, at most :attr:`WebhookLimits.max_answer_bytes` of an answer are read, and a body
  holds at most :attr:`WebhookLimits.batch` changes of at most :attr:`WebhookLimits.max_urls` URLs.
- **Offline by default:** without ``webhook_url`` nothing is sent and nothing is marked.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.cache import BADGE_TAG
from service.store.db import ArticleVersion, Asset, Change, utcnow
from service.store.locks import exclusive

if TYPE_CHECKING:
    from service.settings import Settings

log = logging.getLogger("provenance.service")

#: The cross-process lock one deliverer holds (service.store.locks).
DELIVERY_LOCK: Final = "webhook"
_BADGE_FORMATS: Final = ("svg", "json", "html")


@dataclass(frozen=True)
class WebhookLimits:
    """Bounds of one delivery."""

    batch: int = 100  # changes per body
    max_urls: int = 200  # URLs (and tags) listed per change; the item id is always the first tag
    max_answer_bytes: int = 4096  # bytes of the receiver's answer read (for the log); the rest is dropped


class WebhookError(Exception):
    """A delivery failed (the receiver's status, a redirect, a timeout, no connection); nothing was marked
    delivered, so the job engine retries it."""


class DeliveryContext(Protocol):
    """What delivery needs of :class:`~service.context.ServiceContext`."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...


@dataclass(frozen=True)
class Delivery:
    """One body to send: the changes ``seqs`` (ascending), named ``id`` (``"<first seq>-<last seq>"``)."""

    id: str
    seqs: tuple[int, ...]
    body: bytes


def deliver_pending(ctx: DeliveryContext, limits: WebhookLimits = WebhookLimits()) -> int:
    """Send every undelivered change to ``webhook_url``, oldest first, in batches; return how many were sent.

    Returns 0 at once without a webhook, or when another deliverer is at work (it sends these rows too:
    it looks again after it lets go of the lock). Raises :class:`WebhookError` at the first failed batch;
    the batches before it stay delivered.
    """
    settings = ctx.settings
    if settings.webhook_url is None:
        return 0
    if settings.webhook_secret is None:  # the settings refuse this; never send an unsigned body
        raise WebhookError("webhook_secret is not set")
    secret = settings.webhook_secret.get_secret_value().encode()
    base = (settings.public_base_url or "").rstrip("/")
    delivered = 0
    while True:
        with exclusive(ctx.engine, DELIVERY_LOCK, wait=False) as mine:
            if not mine:
                return delivered
            while (delivery := next_delivery(ctx.sessions, base, limits)) is not None:
                try:
                    status = post(settings.webhook_url, secret, delivery, settings.webhook_timeout, limits)
                except WebhookError as exc:
                    log.warning("webhook delivery %s (%d changes) failed: %s", delivery.id, len(delivery.seqs), exc)
                    raise
                _mark_delivered(ctx.sessions, delivery.seqs)
                log.info("webhook delivery %s: %d changes, answered %d", delivery.id, len(delivery.seqs), status)
                delivered += len(delivery.seqs)
        # A deliverer that found the lock taken returned trusting this one with its rows: look once more
        # now that the lock is free, so a row committed while this one was finishing is not left behind.
        if not undelivered(ctx.sessions):
            return delivered


def next_delivery(sessions: sessionmaker[Session], base: str, limits: WebhookLimits) -> Delivery | None:
    """The oldest undelivered changes (at most ``limits.batch``) as one body, or ``None`` when there are none."""
    with sessions() as session:
        rows = session.scalars(
            select(Change).where(Change.delivered_at.is_(None)).order_by(Change.seq).limit(limits.batch)
        ).all()
        if not rows:
            return None
        purges = _purges(session, rows, base, limits.max_urls)
    delivery_id = f"{rows[0].seq}-{rows[-1].seq}"
    changes = [
        {
            "seq": row.seq,
            "at": row.at.isoformat(),
            "kind": row.kind,
            "ref": row.ref,
            "reason": row.reason,
            "tags": purges[row.seq][0],
            "urls": purges[row.seq][1],
        }
        for row in rows
    ]
    body = json.dumps({"delivery": delivery_id, "changes": changes}, separators=(",", ":")).encode()
    return Delivery(delivery_id, tuple(row.seq for row in rows), body)


def _purges(
    session: Session, rows: Sequence[Change], base: str, max_urls: int
) -> dict[int, tuple[list[str], list[str]]]:
    """Per change: the cache tags and the absolute URLs that show it (two queries for the whole batch)."""
    image_refs = {row.ref for row in rows if row.kind == "image" and row.ref}
    article_refs = {row.ref for row in rows if row.kind == "article" and row.ref}
    digests: dict[str, list[str]] = {}
    for asset_id, upload, stamped in session.execute(
        select(Asset.id, Asset.upload_sha256, Asset.stamped_sha256).where(Asset.id.in_(image_refs))
    ):
        digests[asset_id] = list(dict.fromkeys((upload, stamped)))
    versions: dict[str, list[tuple[int, str]]] = {}
    for article_id, number, text_sha256 in session.execute(
        select(ArticleVersion.article_id, ArticleVersion.version, ArticleVersion.text_sha256)
        .where(ArticleVersion.article_id.in_(article_refs))
        .order_by(ArticleVersion.version.desc())  # newest first: what a cut list keeps
    ):
        versions.setdefault(article_id, []).append((number, text_sha256))

    def badges(ref: str) -> list[str]:
        return [*(f"{base}/v1/badges/{ref}.{fmt}" for fmt in _BADGE_FORMATS), f"{base}/verify/{ref}"]

    purges: dict[int, tuple[list[str], list[str]]] = {}
    for row in rows:
        ref = row.ref
        if row.kind == "trust" or not ref:
            purges[row.seq] = ([BADGE_TAG], [])  # every badge: tags only (no list of every URL)
            continue
        if row.kind == "image":
            shas = [f"sha256-{d}" for d in digests.get(ref, [])]
            content = [f"{base}/v1/assets/{ref}", f"{base}/v1/assets/{ref}/content"]
            urls = [*badges(ref), *content, f"{base}/v1/assets/{ref}/manifest.c2pa"]
        else:
            shas = list(dict.fromkeys(f"sha256-{text}" for _, text in versions.get(ref, [])))
            urls = badges(ref)
            for number, _ in versions.get(ref, []):
                urls += [f"{base}/v1/articles/{ref}/v{number}.txt", f"{base}/v1/articles/{ref}/v{number}.c2pa"]
        for sha in shas:
            urls += badges(sha)
        purges[row.seq] = ([ref, *shas][:max_urls], urls[:max_urls])
    return purges


def signature(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Provenance-Signature`` value of ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post(url: str, secret: bytes, delivery: Delivery, timeout: float, limits: WebhookLimits) -> int:
    """POST ``delivery`` to ``url`` within ``timeout`` seconds in all; return the (2xx) status.

    Raises :class:`WebhookError` naming the status (any other, redirects included: never followed), the
    timeout or the connection error. No proxy from the environment is used: only ``url``'s host is reached.
    """
    target = urlsplit(url)
    host = target.hostname or ""
    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, target.port, timeout=timeout)
    deadline = time.monotonic() + timeout
    expired = threading.Event()

    def cut() -> None:  # the socket timeout bounds each read; this bounds the whole exchange
        expired.set()
        sock = connection.sock  # read once: the caller may be closing it right now
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    watchdog: threading.Timer | None = None
    try:
        connection.connect()
        watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), cut)
        watchdog.daemon = True
        watchdog.start()
        connection.request(
            "POST",
            path,
            body=delivery.body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "newsroom-provenance-webhook",
                "X-Provenance-Delivery": delivery.id,
                "X-Provenance-Signature": signature(secret, delivery.body, int(time.time())),
            },
        )
        response = connection.getresponse()
        answer = response.read(limits.max_answer_bytes)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise WebhookError(f"{host} did not answer within {timeout:g} s") from exc
        raise WebhookError(f"{host}: {type(exc).__name__}: {exc}") from exc
    finally:
        if watchdog is not None:
            watchdog.cancel()
        connection.close()
    if 200 <= status < 300:
        return status
    said = answer[:200].decode("utf-8", "replace").replace("\n", " ")
    if 300 <= status < 400:
        raise WebhookError(f"{host} answered {status} (redirects are not followed) {said}".rstrip())
    raise WebhookError(f"{host} answered {status} {said}".rstrip())


def _mark_delivered(sessions: sessionmaker[Session], seqs: Sequence[int]) -> None:
    with sessions.begin() as session:
        session.execute(
            update(Change).where(Change.seq.in_(seqs)).values(delivered_at=utcnow()),
            execution_options={"synchronize_session": False},
        )


def undelivered(sessions: sessionmaker[Session]) -> int:
    """How many changes wait for delivery (``provenance jobs`` can show it)."""
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Change).where(Change.delivered_at.is_(None))) or 0
