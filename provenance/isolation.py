"""isolation: SDK calls on untrusted bytes run in worker processes with hard limits.

The C2PA SDK cannot be trusted to bound itself: its read path allocates what length fields say (a
3 KB file can ask for 4 GiB) and parses files of many tiny boxes in time far beyond their size.

Invariants:

* An isolated call runs in a worker process whose address space is capped (``RLIMIT_AS``) at
  ``Limits.parse_max_memory``, and the worker is killed when the call runs past its deadline
  (``Limits.parse_deadline`` of the input's size). Then, and when the worker dies on its own (an
  allocation abort, a native crash, a signal), the call raises
  :class:`~provenance.errors.InputTooComplexError` and the worker is replaced. The calling process
  and every other call carry on.
* Private keys never enter a worker. A worker that signs asks the calling process to sign the
  claim bytes; the time spent signing does not count against the deadline.
* Nothing a worker says is trusted: its messages are JSON (never pickle) and its errors are
  rebuilt only as library error types, so even a worker taken over by a hostile file cannot run
  code in the calling process.
* Workers are reused: the SDK stays warm and context objects (the trust configuration) are sent
  once per worker. Bytes travel through a memory file shared with the worker (an *arena*), so a
  call costs one small round trip over a socket plus a memory copy of its bytes each way.
* At most ``Limits.parse_workers`` calls run at once per pool; a call that waits longer than
  ``Limits.parse_queue_timeout`` for a worker raises :class:`~provenance.errors.ParserBusyError`.

The worker side is generic: it runs the handlers of :data:`provenance._c2pa.WORKER_OPS` by name.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib
import json
import mmap
import os
import pickle
import queue
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Final

from provenance import errors
from provenance.errors import (
    InputTooComplexError,
    ParserBusyError,
    ParserUnavailableError,
    ProvenanceError,
    SigningError,
)
from provenance.media import MIB, Limits

#: A worker is retired after this many calls (bounds slow leaks and fragmentation in native code).
MAX_CALLS_PER_WORKER: Final = 2000
#: Seconds a new worker may take to import the SDK and say it is ready.
START_TIMEOUT: Final = 60.0
#: Context objects a worker keeps (one per trust configuration in use).
MAX_CONTEXTS: Final = 8
HANDLERS: Final = "provenance._c2pa"
#: An arena mapped past this for a large file gives its pages back after the call (bytes).
ARENA_KEEP: Final = 8 * MIB
#: Largest message (or claim to sign) a worker may send over its socket (bytes).
MAX_MESSAGE: Final = 16 * MIB
#: Results may be larger than their inputs by at most twice the inputs plus this (reports, thumbnails).
OUTPUT_SLACK: Final = 32 * MIB

_PICKLE: Final = pickle.HIGHEST_PROTOCOL


def _load(frame: bytes) -> list[Any]:
    """A message from a worker: a JSON array (anything else means the worker is broken)."""
    try:
        message = json.loads(frame)
    except (ValueError, RecursionError) as exc:
        raise EOFError("unreadable message from a worker") from exc
    if not isinstance(message, list) or not message or not isinstance(message[0], str):
        raise EOFError("malformed message from a worker")
    return message


Span = tuple[int, int]  # offset and length of one byte string in an arena


class _Arena:
    """A memory file shared by a caller and its worker: the bytes of calls and results go through it.

    Either side may grow the file (``ftruncate``); nobody can shrink it (the caller seals it against
    shrinking before the worker starts, so a hostile worker cannot pull pages from under the caller's
    copy). Each side maps only what it touches. Only one call uses an arena at a time, so inputs and
    outputs can both start at offset 0.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.map: mmap.mmap | None = None

    @classmethod
    def create(cls) -> _Arena:
        fd = os.memfd_create("provenance-arena", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, MIB)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
        return cls(fd)

    def _mapped(self, size: int) -> mmap.mmap:
        if self.map is None or len(self.map) < size:
            if self.map is not None:
                self.map.close()
            self.map = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        return self.map

    def write(self, blobs: Sequence[bytes]) -> list[Span]:
        total = sum(len(b) for b in blobs)
        capacity = -(-total // MIB) * MIB  # whole MiB, so small growth is rare
        if os.fstat(self.fd).st_size < capacity:
            os.ftruncate(self.fd, capacity)
        area = self._mapped(capacity) if total else None
        spans: list[Span] = []
        offset = 0
        for blob in blobs:
            if area is not None and blob:
                area[offset : offset + len(blob)] = blob
            spans.append((offset, len(blob)))
            offset += len(blob)
        return spans

    def read(self, spans: Sequence[Span], limit: int) -> list[bytes]:
        """The byte strings at ``spans``; ``EOFError`` if they reach past the file or total over ``limit``."""
        end = max((offset + length for offset, length in spans), default=0)
        if end > os.fstat(self.fd).st_size or sum(length for _, length in spans) > limit:
            raise EOFError("spans beyond the arena or its limit")
        area = self._mapped(end) if end else None
        return [area[offset : offset + length] if area is not None and length else b"" for offset, length in spans]

    def release(self) -> None:
        """Give back the memory pages of a large call (the file keeps its size; it cannot shrink)."""
        if self.map is not None and len(self.map) > ARENA_KEEP:
            self.map.madvise(mmap.MADV_REMOVE)
            self.map.close()
            self.map = None

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1  # never close a number another file may have been given since


def _spans(value: Any) -> list[Span]:
    """Spans sent by a worker, checked (a worker's word is never taken as it is)."""
    if not isinstance(value, list):
        raise EOFError("malformed spans from a worker")
    spans = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(v, int) and v >= 0 for v in item)):
            raise EOFError("malformed span from a worker")
        spans.append((item[0], item[1]))
    return spans


@dataclass
class Call:
    """What a handler in the worker receives."""

    args: tuple[Any, ...]
    blobs: list[bytes]
    context: Any
    #: Ask the calling process to sign ``payload`` with its signer; raises :class:`SigningError`.
    sign: Callable[[bytes], bytes]


#: A handler returns a small JSON-serialisable result and the byte strings that go with it.
Handler = Callable[[Call], tuple[Any, list[bytes]]]


@dataclass
class IsolationStats:
    """What the pools of this process have done so far."""

    calls: int = 0
    replaced: int = 0  # workers killed (deadline) or dead (memory cap, crash)
    timeouts: int = 0
    #: Largest resident set of any worker so far, as reported by the workers and read just before a kill
    #: (bytes). A worker that dies on its own is bounded by the address-space cap.
    peak_worker_rss: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def note_rss(self, kib: int) -> None:
        with self._lock:
            self.peak_worker_rss = max(self.peak_worker_rss, kib * 1024)

    def count(self, *, calls: int = 0, replaced: int = 0, timeouts: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.replaced += replaced
            self.timeouts += timeouts


_stats = IsolationStats()


def stats() -> IsolationStats:
    """Counters of every pool in this process (for tests, metrics and benchmarks)."""
    return _stats


class _Answered(Exception):
    """The worker answered a call with a library error: the call is over, the worker stays usable."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class _WorkerLost(Exception):
    """The worker died or was killed; ``reason`` says how, for the caller's error message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _signal_name(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-status).name
        return f"signal {-status}"
    return f"exit status {status}"


class _Worker:
    """One worker process and the parent's end of its socket."""

    def __init__(self, max_memory: int, handlers: str) -> None:
        parent, child = socket.socketpair()
        self.arena = _Arena.create()
        arena_fd = self.arena.fd
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "provenance._worker",
                    str(child.fileno()),
                    str(arena_fd),
                    str(max_memory),
                    handlers,
                ],
                pass_fds=(child.fileno(), arena_fd),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # a native crash's message must not reach a CLI user or a log as noise
                start_new_session=True,  # a terminal's Ctrl-C goes to the caller, which then closes the socket
            )
        except OSError as exc:
            parent.close()
            self.arena.close()
            raise ParserUnavailableError(f"cannot start a parsing worker: {exc}") from exc
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.contexts: set[str] = set()
        self.calls = 0
        if not self.conn.poll(START_TIMEOUT):
            self.kill()
            raise ParserUnavailableError(f"a parsing worker did not start within {START_TIMEOUT:.0f} s")
        try:
            ready = _load(self.conn.recv_bytes(MAX_MESSAGE))
        except (EOFError, OSError) as exc:
            status = self.kill()
            raise ParserUnavailableError(
                f"a parsing worker exited while starting ({status}); is parse_max_memory "
                f"({max_memory // MIB} MiB) too small to load the SDK?"
            ) from exc
        if ready != ["ready"]:
            self.kill()
            raise ParserUnavailableError("a parsing worker answered its start-up with garbage")

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.close()
        with contextlib.suppress(OSError):
            self.arena.close()

    def kill(self) -> str:
        """Kill the process (if still running), reap it and record its peak memory; return how it ended."""
        _stats.note_rss(_maxrss(self.process.pid))  # read while it still exists
        self._close()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        return self._reap()

    def retire(self) -> None:
        """Let the worker exit on its own (end of its socket), then reap it."""
        self._close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._reap()

    def _reap(self) -> str:
        try:
            _, status = os.waitpid(self.process.pid, 0)
        except ChildProcessError:  # already reaped (by Popen.wait)
            code = self.process.returncode
            return _signal_name(code) if code is not None else "ended"
        self.process.returncode = os.waitstatus_to_exitcode(status)
        return _signal_name(self.process.returncode)

    def alive(self) -> bool:
        return self.process.poll() is None


class WorkerPool:
    """Up to ``workers`` worker processes sharing one memory cap; calls wait for a free one.

    ``handlers`` names the module whose ``WORKER_OPS`` the workers run (the SDK adapter by default).
    """

    def __init__(self, *, workers: int, max_memory: int, handlers: str = HANDLERS) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.max_memory = max_memory
        self.handlers = handlers
        # A slot is an idle worker, or None for one not started yet (started by the call that takes it).
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        for _ in range(workers):
            self._idle.put(None)
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Start every worker now (in parallel), so the first requests do not pay for it."""
        taken: list[_Worker | None] = []
        while True:
            try:
                taken.append(self._idle.get_nowait())
            except queue.Empty:
                break
        started: list[_Worker | None] = [None] * len(taken)

        def start(i: int) -> None:
            slot = taken[i]
            with contextlib.suppress(ProvenanceError):
                started[i] = slot if slot is not None and slot.alive() else self._start()

        threads = [threading.Thread(target=start, args=(i,)) for i in range(len(taken))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for worker in started:
            self._idle.put(worker)

    def _start(self) -> _Worker:
        worker = _Worker(self.max_memory, self.handlers)
        with self._lock:
            self._all.add(worker)
        return worker

    def _forget(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)

    def call(
        self,
        op: str,
        args: tuple[Any, ...],
        blobs: Sequence[bytes],
        *,
        deadline: float,
        queue_timeout: float,
        context: tuple[str, Any] | None = None,
        signer: Callable[[bytes], bytes] | None = None,
    ) -> tuple[Any, list[bytes]]:
        """Run handler ``op`` in a worker; return its result and byte strings.

        ``context`` is ``(key, object)``: sent to a worker the first time it sees ``key``.
        ``signer`` answers the worker's signing requests. Raises :class:`InputTooComplexError`
        (deadline, memory cap, crash), :class:`ParserBusyError`, :class:`ParserUnavailableError`,
        or the library error the handler raised.
        """
        try:
            slot = self._idle.get(timeout=queue_timeout)
        except queue.Empty:
            raise ParserBusyError(
                f"every parsing worker stayed busy for {queue_timeout:.0f} s", hint="try again shortly"
            ) from None
        worker: _Worker | None = None
        try:
            worker = slot if slot is not None and slot.alive() else self._start()
            if slot is not None and slot is not worker:
                self._forget(slot)
                slot.kill()
            result = self._run(worker, op, args, blobs, deadline, context, signer)
            worker.calls += 1
            if worker.calls >= MAX_CALLS_PER_WORKER:
                self._forget(worker)
                worker.retire()
                worker = None
            return result
        except _Answered as answered:
            raise answered.error from None
        except _WorkerLost as lost:
            if worker is not None:
                self._forget(worker)
            worker = None
            _stats.count(replaced=1)
            raise InputTooComplexError(f"the file is too complex to parse within the limits: {lost.reason}") from None
        except BaseException:
            # Interrupted mid-call (a signer's or the caller's own exception): the worker may still
            # answer this call later, so it must never serve another one.
            if worker is not None:
                self._forget(worker)
                worker.kill()
            worker = None
            raise
        finally:
            _stats.count(calls=1)
            self._idle.put(worker)  # None: the next call starts a fresh worker

    def _run(
        self,
        worker: _Worker,
        op: str,
        args: tuple[Any, ...],
        blobs: Sequence[bytes],
        deadline: float,
        context: tuple[str, Any] | None,
        signer: Callable[[bytes], bytes] | None,
    ) -> tuple[Any, list[bytes]]:
        conn = worker.conn
        key, value = context if context is not None else (None, None)
        send = key is not None and key not in worker.contexts
        if send and len(worker.contexts) >= MAX_CONTEXTS:
            worker.contexts.clear()  # the worker clears its own at the same moment (see serve)
        try:
            spans = worker.arena.write(blobs)
            conn.send_bytes(pickle.dumps(("call", op, args, spans, key, value if send else None), _PICKLE))
        except OSError:
            raise _WorkerLost(f"the parser ended unexpectedly ({worker.kill()})") from None
        if key is not None:
            worker.contexts.add(key)
        budget = deadline
        while True:
            started = time.monotonic()
            try:
                ready = conn.poll(max(budget, 0.0))
            except OSError:
                ready = True  # the recv below reports it
            if not ready:
                worker.kill()
                _stats.count(timeouts=1)
                raise _WorkerLost(f"it took longer than {deadline:.1f} s, the limit for a file of this size")
            try:
                message = _load(conn.recv_bytes(MAX_MESSAGE))
                budget -= time.monotonic() - started
                if message[0] == "sign":
                    payload = conn.recv_bytes(MAX_MESSAGE)
                    self._answer_sign(conn, payload, signer)  # not counted against the deadline
                    continue
                if message[0] == "done" and len(message) == 4:
                    _, result, spans, rss = message
                    out = worker.arena.read(_spans(spans), 2 * sum(len(b) for b in blobs) + OUTPUT_SLACK)
                    worker.arena.release()
                    _stats.note_rss(int(rss))
                    return result, out
                if message[0] != "error" or len(message) != 6:
                    raise EOFError("unknown message from a worker")
                _, name, text, hint, rss, fatal = message
                _stats.note_rss(int(rss))
            except (EOFError, OSError, TypeError, ValueError):
                raise _WorkerLost(
                    f"the parser exceeded its memory cap of {self.max_memory // MIB} MiB or crashed ({worker.kill()})"
                ) from None
            if fatal:  # the worker said it is no longer usable (e.g. a MemoryError inside Python)
                worker.kill()
                raise _WorkerLost(str(text))
            raise _Answered(_rebuild(name, str(text), hint if isinstance(hint, str) else None))

    @staticmethod
    def _answer_sign(conn: Connection, payload: bytes, signer: Callable[[bytes], bytes] | None) -> None:
        try:
            if signer is None:
                raise SigningError("this call has no signer")
            signature = signer(payload)
        except ProvenanceError as exc:
            conn.send_bytes(pickle.dumps(("sign-error", exc.diagnostics()), _PICKLE))
        except Exception as exc:  # a signer's foreign error: reported, never raised into the SDK's stack
            conn.send_bytes(pickle.dumps(("sign-error", f"{type(exc).__name__}: {exc}"), _PICKLE))
        else:
            conn.send_bytes(pickle.dumps(("signature",), _PICKLE))
            conn.send_bytes(signature)

    def close(self) -> None:
        """Stop every worker (idle or not)."""
        with self._lock:
            workers, self._all = list(self._all), set()
        for worker in workers:
            worker.retire()


def _rebuild(name: Any, message: str, hint: str | None) -> Exception:
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if isinstance(cls, type) and issubclass(cls, ProvenanceError):
        return cls(message, hint=hint)
    return RuntimeError(f"isolated parser failed: {message}")


_pools: dict[tuple[int, int], WorkerPool] = {}
_pools_lock = threading.Lock()
_owner = os.getpid()


def pool(limits: Limits) -> WorkerPool:
    """The pool of this process for ``limits``' memory cap and worker count (made on first use)."""
    global _owner
    key = (limits.parse_max_memory, limits.parse_workers)
    with _pools_lock:
        if os.getpid() != _owner:  # a forked child: the parent's workers are not ours to use
            _pools.clear()
            _owner = os.getpid()
        found = _pools.get(key)
        if found is None:
            found = _pools[key] = WorkerPool(workers=limits.parse_workers, max_memory=limits.parse_max_memory)
        return found


def run(
    limits: Limits,
    op: str,
    args: tuple[Any, ...],
    blobs: Sequence[bytes],
    *,
    size: int,
    context: tuple[str, Any] | None = None,
    signer: Callable[[bytes], bytes] | None = None,
) -> tuple[Any, list[bytes]]:
    """Run ``op`` isolated under ``limits``, with the deadline for ``size`` bytes of input."""
    return pool(limits).call(
        op,
        args,
        blobs,
        deadline=limits.parse_deadline(size),
        queue_timeout=limits.parse_queue_timeout,
        context=context,
        signer=signer,
    )


@atexit.register
def _close_all() -> None:
    if os.getpid() != _owner:
        return
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for each in pools:
        each.close()


# ---------------------------------------------------------------------------------------------
# The worker side (``python -m provenance._worker FD ARENA_FD MAX_MEMORY HANDLERS``).


def _send(conn: Connection, message: tuple[Any, ...], blobs: Sequence[bytes] = ()) -> None:
    """Worker to caller: JSON only (the caller never unpickles what a worker says)."""
    conn.send_bytes(json.dumps(message).encode())
    for blob in blobs:
        conn.send_bytes(blob)


def _maxrss(pid: int | str = "self") -> int:
    """Peak resident set (KiB) of a process, from ``/proc`` (``ru_maxrss`` would include the caller's
    peak, which a child inherits across fork and exec)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def serve(fd: int, arena_fd: int, max_memory: int, handlers_module: str) -> None:
    """The worker's loop: cap memory, load the handlers, answer calls until the socket closes."""
    resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not write hostile data to disk
    conn = Connection(fd)
    arena = _Arena(arena_fd)
    handlers: dict[str, Handler] = importlib.import_module(handlers_module).WORKER_OPS
    _send(conn, ("ready",))
    contexts: dict[str, Any] = {}

    def sign(payload: bytes) -> bytes:
        _send(conn, ("sign",), [payload])
        answer = pickle.loads(conn.recv_bytes())  # noqa: S301 - from the caller, which started this worker
        if answer[0] == "signature":
            return conn.recv_bytes()
        raise SigningError(str(answer[1]))

    while True:
        try:
            header = pickle.loads(conn.recv_bytes())  # noqa: S301 - from the caller, which started this worker
        except (EOFError, OSError):
            return  # the caller closed the socket or exited
        _, op, args, spans, key, value = header
        blobs = arena.read(spans, max_memory)  # from the caller; bounded by what it can send
        if key is not None and value is not None:
            if len(contexts) >= MAX_CONTEXTS:
                contexts.clear()
            contexts[key] = value
        try:
            result, out = handlers[op](Call(args, blobs, contexts.get(key) if key else None, sign))
        except ProvenanceError as exc:
            _send(conn, ("error", type(exc).__name__, exc.message, exc.hint, _maxrss(), False))
        except MemoryError:
            _send(conn, ("error", None, f"it needed more than {max_memory // MIB} MiB", None, _maxrss(), True))
            return
        except RecursionError:
            _send(conn, ("error", "InputTooComplexError", "the file is nested too deeply", None, _maxrss(), False))
        except Exception as exc:  # a bug in a handler: reported to the caller as an internal error
            _send(conn, ("error", None, f"{type(exc).__name__}: {exc}", None, _maxrss(), False))
        else:
            _send(conn, ("done", result, arena.write(out), _maxrss()))
        del blobs
