"""Core benchmark: the provenance library against the raw c2pa-python SDK, side by side.

Run from the project root::

    .venv/bin/python bench/bench_core.py                 # table
    .venv/bin/python bench/bench_core.py --json          # machine-readable
    .venv/bin/python bench/bench_core.py --iterations 50 --sizes small

In one process and on the same files it times, per image size (a ~1 MB and a ~50 KB JPEG):

* ``sign``         raw ``c2pa.Builder`` + ``Builder.sign`` vs ``provenance.stamp`` (unsigned input);
* ``sign+code``    the same raw sign with a ``c2pa.soft-binding`` assertion, after computing the ISCC
                   Image-Code of the input the way an iscc-core user would (Pillow decode at reduced
                   JPEG scale, grey, 32x32 bicubic, ``iscc_core.gen_image_code_v0``), vs the same
                   ``provenance.stamp``: the like-for-like anchor, since every stamp carries that code;
* ``sign+parent``  raw sign adding the (already signed) input as ``parentOf`` ingredient vs
                   ``provenance.stamp`` of that signed input (the upstream-ingredient path);
* ``read``         raw ``c2pa.Reader(...).json()`` + ``json.loads`` vs ``provenance.inspect`` of a
                   stamped file;
* ``read-absent``  the same on the unsigned file (no manifest; informational, ``stamp`` pays it).

The raw side is what a competent user of the SDK writes: one ``Context`` created once (thumbnails
and remote manifest fetch off, the dev root as trust anchor, ``verify_after_sign`` left at its
default), one ``Signer.from_info`` created once, a minimal manifest (one ``c2pa.created`` action,
digitalSourceType trainedAlgorithmicMedia; ``c2pa.opened`` + parentOf ingredient for the signed
input). Measurements are interleaved: every iteration runs every raw/ours pair once, alternating
which side goes first, so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import c2pa  # noqa: E402
import iscc_core  # noqa: E402
from PIL import Image, ImageChops, ImageDraw  # noqa: E402
from table import Row, make_row, rows_json  # noqa: E402

import provenance  # noqa: E402
from provenance import FileKeySigner, Source, StampRequest, State, TrustConfig  # noqa: E402
from provenance.keys import Algorithm, IssuedChain, issue_chain  # noqa: E402

AI_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
JPEG = "image/jpeg"

#: name -> (width, height, noise amplitude, seed); quality 90 gives ~1 MB and ~50 KB with Pillow 11-13.
SIZES: dict[str, tuple[int, int, int, int]] = {
    "1MB": (1600, 1200, 48, 1),
    "50KB": (360, 270, 40, 2),
}
SIZE_ALIASES = {"big": "1MB", "large": "1MB", "1mb": "1MB", "small": "50KB", "50kb": "50KB"}
DEFAULT_ITERATIONS = {"1MB": 100, "50KB": 200}

#: Targets on the ratio of medians (ours / raw).
TARGETS = {"sign": 1.15, "sign+code": 1.15, "sign+parent": 1.15, "read": 1.10}


# --------------------------------------------------------------------------------------- inputs


def noisy_jpeg(width: int, height: int, amplitude: int, seed: int) -> bytes:
    """A deterministic picture (lines, ellipse) plus per-channel noise, so JPEG cannot shrink it."""
    img = Image.new("RGB", (width, height), ((seed * 53) % 256, 90, 160))
    draw = ImageDraw.Draw(img)
    for i in range(0, width, 16):
        draw.line([(i, 0), (width - i, height)], fill=((i * 7 + seed) % 256, (i * 3) % 256, 200), width=3)
    draw.ellipse([width // 4, height // 4, 3 * width // 4, 3 * height // 4], outline=(255, 255, 0), width=4)
    rnd = random.Random(seed)
    noise = Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3))
    noise = noise.point(lambda v: v * amplitude // 255)
    buf = io.BytesIO()
    ImageChops.add(img, noise).save(buf, "JPEG", quality=90)
    return buf.getvalue()


# ------------------------------------------------------------------------------------ raw SDK


class RawSdk:
    """What a competent c2pa-python user writes: Context and Signer made once, reused per call."""

    def __init__(self, chain: IssuedChain) -> None:
        self.context = c2pa.Context.from_dict(
            {
                "verify": {"remote_manifest_fetch": False},
                "trust": {"trust_anchors": chain.root_pem.decode("ascii")},
                "builder": {"thumbnail": {"enabled": False}},
            }
        )
        self.signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain.chain_pem, chain.key_pem, None))
        agent = {"name": "raw-bench", "version": "1.0"}
        self.created_manifest = {
            "claim_generator_info": [agent],
            "assertions": [
                {
                    "label": "c2pa.actions.v2",
                    "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": AI_SOURCE_TYPE}]},
                }
            ],
        }
        self.opened_manifest = {
            "claim_generator_info": [agent],
            "assertions": [
                {
                    "label": "c2pa.actions.v2",
                    "data": {
                        "actions": [
                            {
                                "action": "c2pa.opened",
                                "digitalSourceType": AI_SOURCE_TYPE,
                                "parameters": {"ingredientIds": ["upload"]},
                            }
                        ]
                    },
                }
            ],
        }

    def sign(self, data: bytes) -> bytes:
        out = io.BytesIO()
        with c2pa.Builder(self.created_manifest, context=self.context) as builder:
            builder.sign(self.signer, JPEG, io.BytesIO(data), out)
        return out.getvalue()

    @staticmethod
    def image_code(data: bytes) -> str:
        """The ISCC Image-Code of a JPEG as an iscc-core user computes it (decoded at reduced scale)."""
        img = Image.open(io.BytesIO(data))
        img.draft("L", (256, 256))
        small = img.convert("L").resize((32, 32), Image.Resampling.BICUBIC, reducing_gap=4.0)
        code: str = iscc_core.gen_image_code_v0(list(small.tobytes()), bits=64)["iscc"]
        return code

    def sign_with_code(self, data: bytes) -> bytes:
        value = base64.b64encode(iscc_core.decode_base32(self.image_code(data).removeprefix("ISCC:"))).decode()
        binding = {
            "label": "c2pa.soft-binding",
            "data": {"alg": "io.iscc.v0", "blocks": [{"scope": {}, "value": value}], "pad": []},
        }
        manifest = {**self.created_manifest, "assertions": [*self.created_manifest["assertions"], binding]}
        out = io.BytesIO()
        with c2pa.Builder(manifest, context=self.context) as builder:
            builder.sign(self.signer, JPEG, io.BytesIO(data), out)
        return out.getvalue()

    def sign_with_parent(self, data: bytes) -> bytes:
        out = io.BytesIO()
        with c2pa.Builder(self.opened_manifest, context=self.context) as builder:
            builder.add_ingredient(
                {"title": "upload", "relationship": "parentOf", "label": "upload"}, JPEG, io.BytesIO(data)
            )
            builder.sign(self.signer, JPEG, io.BytesIO(data), out)
        return out.getvalue()

    def read(self, data: bytes) -> dict[str, Any] | None:
        try:
            with c2pa.Reader(JPEG, io.BytesIO(data), None, context=self.context) as reader:
                return json.loads(reader.json())  # type: ignore[no-any-return]
        except c2pa.C2paError.ManifestNotFound:
            return None

    def close(self) -> None:
        self.signer.close()
        self.context.close()


# ------------------------------------------------------------------------------------ measuring


@dataclass
class Pair:
    op: str
    raw: Callable[[], object]
    ours: Callable[[], object]
    target: float | None
    raw_ns: list[int] = field(default_factory=list)
    ours_ns: list[int] = field(default_factory=list)


def _timed(fn: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - start


def run_interleaved(pairs: list[Pair], iterations: int, warmup: int) -> None:
    """Every iteration runs each pair once, raw first on even iterations and ours first on odd ones."""
    for _ in range(warmup):
        for pair in pairs:
            pair.raw()
            pair.ours()
    gc.collect()
    for i in range(iterations):
        for pair in pairs:
            if i % 2 == 0:
                pair.raw_ns.append(_timed(pair.raw))
                pair.ours_ns.append(_timed(pair.ours))
            else:
                pair.ours_ns.append(_timed(pair.ours))
                pair.raw_ns.append(_timed(pair.raw))


def _p90(values: list[int]) -> float:
    if len(values) < 2:
        return float(values[0])
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def summarize(values: list[int]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(values) / 1e6,
        "p90_ms": _p90(values) / 1e6,
        "min_ms": min(values) / 1e6,
        "n": len(values),
    }


# --------------------------------------------------------------------------------------- set-up


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"bench set-up failed: {message}")


def build_pairs(
    data: bytes, raw: RawSdk, signer: FileKeySigner, trust: TrustConfig
) -> tuple[list[Pair], dict[str, int]]:
    request = StampRequest(Source.AI_GENERATED)

    # Sanity: both sides produce trusted, AI-labelled output from these very inputs.
    raw_signed = raw.sign(data)
    report = raw.read(raw_signed)
    _check(report is not None and report.get("validation_state") == "Trusted", "raw-signed file is not Trusted")
    stamped = provenance.stamp(data, request, signer, trust)
    _check(stamped.verdict.state is State.TRUSTED and bool(stamped.verdict.labels), "stamped file is not trusted")
    signed_input = raw_signed  # an upload that already carries a trusted AI manifest
    restamped = provenance.stamp(signed_input, request, signer, trust)
    _check(restamped.upstream.state is State.TRUSTED, "signed input is not trusted upstream")
    _check(
        restamped.verdict.active_manifest is not None and bool(restamped.verdict.active_manifest.ingredients),
        "re-stamped file has no parent ingredient",
    )
    raw_parent = raw.read(raw.sign_with_parent(signed_input))
    _check(raw_parent is not None and raw_parent.get("validation_state") == "Trusted", "raw parentOf sign not Trusted")
    _check(raw.read(stamped.data) is not None, "raw reader cannot read the stamped file")
    _check(
        stamped.soft_binding is not None and RawSdk.image_code(data) == stamped.soft_binding.value,
        "the raw Image-Code differs from the stamp's soft binding",
    )
    raw_coded = raw.read(raw.sign_with_code(data))
    _check(raw_coded is not None and raw_coded.get("validation_state") == "Trusted", "raw coded sign not Trusted")
    _check(provenance.inspect(data, trust).state is State.ABSENT, "unsigned input is not absent")

    stamped_data = stamped.data
    pairs = [
        Pair("sign", lambda: raw.sign(data), lambda: provenance.stamp(data, request, signer, trust), TARGETS["sign"]),
        Pair(
            "sign+code",
            lambda: raw.sign_with_code(data),
            lambda: provenance.stamp(data, request, signer, trust),
            TARGETS["sign+code"],
        ),
        Pair(
            "sign+parent",
            lambda: raw.sign_with_parent(signed_input),
            lambda: provenance.stamp(signed_input, request, signer, trust),
            TARGETS["sign+parent"],
        ),
        Pair(
            "read",
            lambda: raw.read(stamped_data),
            lambda: provenance.inspect(stamped_data, trust),
            TARGETS["read"],
        ),
        Pair("read-absent", lambda: raw.read(data), lambda: provenance.inspect(data, trust), None),
    ]
    files = {
        "input_bytes": len(data),
        "signed_input_bytes": len(signed_input),
        "stamped_bytes": len(stamped_data),
        "raw_signed_bytes": len(raw_signed),
    }
    return pairs, files


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "c2pa_python": c2pa.__version__,
        "c2pa_rs": c2pa.sdk_version(),
        "provenance": provenance.__version__,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


# --------------------------------------------------------------------------------------- output


def result_rows(size: str, files: dict[str, int], pairs: list[Pair]) -> list[dict[str, Any]]:
    rows = []
    for pair in pairs:
        raw = summarize(pair.raw_ns)
        ours = summarize(pair.ours_ns)
        ratio = ours["median_ms"] / raw["median_ms"]
        paired = statistics.median(o / r for o, r in zip(pair.ours_ns, pair.raw_ns, strict=True))
        rows.append(
            {
                "size": size,
                "input_bytes": files["input_bytes"],
                "op": pair.op,
                "raw": raw,
                "ours": ours,
                "ratio": ratio,
                "ratio_p90": ours["p90_ms"] / raw["p90_ms"],
                "ratio_paired_median": paired,
                "overhead_ms": ours["median_ms"] - raw["median_ms"],
                "target": pair.target,
                "within_target": None if pair.target is None else ratio <= pair.target,
            }
        )
    return rows


OURS_NAME = {"sign": "stamp", "sign+code": "stamp", "sign+parent": "stamp", "read": "inspect", "read-absent": "inspect"}

#: op -> (what ours does, the raw anchor), for the shared table (bench/table.py).
TABLE_NAMES = {
    "sign": ("stamp, {size} JPEG, unsigned upload", "raw c2pa-python sign"),
    "sign+code": (
        "stamp, {size} JPEG, unsigned upload",
        "raw ISCC Image-Code (Pillow + iscc-core) + sign with it as soft binding",
    ),
    "sign+parent": ("stamp, {size} JPEG, signed upload", "raw c2pa-python sign with parentOf ingredient"),
    "read": ("inspect, {size} JPEG, stamped file", "raw c2pa-python Reader"),
    "read-absent": ("inspect, {size} JPEG, unsigned file", "raw c2pa-python Reader (no manifest)"),
}
SIZE_NAMES = {"1MB": "1 MB", "50KB": "50 KB"}


def table_rows(rows: list[dict[str, Any]]) -> list[Row]:
    """The result rows in the shared contract: medians in ms, ratio ours/raw, aim on the ratio."""
    table = []
    for r in rows:
        what, anchor = TABLE_NAMES[r["op"]]
        aim = "" if r["target"] is None else f"≤ {r['target']:.2f}"
        table.append(
            make_row(
                "core",
                what.format(size=SIZE_NAMES[r["size"]]),
                anchor,
                r["raw"]["median_ms"],
                r["ours"]["median_ms"],
                "ms",
                aim=aim,
                ratio=r["ratio"],
            )
        )
    return table


def print_table(env: dict[str, Any], all_files: dict[str, dict[str, int]], rows: list[dict[str, Any]]) -> None:
    print(
        f"provenance {env['provenance']} vs c2pa-python {env['c2pa_python']} (c2pa-rs {env['c2pa_rs']}), "
        f"Python {env['python']}, {env['cpus']} CPUs"
    )
    for size, files in all_files.items():
        print(
            f"  {size}: input {files['input_bytes']:,} B, signed input {files['signed_input_bytes']:,} B, "
            f"stamped {files['stamped_bytes']:,} B"
        )
    print()
    header = (
        f"{'size':<5} {'operation':<12} {'ours':<8} {'raw med':>8} {'raw p90':>8} {'ours med':>9} "
        f"{'ours p90':>9} {'+ms':>6} {'ratio':>6} {'p90 r':>6} {'paired':>6} {'target':>7}  n"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        target = "-" if row["target"] is None else f"{row['target']:.2f}"
        verdict = "" if row["within_target"] is None else ("ok" if row["within_target"] else "OVER")
        print(
            f"{row['size']:<5} {row['op']:<12} {OURS_NAME[row['op']]:<8} "
            f"{row['raw']['median_ms']:8.3f} {row['raw']['p90_ms']:8.3f} "
            f"{row['ours']['median_ms']:9.3f} {row['ours']['p90_ms']:9.3f} {row['overhead_ms']:6.2f} "
            f"{row['ratio']:6.2f} {row['ratio_p90']:6.2f} {row['ratio_paired_median']:6.2f} "
            f"{target:>5} {verdict:<4} {row['raw']['n']}"
        )
    print()
    print("times in ms; ratio = ours median / raw median (the target applies to it); p90 r = ratio of p90s;")
    print("paired = median of per-iteration ours/raw ratios (raw and ours run back to back, order alternating).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--iterations",
        "-n",
        type=int,
        default=None,
        help="timed iterations per operation (default: 100 for 1MB, 200 for 50KB)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed iterations first (default 10)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="1MB and/or 50KB (aliases: big, small)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--check", action="store_true", help="exit 1 when a ratio misses its target")
    args = parser.parse_args(argv)

    sizes = []
    for name in args.sizes:
        size = SIZE_ALIASES.get(name.lower(), name)
        if size not in SIZES:
            parser.error(f"unknown size {name!r}; choose from {', '.join(SIZES)}")
        sizes.append(size)
    if args.iterations is not None and args.iterations < 1:
        parser.error("--iterations must be at least 1")

    chain = issue_chain("Bench Newsroom", Algorithm.ES256)
    trust = TrustConfig(chain.root_pem.decode("ascii"))
    signer = FileKeySigner.from_pem(chain.key_pem, chain.chain_pem)
    raw = RawSdk(chain)

    env = environment()
    all_files: dict[str, dict[str, int]] = {}
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for size in sizes:
            width, height, amplitude, seed = SIZES[size]
            data = noisy_jpeg(width, height, amplitude, seed)
            pairs, files = build_pairs(data, raw, signer, trust)
            iterations = args.iterations or DEFAULT_ITERATIONS[size]
            if not args.json:
                print(
                    f"measuring {size} ({len(data):,} B): {iterations} iterations x {len(pairs)} pairs...",
                    file=sys.stderr,
                    flush=True,
                )
            run_interleaved(pairs, iterations, args.warmup)
            all_files[size] = files
            rows.extend(result_rows(size, files, pairs))
    finally:
        raw.close()
    env["wall_seconds"] = round(time.perf_counter() - started, 2)

    if args.json:
        json.dump(
            {
                "environment": env,
                "files": all_files,
                "targets": TARGETS,
                "results": rows,
                "table": rows_json(table_rows(rows)),
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_table(env, all_files, rows)
    if args.check and any(row["within_target"] is False for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
