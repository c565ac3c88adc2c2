"""Isolated parsing: a worker that runs out of memory, time or luck costs one 422, never the caller.

The pool is driven with the test operations of ``tests/isolation_ops.py`` (so each failure is
produced on demand), then through the real SDK adapter.
"""

from __future__ import annotations

import os
import re
import signal
import struct
import threading
import time
import zlib
from collections.abc import Iterator

import pytest

from provenance import (
    CallbackSigner,
    FileKeySigner,
    InputError,
    Limits,
    ManifestError,
    Source,
    StampRequest,
    TrustConfig,
    isolation,
    stamp,
)
from provenance import inspect as inspect_file
from provenance.errors import InputTooComplexError, ParserBusyError
from provenance.isolation import MAX_CONTEXTS, OUTPUT_SLACK, WorkerPool
from provenance.keys import IssuedChain
from provenance.media import MIB, UnsafeParsingWarning

from . import images

MEMORY = 256 * MIB


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(workers=2, max_memory=MEMORY, handlers="tests.isolation_ops")
    yield workers
    workers.close()


def call(pool: WorkerPool, op: str, *args: object, deadline: float = 5.0, **kw: object) -> tuple[object, list[bytes]]:
    return pool.call(op, args, kw.pop("blobs", ()), deadline=deadline, queue_timeout=5.0, **kw)


def test_results_bytes_and_context_cross_the_boundary(pool: WorkerPool) -> None:
    blob = os.urandom(3 * MIB)
    (pid, context), out = call(pool, "echo", blobs=[blob, b""], context=("trust-a", {"anchors": "A"}))
    assert pid != os.getpid()
    assert context == {"anchors": "A"}
    assert out == [blob, b""]


def test_context_objects_are_cached_per_worker_without_losing_any(pool: WorkerPool) -> None:
    # More keys than a worker keeps: every call must still see its own context object.
    for round_ in range(2):
        for i in range(MAX_CONTEXTS * 2 + 1):
            (_, context), _ = call(pool, "echo", context=(f"key-{i}", f"value-{i}"))
            assert context == f"value-{i}", (round_, i)


FAILURES = {
    # name: (operation, arguments, deadline, what the error says)
    "allocation beyond the memory cap": ("allocate", (2 * MEMORY,), 10.0, "needed more than 256 MiB"),
    "past the deadline": ("sleep", (30,), 0.5, "took longer than 0.5 s"),
    "native abort": ("crash", ("abort",), 10.0, "crashed (SIGABRT)"),
    "segmentation fault": ("crash", ("segv",), 10.0, "crashed (SIGSEGV)"),
}


@pytest.mark.parametrize("name", FAILURES)
def test_a_failing_worker_is_an_input_too_complex_error_and_is_replaced(pool: WorkerPool, name: str) -> None:
    op, args, deadline, message = FAILURES[name]
    before = isolation.stats().replaced
    started = time.monotonic()
    with pytest.raises(InputTooComplexError, match=re.escape(message)):
        call(pool, op, *args, deadline=deadline)
    assert time.monotonic() - started < deadline + 2.0
    assert isolation.stats().replaced == before + 1
    # The pool carries on: both slots answer again.
    for _ in range(3):
        assert call(pool, "echo", blobs=[b"x"])[1] == [b"x"]


def test_memory_of_every_worker_is_recorded_dead_or_alive(pool: WorkerPool) -> None:
    call(pool, "allocate", 100 * MIB)
    assert isolation.stats().peak_worker_rss >= 100 * MIB
    assert isolation.stats().peak_worker_rss <= Limits().parse_max_memory  # no worker of any pool passed its cap


def test_library_errors_keep_their_type_and_hint(pool: WorkerPool) -> None:
    with pytest.raises(ManifestError, match="told to refuse") as raised:
        call(pool, "refuse")
    assert raised.value.hint == "a hint"


def test_a_bug_in_a_handler_is_not_reported_as_bad_input(pool: WorkerPool) -> None:
    with pytest.raises(RuntimeError, match="KeyError") as raised:
        call(pool, "bug")
    assert not isinstance(raised.value, InputError)


def test_signing_happens_in_the_caller_and_is_not_charged_to_the_deadline(pool: WorkerPool) -> None:
    signed_in: list[int] = []

    def slow_signer(payload: bytes) -> bytes:
        signed_in.append(os.getpid())
        time.sleep(0.4)
        return b"signature of " + payload

    _, out = call(pool, "sign_twice", deadline=0.5, signer=slow_signer)
    assert out == [b"signature of claim one", b"signature of claim two"]
    assert signed_in == [os.getpid(), os.getpid()]


def test_a_worker_cannot_shrink_the_shared_memory_under_the_caller(pool: WorkerPool) -> None:
    assert call(pool, "shrink_arena")[0] == "sealed"
    assert call(pool, "echo", blobs=[b"still here"])[1] == [b"still here"]


def test_a_worker_cannot_make_the_caller_copy_unbounded_bytes(pool: WorkerPool) -> None:
    with pytest.raises(InputTooComplexError):
        call(pool, "flood", OUTPUT_SLACK + MIB)
    assert call(pool, "flood", MIB)[1] == [b"x" * MIB]  # an answer within the bound is fine


class Interrupted(BaseException):
    """What a Ctrl-C or a task cancellation looks like to the pool: not an Exception."""


def test_a_call_interrupted_mid_way_never_leaves_its_answer_to_the_next_call(pool: WorkerPool) -> None:
    def interrupted(_payload: bytes) -> bytes:
        raise Interrupted

    with pytest.raises(Interrupted):
        call(pool, "sign_twice", signer=interrupted)
    for _ in range(3):  # the interrupted worker still waits for its signature: it must not serve these
        assert call(pool, "echo", blobs=[b"mine"])[1] == [b"mine"]


def test_a_slow_parse_does_not_stall_other_calls(pool: WorkerPool) -> None:
    stuck = threading.Thread(target=lambda: call(pool, "sleep", 2.0))
    stuck.start()
    time.sleep(0.1)
    started = time.monotonic()
    for _ in range(5):
        call(pool, "echo")
    assert time.monotonic() - started < 1.0
    stuck.join()


def test_calls_beyond_the_workers_wait_then_are_refused_as_busy() -> None:
    single = WorkerPool(workers=1, max_memory=MEMORY, handlers="tests.isolation_ops")
    try:
        call(single, "echo")  # started
        stuck = threading.Thread(target=lambda: call(single, "sleep", 1.5))
        stuck.start()
        time.sleep(0.2)
        with pytest.raises(ParserBusyError):
            single.call("echo", (), (), deadline=5.0, queue_timeout=0.3)
        stuck.join()
        assert call(single, "echo")[1] == []
    finally:
        single.close()


def test_a_worker_that_died_while_idle_is_replaced_transparently(pool: WorkerPool) -> None:
    pids = set()
    for _ in range(4):
        (pid, _), _ = call(pool, "echo")
        pids.add(pid)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    (pid, _), _ = call(pool, "echo")
    assert pid not in pids


# Through the real SDK adapter.


def png_of_text_chunks(count: int) -> bytes:
    """A real PNG with ``count`` tiny text chunks: within the structural limits, yet slow for the SDK
    (it reads every chunk that could hold provenance; ~15 µs each)."""
    png = images.png(16, 16)
    chunk = struct.pack(">I", 1) + b"tEXt" + b"x" + struct.pack(">I", zlib.crc32(b"tEXtx"))
    return png[:33] + chunk * count + png[33:]


def test_an_sdk_read_past_its_deadline_is_refused_and_the_next_one_works(trust: TrustConfig) -> None:
    slow = png_of_text_chunks(15_000)  # ~0.2-0.4 s in the SDK; the deadline below is 0.02 s
    started = time.monotonic()
    with pytest.raises(InputTooComplexError, match=r"took longer than 0\.0 s"):
        inspect_file(slow, trust, limits=Limits(parse_timeout=0.02, parse_timeout_per_mb=0.0))
    assert time.monotonic() - started < 1.0  # answered at the deadline, not when the SDK finished
    assert inspect_file(slow, trust).state.value == "absent"  # the default deadline lets it finish


def test_the_signing_key_is_used_in_the_calling_process(chain: IssuedChain, trust: TrustConfig) -> None:
    key = FileKeySigner.from_pem(chain.key_pem, chain.chain_pem)
    used_in: list[int] = []

    def sign(payload: bytes) -> bytes:
        used_in.append(os.getpid())
        return key.sign(payload)

    signer = CallbackSigner.create(sign, key.alg, chain.chain_pem)
    result = stamp(images.jpeg(seed=3), StampRequest(Source.AI_GENERATED), signer, trust)
    assert result.verdict.labels == ("ai_generated",)
    assert used_in == [os.getpid()]


def test_unsafe_in_process_parsing_says_so() -> None:
    with pytest.warns(UnsafeParsingWarning, match="without memory or time caps"):
        Limits(unsafe_parse_in_process=True)
