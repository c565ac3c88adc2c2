"""What the job engine has done and is doing, for ``provenance jobs`` and ``provenance reverify``: job
counts by task and status (PostgreSQL: procrastinate's table), recent failures (the audit log, either
database), and the progress of a re-verification run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from service.store.db import AuditEvent

STATUSES: Final = ("todo", "doing", "succeeded", "failed", "aborted", "cancelled")


@dataclass(frozen=True)
class Failure:
    at: str
    task: str
    attempt: int
    error: str


@dataclass(frozen=True)
class RunProgress:
    """A re-verification run (``reverify_all`` with a run id) and its batches."""

    planning: str | None  # status of the reverify_all job (None: not found)
    items_planned: int
    items_done: int
    batches: dict[str, int]  # status -> count
    checked: int
    changed: int

    @property
    def finished(self) -> bool:
        return self.planning in ("succeeded", "failed") and not (self.batches.get("todo") or self.batches.get("doing"))

    @property
    def failed(self) -> int:
        return (self.planning == "failed") + self.batches.get("failed", 0) + self.batches.get("aborted", 0)


def job_counts(session: Session) -> dict[str, dict[str, int]]:
    """PostgreSQL: task -> status -> jobs."""
    counts: dict[str, dict[str, int]] = {}
    rows = session.execute(text("SELECT task_name, status::text, count(*) FROM procrastinate_jobs GROUP BY 1, 2"))
    for task, status, count in rows:
        counts.setdefault(task, {})[status] = count
    return counts


def recent_failures(session: Session, limit: int = 5) -> list[Failure]:
    """The latest recorded failed attempts of jobs, newest first."""
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "job_failed").order_by(AuditEvent.id.desc()).limit(limit)
    )
    return [
        Failure(
            e.at.isoformat(timespec="seconds"),
            str(e.subject),
            int(e.detail.get("attempt", 0)),
            str(e.detail.get("error", "")),
        )
        for e in events
    ]


def run_progress(session: Session, run: str) -> RunProgress:
    """PostgreSQL: where the run ``run`` stands (its jobs, and the audit events its batches wrote)."""
    planning = session.execute(
        text("SELECT status::text FROM procrastinate_jobs WHERE task_name = 'reverify_all' AND args->>'run' = :run"),
        {"run": run},
    ).scalar()
    batches: dict[str, int] = {}
    planned = done = 0
    rows = session.execute(
        text(
            "SELECT status::text, count(*), coalesce(sum((args->>'size')::int), 0) FROM procrastinate_jobs "
            "WHERE task_name = 'reverify_batch' AND args->>'run' = :run GROUP BY 1"
        ),
        {"run": run},
    )
    for status, count, items in rows:
        batches[status] = count
        planned += items
        done += items if status == "succeeded" else 0
    checked, changed = _batch_totals(session, run)
    return RunProgress(planning, planned, done, batches, checked, changed)


def _batch_totals(session: Session, run: str) -> tuple[int, int]:
    query = select(AuditEvent.detail).where(AuditEvent.kind == "reverify", AuditEvent.detail["run"].as_string() == run)
    checked = changed = 0
    for detail in session.scalars(query):
        if detail.get("step") == "batch":
            checked, changed = checked + int(detail["checked"]), changed + int(detail["changed"])
    return checked, changed


def workers(session: Session, stalled_seconds: float) -> list[dict[str, Any]]:
    """PostgreSQL: the registered workers, with whether each sent a heartbeat within ``stalled_seconds``."""
    rows = session.execute(
        text(
            "SELECT id, last_heartbeat, last_heartbeat > now() - make_interval(secs => :s) FROM procrastinate_workers "
            "ORDER BY id"
        ),
        {"s": stalled_seconds},
    )
    return [{"id": i, "last_heartbeat": beat.isoformat(timespec="seconds"), "alive": alive} for i, beat, alive in rows]
