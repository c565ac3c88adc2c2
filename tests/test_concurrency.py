"""Many threads stamping and inspecting at once: SDK objects are per thread, so nothing is shared."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from provenance import FileKeySigner, Source, StampRequest, State, TrustConfig, inspect, stamp

from . import images


def test_parallel_stamp_and_inspect(signer: FileKeySigner, trust: TrustConfig) -> None:
    uploads = [images.jpeg(seed=i) for i in range(24)]

    def work(data: bytes) -> tuple[State, tuple[str, ...], State]:
        result = stamp(data, StampRequest(Source.AI_GENERATED), signer, trust)
        again = inspect(result.data, trust)
        return result.verdict.state, again.labels, inspect(data, trust).state

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, uploads))
    assert results == [(State.TRUSTED, ("ai_generated",), State.ABSENT)] * len(uploads)
