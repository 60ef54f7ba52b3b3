"""A member's options turned into a job's request: prompt flags read, options checked against the model's schema."""

from __future__ import annotations

import asyncio
import logging

from bot.api.client import ReplicateClient
from bot.api.errors import ApiError
from bot.api.flags import apply_prompt_flags
from bot.api.inputs import ImagineOptions, InputSchema, plan_inputs
from bot.api.modelref import ModelRef
from bot.jobs.model import JobKind, JobRequest

log = logging.getLogger(__name__)


class RequestPreparer:
    """Builds requests for the engine; a model's schema that is slow to come never holds a member up."""

    def __init__(self, client: ReplicateClient, *, schema_timeout: float) -> None:
        self._client = client
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
    ) -> JobRequest:
        """Read the prompt's flags, check ``options`` against the model's schema and build a request.

        Raises ``InputRejected`` (``FlagRejected`` for a malformed prompt flag) with the reason.

        The schema is read once per model and cached; if it takes longer than
        ``schema_timeout`` the options are sent unchecked (the fetch goes on and
        fills the cache for next time), so members always get an answer fast.
        """
        # Flags first: the model gets the prompt without them, and each front end gets them for free.
        options, flag_notes = apply_prompt_flags(options)
        options.check()
        schema = await self.input_schema(model)
        planned = plan_inputs(options, schema)
        return JobRequest(
            model=model,
            options=options,
            inputs=planned.inputs,
            notes=flag_notes + planned.notes,
            images_expected=planned.images_expected,
            requester_id=requester_id,
            guild_id=guild_id,
            channel_id=channel_id,
            kind=kind,
            image_input=planned.image_input,
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
