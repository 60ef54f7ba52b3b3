"""Finding a prediction whose create answer was lost, so no job pays twice and none is lost.

A create can fail *after* the API received it (a 5xx from a proxy, a reset
connection, a broken reply, or the bot killed while it waited): the prediction
may exist. Sending the create again could pay twice; giving up loses an image
that may already be paid for. Instead the account's recent predictions are
listed (``GET /v1/predictions``, newest first) and the one with this job's
model and exact input, created since the create went out and not claimed by
another job, is taken over.

The answer is one of three:

* **found**: carry on with that prediction;
* **absent**: the list was read several times over a few seconds and holds no
  such prediction, so the create did not make one and may be sent again;
* **unknown**: the API cannot list predictions (gateways often serve only the
  prediction routes) or the list could not be read; only then does the job
  end without its image, and never with a second prediction.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.api.client import ReplicateClient
from bot.api.errors import ApiError, NotFound
from bot.api.modelref import ModelRef
from bot.api.predictions import Prediction
from bot.base.clock import Clock, SystemClock
from bot.i18n import Text, tr

log = logging.getLogger(__name__)

LOOKUP_DELAYS: tuple[float, ...] = (0.3, 1.5, 3.0)
"""Seconds before each reading of the list: a prediction made by a create that failed late shows up at once
on Replicate; the later readings cover a slow API before "absent" is concluded."""
CLOCK_SKEW = timedelta(seconds=120)
"""How far the API's clock may be from ours when comparing creation times."""
MAX_PAGES = 5
"""Pages of 100 read per lookup: enough for 500 predictions made by the account around the create."""


@dataclass(frozen=True)
class Lookup:
    """What a lookup concluded."""

    prediction: Prediction | None = None
    """The lost create's prediction, now claimed by the job."""
    absent: bool = False
    """The list was read and holds no such prediction: creating it now cannot pay twice."""
    reason: Text | str | None = None
    """Why nothing can be said (neither found nor absent), in words for the member."""


Claim = Callable[[Prediction], Awaitable[bool]]
"""Record that a job owns a prediction; ``False`` if another job already does."""


class PredictionFinder:
    """Looks up predictions whose create answer was lost, one lookup at a time."""

    def __init__(
        self,
        client: ReplicateClient,
        *,
        clock: Clock | None = None,
        delays: Sequence[float] = LOOKUP_DELAYS,
        skew: timedelta = CLOCK_SKEW,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self._client = client
        self._clock = clock or SystemClock()
        self._delays = tuple(delays)
        self._skew = skew
        self._max_pages = max_pages
        # Two jobs with the same input must not both take one prediction: match and claim happen under a lock.
        self._lock = asyncio.Lock()
        self._no_list_route = False

    async def find(
        self,
        model: ModelRef,
        inputs: Mapping[str, Any],
        *,
        since: datetime,
        claim: Claim,
        client: ReplicateClient | None = None,
    ) -> Lookup:
        """The prediction a create of ``model`` with ``inputs`` sent at ``since`` made, if any (see :class:`Lookup`).

        ``client``: the job's API account's (the list is per account); the finder's own by default.
        """
        if self._no_list_route:
            return Lookup(reason=_NO_LIST)
        wanted = _canonical(inputs)
        for delay in self._delays:
            await self._clock.sleep(delay)
            async with self._lock:
                try:
                    candidates = await self._candidates(client or self._client, model, wanted, since)
                except ApiError as exc:
                    if isinstance(exc, NotFound) or exc.status in (405, 501):
                        self._no_list_route = True  # a gateway without the route: that will not change
                        return Lookup(reason=_NO_LIST)
                    log.warning("could not list predictions to find a lost create: %s", exc)
                    return Lookup(reason=tr("the list of predictions could not be read ({reason})", reason=exc.text))
                for prediction in candidates:
                    if await claim(prediction):
                        log.info("found prediction %s of a create whose answer was lost", prediction.id)
                        return Lookup(prediction=prediction)
        return Lookup(absent=True)

    async def _candidates(
        self, client: ReplicateClient, model: ModelRef, wanted: str, since: datetime
    ) -> list[Prediction]:
        """Matching predictions, the one created closest to ``since`` first."""
        earliest = since - self._skew
        found: list[Prediction] = []
        query: str | None = None
        for page_number in range(self._max_pages):
            page = await client.list_predictions(created_after=earliest if page_number == 0 else None, page_query=query)
            found.extend(p for p in page.predictions if _same_job(p, model, wanted))
            older = [p.created_at for p in page.predictions if p.created_at is not None]
            if page.next_query is None or (older and min(older) < earliest):
                break
            query = page.next_query
        return sorted(found, key=lambda p: abs((p.created_at - since).total_seconds()) if p.created_at else 1e9)


_NO_LIST = tr("the API cannot list predictions, so the bot cannot look it up")


def _canonical(inputs: Mapping[str, Any]) -> str:
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)


def _same_job(prediction: Prediction, model: ModelRef, wanted: str) -> bool:
    """Same model (where the API names it) and exactly the same input."""
    if model.version and prediction.version and prediction.version != model.version:
        return False
    if prediction.model and prediction.model != f"{model.owner}/{model.name}":
        return False
    return _canonical(prediction.input) == wanted
