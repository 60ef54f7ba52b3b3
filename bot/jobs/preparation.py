"""A member's options turned into a job's request: prompt flags read, the member's preferred options filled in
where neither gives one, everything checked against the model's schema."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from bot.api.accounts import Accounts, AccountUnavailable
from bot.api.client import ReplicateClient
from bot.api.errors import ApiError
from bot.api.flags import apply_prompt_flags
from bot.api.inputs import ImagineOptions, InputSchema, PlannedInputs, plan_inputs
from bot.api.modelref import ModelRef
from bot.api.safety import Checker, apply_checker
from bot.base.errors import InputRejected, Refusal
from bot.i18n import Text, joined, tr
from bot.jobs.model import JobKind, JobRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreferredOptions:
    """A member's own defaults (``/imagine-settings``), for what neither an option nor a prompt flag gives."""

    aspect_ratio: str | None = None
    count: int | None = None

    def candidates(self, options: ImagineOptions) -> list[tuple[ImagineOptions, tuple[Text, ...]]]:
        """``options`` with the preferences that apply filled in, then with fewer of them, the last without any:
        each with the preferences it leaves out. The first the model's schema takes is sent: a preference
        never refuses a request."""
        aspect = self.aspect_ratio if options.aspect_ratio is None else None
        count = self.count if options.count is None else None
        tries = dict.fromkeys([(aspect, count), (aspect, None), (None, count), (None, None)])  # in order, once each
        return [
            (
                replace(options, aspect_ratio=tried_aspect or options.aspect_ratio, count=tried_count or options.count),
                tuple(
                    tr("aspect ratio {value}", value=value) if name == "aspect" else tr("count {value}", value=value)
                    for name, value, tried in (("aspect", aspect, tried_aspect), ("count", count, tried_count))
                    if value is not None and tried is None
                ),
            )
            for tried_aspect, tried_count in tries
        ]


def plan_with_preferences(
    options: ImagineOptions, schema: InputSchema | None, preferred: PreferredOptions | None
) -> tuple[ImagineOptions, PlannedInputs, tuple[Text, ...]]:
    """The options as sent (the preferences that fit filled in), their inputs, and a note for preferences that
    did not fit the model; :class:`InputRejected` only for what the request itself asks."""
    *fitting, (bare, left_out) = preferred.candidates(options) if preferred is not None else [(options, ())]
    for candidate, dropped in fitting:
        try:
            return candidate, plan_inputs(candidate, schema), _left_out_note(dropped)
        except InputRejected:
            continue
    return bare, plan_inputs(bare, schema), _left_out_note(left_out)


def _left_out_note(left_out: tuple[Text, ...]) -> tuple[Text, ...]:
    if not left_out:
        return ()
    what = (
        left_out[0]
        if len(left_out) == 1
        else tr("{first} and {second}", first=joined(left_out[:-1], ", "), second=left_out[-1])
    )
    return (tr("This model does not take your preferred {options}, so its own default was used.", options=what),)


class RequestPreparer:
    """Builds requests for the engine; a model's schema that is slow to come never holds a member up."""

    def __init__(self, client: ReplicateClient, *, schema_timeout: float, accounts: Accounts | None = None) -> None:
        """``accounts`` names the API account each server's jobs use (none: the deployment's, always)."""
        self._client = client
        self._accounts = accounts
        self._schema_timeout = schema_timeout

    async def prepare(
        self,
        model: ModelRef,
        options: ImagineOptions,
        *,
        requester_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        kind: JobKind = JobKind.IMAGINE,
        preferred: PreferredOptions | None = None,
        checker: Checker = Checker.ON,
        spoiler: bool = False,
    ) -> JobRequest:
        """Read the prompt's flags, fill in the member's ``preferred`` options where neither an option nor a flag
        gives one, check ``options`` against the model's schema and build a request.

        Raises ``InputRejected`` (``FlagRejected`` for a malformed prompt flag) with the reason; a preference
        the model does not take is left out, with a note.

        The schema is read once per model and cached; if it takes longer than
        ``schema_timeout`` the options are sent unchecked (the fetch goes on and
        fills the cache for next time), so members always get an answer fast.

        ``checker`` says what the model's safety inputs may be (:func:`bot.api.safety.apply_checker`): on, the
        default, whatever the options ask; ``spoiler`` marks the job's images as spoilers.
        """
        # Flags first: the model gets the prompt without them, and each front end gets them for free.
        options, flag_notes = apply_prompt_flags(options)
        options.check()
        schema = await self.input_schema(model)
        options, planned, preference_notes = plan_with_preferences(options, schema, preferred)
        try:  # the server's own API account, if it has one; a refused key refuses the job (never another key)
            account = await self._accounts.account_of_guild(guild_id) if self._accounts is not None else None
        except AccountUnavailable as exc:
            raise Refusal(exc.text) from None
        return JobRequest(
            model=model,
            options=options,
            inputs=apply_checker(planned.inputs, checker, schema, explicit=options.extra.keys()),
            notes=flag_notes + preference_notes + planned.notes,
            images_expected=planned.images_expected,
            requester_id=requester_id,
            guild_id=guild_id,
            channel_id=channel_id,
            kind=kind,
            image_input=planned.image_input,
            account=account,
            checker=checker,
            spoiler=spoiler,
        )

    async def input_schema(self, model: ModelRef) -> InputSchema | None:
        """The model's input schema as :meth:`prepare` reads it (``None``: unknown, or slow to come)."""
        fetch = asyncio.ensure_future(self._client.input_schema(model))
        try:
            document = await asyncio.wait_for(asyncio.shield(fetch), self._schema_timeout)
        except TimeoutError:
            log.info("input schema of %s is slow to come; sending options unchecked this time", model)
            return None
        except ApiError as exc:
            log.warning("could not read the input schema of %s: %s", model, exc)
            return None
        return InputSchema.from_openapi(document) if document else None
