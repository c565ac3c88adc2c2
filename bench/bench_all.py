"""Every benchmark in one table: each script run with ``--json``, its ``"table"`` rows printed together.

Run from the project root (``make bench``, ``make bench-readme``)::

    .venv/bin/python bench/bench_all.py                         # every benchmark, its default options
    .venv/bin/python bench/bench_all.py --quick                 # small iteration counts, short runs
    .venv/bin/python bench/bench_all.py --only core,articles --core-args "--iterations 50"
    .venv/bin/python bench/bench_all.py --json                  # the combined rows as JSON
    .venv/bin/python bench/bench_all.py --readme README.md      # and rewrite README's generated block

The scripts run one after the other, in the order of ``SCRIPTS``, each as its own process (so one cannot
warm or slow the next through shared state) with ``--json``, the ``--quick`` options if asked, then the
options given with ``--NAME-args``. Their rows follow the contract of ``bench/table.py``. The table is
preceded by one line stating the machine and the load (the 1-minute load average before and after).

A script that fails (a non-zero exit, output that is not JSON, rows off the contract, a tool it needs
missing from PATH) is reported as a line with its exit code and the tail of its stderr; the others still
run, and the exit status is 1. A script whose JSON has no ``"table"`` yet is reported as having no rows,
which is not a failure. ``--readme`` replaces what stands between the marker lines ``BEGIN`` and ``END``
(checked before anything runs: exit 2 when they are missing).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for entry in (str(ROOT), str(BENCH)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from table import Row, TableError, markdown, parse_rows, rows_json  # noqa: E402

from provenance.keys.files import write_file  # noqa: E402

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
STDERR_TAIL = 5  # lines of a failed script's stderr in its failure line


@dataclass(frozen=True)
class Script:
    """One benchmark script: its short name (the rows' ``benchmark``), what ``--quick`` passes, what it needs."""

    name: str
    quick: tuple[str, ...]
    tools: tuple[str, ...] = ()  # commands it needs on PATH

    @property
    def path(self) -> Path:
        return BENCH / f"bench_{self.name}.py"


SCRIPTS = (
    Script("core", ("--iterations", "5", "--warmup", "1")),
    Script("articles", ("--iterations", "5")),
    Script("isolation", ("--iterations", "5", "--warmup", "1")),
    Script("hostile", ("--count", "100", "--raw-timeout", "5")),
    Script(
        "service",
        ("--duration", "1", "--warmup", "0", "--workers", "1", "--uploads", "2", "--no-reference", "--quiet-wait", "5"),
        tools=("wrk", "nginx"),
    ),
)
BY_NAME = {script.name: script for script in SCRIPTS}


@dataclass
class Outcome:
    """What one script gave: its rows, or why it gave none."""

    benchmark: str
    status: str = "ok"  # "ok", "no table rows", "failed"
    detail: str = ""  # why it failed (or has no rows)
    exit_code: int | None = None
    stderr_tail: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    def line(self) -> str | None:
        """The line reported in place of rows (None when the script gave rows)."""
        if self.status == "ok":
            return None
        text = f"**{self.benchmark}**: {self.status}"
        if self.detail:
            text += f" ({self.detail})"
        if self.stderr_tail:
            text += "; stderr: " + " / ".join(self.stderr_tail)
        return text


def run_script(script: Script, options: list[str]) -> Outcome:
    """Run one benchmark with ``--json`` and ``options``, echoing its stderr; never raises for its failures."""
    outcome = Outcome(script.name)
    missing = [tool for tool in script.tools if shutil.which(tool) is None]
    if missing:
        outcome.status, outcome.detail = "failed", f"{', '.join(missing)} not on PATH"
        return outcome
    argv = [sys.executable, str(script.path), "--json", *options]
    print(f"[{script.name}] {shlex.join(argv[1:])}", file=sys.stderr, flush=True)
    tail: deque[str] = deque(maxlen=STDERR_TAIL)
    started = time.perf_counter()
    # stdout to a file, stderr read line by line here: neither pipe can fill up and stall the script.
    with tempfile.TemporaryFile("w+") as stdout:
        child = subprocess.Popen(argv, cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True)
        assert child.stderr is not None
        with child.stderr:
            for line in child.stderr:
                print(f"[{script.name}] {line}", end="", file=sys.stderr, flush=True)
                if line.strip():
                    tail.append(line.strip()[:200])
        outcome.exit_code = child.wait()
        stdout.seek(0)
        output = stdout.read()
    outcome.seconds = round(time.perf_counter() - started, 1)
    if outcome.exit_code != 0:
        outcome.status, outcome.detail, outcome.stderr_tail = "failed", f"exit {outcome.exit_code}", list(tail)
        return outcome
    try:
        data = json.loads(output)
        if not isinstance(data, dict):
            raise TableError("its JSON is not an object")
        if "table" not in data:
            outcome.status, outcome.detail = "no table rows", 'its JSON has no "table" key'
            return outcome
        outcome.rows = parse_rows(data["table"])
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError and TableError are ValueErrors
        outcome.status, outcome.detail = "failed", f"output off the contract: {exc}"
        return outcome
    if not outcome.rows:
        outcome.status, outcome.detail = "no table rows", '"table" is empty'
    return outcome


# ------------------------------------------------------------------------------------ machine and load


def _proc_lines(name: str) -> list[str]:
    try:
        return Path("/proc", name).read_text().splitlines()
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """The CPU model and count (``/proc/cpuinfo``), memory, kernel, Python and c2pa-python versions."""
    models = [line.split(":", 1)[1].strip() for line in _proc_lines("cpuinfo") if line.startswith("model name")]
    kib = [int(line.split()[1]) for line in _proc_lines("meminfo") if line.startswith("MemTotal:")]
    try:
        c2pa_python = importlib.metadata.version("c2pa-python")
    except importlib.metadata.PackageNotFoundError:
        c2pa_python = "not installed"
    return {
        "cpu": models[0] if models else (platform.processor() or "unknown CPU"),
        "cpus": len(models) or os.cpu_count(),
        "memory_gib": round(kib[0] / 2**20, 1) if kib else None,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "c2pa_python": c2pa_python,
    }


def context_line(env: dict[str, Any], load: dict[str, Any], command: str) -> str:
    """The one line that says where and when the table was measured."""
    memory = "unknown memory" if env["memory_gib"] is None else f"{env['memory_gib']} GiB RAM"
    return (
        f"Measured {load['date']} by `{command}` on {env['cpus']} CPUs ({env['cpu']}), {memory}, {env['kernel']}, "
        f"Python {env['python']}, c2pa-python {env['c2pa_python']}; 1-minute load average "
        f"{load['before']:.2f} before, {load['after']:.2f} after ({load['seconds']:.0f} s)."
    )


# ---------------------------------------------------------------------------------------------- README


class ReadmeError(Exception):
    """The README cannot take the generated block (its markers are missing, repeated or out of order)."""


def _marker_lines(lines: list[str], path: Path) -> tuple[int, int]:
    found = {marker: [i for i, line in enumerate(lines) if line.strip() == marker] for marker in (BEGIN, END)}
    for marker, where in found.items():
        if len(where) != 1:
            raise ReadmeError(f"{path}: expected one line {marker!r}, found {len(where)}")
    begin, end = found[BEGIN][0], found[END][0]
    if begin > end:
        raise ReadmeError(f"{path}: {BEGIN!r} comes after {END!r}")
    return begin, end


def check_readme(path: Path) -> None:
    """Raise :class:`ReadmeError` unless ``path`` can be rewritten (readable, with its two markers)."""
    try:
        _marker_lines(path.read_text().splitlines(), path)
    except OSError as exc:
        raise ReadmeError(f"{path}: {exc.strerror}") from None


def rewrite_readme(path: Path, block: str) -> None:
    """Replace what stands between the markers of ``path`` by ``block`` (the markers stay); atomic."""
    lines = path.read_text().splitlines(keepends=True)
    begin, end = _marker_lines([line.rstrip("\n") for line in lines], path)
    text = "".join([*lines[: begin + 1], "\n", block, "\n\n", *lines[end:]])
    write_file(path, text.encode(), stat.S_IMODE(path.stat().st_mode))


# ------------------------------------------------------------------------------------------------ main


def _selection(text: str) -> list[Script]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BY_NAME]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(BY_NAME)} (got {text!r})")
    return [script for script in SCRIPTS if script.name in names]  # always in SCRIPTS' order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", type=_selection, default=list(SCRIPTS), metavar="NAMES", help=f"comma-separated: {','.join(BY_NAME)}"
    )
    parser.add_argument("--quick", action="store_true", help="small iteration counts and short runs (a smoke run)")
    for script in SCRIPTS:
        parser.add_argument(
            f"--{script.name}-args",
            default="",
            metavar="ARGS",
            help=f"more options for {script.path.name} (after --quick's: {' '.join(script.quick)})",
        )
    parser.add_argument("--json", action="store_true", help="print the combined rows as JSON instead of a table")
    parser.add_argument("--readme", type=Path, metavar="PATH", help=f"also rewrite PATH between {BEGIN} and {END}")
    args = parser.parse_args(argv)
    if args.readme is not None:
        try:
            check_readme(args.readme)
        except ReadmeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    env = machine()
    load_before, started = os.getloadavg()[0], time.perf_counter()
    date = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    outcomes = []
    for script in args.only:
        options = [*(script.quick if args.quick else ()), *shlex.split(getattr(args, f"{script.name}_args"))]
        outcomes.append(run_script(script, options))
    load = {
        "date": date,
        "before": load_before,
        "after": os.getloadavg()[0],
        "seconds": time.perf_counter() - started,
    }
    command = shlex.join(["bench/bench_all.py", *(sys.argv[1:] if argv is None else argv)])
    rows = [r for outcome in outcomes for r in outcome.rows]
    lines = [line for outcome in outcomes if (line := outcome.line()) is not None]
    table = markdown(rows) if rows else "No table rows."
    block = "\n".join([context_line(env, load, command), "", table, *(["", *lines] if lines else [])])

    if args.json:
        scripts = [{k: v for k, v in asdict(o).items() if k != "rows"} for o in outcomes]
        combined = {"machine": env, "load": load, "command": command, "scripts": scripts, "table": rows_json(rows)}
        json.dump(combined, sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print(block)
    if args.readme is not None:
        rewrite_readme(args.readme, block)
        print(f"rewrote {args.readme} between {BEGIN} and {END}", file=sys.stderr)
    return 1 if any(outcome.failed for outcome in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
