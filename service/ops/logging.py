"""Structured logs: one JSON object per line on standard error, written by one thread per process.

Invariants kept once :func:`configure` has run in a process:

- **Every line is one JSON object** ``{"ts", "level", "logger", "msg", ...}``, the service's own lines,
  uvicorn's and Python warnings alike; ``exc`` holds a traceback when there is one. A line logged while a
  request is served carries its ``request_id`` (:data:`service.ops.requests.current`); a request's own
  line (logger ``provenance.access``) adds ``method, route, path, status, duration_ms, token_name``.
- **No secret from here:** a request line holds the token's *name*, never the ``Authorization``
  header, a query string or a body; settings are never logged whole (their secrets are ``SecretStr``).
- **Cheap on the serving thread:** a request line is a tuple put on a queue. Other records (rare) are
  written at once by the thread that logs them: uvicorn ends a process stopped by SIGTERM by raising the
  signal again after its shutdown, which leaves no time for a queue, so the last diagnostic lines would
  be lost. The writer thread builds each request line from a fixed template
  (strings escaped by the C JSON encoder, no ``json.dumps`` of dicts) and writes batches of whole lines
  with one ``write()`` each, at most :data:`BATCH_BYTES` (within ``PIPE_BUF``): lines of several worker
  processes sharing one pipe or file never interleave within a line.
- **Nothing lost at exit:** :func:`logging.shutdown` (run at interpreter exit) flushes the queue.
- ``log_level`` filters the diagnostic lines; the request lines are switched by ``access_log`` alone.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import sys
import threading
import time
from json.encoder import encode_basestring_ascii as _quote  # the C encoder in CPython
from typing import Final, Literal

from service.ops.requests import MAX_LOGGED_PATH, AccessEntry, current, route_name

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LEVELS: Final[dict[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_NAMES: Final = {number: name for name, number in LEVELS.items()}
#: Bytes written per ``write()`` at most (a longer single line is written alone).
BATCH_BYTES: Final = 4096
#: Seconds :func:`flush` waits for the writer thread to drain its queue.
FLUSH_WAIT: Final = 5.0
#: Seconds the writer pauses after each drain (the longest a line waits under load).
PAUSE: Final = 0.05
#: Items (records and request lines) waiting at most; further request lines are dropped and counted.
MAX_QUEUED: Final = 100_000
_TEMPLATES_MAX: Final = 10_000
ACCESS_LOGGER: Final = "provenance.access"

_access_fallback = logging.getLogger(ACCESS_LOGGER)


class _Timestamps:
    """ISO 8601 UTC times with milliseconds; the part up to the second is computed once per second."""

    def __init__(self) -> None:
        self._cached = (-1, "")  # (second, its prefix): one tuple, so threads never see a torn pair

    def __call__(self, created: float) -> str:
        second = int(created)
        cached_second, prefix = self._cached
        if second != cached_second:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            self._cached = (second, prefix)
        return "%s%03dZ" % (prefix, (created - second) * 1000)  # noqa: UP031  # cheaper than an f-string


class JsonFormatter(logging.Formatter):
    """One JSON object per record (no newline); see the module docstring for the fields."""

    def __init__(self) -> None:
        super().__init__()
        self._ts = _Timestamps()
        self._templates: dict[tuple[str, str, int, str | None], str] = {}

    def format(self, record: logging.LogRecord) -> str:
        message = record.message if hasattr(record, "message") else record.getMessage()
        line = (
            f'{{"ts":"{self._ts(record.created)}","level":"{_NAMES.get(record.levelno, "info")}",'
            f'"logger":{_quote(record.name)},"msg":{_quote(message)}'
        )
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line += f',"request_id":{_quote(request_id)}'
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += f',"exc":{_quote(record.exc_text)}'
        return line + "}"

    def format_access(self, entry: AccessEntry) -> str:
        """The request line (with its newline). Only the time, id, path and duration differ between the
        lines of one method, route, status and token name: the rest is one template, made once."""
        created, seconds, status, request_id, scope = entry
        token_name = scope["state"].get("token_name")
        key = (scope["method"], route_name(scope), status, token_name)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= _TEMPLATES_MAX:  # bounded: token names are many at most
                self._templates.clear()
            template = self._templates[key] = _access_template(*key)
        return template % (self._ts(created), request_id, _quote(scope["path"][:MAX_LOGGED_PATH]), seconds * 1000)


def _access_template(method: str, route: str, status: int, token_name: str | None) -> str:
    def fixed(value: str | None) -> str:
        return "null" if value is None else _quote(value).replace("%", "%%")

    return (
        f'{{"ts":"%s","level":"info","logger":"{ACCESS_LOGGER}","msg":"request","request_id":"%s",'
        f'"method":{fixed(method)},"route":{fixed(route)},"path":%s,"status":{status:d},"duration_ms":%.3f,'
        f'"token_name":{fixed(token_name)}}}\n'
    )


_Item = logging.LogRecord | AccessEntry | threading.Event | None  # None: stop


class LogWriter:
    """The process's one writer: a queue of records and request lines, drained by a daemon thread.

    The thread wakes for the first item, writes all that is queued, then pauses :data:`PAUSE` seconds
    before it waits again: under load it wakes a few times a second, not once per request. At most
    :data:`MAX_QUEUED` items wait (standard error may block): beyond, lines are dropped, counted and
    reported in one error line."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.formatter = JsonFormatter()
        self.queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self.dropped = 0
        self._lock = threading.Lock()  # one write() at a time: lines never interleave
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def put(self, item: logging.LogRecord | AccessEntry) -> None:
        """Queue a record or a request line (or drop and count it when :data:`MAX_QUEUED` are waiting)."""
        if self.queue.qsize() < MAX_QUEUED:
            self.queue.put(item)
        else:
            self.dropped += 1

    def _line(self, item: logging.LogRecord | AccessEntry) -> str:
        try:
            if isinstance(item, tuple):
                return self.formatter.format_access(item)
            return self.formatter.format(item) + "\n"
        except Exception as exc:  # a record that cannot be rendered still leaves a line
            return f'{{"level":"error","logger":"provenance.log","msg":{_quote(repr(exc))}}}\n'

    def _run(self) -> None:
        get, empty = self.queue.get, self.queue.empty
        while True:
            items = [get()]
            while not empty():
                items.append(get())
            batch: list[bytes] = []
            size = 0
            done: list[threading.Event] = []
            stop = False
            if self.dropped:
                dropped, self.dropped = self.dropped, 0
                items.append(_dropped(dropped))
            for item in items:
                if item is None:
                    stop = True
                    continue
                if isinstance(item, threading.Event):
                    done.append(item)
                    continue
                line = self._line(item).encode()
                if batch and size + len(line) > BATCH_BYTES:  # one write() per whole-lines batch
                    self._write(b"".join(batch))
                    batch, size = [], 0
                batch.append(line)
                size += len(line)
            if batch:
                self._write(b"".join(batch))
            for event in done:
                event.set()
            if stop:
                return
            time.sleep(PAUSE)

    def write_now(self, record: logging.LogRecord) -> None:
        """Write one record's line from the calling thread (diagnostic lines: rare, and never lost)."""
        self._write(self._line(record).encode())

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        with self._lock:
            while view:
                try:
                    written = os.write(self.fd, view)
                except InterruptedError:
                    continue
                except OSError:
                    return  # standard error is gone: nothing else can be told
                view = view[written:]

    def flush(self, timeout: float = FLUSH_WAIT) -> None:
        """Wait until everything queued before this call is written (at most ``timeout`` seconds)."""
        if self._thread.is_alive():
            event = threading.Event()
            self.queue.put(event)
            event.wait(timeout)

    def close(self) -> None:
        self.flush()
        self.queue.put(None)
        self._thread.join(FLUSH_WAIT)


def _dropped(count: int) -> logging.LogRecord:
    record = logging.LogRecord("provenance.log", logging.ERROR, __file__, 0, "", None, None)
    record.message = f"{count} log lines dropped: standard error did not keep up"
    return record


_fallback_formatter = JsonFormatter()


class _QueueHandler(logging.Handler):
    """Writes records through the writer at once, with the current request's id attached (request lines
    go through its queue, :func:`access`)."""

    def __init__(self, writer: LogWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.message = record.getMessage()
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.msg, record.args, record.exc_info = record.message, None, None
            context = current.get()
            if context is not None:
                record.request_id = context.request_id
            self.writer.write_now(record)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            super().close()


_writer: LogWriter | None = None


def configure(level: LogLevel = "info") -> None:
    """Send this process's logging (root logger, uvicorn's, warnings) to standard error as JSON lines at
    ``level`` and up, through one writer thread; request lines go through :func:`access` at any level.
    Idempotent: a second call only changes the level."""
    global _writer
    root = logging.getLogger()
    root.setLevel(LEVELS[level])
    # uvicorn's loggers write through the root handler only, at the level set explicitly: uvicorn tests
    # `logger.level <= TRACE` per connection, which a level left unset (0) would pass.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.setLevel(LEVELS[level])
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)
    if _writer is not None:
        return
    _writer = LogWriter(sys.stderr.fileno())
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_QueueHandler(_writer))
    atexit.register(_writer.flush)


def access(entry: AccessEntry) -> None:
    """Write one request line: to the configured writer (a queue put), else through the
    ``provenance.access`` logger as its JSON text (a process where :func:`configure` has not run)."""
    writer = _writer
    if writer is not None:
        writer.put(entry)
    elif _access_fallback.isEnabledFor(logging.INFO):
        _access_fallback.info(_fallback_formatter.format_access(entry).rstrip("\n"))


def flush() -> None:
    """Write every queued request line now (the service's shutdown calls it: a process stopped by a signal
    does not run ``atexit``)."""
    if _writer is not None:
        _writer.flush()
