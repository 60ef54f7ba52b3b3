"""The process's log output: one line per record, as text or as JSON, with secrets masked.

With ``LOG_FORMAT=json`` every line on standard output and standard error is
one JSON object: the root handler formats records with :class:`JsonFormatter`,
and ``sys.stdout``/``sys.stderr`` are replaced by :class:`LineLogger` streams,
so that stray ``print`` calls, warnings and uncaught tracebacks become records
too rather than bare text lines in a log collector.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
MASK = "********"

# Interaction tokens travel in webhook and callback URLs, which discord.py logs at DEBUG.
_INTERACTION_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]{20,}")
# A server's API key arrives in its form's submit, which discord.py logs at DEBUG before the bot reads it.
# Every value of a record that names the form is masked, wherever it sits and whatever quotes it holds.
_KEY_FORM_ID = "imagine:apikey-form"
_FORM_VALUE = re.compile(r"""(['"]value['"]\s*:\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_PLAIN = logging.Formatter()
_LOADED: set[str] = set()
"""Secrets learnt while running (a server's own API key): masked by every :class:`RedactSecrets` too."""


def mask_secret(secret: str) -> None:
    """Mask ``secret`` in every log line from now on (a secret loaded after start-up, e.g. a server's API key)."""
    if len(secret) >= 4 and len(_LOADED) < 100_000:
        _LOADED.add(secret)


class RedactSecrets(logging.Filter):
    """Masks secret values in every record, whichever library logged them: a last line of defence.

    The traceback and stack of a record are masked too (exception messages
    can quote URLs), so either formatter prints only what this filter left.
    """

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if len(secret) >= 4]

    def redact(self, text: str) -> str:
        """``text`` with every secret and interaction token masked."""
        text = _INTERACTION_TOKEN.sub(rf"\1{MASK}", text)
        if _KEY_FORM_ID in text:
            text = _FORM_VALUE.sub(rf"\1'{MASK}'", text)
        for secret in (*self._secrets, *_LOADED):
            text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the masked text is what gets printed.
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message``, and ``exception``/``stack``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ASCII only: the line stays one valid line whatever the stream's encoding.
        return json.dumps(entry, default=str)


class ThrottledLog:
    """A warning that anyone on the network can cause, logged at most once per ``interval`` seconds.

    The lines held back are counted in the next one, so the log still says how often it happens.
    """

    def __init__(
        self, logger: logging.Logger, *, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        """Log ``message % args`` at WARNING, unless one was logged less than ``interval`` seconds ago."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            self._held += 1
            return
        if self._held:
            message += f" (and {self._held} more like it since the last such line)"
        self._last, self._held = now, 0
        self._logger.warning(message, *args)


class LineLogger(io.TextIOBase):
    """A text stream standing in for ``sys.stdout``/``sys.stderr``: each line written becomes one record.

    The records go straight to ``handler`` (not through a logger), so the log
    level never hides what the program meant to print.
    """

    encoding = "utf-8"  # any text may be written: the records come out as ASCII JSON

    def __init__(self, name: str, level: int, handler: logging.Handler) -> None:
        super().__init__()
        self.name = name
        self._level = level
        self._handler = handler
        self._partial = ""
        self._lock = threading.Lock()

    @property
    def handler(self) -> logging.Handler:
        """Where the lines go."""
        return self._handler

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        """The real stream's descriptor, for the few who write below Python (``faulthandler``)."""
        handler = self._handler
        assert isinstance(handler, logging.StreamHandler)
        return int(handler.stream.fileno())

    def write(self, text: str) -> int:
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        """Lines are written whole, so there is never anything to push out early."""

    def _emit(self, line: str) -> None:
        record = logging.LogRecord(self.name, self._level, "", 0, line.rstrip("\r"), None, None)
        self._handler.handle(record)


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, value, tb))


def _original(stream: TextIO) -> TextIO:
    """The real stream under any :class:`LineLogger` a previous call installed."""
    while isinstance(stream, LineLogger):
        handler = stream.handler
        assert isinstance(handler, logging.StreamHandler)
        stream = handler.stream
    return stream


def configure_logging(level: str, *, log_format: str = "text", secrets: Sequence[str] = ()) -> None:
    """Log to stderr at ``level``, as ``text`` or ``json`` lines, ``secrets`` masked wherever they appear.

    May be called again (the CLI calls it before settings are known, to report
    their problems in the right format): it replaces what it installed before.
    """
    fmt = log_format
    masked = list(secrets)
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)
    redact = RedactSecrets(masked)

    def handler_for(stream: TextIO) -> logging.Handler:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(redact)
        return handler

    stdout, stderr = _original(sys.stdout), _original(sys.stderr)
    root_handler = handler_for(stderr)
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=[root_handler], force=True)
    json_lines = fmt == "json"
    if json_lines:
        sys.stdout = LineLogger("stdout", logging.INFO, handler_for(stdout))
        sys.stderr = LineLogger("stderr", logging.ERROR, root_handler)
        sys.excepthook = _log_uncaught
    else:
        sys.stdout, sys.stderr = stdout, stderr
        if sys.excepthook is _log_uncaught:
            sys.excepthook = sys.__excepthook__
    logging.captureWarnings(json_lines)
