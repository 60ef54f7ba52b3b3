"""The command line: ``run`` (the bot), ``imagine`` (one prompt's generations, no Discord), ``sync``, ``usage`` and
``migrate``.

Exit status: 0 on success, 1 when a prediction fails or the API refuses it,
2 on bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from bot.api.inputs import ASPECT_RATIOS, ImagineOptions
from bot.api.modelref import InvalidModelRef, ModelRef
from bot.api.prompts import PermutationError, expand_prompt
from bot.api.safety import Checker
from bot.base.clock import SystemClock
from bot.base.errors import ImagineError, Refusal
from bot.base.logs import configure_logging
from bot.core import Core
from bot.jobs.handles import Job
from bot.jobs.model import JobState, JobView
from bot.moderation.usage import DEFAULT_DAYS, MAX_DAYS, check_days, report_tables, report_title, usage_report
from bot.moderation.usage_chart import usage_chart_png
from bot.settings import Settings, SettingsError, database_password, load_database_url, load_environment, load_settings
from bot.storage import StorageError, migrate, open_repository
from bot.storage.common import check_id
from bot.storage.urls import mask_url

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


LABEL_PROMPT_CLIP = 40
"""Characters of a job's prompt in the label of its lines, when one command runs several jobs."""


def job_label(number: int, total: int, prompt: str) -> str:
    """What starts each line of job ``number`` of ``total``: ``[2/4 a blue fox] ``; nothing for a lone job."""
    if total == 1:
        return ""
    prompt = " ".join(prompt.split())
    clipped = prompt if len(prompt) <= LABEL_PROMPT_CLIP else prompt[: LABEL_PROMPT_CLIP - 1] + "…"
    return f"[{number}/{total} {clipped}] "


class TerminalPresenter:
    """Prints each status change of a job, with progress where known; each line after the job's ``label``."""

    def __init__(self, out: TextIO | None = None, *, label: str = "") -> None:
        self._out = out or sys.stdout
        self._last: tuple[Any, ...] | None = None
        self.label = label

    def say(self, text: str) -> None:
        """Print one line of this job's."""
        print(self.label + text, file=self._out, flush=True)

    def line(self, view: JobView) -> str:
        """One line describing ``view``."""
        state = view.state
        if state is JobState.QUEUED:
            return f"queued (position {view.queue_position})" if view.queue_position else "queued"
        if state is JobState.STARTING:
            return "starting" + (f" (prediction {view.prediction_id})" if view.prediction_id else "")
        if state is JobState.PROCESSING:
            if view.progress is not None:
                p = view.progress
                return f"processing {round(p.fraction * 100)}% ({p.current}/{p.total})"
            return "processing"
        if state is JobState.SUCCEEDED:
            details = [f"{len(view.images)} image{'s' if len(view.images) != 1 else ''}"]
            if view.seed is not None:
                details.append(f"seed {view.seed}")
            if view.predict_time is not None:
                details.append(f"model time {view.predict_time:.1f}s")
            if view.elapsed is not None:
                details.append(f"total {view.elapsed:.1f}s")
            return "succeeded: " + ", ".join(details)
        if state is JobState.CANCELED:
            return "canceled" + (f": {view.error}" if view.error else "")
        if state is JobState.TIMED_OUT:
            return f"timed out: {view.error or 'the prediction ran too long'}"
        return f"failed: {view.error or 'no reason given'}"

    async def close(self) -> None:
        """Nothing to release."""

    async def show(self, view: JobView) -> None:
        """Print ``view`` if it says something new."""
        percent = round(view.progress.fraction * 100) if view.progress else None
        key = (view.state, view.queue_position, percent, view.prediction_id)
        if key == self._last:
            return
        self._last = key
        self.say(self.line(view))
        if view.terminal:
            for note in view.notes:
                self.say(f"note: {note}")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _count(text: str) -> int:
    value = _non_negative(text)
    if not 1 <= value <= 4:
        raise argparse.ArgumentTypeError(f"must be between 1 and 4, got {value}")
    return value


def _days(text: str) -> int:
    try:
        return check_days(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_DAYS}, got {text!r}") from None


def _guild_id(text: str) -> int:
    try:
        return check_id("a server id", _non_negative(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m bot`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="imagine-bot", description="A Discord bot that turns /imagine into images from a prediction API."
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,imagine,sync,usage,migrate}")
    commands.add_parser("run", help="start the bot (the default)")

    imagine = commands.add_parser("imagine", help="run one prompt's generations through the /imagine pipeline")
    imagine.add_argument(
        "prompt",
        help="what to draw; may end with --ar W:H, --seed N, --no TEXT (the options above win); {a, b} makes one "
        "job per option and --repeat N runs it N times (at most IMAGINE_MAX_PERMUTATIONS jobs)",
    )
    imagine.add_argument("--model", help="owner/name or owner/name:version (default: IMAGINE_DEFAULT_MODEL)")
    imagine.add_argument("--aspect-ratio", choices=ASPECT_RATIOS, metavar="R", help=", ".join(ASPECT_RATIOS))
    imagine.add_argument("--count", type=_count, metavar="N", help="number of images, 1-4")
    imagine.add_argument("--seed", type=_non_negative, metavar="S")
    imagine.add_argument(
        "--input", type=_key_value, action="append", default=[], metavar="KEY=VALUE", help="any other model input"
    )
    imagine.add_argument("--out", type=Path, default=Path("."), metavar="DIR", help="where to save images")

    sync = commands.add_parser("sync", help="register the slash commands with Discord")
    sync.add_argument("--guild", type=int, metavar="ID", help="sync to one guild only (instant)")

    usage = commands.add_parser(
        "usage", help="a server's jobs, predictions, images, failures and spend (reads DATABASE_URL)"
    )
    usage.add_argument("--guild", type=_guild_id, required=True, metavar="ID", help="the server's id")
    usage.add_argument(
        "--days", type=_days, default=DEFAULT_DAYS, metavar="N", help=f"the last N days, 1-{MAX_DAYS} (default 30)"
    )
    usage.add_argument("--chart", type=Path, metavar="FILE", help="also write the chart (PNG) to FILE")

    commands.add_parser("migrate", help="apply the database migrations to DATABASE_URL and exit")
    return parser


def _settings(*, require_discord: bool = False, require_replicate: bool = True) -> Settings | int:
    try:
        settings = load_settings(require_discord=require_discord, require_replicate=require_replicate)
    except SettingsError as exc:
        if (os.environ.get("LOG_FORMAT") or "").strip().lower() == "json":
            configure_logging("INFO", log_format="json")  # so even these lines reach a log collector as JSON
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, log_format=settings.log_format, secrets=settings.secrets())
    return settings


async def imagine(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the jobs of one prompt like ``/imagine`` (each ``{a, b}`` combination, each ``--repeat``) and save
    their images under ``args.out``.

    The set is checked whole first: past ``IMAGINE_MAX_PERMUTATIONS``, or with any job's options refused,
    none runs (exit 2). Each job's lines are labelled with its number and prompt; exit 1 if any job fails.
    """
    try:
        model = ModelRef.parse(args.model) if args.model else settings.default_model
    except InvalidModelRef as exc:
        print(f"error: --model: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        prompts = expand_prompt(args.prompt, limit=settings.max_permutations)
    except PermutationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    options = ImagineOptions(
        prompt=args.prompt, aspect_ratio=args.aspect_ratio, count=args.count, seed=args.seed, extra=dict(args.input)
    )
    presenters = [TerminalPresenter(out, label=job_label(n, len(prompts), p)) for n, p in enumerate(prompts, 1)]
    try:
        core = await Core.open(settings)
    except StorageError as exc:
        print(f"error: DATABASE_URL: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        requests = []
        for prompt, presenter in zip(prompts, presenters, strict=True):
            try:
                # The owner's own --input values pass as given; no other safety input turns the checker off.
                request = await core.engine.prepare(model, replace(options, prompt=prompt), checker=Checker.OWNER)
                requests.append(request)
            except Refusal as exc:
                print(f"error: {presenter.label}{exc}", file=sys.stderr)
                return EXIT_USAGE
        if len(prompts) > 1:
            listed = (f"  {number}. {prompt}" for number, prompt in enumerate(prompts, 1))
            print(f"{len(prompts)} jobs:", *listed, sep="\n", file=out or sys.stdout, flush=True)
        jobs = [await core.engine.submit(job, shown) for job, shown in zip(requests, presenters, strict=True)]
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, lambda: [asyncio.ensure_future(job.cancel()) for job in jobs])

        async def saved(job: Job, presenter: TerminalPresenter) -> bool:  # each job's files as soon as it ends
            return _save(await job.wait(), args.out, presenter)

        done = await asyncio.gather(*(saved(job, shown) for job, shown in zip(jobs, presenters, strict=True)))
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
        return EXIT_OK if all(done) else EXIT_FAILED
    finally:
        await core.close()


def _save(view: JobView, folder: Path, presenter: TerminalPresenter) -> bool:
    """Write a succeeded job's images into ``folder``, saying where; ``False`` if the job failed or they could not."""
    if view.state is not JobState.SUCCEEDED:
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for image in view.images:
            path = folder / image.filename
            path.write_bytes(image.data)
            presenter.say(f"saved {path}")
    except OSError as exc:
        print(f"error: {presenter.label}could not save to {folder}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def _database_url() -> str | int:
    """``DATABASE_URL`` alone (the database commands need no token), logging set up to hide its password."""
    try:
        url = load_database_url()
    except SettingsError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    password = database_password(url)
    configure_logging("WARNING", secrets=[password] if password else [])
    return url


def _storage_problem(exc: StorageError) -> int:
    reason = " ".join(str(exc).split())  # one line, whatever the driver's message looked like
    print(f"error: DATABASE_URL: {mask_url(reason)}", file=sys.stderr)
    return EXIT_USAGE


def print_usage(guild_id: int, days: int, out: TextIO | None = None, *, chart: Path | None = None) -> int:
    """``python -m bot usage``: the figures of ``/imagine-admin usage``, for an owner; reads only ``DATABASE_URL``.

    ``chart``: also write the chart ``/imagine-admin usage`` attaches there (a PNG; one saying so when the
    period has no job).
    """
    url = _database_url()
    if isinstance(url, int):
        return url

    async def report() -> bytes | None:
        repository = await open_repository(url)
        try:
            found = await usage_report(repository, guild_id, days=days, now=SystemClock().now())
        finally:
            await repository.close()
        write = out or sys.stdout
        print(f"Server {guild_id}: {report_title(found)}", file=write)
        for title, lines in report_tables(found, member_name=lambda member: str(member or "unknown")).items():
            print(f"\n{title}", file=write)
            for line in lines:
                print(f"  {line}", file=write)
        return None if chart is None else await usage_chart_png(found, locale=None)

    try:
        png = asyncio.run(report())
    except StorageError as exc:
        return _storage_problem(exc)
    if chart is not None and png is not None:
        try:
            chart.write_bytes(png)
        except OSError as exc:
            print(f"error: --chart: could not write {chart}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"\nChart written to {chart}", file=out or sys.stdout)
    return EXIT_OK


def migrate_database() -> int:
    """``python -m bot migrate``: bring ``DATABASE_URL``'s schema up to date; reads no other setting.

    Exit 0 when the schema is current, 2 (one line, password masked) when the
    URL is malformed or the database cannot be reached or used.
    """
    url = _database_url()
    if isinstance(url, int):
        return url
    try:
        applied = asyncio.run(migrate(url))
    except StorageError as exc:
        return _storage_problem(exc)
    where = mask_url(url)
    if applied:
        print(f"{where}: applied migration{'s' if len(applied) > 1 else ''} {', '.join(map(str, applied))}")
    else:
        print(f"{where}: already up to date")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bot`` and the ``imagine-bot`` script."""
    args = build_parser().parse_args(argv)
    load_environment()
    command = args.command or "run"
    if command == "migrate":
        return migrate_database()
    if command == "usage":
        return print_usage(args.guild, args.days, chart=args.chart)
    if command == "imagine":
        settings = _settings(require_replicate=True)
        if isinstance(settings, int):
            return settings
        try:
            return asyncio.run(imagine(settings, args))
        except ImagineError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            return EXIT_FAILED

    from bot.discord_app.runner import run_bot, sync_commands  # only the Discord commands need discord.py

    settings = _settings(require_discord=True, require_replicate=command == "run")
    if isinstance(settings, int):
        return settings
    if command == "sync":
        return asyncio.run(sync_commands(settings, args.guild))
    try:
        return asyncio.run(run_bot(settings))
    except KeyboardInterrupt:
        return EXIT_OK
