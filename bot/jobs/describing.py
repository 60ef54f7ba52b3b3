"""``/describe``'s run: one prediction of the describe model, from its create to prompt suggestions.

Not a job of the engine: it makes no image, takes no slot and is not journaled. It goes through the API
client like every job (its request budget, its retries, its rate limits), with the jobs' short ``Prefer: wait``
(a quick model answers in the create itself, and no create holds one of the HTTP session's connections for
long), then polls to the prediction's end. It is bounded in time (the
prediction is canceled when the bot gives up on it, and the create's ``Cancel-After`` has the API cancel it
should the bot be gone by then) and in size (:func:`~bot.api.descriptions.read_text_output`). The text
becomes suggestions (:func:`~bot.api.descriptions.suggestions_from`), less those using a word the server
blocks (:meth:`Description.without`). Knows nothing of Discord.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from bot.api.accounts import Accounts
from bot.api.client import ReplicateClient
from bot.api.descriptions import DescribeFailed, describe_inputs, read_text_output, suggestions_from
from bot.api.errors import ApiError, CreateOutcomeUnknown
from bot.api.inputs import InputSchema
from bot.api.modelref import ModelRef
from bot.api.predictions import Prediction
from bot.base.clock import Clock
from bot.i18n import Text, tr, tr_n
from bot.jobs.poll_planner import Backoff
from bot.moderation.wordfilter import WordFilter

log = logging.getLogger(__name__)

DESCRIBE_TIMEOUT: Final = 120.0
"""Seconds a ``/describe`` waits for its model at most (less where ``IMAGINE_JOB_TIMEOUT`` is shorter): a
captioner takes a second or two, a vision-language model some seconds more."""
CANCEL_AFTER_MARGIN: Final = 30.0
"""Seconds past the bot's own limit at which the API cancels the prediction by itself (``Cancel-After``)."""


@dataclass(frozen=True)
class RunUse:
    """What a describe's prediction used, as far as the bot knows: what its charge is settled to."""

    ran: bool
    """The model ran, or may have (the member keeps the daily image): ``False`` only when the API refused the
    create or ended the prediction before it started."""
    ended: bool
    """The prediction's end is known (its real cost can be worked out); ``False`` when its create's answer or
    its last state was lost, so the reservation stands."""
    succeeded: bool = False
    """It gave an answer (a price per image counts one)."""
    predict_time: float | None = None
    """Seconds the model ran, where the API says (the cost of a per-second price; the API bills failed and
    canceled runs for theirs too)."""

    @classmethod
    def of(cls, prediction: Prediction) -> RunUse:
        """What ``prediction``, in its state as last read, used."""
        started = prediction.started_at is not None or prediction.predict_time is not None
        return cls(
            ran=started or not prediction.terminal,
            ended=prediction.terminal,
            succeeded=prediction.status == "succeeded",
            predict_time=prediction.predict_time,
        )


_NO_PROMPT: Final = tr("The describe model's answer had no prompt in it. Try again, or another image.")

NOT_STARTED: Final = RunUse(ran=False, ended=True)
"""A create the API refused: nothing ran, nothing is billed."""
UNKNOWN: Final = RunUse(ran=True, ended=False)
"""A prediction the bot lost sight of (its create's answer, or its last state): it may have run at any cost."""


class DescribeRunFailed(DescribeFailed):
    """A describe that reached the API and gave no suggestions: the message says why; :attr:`use` what it used."""

    def __init__(self, message: Text | str, use: RunUse) -> None:
        super().__init__(message)
        self.use = use


@dataclass(frozen=True)
class Description:
    """What a describe model suggested for one image."""

    suggestions: tuple[str, ...]
    """The prompts to offer, at most four, none using a blocked word."""
    blocked: int = 0
    """Suggestions left out because they use a word the server blocks."""
    use: RunUse = RunUse(ran=True, ended=True, succeeded=True)
    """What the prediction used (its real cost)."""

    def without(self, words: WordFilter) -> Description:
        """The suggestions that use none of ``words``; :class:`DescribeFailed` if that leaves none."""
        kept = tuple(s for s in self.suggestions if words.first_match(s) is None)
        if not kept:
            raise DescribeFailed(
                tr("Every prompt the describe model suggested uses a word this server has blocked. Try another image.")
            )
        return replace(self, suggestions=kept, blocked=self.blocked + len(self.suggestions) - len(kept))


class Describer:
    """Runs the describe model on an image and reads its answer as prompt suggestions."""

    def __init__(
        self,
        accounts: Accounts,
        *,
        input_schema: Callable[[ModelRef], Awaitable[InputSchema | None]],
        clock: Clock,
        poll: Backoff,
        prefer_wait: int,
    ) -> None:
        """``input_schema``: the model's schema, as the engine reads it (``None``: unknown, or slow to come);
        ``poll``: the gaps between polls of a prediction that did not end in its create; ``prefer_wait``: the
        seconds its create may wait for the answer (the engine's, so a describe holds a connection no longer
        than a job's create; 0: not asked)."""
        self._accounts = accounts
        self._input_schema = input_schema
        self._clock = clock
        self._poll = poll
        self._prefer_wait = prefer_wait

    async def inputs(self, model: ModelRef, image_url: str) -> dict[str, Any]:
        """The inputs that ask ``model`` for prompts for the image, from its schema; :class:`DescribeFailed` for
        a model that takes no image. Read before anything is charged."""
        return describe_inputs(await self._input_schema(model), image_url)

    async def describe(
        self,
        model: ModelRef,
        inputs: dict[str, Any],
        *,
        timeout: float = DESCRIBE_TIMEOUT,
        account: str | None = None,
        guild_id: int | None = None,
    ) -> Description:
        """Run ``model`` on ``inputs`` (from :meth:`inputs`) for at most ``timeout`` seconds: its suggestions, or
        :class:`DescribeRunFailed` saying why there are none (with the API's own words where it gave some) and
        what the prediction used. ``account``: the server's own API account (``None``: the deployment's); a key
        the API refuses is marked rejected, as a job's is."""
        try:
            client = await self._accounts.client(account, guild_id)
        except ApiError as exc:
            raise DescribeRunFailed(exc.text, NOT_STARTED) from exc

        def reason(exc: ApiError) -> Text | str:
            return self._accounts.failure(account, guild_id, exc)

        prediction = await self._run(client, model, inputs, timeout, reason)
        use = RunUse.of(prediction)
        if prediction.status != "succeeded":
            raise DescribeRunFailed(_ended_without_text(prediction), use)
        try:
            suggestions = suggestions_from(read_text_output(prediction.output))
        except DescribeFailed as exc:
            raise DescribeRunFailed(exc.text, use) from exc
        if not suggestions:
            raise DescribeRunFailed(_NO_PROMPT, use)
        return Description(suggestions, use=use)

    async def _run(
        self,
        client: ReplicateClient,
        model: ModelRef,
        inputs: dict[str, Any],
        timeout: float,
        reason: Callable[[ApiError], Text | str],
    ) -> Prediction:
        """The prediction at its end; canceled (and :class:`DescribeRunFailed`) once ``timeout`` has passed."""
        deadline = self._clock.monotonic() + timeout
        try:
            prediction = await client.create(
                model,
                inputs,
                wait=min(self._prefer_wait, int(timeout)) or None,
                cancel_after=timeout + CANCEL_AFTER_MARGIN,
            )
        except ApiError as exc:
            # Only a create whose answer was lost may have made a prediction: the client retries no other.
            use = UNKNOWN if isinstance(exc, CreateOutcomeUnknown) else NOT_STARTED
            raise DescribeRunFailed(
                tr("The describe model could not be started: {reason}", reason=reason(exc)), use
            ) from exc
        polls = 0
        while not prediction.terminal:
            left = deadline - self._clock.monotonic()
            if left <= 0:
                seconds = f"{timeout:g}"
                raise DescribeRunFailed(
                    tr_n(
                        "The describe model took longer than {seconds} second, so it was stopped. Try again later.",
                        "The describe model took longer than {seconds} seconds, so it was stopped. Try again later.",
                        int(timeout) if float(timeout).is_integer() else 2,  # "1.5 seconds": a plural
                        seconds=seconds,
                    ),
                    await self._cancel(client, prediction.id),
                )
            await self._clock.sleep(min(self._poll.gap(polls), left))
            polls += 1
            try:
                prediction = await client.get(prediction.id)
            except ApiError as exc:
                # The client has retried what may pass: this is the API's last word for now.
                raise DescribeRunFailed(
                    tr("The describe model's answer could not be read: {reason}", reason=reason(exc)),
                    await self._cancel(client, prediction.id),
                ) from exc
        return prediction

    async def _cancel(self, client: ReplicateClient, prediction_id: str) -> RunUse:
        """Ask the API to stop the prediction: what it used, as the cancel's answer says (:data:`UNKNOWN` where
        it does not). A failure is logged (``Cancel-After`` stops it in the end)."""
        try:
            return RunUse.of(await client.cancel(prediction_id))
        except ApiError as exc:
            log.warning("could not cancel describe prediction %s: %s", prediction_id, exc)
            return UNKNOWN


def _ended_without_text(prediction: Prediction) -> Text:
    """Why a prediction that did not succeed gave no suggestions, with the API's own error text."""
    reason = prediction.error
    if prediction.status == "failed":
        if reason:
            return tr("The describe model failed: {reason}.", reason=reason.rstrip("."))
        return tr("The describe model failed without giving a reason.")
    if prediction.status == "aborted":
        return tr("The prediction API stopped the describe model before it started. Try again later.")
    if reason:
        return tr(
            "The describe model's prediction was canceled before it finished ({reason}). Try again later.",
            reason=reason,
        )
    return tr("The describe model's prediction was canceled before it finished. Try again later.")
