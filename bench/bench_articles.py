"""Article benchmark: sign and verify a 1,000-word article, next to the raw c2pa-python calls.

Run from the project root::

    .venv/bin/python bench/bench_articles.py [--iterations N] [--json]

Times, interleaved in one process: canonicalising the CMS payload; a raw detached sign of the
canonical text (one Context, one native Signer, verify_after_sign at its default) against
``stamp_article`` (canonicalise + sign + full re-verification); a raw ``Reader`` of the text with
its manifest against ``inspect`` of the .txt and ``inspect_article`` of the payload.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import c2pa  # noqa: E402
from bench_core import environment  # noqa: E402
from table import make_row, rows_json  # noqa: E402

from provenance import FileKeySigner, TrustConfig, inspect  # noqa: E402
from provenance.articles import inspect_article, parse_payload, stamp_article  # noqa: E402
from provenance.keys import issue_chain  # noqa: E402

WORDS = [
    "the", "council", "said", "on", "Thursday", "that", "rain", "wind", "coast", "budget", "vote",
    "report", "police", "market", "shares", "rose", "fell", "percent", "analysts", "expect",
    "forecast", "tonight", "tomorrow", "weekend", "residents", "officials",
]  # fmt: skip


def article_payload(words: int = 1000, seed: int = 1) -> bytes:
    """A CMS payload whose HTML body has ``words`` words in paragraphs of 40-80 words."""
    rnd = random.Random(seed)
    paragraphs, left = [], words
    while left > 0:
        n = min(left, rnd.randint(40, 80))
        paragraphs.append(" ".join(rnd.choice(WORDS) for _ in range(n)).capitalize() + ".")
        left -= n
    body = "\n".join(f'  <p class="para">{p}</p>' for p in paragraphs)
    return json.dumps(
        {
            "external_id": "bench/1000-words",
            "version": 1,
            "headline": "A thousand words on the weather",
            "standfirst": "Benchmark article",
            "byline": "Bench",
            "language": "en",
            "url": "https://news.example.com/bench",
            "body_html": f"<article>\n{body}\n</article>",
            "source": "ai_generated",
        }
    ).encode()


#: (what ours does, the raw anchor) for each row of ``main``, in the shared table's terms (bench/table.py).
TABLE_NAMES = [
    ("canonicalise payload (parse + canonical text)", "none (no raw equivalent)"),
    ("stamp_article (canonicalise + sign + re-verify)", "raw c2pa-python detached sign"),
    ("inspect .txt + .c2pa", "raw c2pa-python Reader, text + sidecar"),
    ("inspect_article of the payload (canonicalise + verify)", "raw c2pa-python Reader, text + sidecar"),
]


def median_ms(fn: Callable[[], object], iterations: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)

    chain = issue_chain("Bench Newsroom")
    trust = TrustConfig(chain.root_pem.decode())
    signer = FileKeySigner.from_pem(chain.key_pem, chain.chain_pem)
    data = article_payload()
    payload = parse_payload(data)
    text = payload.canonical_text()
    stamped = stamp_article(payload, signer, trust)

    ctx = c2pa.Context.from_dict(
        {"verify": {"remote_manifest_fetch": False}, "trust": {"trust_anchors": chain.root_pem.decode()},
         "builder": {"thumbnail": {"enabled": False}}}
    )  # fmt: skip
    raw_signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain.chain_pem, chain.key_pem, None))
    definition = {
        "claim_generator_info": [{"name": "bench", "version": "1"}],
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]},
            }
        ],
    }  # fmt: skip

    def raw_sign() -> bytes:
        with c2pa.Builder(definition, context=ctx) as builder:
            builder.set_no_embed()
            return bytes(builder.sign(raw_signer, "text/plain", io.BytesIO(text), io.BytesIO()))

    raw_manifest = raw_sign()

    def raw_read() -> object:
        with c2pa.Reader("text/plain", io.BytesIO(text), raw_manifest, context=ctx) as reader:
            return json.loads(reader.json())

    def ours_canonicalise() -> object:
        return parse_payload(data).canonical_text()

    def ours_sign() -> object:
        return stamp_article(payload, signer, trust)

    def ours_inspect_text() -> object:
        return inspect(text, trust, sidecar=stamped.manifest)

    def ours_inspect_payload() -> object:
        return inspect_article(parse_payload(data), stamped.manifest, trust)

    n = args.iterations
    rows = [
        ("canonicalise payload (parse + canonical text)", None, median_ms(ours_canonicalise, n)),
        ("sign: raw detached sign / stamp_article", median_ms(raw_sign, n), median_ms(ours_sign, n)),
        ("verify: raw Reader / inspect .txt + .c2pa", median_ms(raw_read, n), median_ms(ours_inspect_text, n)),
        ("verify: raw Reader / inspect_article (payload)", median_ms(raw_read, n), median_ms(ours_inspect_payload, n)),
    ]
    if args.json:
        article = {"payload_bytes": len(data), "text_bytes": len(text), "manifest_bytes": len(stamped.manifest)}
        results = [{"operation": name, "raw_ms": raw, "ours_ms": ours} for name, raw, ours in rows]
        # Informational rows (no aim): the project sets no article targets.
        table = [
            make_row("articles", f"{what}, 1,000-word article", anchor, raw, ours, "ms")
            for (what, anchor), (_, raw, ours) in zip(TABLE_NAMES, rows, strict=True)
        ]
        json.dump(
            {"environment": environment(), "article": article, "results": results, "table": rows_json(table)},
            sys.stdout,
            indent=2,
        )
        print()
        return
    print(
        f"1,000-word article: {len(data):,} B payload, {len(text):,} B canonical text "
        f"({len(text.split())} words), manifest {len(stamped.manifest):,} B"
    )
    print(f"{'operation':50} {'raw ms':>8} {'ours ms':>8} {'ratio':>6}")
    for name, raw, ours in rows:
        raw_text = f"{raw:8.3f}" if raw is not None else f"{'-':>8}"
        ratio = f"{ours / raw:6.2f}" if raw else f"{'-':>6}"
        print(f"{name:50} {raw_text} {ours:8.3f} {ratio}")


if __name__ == "__main__":
    main()
