"""Soft-binding benchmark: do derived copies of an image resolve to their original, and unrelated images
to nothing? It chooses ``provenance.softbinding.MAX_DISTANCE``.

Run from the project root::

    .venv/bin/python bench/bench_soft_binding.py                  # 200 originals, 10,000 unrelated
    .venv/bin/python bench/bench_soft_binding.py --quick          # smoke check (24 originals, 500 unrelated)
    .venv/bin/python bench/bench_soft_binding.py --originals 400 --unrelated 20000 --seed 2 --jobs 4

What is fingerprinted: the 64-bit ISCC Content-Code Image of ``provenance.softbinding.image_code``, run
in-process (``image_binding`` runs the same function in an isolated worker, which only adds process
overhead). Originals are not stamped: a stamp signs exactly the fingerprint of the upload's pixels (tested
in tests/test_soft_binding.py), and signing is not what is measured here, so the originals' fingerprints
are computed from their files directly.

The corpus (``bench/soft_binding_corpus.py``, deterministic by ``--seed``) is made in memory:

* ``--originals`` originals, a quarter of them crops of the twelve distinct real photographs among the
  conformance files in tests/fixtures/external (different positions, scales, aspect ratios), the rest
  procedural scenes of six kinds (shapes, landscape, texture, document, city, portrait) with sensor-like
  grain; 640-1280 pixels on the longer side, JPEG q=90 with EXIF, XMP and an ICC profile;
* per original, the derived copies of ``soft_binding_corpus.DERIVATIONS``: resized to 50% and 25%,
  JPEG q=60, WebP q=80, PNG, metadata stripped (losslessly, and by a q=85 re-save), 5% crop (2.5% off each
  side, and 5% off one side), brightness +5% and -5%;
* ``--unrelated`` unrelated images: about a tenth crops of the same photographs that share at most 20% of
  their area with any original crop (other frames "of the same shoot"), the rest procedural scenes of other
  seeds; 256-640 pixels, JPEG q=85. None is derived from an original.

Measured, for match thresholds of 4 to 16 bits:

* **recall** per derivation: the fraction of copies within the threshold of their own original *and*
  strictly nearer to it than to any other original (a tie counts as a miss: the resolver could not tell);
* **false matches**: the unrelated images within the threshold of *any* original (and the unrelated x
  original pairs within it, the per-pair rate that scales to a larger archive);
* the distance distributions (min, p1, median, p99, max) of copies to their original, of unrelated images
  to their nearest original and of originals to their nearest other original.

It recommends the smallest threshold with recall >= 95% on every resize, recompress, conversion and strip
derivation (:data:`TARGET_KINDS`) and no false match, or says that none exists and what the trade-off is.
All-pairs distances are exact (XOR and ``int.bit_count``; 2 million pairs take about a second).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import soft_binding_corpus as corpus  # noqa: E402
from provenance import softbinding  # noqa: E402
from provenance.errors import InputError  # noqa: E402

THRESHOLDS = (4, 6, 8, 10, 12, 14, 16)
#: Derivations the recall target applies to (resize, recompress/convert, strip).
TARGET_KINDS = ("resize50", "resize25", "jpeg60", "webp80", "png", "strip", "strip-resave")
RECALL_TARGET = 0.95
PHOTO_SHARE_ORIGINALS = 0.25
PHOTO_SHARE_UNRELATED = 0.10
ORIGINAL_SIDE = (640, 1280)
UNRELATED_SIDE = (256, 640)


def code_of(data: bytes) -> int | None:
    """The 64-bit Image-Code hash of a file, or ``None`` for an image that gets no fingerprint."""
    try:
        return softbinding.parse_value(softbinding.ALG, softbinding.image_code(data, 10**8)).code
    except InputError:
        return None


# ------------------------------------------------------------------------------------ the plan


@dataclass
class Plan:
    originals: list[corpus.Spec]
    unrelated: list[corpus.Spec]


def plan(seed: int, originals: int, unrelated: int) -> Plan:
    """Which image each slot is (generator or photo crop, seed string, crop box), deterministic by seed."""
    rng = random.Random(f"{seed}:plan")
    photos = corpus.available_photos()
    generators = list(corpus.GENERATORS)
    photo_originals = round(originals * PHOTO_SHARE_ORIGINALS) if photos else 0
    photo_unrelated = round(unrelated * PHOTO_SHARE_UNRELATED) if photos else 0
    original_boxes: list[tuple[int, corpus.Box]] = []
    unrelated_boxes: list[tuple[int, corpus.Box]] = []
    for n, index in enumerate(photos):
        want_o = photo_originals // len(photos) + (n < photo_originals % len(photos))
        want_u = photo_unrelated // len(photos) + (n < photo_unrelated % len(photos))
        chosen, others = corpus.photo_boxes(rng, index, want_o, want_u)
        original_boxes += [(index, box) for box in chosen]
        unrelated_boxes += [(index, box) for box in others]

    def specs(role: str, count: int, boxes: list[tuple[int, corpus.Box]]) -> list[corpus.Spec]:
        out = [corpus.Spec("photo", f"{seed}:{role}:photo:{i}", p, box) for i, (p, box) in enumerate(boxes)]
        for i in range(count - len(out)):
            out.append(corpus.Spec(generators[i % len(generators)], f"{seed}:{role}:{i}"))
        random.Random(f"{seed}:{role}:order").shuffle(out)
        return out

    return Plan(specs("original", originals, original_boxes), specs("unrelated", unrelated, unrelated_boxes))


# ------------------------------------------------------------------------------------ workers


@dataclass
class Original:
    spec: corpus.Spec
    size: tuple[int, int]
    code: int
    copies: dict[str, int | None] = field(default_factory=dict)


def make_original(spec: corpus.Spec) -> Original:
    """Render an original, fingerprint it and its derived copies. A featureless render (no fingerprint)
    is replaced by a ``texture`` scene of a derived seed."""
    for attempt in range(10):
        attempt_spec = spec if attempt == 0 else corpus.Spec("texture", f"{spec.seed}:retry{attempt}")
        img = corpus.render(attempt_spec, ORIGINAL_SIDE)
        data = corpus.original_file(img, zlib.crc32(attempt_spec.seed.encode()))
        code = code_of(data)
        if code is not None:
            copies = {name: code_of(copy) for name, copy in corpus.derived_copies(data, attempt_spec.seed).items()}
            return Original(attempt_spec, img.size, code, copies)
    raise RuntimeError(f"no fingerprintable original for {spec}")


def make_unrelated(spec: corpus.Spec) -> tuple[str, int, int | None]:
    img = corpus.render(spec, UNRELATED_SIDE)
    return spec.generator, spec.photo, code_of(corpus.encode(img, "JPEG", quality=85))


# ------------------------------------------------------------------------------------ analysis


def _quantile(values: Sequence[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def spread(values: Sequence[int]) -> str:
    if not values:
        return "     (none)"
    return "  ".join(
        f"{v:>4}"
        for v in (
            min(values),
            _quantile(values, 0.01),
            round(statistics.median(values)),
            _quantile(values, 0.99),
            max(values),
        )
    )


@dataclass
class Copy:
    own: int  # distance to its own original (64 + 1 when it got no fingerprint)
    nearest_other: int  # distance to the nearest other original


def analyse_copies(originals: list[Original]) -> dict[str, list[Copy]]:
    codes = [o.code for o in originals]
    out: dict[str, list[Copy]] = {name: [] for name in corpus.DERIVATIONS}
    for i, original in enumerate(originals):
        for name, code in original.copies.items():
            if code is None:
                out[name].append(Copy(softbinding.BITS + 1, softbinding.BITS + 1))
                continue
            distances = [(code ^ c).bit_count() for c in codes]
            own = distances[i]
            distances[i] = softbinding.BITS + 1
            out[name].append(Copy(own, min(distances) if len(distances) > 1 else softbinding.BITS + 1))
    return out


def resolved(copy: Copy, threshold: int) -> bool:
    return copy.own <= threshold and copy.own < copy.nearest_other


def nearest_distances(queries: Sequence[int], codes: Sequence[int]) -> tuple[list[int], Counter[int]]:
    """Each query's distance to its nearest code, and how many (query, code) pairs are at each distance."""
    nearest: list[int] = []
    pairs: Counter[int] = Counter()
    for q in queries:
        distances = [(q ^ c).bit_count() for c in codes]
        pairs.update(distances)
        nearest.append(min(distances))
    return nearest, pairs


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--originals", type=int, default=200, help="originals (default 200)")
    parser.add_argument("--unrelated", type=int, default=10_000, help="unrelated images (default 10,000)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: cores)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 24 originals, 500 unrelated")
    args = parser.parse_args(argv)
    if args.quick:
        args.originals, args.unrelated = 24, 500
    if args.originals < 2:
        parser.error("--originals must be at least 2")

    started = time.perf_counter()
    the_plan = plan(args.seed, args.originals, args.unrelated)
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        originals = pool.map(make_original, the_plan.originals, chunksize=4)
        made_originals = time.perf_counter()
        unrelated_results = pool.map(make_unrelated, the_plan.unrelated, chunksize=64)
    made_unrelated = time.perf_counter()

    codes = [o.code for o in originals]
    copies = analyse_copies(originals)
    unrelated_found = [(g, p, code) for g, p, code in unrelated_results if code is not None]
    unrelated_codes = [code for _, _, code in unrelated_found]
    unrelated_nearest, unrelated_pairs = nearest_distances(unrelated_codes, codes)
    original_nearest = [min((c ^ d).bit_count() for j, d in enumerate(codes) if j != i) for i, c in enumerate(codes)]
    analysed = time.perf_counter()

    # ---- the corpus
    kinds = Counter(o.spec.generator for o in originals)
    unrelated_kinds = Counter(g for g, _, _ in unrelated_results)
    featureless = sum(code is None for _, _, code in unrelated_results)
    sides = sorted(max(o.size) for o in originals)
    print(f"soft-binding robustness: seed {args.seed}, {len(originals)} originals, {len(unrelated_results)} unrelated")
    print(f"  originals: {', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}; longer side "
          f"{sides[0]}-{sides[-1]} px (median {sides[len(sides) // 2]})")  # fmt: skip
    print(f"  unrelated: {', '.join(f'{k} {n}' for k, n in sorted(unrelated_kinds.items()))}; "
          f"{featureless} featureless (no fingerprint, excluded)")  # fmt: skip
    photos = {o.spec.photo for o in originals if o.spec.generator == "photo"}
    print(f"  photo crops from {len(photos)} photographs in tests/fixtures/external")

    # ---- recall
    width = max(len(k) for k in corpus.DERIVATIONS) + 2
    header = "".join(f"{f't={t}':>8}" for t in THRESHOLDS)
    print()
    print("recall: copies within t bits of their own original and strictly nearest to it (target kinds *)")
    print(f"{'derivation':<{width}}{'n':>6}{header}  {'ties':>5}  description")
    for name, (description, _) in corpus.DERIVATIONS.items():
        rows = copies[name]
        cells = "".join(f"{100 * sum(resolved(c, t) for c in rows) / len(rows):>7.1f}%" for t in THRESHOLDS)
        ties = sum(c.own == c.nearest_other <= softbinding.BITS for c in rows)
        mark = "*" if name in TARGET_KINDS else " "
        print(f"{name + mark:<{width}}{len(rows):>6}{cells}  {ties:>5}  {description}")

    print()
    print("target-kind copies missed at t, by what the original is")
    print(f"{'original':<{width}}{'n':>6}{header}")
    for kind in sorted(kinds):
        mine = [i for i, o in enumerate(originals) if o.spec.generator == kind]
        rows = [copies[name][i] for name in TARGET_KINDS for i in mine]
        cells = "".join(f"{sum(not resolved(c, t) for c in rows):>8}" for t in THRESHOLDS)
        print(f"{kind:<{width}}{len(rows):>6}{cells}")

    # ---- false matches
    n_unrelated = len(unrelated_codes)
    total_pairs = n_unrelated * len(codes)
    print()
    print(f"false matches: unrelated images within t bits of any original ({n_unrelated} x {len(codes)} pairs)")
    print(f"{'':<{width}}{'n':>6}{header}")
    cells = "".join(f"{sum(d <= t for d in unrelated_nearest):>8}" for t in THRESHOLDS)
    print(f"{'unrelated':<{width}}{n_unrelated:>6}{cells}")
    cells = "".join(f"{sum(n for d, n in unrelated_pairs.items() if d <= t):>8}" for t in THRESHOLDS)
    print(f"{'pairs':<{width}}{total_pairs:>6}{cells}")
    cells = "".join(f"{sum(d <= t for d in original_nearest):>8}" for t in THRESHOLDS)
    print(f"{'originals':<{width}}{len(codes):>6}{cells}   (originals with another original within t)")

    # ---- distributions
    print()
    print("distances in bits (of 64)")
    print(f"{'':<{width + 22}}{'min':>4}  {'p1':>4}  {'med':>4}  {'p99':>4}  {'max':>4}")
    for name in corpus.DERIVATIONS:
        own = [c.own for c in copies[name] if c.own <= softbinding.BITS]
        print(f"{name:<{width}}{'to own original':<22}{spread(own)}")
    print(f"{'unrelated':<{width}}{'to nearest original':<22}{spread(unrelated_nearest)}")
    print(f"{'originals':<{width}}{'to nearest other':<22}{spread(original_nearest)}")
    no_code = {name: sum(c.own > softbinding.BITS for c in rows) for name, rows in copies.items()}
    if any(no_code.values()):
        print("copies without a fingerprint (counted as misses): "
              + ", ".join(f"{k} {n}" for k, n in no_code.items() if n))  # fmt: skip

    # ---- recommendation
    def recall(name: str, t: int) -> float:
        rows = copies[name]
        return sum(resolved(c, t) for c in rows) / len(rows)

    recall_ok = [t for t in range(softbinding.BITS + 1) if all(recall(k, t) >= RECALL_TARGET for k in TARGET_KINDS)]
    first_false = min(unrelated_nearest, default=softbinding.BITS + 1)
    print()
    current = softbinding.MAX_DISTANCE
    if recall_ok and recall_ok[0] < first_false:
        low, high = recall_ok[0], first_false - 1
        others = ", ".join(f"{k} {100 * recall(k, low):.1f}%" for k in corpus.DERIVATIONS if k not in TARGET_KINDS)
        print(f"recommended MAX_DISTANCE: {low} bits (current {current}). Thresholds {low}..{high} meet "
              f">= {100 * RECALL_TARGET:.0f}% recall on every target kind with no false match; {low} keeps "
              f"the widest margin against false matches, which grow with the number of stored originals.")  # fmt: skip
        print(f"  at {low} bits the other kinds resolve: {others}")
        if high > low:
            others = ", ".join(f"{k} {100 * recall(k, high):.1f}%" for k in corpus.DERIVATIONS if k not in TARGET_KINDS)
            print(f"  at {high} bits: {others}")
    else:
        worst = {k: min(range(softbinding.BITS + 1), key=lambda t, k=k: (recall(k, t) < RECALL_TARGET, t))
                 for k in TARGET_KINDS}  # fmt: skip
        needed = max(worst.values())
        print(f"no threshold meets >= {100 * RECALL_TARGET:.0f}% recall on every target kind with no false match:")
        print(f"  recall needs {needed} bits ({', '.join(f'{k} {t}' for k, t in worst.items())}); the first "
              f"false match is at {first_false} bits")  # fmt: skip
        for t in sorted({needed, first_false - 1}):
            if 0 <= t <= softbinding.BITS:
                fm = sum(d <= t for d in unrelated_nearest)
                rec = ", ".join(f"{k} {100 * recall(k, t):.1f}%" for k in TARGET_KINDS)
                print(f"  at {t} bits: {fm} false matches of {n_unrelated}; recall {rec}")
    shown = [t for t in THRESHOLDS if any(d <= t for d in unrelated_nearest)][:2]
    for t in shown:
        pairs: Counter[str] = Counter()
        for (kind, photo, code), nearest in zip(unrelated_found, unrelated_nearest, strict=True):
            if nearest > t:
                continue
            for o in originals:
                if (code ^ o.code).bit_count() <= t:
                    same = " (same photo)" if kind == "photo" and o.spec.photo == photo else ""
                    pairs[f"{kind} -> {o.spec.generator}{same}"] += 1
        print(f"  false-match pairs at {t} bits, unrelated -> original: "
              + ", ".join(f"{k} {n}" for k, n in pairs.most_common()))  # fmt: skip
    print()
    print(f"time: originals and copies {made_originals - started:.1f} s, unrelated "
          f"{made_unrelated - made_originals:.1f} s, analysis {analysed - made_unrelated:.1f} s, "
          f"total {time.perf_counter() - started:.1f} s ({args.jobs} processes)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
