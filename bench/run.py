"""`make bench`: every target of SPEC §8, each beside its baseline from the same run.

    python bench/run.py [--only ingest,api,...] [--size small|default|large] [--runs N]

Runs in a database of its own (`<name>_bench`, recreated; `--database` names another),
never the dev data, and prints one Markdown table: each figure, its baseline, the ratio,
the target, whether it is met, and the load average when it was measured (other work on
the machine moves every figure). `bench/results.json` (git-ignored) gets every figure,
the core count, the commit and the options, so that runs can be compared.

A benchmark is one module under `bench/` with one function, registered below with one
line (`Benchmark(name, "bench.module:function")`). The function:

- is called with Django set up on the migrated bench database, emptied of what earlier
  benchmarks wrote (`flush`); the Kafka, Redis and database URLs are in the environment;
- receives the keyword arguments it declares among `size` ("small", "default" or
  "large": how much data to measure on) and `runs` (how many times to repeat a whole
  measurement, for a median);
- returns a list of rows, each a dict with `measure` and either
  `ours`, `baseline`, `ratio`, `target`, `met` (text, text, number or None, text, bool or
  None; optionally `load` and a `figures` dict of raw numbers for results.json), or the
  millisecond form (lower is better): `ours_ms` (or `median_ms`, with `p95_ms`), and
  where there is one `baseline_ms` with `baseline` (what it measured) and `target_ms`.

A registered module that does not exist yet is left out of the table, and said so.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Benchmark:
    name: str
    target: str  # "bench.module:function"


BENCHMARKS = [
    Benchmark("ingest", "bench.ingest:ingest_bench"),
    Benchmark("api", "bench.api:api_bench"),
    Benchmark("batch", "bench.batch:batch_bench"),
    Benchmark("history", "bench.history:history_bench"),
    Benchmark("predictions", "bench.predictions:predictions_bench"),
    Benchmark("recommendations", "bench.recommendations:recommendations_bench"),
]


def bench_database(url: str, name: str | None, *, suffix: str = "") -> str:
    """Recreate the bench database next to the configured one (`<db>_bench<suffix>` unless
    named); return its URL."""
    parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
    name = name or f"{parts.path.lstrip('/') or 'mastery'}_bench{suffix}"
    with psycopg.connect(urlunsplit(parts), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mastery_project.settings.local")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"  # as in production: no per-query debug bookkeeping
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def normalized(row: dict) -> dict:
    """A row in the general form; the millisecond form is converted (lower is better)."""
    if "ours_ms" not in row and "median_ms" not in row:
        return {"load": None, "figures": {}, **row}
    ours = row.get("ours_ms", row.get("median_ms"))
    base, target = row.get("baseline_ms"), row.get("target_ms")
    text = f"{ours:.1f} ms" + (f", p95 {row['p95_ms']:.1f} ms" if "p95_ms" in row else "")
    return {
        "measure": row["measure"],
        "ours": text,
        "baseline": "—" if base is None else f"{base:.1f} ms ({row.get('baseline', '')})",
        "ratio": ours / base if base else None,
        "target": "—" if target is None else f"< {target:,} ms",
        "met": None if target is None else ours < target,
        "load": row.get("load"),
        "figures": {k: v for k, v in row.items() if isinstance(v, int | float)},
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| measure | ours | baseline (same run) | ratio | target | met | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
        met = {True: "yes", False: "**no**", None: "—"}[row["met"]]
        load = "—" if row.get("load") is None else f"{row['load']:.1f}"
        lines.append(
            f"| {row['measure']} | {row['ours']} | {row['baseline']} | {ratio}"
            f" | {row['target']} | {met} | {load} |"
        )
    return "\n".join(lines)


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "HEAD") or "unknown"
    return f"{head}-dirty" if git("status", "--porcelain", "--untracked-files=no") else head


def flush() -> None:
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


def run_one(benchmark: Benchmark, options: dict) -> tuple[list[dict], str | None]:
    """The benchmark's rows, or why it has none."""
    module_name, function_name = benchmark.target.split(":")
    if not (ROOT / Path(*module_name.split("."))).with_suffix(".py").exists():
        return [], f"{module_name.replace('.', '/')}.py does not exist yet"
    function = getattr(importlib.import_module(module_name), function_name)
    accepted = inspect.signature(function).parameters
    flush()
    at_start = os.getloadavg()[0]
    rows = [
        normalized(row) for row in function(**{k: v for k, v in options.items() if k in accepted})
    ]
    for row in rows:
        if row.get("load") is None:
            row["load"] = at_start
    return rows, None


def main() -> None:
    names = [b.name for b in BENCHMARKS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(names), help=f"comma-separated subset of {', '.join(names)}"
    )
    parser.add_argument("--size", choices=("small", "default", "large"), default="default")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each figure")
    parser.add_argument("--database", help="bench database name (default: <name>_bench)")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    setup_django(bench_database(os.environ["DATABASE_URL"], args.database))
    options = {"size": args.size, "runs": args.runs}
    started = datetime.now(UTC)
    rows: list[dict] = []
    skipped: dict[str, str] = {}
    for benchmark in BENCHMARKS:
        if benchmark.name not in chosen:
            continue
        print(f"\n== {benchmark.name} (load {os.getloadavg()[0]:.1f})", flush=True)
        began = time.monotonic()
        try:
            found, reason = run_one(benchmark, options)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            found, reason = [], f"failed: {type(exc).__name__}: {exc}"
        if reason:
            skipped[benchmark.name] = reason
            print(f"{benchmark.name}: {reason}", flush=True)
        for row in found:
            row["benchmark"] = benchmark.name
        rows.extend(found)
        print(f"({benchmark.name}: {time.monotonic() - began:.0f} s)", flush=True)

    print()
    print(table(rows))
    for name, reason in skipped.items():
        print(f"\n{name}: not measured ({reason})")
    cores = os.cpu_count()
    print(f"\n({cores} cores; size {args.size}; median of {args.runs} runs where repeated;")
    print(f" load = 1-minute load average when measured; commit {commit()[:12]})")
    RESULTS.write_bytes(
        orjson.dumps(
            {
                "commit": commit(),
                "cores": cores,
                "started_at": started,
                "finished_at": datetime.now(UTC),
                "options": {**options, "only": chosen},
                "rows": rows,
                "skipped": skipped,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    print(f"figures written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
