"""``python -m bench``: run the benchmark, print the Markdown of README's Performance section (and, with
``--details``, the detailed tables), optionally write the JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench.details import render
from bench.machine import machine
from bench.plan import FULL, QUICK, SECTIONS
from bench.report import markdown, to_json
from bench.run import run


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Delivery overhead, API requests per job and scale of imagine-bot, against two baselines.",
    )
    parser.add_argument("--quick", action="store_true", help="a scaled-down run that finishes in about four minutes")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON to PATH")
    parser.add_argument(
        "--scale-rate",
        type=float,
        metavar="N",
        help="push the scale run's interactions at N per second instead of all at once (to measure the engine "
        "with every job running when the bot cannot answer them all at once within Discord's 3 s)",
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the bot processes' logs and databases in DIR (default: discard)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only this section (repeat for several): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--skip",
        action="append",
        choices=SECTIONS,
        default=[],
        metavar="SECTION",
        help="leave this section out (repeat for several)",
    )
    parser.add_argument(
        "--details",
        action="store_true",
        help="also print the detailed fixed-width tables (every percentile, request kind and webhook count)",
    )
    return parser


def chosen_sections(only: Sequence[str] | None, skip: Sequence[str]) -> tuple[str, ...]:
    """The sections to run, in :data:`~bench.plan.SECTIONS` order: ``only`` (default: all) less ``skip``."""
    return tuple(section for section in SECTIONS if (not only or section in only) and section not in skip)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.scale_rate:
        extra = plan.scale_jobs / args.scale_rate
        plan = replace(plan, scale_push_rate=args.scale_rate, scale_timeout=plan.scale_timeout + extra)
    sections = chosen_sections(args.only, args.skip)
    if not sections:
        print("error: --only and --skip leave nothing to run", file=sys.stderr)
        return 2
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    info = machine()
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as scratch:
        workdir = args.keep or Path(scratch)
        results = asyncio.run(run(plan, workdir, sections=sections))
    print(markdown(results, info))
    if args.details:
        print()
        print(render(results, info))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(results, info, started_at), indent=2) + "\n")
        print(f"\nJSON written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
