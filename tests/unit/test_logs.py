"""Log output: the JSON formatter, secret masking in both formats, and stray lines turned into records."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from bot.base.logs import TEXT_FORMAT, JsonFormatter, LineLogger, RedactSecrets, ThrottledLog

SECRET = "r8_SECRET_abc123"
INTERACTION_URL = "/webhooks/123456/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDp0b2tlbg"


def record(message: str, *args: object, exc: bool = False, name: str = "discord.http") -> logging.LogRecord:
    """A record as ``logger.error(message, *args)`` (inside an ``except`` block if ``exc``) would make."""
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"request to {INTERACTION_URL} failed with token {SECRET}")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args or None, exc_info)


def emit(formatter: logging.Formatter, *records: logging.LogRecord) -> str:
    """What a handler with ``formatter`` and the redaction filter writes for ``records``."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets([SECRET]))
    for item in records:
        handler.handle(item)
    return stream.getvalue()


def test_json_line_has_the_required_fields() -> None:
    (line,) = emit(JsonFormatter(), record("job %s failed", "abc")).splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "discord.http"
    assert entry["message"] == "job abc failed"
    assert entry["time"].endswith("+00:00")
    assert "exception" not in entry


def test_json_traceback_is_one_line_and_a_field() -> None:
    output = emit(JsonFormatter(), record("it broke", exc=True))
    (line,) = output.splitlines()
    entry = json.loads(line)
    assert entry["message"] == "it broke"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError" in entry["exception"]


def test_json_stack_info_is_a_field() -> None:
    item = record("where am I")
    item.stack_info = "Stack (most recent call last):\n  File x"
    entry = json.loads(emit(JsonFormatter(), item))
    assert entry["stack"].startswith("Stack")


def test_json_line_is_ascii_and_survives_newlines_and_quotes() -> None:
    (line,) = emit(JsonFormatter(), record('a "quoted"\nprompt: ｃａｔ 🦊')).splitlines()
    assert line.isascii()
    assert json.loads(line)["message"] == 'a "quoted"\nprompt: ｃａｔ 🦊'


@pytest.mark.parametrize("formatter", [JsonFormatter(), logging.Formatter(TEXT_FORMAT)], ids=["json", "text"])
def test_secrets_masked_in_message_args_and_traceback(formatter: logging.Formatter) -> None:
    output = emit(
        formatter,
        record("token %s in %s", SECRET, f"https://discord.test/api/v10{INTERACTION_URL}/messages/@original"),
        record("failed", exc=True),
    )
    assert SECRET not in output
    assert "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDp0b2tlbg" not in output
    assert "/webhooks/123456/********" in output
    assert "RuntimeError" in output


def test_line_logger_turns_each_printed_line_into_one_json_record() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets([SECRET]))
    out = LineLogger("stderr", logging.ERROR, handler)
    print("error: LOG_LEVEL: must be one of ...", file=out)
    out.write("two\nlines, the second ")
    assert len(stream.getvalue().splitlines()) == 2  # an unfinished line waits for its end
    out.write(f"finished with {SECRET}\n")
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["message"] for e in entries] == [
        "error: LOG_LEVEL: must be one of ...",
        "two",
        "lines, the second finished with ********",
    ]
    assert {e["logger"] for e in entries} == {"stderr"}
    assert {e["level"] for e in entries} == {"ERROR"}


def test_a_throttled_warning_is_logged_once_per_interval_with_the_count_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("bot.test"), interval=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="bot.test")
    for second in range(0, 130, 5):  # 26 refusals over two minutes
        now[0] = float(second)
        throttled.warning("refused a webhook: %s", "bad signature")
    assert [r.getMessage() for r in caplog.records] == [
        "refused a webhook: bad signature",
        "refused a webhook: bad signature (and 11 more like it since the last such line)",
        "refused a webhook: bad signature (and 11 more like it since the last such line)",
    ]


@pytest.mark.parametrize(
    "logged",
    [
        "{'components': [{'value': 'r8_se\\'cret', 'custom_id': 'key'}], 'custom_id': 'imagine:apikey-form'}",
        '{"custom_id": "imagine:apikey-form", "components": [{"components": [{"value": "r8_se\\"cret"}]}]}',
    ],
)
def test_the_api_key_form_s_value_is_masked_whatever_the_order_and_quotes(logged: str) -> None:
    """discord.py logs a modal submit at DEBUG before the bot reads it: the typed key is never in a line."""
    record = logging.LogRecord("discord.gateway", logging.DEBUG, __file__, 1, logged, None, None)
    RedactSecrets([]).filter(record)
    assert "cret" not in record.getMessage() and "r8_se" not in record.getMessage()
