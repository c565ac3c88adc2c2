"""The background jobs: plain functions of the service context and JSON arguments (the engine runs them
and retries them; see :mod:`service.jobs.engine`). Each is idempotent: run twice, or again after a
worker died in it, it leaves what one run leaves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from provenance import POLICY_VERSION
from service.audit.reverify import (
    TRUST_KEY,
    Batch,
    Kind,
    ReverifyReport,
    plan,
    record_trust,
    reverify,
    stale_count,
)
from service.audit.reverify import (
    reverify_batch as reverify_items,
)
from service.context import ServiceContext, get_state
from service.jobs.engine import KEEP_FINISHED_HOURS, Jobs, worker_name
from service.store import changes
from service.store.db import AuditEvent
from service.store.gc import collect
from service.store.locks import exclusive

log = logging.getLogger("provenance.jobs")

#: Seconds a collection waits for the blob store's exclusive lock per batch (uploads hold it shared).
GC_WAIT: Final = 10.0
#: The queueing lock of the start-up re-verification: however many processes start, one plan waits.
REVERIFY_LOCK: Final = "reverify_all"


def jobs_of(ctx: ServiceContext) -> Jobs:
    if ctx.jobs is None:
        raise RuntimeError("this service context has no job engine")
    return ctx.jobs


def reverify_batch(
    ctx: ServiceContext,
    *,
    kind: Kind,
    first: str,
    last: str,
    size: int,
    fingerprint: str,
    force: bool = False,
    run: str | None = None,
) -> None:
    """Re-verify one planned batch (skipping the items already current under ``fingerprint``) and record in
    the audit log, in the same transaction, what it checked and changed and which worker did it."""
    batch = Batch(kind, first, last, size)

    def note(checked: int, changed: int) -> AuditEvent:
        detail = {
            "step": "batch",
            "run": run,
            "to": fingerprint,
            "items": [kind, first, last],
            "checked": checked,
            "changed": changed,
            "worker": worker_name(),
            "policy": POLICY_VERSION,
        }
        return AuditEvent(kind="reverify", detail=detail)

    if ctx.trust.fingerprint != fingerprint:  # the trust files changed since this worker read them
        ctx.reload_trust()
    reverify_items(ctx, batch, fingerprint, force=force, note=note)


def reverify_all(ctx: ServiceContext, *, force: bool = False, run: str | None = None) -> None:
    """Plan the re-verification of every item not current under this process's trust (every item with
    ``force``) and queue its batches; record the fingerprint (announcing a trust change) once they are
    queued. Resumable: planning again only plans what is not yet current. The trust files are read again
    first: a worker started before the operator changed them plans under the new trust."""
    ctx.reload_trust()
    fingerprint = ctx.trust.fingerprint
    with exclusive(ctx.engine, "reverify"):
        with ctx.session() as session:
            batches = plan(session, fingerprint, force=force, size=ctx.settings.reverify_batch_size)
        args = [{**b.args(), "fingerprint": fingerprint, "force": force, "run": run} for b in batches]
        jobs_of(ctx).defer_many("reverify_batch", args)
        # After queueing: a plan that died before this commit is planned again at the next start.
        with ctx.session() as session:
            previous, _ = record_trust(session, fingerprint)
            detail = {"step": "plan", "run": run, "from": previous, "to": fingerprint, "force": force}
            planned = {"planned": sum(b.size for b in batches), "batches": len(batches), "policy": POLICY_VERSION}
            session.add(AuditEvent(kind="reverify", detail={**detail, **planned}))
            session.commit()
    log.info("planned re-verification of %d items in %d batches (run %s)", planned["planned"], len(batches), run)


def collect_garbage(ctx: ServiceContext) -> None:
    """Remove orphan blobs and leftover temporary files (a busy store stops the run early: next time)."""
    report = collect(ctx.blobs, ctx.sessions, wait=GC_WAIT)
    log.info("gc: %s%s", report.summary(), "" if report.complete else " (stopped early: the store stayed busy)")
    with ctx.session() as session:  # and the change feed's old rows (undelivered ones wait for the webhook)
        pruned = changes.prune(session, keep_undelivered=ctx.settings.webhook_url is not None)
        session.commit()
    if pruned:
        log.info("gc: %d changes older than %s pruned from the change feed", pruned, changes.PRUNE_AFTER)
    jobs_of(ctx).forget_finished(KEEP_FINISHED_HOURS)


def deliver_webhooks(ctx: ServiceContext) -> None:
    """Deliver the badge changes not yet delivered to the purge webhook (raises on a failed delivery)."""
    from service.badges.webhooks import deliver_pending  # written beside this module; imported when run

    delivered = deliver_pending(ctx)
    if delivered:
        log.info("delivered %d badge changes to the webhook", delivered)


TASKS: Final[dict[str, Callable[..., None]]] = {
    "reverify_batch": reverify_batch,
    "reverify_all": reverify_all,
    "collect_garbage": collect_garbage,
    "deliver_webhooks": deliver_webhooks,
}


def reverify_at_startup(ctx: ServiceContext) -> ReverifyReport | None:
    """Bring stored decisions to this process's trust at start-up.

    SQLite, or PostgreSQL with no worker alive (and no worker thread here): in this process, before the
    service answers (a badge is never stale). PostgreSQL with workers: queue one ``reverify_all`` for all
    starting processes (``None`` is returned) and serve at once; until the workers reach an item, its
    badge shows the decision made under the previous trust (the window: items ÷ re-verifications per
    second of all workers, see ``bench/bench_reverify.py``).
    """
    jobs = ctx.jobs
    if jobs is None or not jobs.queued:
        return reverify(ctx)
    fingerprint = ctx.trust.fingerprint
    with ctx.session() as session:
        stale, stored = stale_count(session, fingerprint), get_state(session, TRUST_KEY)
    if not stale:
        return reverify(ctx)  # nothing to verify: records the fingerprint if it is new
    if stored == fingerprint and jobs.waiting("reverify_all", "reverify_batch"):
        log.info("re-verification of %d items under trust %s is under way in the workers", stale, fingerprint)
        return None
    if ctx.settings.jobs_in_process or jobs.workers_alive():
        jobs.defer("reverify_all", {}, lock=REVERIFY_LOCK)
        log.warning(
            "%d stored items were decided under other trust; re-verification queued for the workers "
            "(their badges follow as the workers reach them)",
            stale,
        )
        return None
    log.warning("no job worker is alive: re-verifying %d stored items in this process", stale)
    return reverify(ctx)
