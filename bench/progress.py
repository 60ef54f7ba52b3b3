"""What a member saw of a job's progress, read off the fakes: percentages shown in Discord, and in the API's logs.

* A job's Discord message shows a percentage when its embed's ``Status`` field does (imagine-bot renders
  ``🎨 Processing ▰▰▱▱▱▱▱▱▱▱ 25%``); :func:`percentages_shown` lists them, each with the moment the fake Discord
  stored that version on ``time.monotonic()`` (``MessageVersion.at``), up to the version carrying the image.
* A prediction's ``logs`` carry a percentage when they hold a tqdm progress line (``' 25%|██▌       | 1/4 ...'``);
  :func:`first_logs_webhook_with_percentage` finds the first ``logs`` webhook the fake API sent whose payload
  does (``WebhookDelivery.time``: ``time.monotonic()`` when the fake sent it).

Both fakes run in the benchmark's process, so these stamps are on one clock, which no step of the wall clock
(NTP) moves.

Only the digits before ``%`` are read (with ``|`` after them in logs), so a change of the bar's drawing on
either side leaves these readings alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from tests.fakes.discord import MessageVersion
from tests.fakes.replicate import WebhookDelivery

_SHOWN_PERCENTAGE = re.compile(r"(\d{1,3})\s?%")
_TQDM_PERCENTAGE = re.compile(r"(\d{1,3})%\|")


class ShownPercentage(NamedTuple):
    """One message version that showed a percentage: when the fake Discord stored it (``time.monotonic()``), and
    which percentage."""

    at: float
    percent: int


def field_value(version: MessageVersion, name: str) -> str:
    """The value of the first embed field called ``name`` in ``version`` (``""``: none)."""
    for embed in version.embeds:
        for field in embed.get("fields", []):
            if field.get("name") == name:
                return str(field.get("value", ""))
    return ""


def status_of(version: MessageVersion) -> str:
    """The ``Status`` field of ``version`` (``""``: none)."""
    return field_value(version, "Status")


def percentage_in(text: str) -> int | None:
    """The first percentage written in ``text`` (``"… 25%"`` -> 25), else ``None``."""
    match = _SHOWN_PERCENTAGE.search(text)
    return int(match.group(1)) if match else None


def percentages_shown(history: Iterable[MessageVersion]) -> list[ShownPercentage]:
    """Each version of a job's message whose ``Status`` shows a percentage, in order, until the one with the image."""
    shown: list[ShownPercentage] = []
    for version in history:
        if version.attachments:
            break
        percent = percentage_in(status_of(version))
        if percent is not None:
            shown.append(ShownPercentage(version.at, percent))
    return shown


def distinct_percentages(shown: Sequence[ShownPercentage]) -> int:
    """How many different percentages a member saw (``25%`` shown twice counts once)."""
    return len({item.percent for item in shown})


def first_shown_after(shown: Sequence[ShownPercentage], began: float) -> float | None:
    """Seconds from ``began`` (``time.monotonic()``) to the first percentage shown; ``None``: none was shown.

    Negative when the percentage was shown before ``began``: the caller decides what that means.
    """
    return shown[0].at - began if shown else None


def logs_percentage(logs: str | None) -> int | None:
    """The last tqdm percentage in a prediction's ``logs`` (``None``: no progress line yet)."""
    found = _TQDM_PERCENTAGE.findall(logs or "")
    return int(found[-1]) if found else None


def first_logs_webhook_with_percentage(deliveries: Iterable[WebhookDelivery]) -> WebhookDelivery | None:
    """The first ``logs`` webhook attempt (of one prediction's, in order) whose payload's logs carry a percentage."""
    for delivery in deliveries:
        if delivery.event != "logs":
            continue
        try:
            payload = json.loads(delivery.body)
        except ValueError:
            continue
        if isinstance(payload, dict) and logs_percentage(payload.get("logs")) is not None:
            return delivery
    return None
